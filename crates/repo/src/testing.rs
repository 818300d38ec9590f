//! Real storage servers for tests and benchmarks (feature `test-services`): an S3-compatible
//! server (`s3s-fs`, built from crates.io) and Azure's emulator (Azurite, from npm), each
//! started once per test process on a free loopback port and killed with it. `scripts/test`
//! installs both; `M365BACKUP_S3S_FS` and `M365BACKUP_AZURITE_BLOB` name other binaries.

// Only tests and benchmarks build this module (feature `test-services`, enabled by
// dev-dependencies alone): a server that fails to start should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use m365backup_core::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::{AzureLocation, Location, S3Location};

pub const S3_ACCESS_KEY: &str = "m365backup-test-key";
pub const S3_SECRET_KEY: &str = "m365backup-test-secret";
pub const S3_REGION: &str = "us-east-1";
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, in Microsoft's documentation).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// The first of: the environment variable, a file in the tools cache, a program on PATH.
fn find_program(env: &str, cached: PathBuf, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    if cached.exists() {
        return cached;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    panic!("{name} is not installed: run scripts/test, which installs it (or set {env})");
}

/// Folders of the shared servers, removed when the test process exits (statics are never
/// dropped, so their `TempDir`s would otherwise stay behind).
static REMOVE_AT_EXIT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

extern "C" fn remove_server_folders() {
    if let Ok(dirs) = REMOVE_AT_EXIT.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A new temporary folder that lives until the process exits.
fn folder_until_exit() -> PathBuf {
    let path = tempfile::tempdir().expect("temp dir").keep();
    let mut dirs = REMOVE_AT_EXIT.lock().expect("folder list");
    if dirs.is_empty() {
        // SAFETY: registers a plain function with no arguments, run once at exit.
        unsafe {
            libc::atexit(remove_server_folders);
        }
    }
    dirs.push(path.clone());
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `command` from a thread that lives as long as the process, with the parent-death
/// signal set, so the server dies with the test process however that ends.
fn spawn_for_process_lifetime(mut command: Command) -> Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .expect("spawner thread")
        .expect("server process starts")
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An s3s-fs process serving a temporary folder.
pub struct S3Server {
    pub endpoint: String,
    root: PathBuf,
    _child: Child,
}

impl S3Server {
    /// The server of this test process, started on first use.
    pub fn shared() -> &'static S3Server {
        static SERVER: OnceLock<S3Server> = OnceLock::new();
        SERVER.get_or_init(|| {
            let program = find_program(
                "M365BACKUP_S3S_FS",
                home().join(".cargo/bin/s3s-fs"),
                "s3s-fs",
            );
            let root = folder_until_exit();
            let port = free_port();
            let mut command = Command::new(program);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                .arg(&root)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = spawn_for_process_lifetime(command);
            wait_for_port(port, "s3s-fs");
            S3Server {
                endpoint: format!("http://127.0.0.1:{port}"),
                root,
                _child: child,
            }
        })
    }

    /// A bucket is a folder of s3s-fs's root.
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.join(name)).expect("bucket folder");
    }

    /// Removes a bucket and everything in it.
    pub fn remove_bucket(&self, name: &str) {
        let _ = std::fs::remove_dir_all(self.root.join(name));
    }

    /// Where the server keeps an object (to damage it in tests).
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    pub fn location(&self, bucket: &str, prefix: &str) -> Location {
        Location::S3(S3Location {
            endpoint: Some(self.endpoint.clone()),
            region: S3_REGION.into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: Secret::new(S3_SECRET_KEY),
            allow_http: true,
            path_style: true,
        })
    }
}

/// An Azurite (blob service) process with its data in a temporary folder.
pub struct Azurite {
    pub port: u16,
    _child: Child,
}

impl Azurite {
    pub fn shared() -> &'static Azurite {
        static SERVER: OnceLock<Azurite> = OnceLock::new();
        SERVER.get_or_init(|| {
            let program = find_program(
                "M365BACKUP_AZURITE_BLOB",
                home().join(".cache/m365backup-test-tools/node_modules/.bin/azurite-blob"),
                "azurite-blob",
            );
            let dir = folder_until_exit();
            let port = free_port();
            let mut command = Command::new(program);
            command
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(&dir)
                .args(["--skipApiVersionCheck", "--loose", "--silent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = spawn_for_process_lifetime(command);
            wait_for_port(port, "Azurite");
            Azurite {
                port,
                _child: child,
            }
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    pub fn location(&self, container: &str, prefix: &str) -> Location {
        Location::Azure(AzureLocation {
            account: AZURITE_ACCOUNT.into(),
            access_key: Secret::new(AZURITE_KEY),
            container: container.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint()),
            allow_http: true,
        })
    }

    /// Creates a container (Blob service "Create Container", signed with the shared key).
    pub async fn create_container(&self, name: &str) {
        let date = httpdate_now();
        let version = "2021-08-06";
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        );
        let key = B64.decode(AZURITE_KEY).expect("base64 key");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac key");
        mac.update(string_to_sign.as_bytes());
        let signature = B64.encode(mac.finalize().into_bytes());
        let request = format!(
            "PUT /{AZURITE_ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nContent-Length: 0\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to Azurite");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("receive");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "creating container {name}: {answer}"
        );
    }
}

fn httpdate_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}
