//! The server's TLS certificate: configured files, or a self-signed one generated in the data
//! dir on first start and reused afterwards (so clients that pinned it keep working); its key
//! is never read through a symbolic link and is narrowed to mode 0600 at every start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

use crate::config::TlsSource;
use crate::fsutil::{open_private, write_file, write_private};

pub const GENERATED_CERT: &str = "tls/server.crt";
pub const GENERATED_KEY: &str = "tls/server.key";

pub async fn load(source: &TlsSource, data_dir: &Path) -> anyhow::Result<RustlsConfig> {
    // aws-lc-rs is the one provider compiled in; installing it twice is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (cert, key) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::Generated => ensure_self_signed(data_dir)?,
    };
    let config = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| {
            format!(
                "loading TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?;
    // HTTP/1.1 only (see `listener`): offering h2 in ALPN would break clients that pick it.
    let mut server_config = (*config.get_inner()).clone();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.reload_from_config(std::sync::Arc::new(server_config));
    Ok(config)
}

fn ensure_self_signed(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = data_dir.join(GENERATED_CERT);
    let key_path = data_dir.join(GENERATED_KEY);
    if cert_path.exists() && key_path.exists() {
        // The key is checked (no symbolic link) and narrowed to 0600 before rustls reads it.
        open_private(&key_path)?;
        return Ok((cert_path, key_path));
    }
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names.clone())
        .context("generating a self-signed certificate")?;
    write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())?;
    write_file(&cert_path, generated.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), names = ?names, "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}
