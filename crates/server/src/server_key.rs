//! The server key: seals organization and backup-account secrets at rest. Created on first
//! start in the data dir (mode 0600, never through a symbolic link, narrowed to 0600 again at
//! every start) unless a key file is configured; losing it makes the stored secrets unreadable,
//! so back it up with the database.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use m365backup_core::crypto::{SecretSealer, KEY_LEN};
use zeroize::Zeroizing;

use crate::fsutil::{open_private, write_private};

pub const DEFAULT_KEY_FILE: &str = "server.key";

/// Reads the key file (one base64 line), creating it with a fresh key when absent. A key in
/// `data_dir` is the server's own: never read through a symbolic link, and narrowed to mode 0600
/// whatever mode it had. A key file configured elsewhere is the administrator's (a secret
/// mount, say) and is read as it is.
pub fn load_or_create(path: &Path, data_dir: &Path) -> anyhow::Result<SecretSealer> {
    let own = path.starts_with(data_dir);
    if std::fs::symlink_metadata(path).is_err() {
        let key = SecretSealer::generate_key();
        write_private(
            path,
            format!("{}\n", STANDARD.encode(key.as_ref())).as_bytes(),
        )?;
        tracing::info!(path = %path.display(), "created the server key; back it up with the database");
    }
    let text = Zeroizing::new(
        read_key(path, own)
            .with_context(|| format!("reading the server key {}", path.display()))?,
    );
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .with_context(|| format!("the server key {} is not base64", path.display()))?,
    );
    let key: Zeroizing<[u8; KEY_LEN]> =
        Zeroizing::new(bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "the server key {} must hold {KEY_LEN} bytes",
                path.display()
            )
        })?);
    Ok(SecretSealer::new(&key))
}

/// The key file's text; through [`open_private`] when it is the server's own.
fn read_key(path: &Path, own: bool) -> anyhow::Result<String> {
    if !own {
        return Ok(std::fs::read_to_string(path)?);
    }
    let mut text = String::new();
    open_private(path)?.read_to_string(&mut text)?;
    Ok(text)
}
