//! Where a repository lives: a local folder, an S3-compatible bucket, or an Azure Blob container.

use std::path::PathBuf;

use m365backup_core::Secret;

#[derive(Clone, Debug)]
pub enum Location {
    Local { path: PathBuf },
    S3(S3Location),
    Azure(AzureLocation),
}

#[derive(Clone, Debug)]
pub struct S3Location {
    /// `http(s)://host[:port]`; `None` for Amazon S3 itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Folder inside the bucket (may be empty).
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Allow `http://` endpoints (on-premises stores on a trusted network).
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`), which most on-premises stores need.
    pub path_style: bool,
}

#[derive(Clone, Debug)]
pub struct AzureLocation {
    pub account: String,
    pub access_key: Secret,
    pub container: String,
    pub prefix: String,
    /// Blob service URL; `None` for `https://<account>.blob.core.windows.net`. For the
    /// Azurite emulator: `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: Option<String>,
    pub allow_http: bool,
}

impl Location {
    /// How the location is shown to people (never with a secret): a folder path,
    /// `s3://bucket/prefix` or `azure://account/container/prefix`.
    pub fn display(&self) -> String {
        fn join(base: String, prefix: &str) -> String {
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                base
            } else {
                format!("{base}/{prefix}")
            }
        }
        match self {
            Location::Local { path } => path.display().to_string(),
            Location::S3(s3) => join(format!("s3://{}", s3.bucket), &s3.prefix),
            Location::Azure(az) => join(
                format!("azure://{}/{}", az.account, az.container),
                &az.prefix,
            ),
        }
    }
}
