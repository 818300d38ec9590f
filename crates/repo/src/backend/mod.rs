//! The storage under a repository, through the `object_store` crate: one flat key space of
//! immutable objects (`config`, `keys/…`, `data/…`, `index/…`, `snapshots/…`, `locks/…`).
//! Local writes are made durable by hand (see [`local`]); cloud writes are durable when the
//! service answers. Errors are sorted into [`StorageFault`]s with their source kept.

mod local;
mod location;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

pub use local::file_system_space;
pub use location::{AzureLocation, Location, S3Location};

use crate::error::{RepoError, RepoResult, StorageFault};

/// One object as listed.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The object's name inside the listed folder (e.g. the hex id).
    pub name: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    /// Keys are `<prefix>/<key>` in the store.
    prefix: String,
    /// For a local folder: its path, so writes can be fsynced.
    local_root: Option<PathBuf>,
    display: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Retries are few and short: a repository that cannot be reached should say so in seconds.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120))
}

impl Backend {
    pub fn open(location: &Location) -> RepoResult<Self> {
        let display = location.display();
        let invalid = |e: object_store::Error| RepoError::Invalid(format!("{display}: {e}"));
        let (store, prefix, local_root): (Arc<dyn ObjectStore>, String, Option<PathBuf>) =
            match location {
                Location::Local { path } => {
                    if !path.is_absolute() {
                        return Err(RepoError::Invalid(format!(
                            "the repository path '{}' must be absolute",
                            path.display()
                        )));
                    }
                    std::fs::create_dir_all(path).map_err(|e| {
                        RepoError::Invalid(format!(
                            "cannot create the folder {}: {e}",
                            path.display()
                        ))
                    })?;
                    let store = LocalFileSystem::new_with_prefix(path).map_err(invalid)?;
                    (Arc::new(store), String::new(), Some(path.clone()))
                }
                Location::S3(s3) => {
                    let mut builder = AmazonS3Builder::new()
                        .with_region(&s3.region)
                        .with_bucket_name(&s3.bucket)
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(s3.secret_access_key.expose())
                        .with_virtual_hosted_style_request(!s3.path_style)
                        .with_allow_http(s3.allow_http)
                        .with_retry(retry())
                        .with_client_options(client_options(s3.allow_http));
                    if let Some(endpoint) = &s3.endpoint {
                        builder = builder.with_endpoint(endpoint);
                    }
                    (
                        Arc::new(builder.build().map_err(invalid)?),
                        s3.prefix.trim_matches('/').to_owned(),
                        None,
                    )
                }
                Location::Azure(az) => {
                    let mut builder = MicrosoftAzureBuilder::new()
                        .with_account(&az.account)
                        .with_access_key(az.access_key.expose())
                        .with_container_name(&az.container)
                        .with_allow_http(az.allow_http)
                        .with_retry(retry())
                        .with_client_options(client_options(az.allow_http));
                    if let Some(endpoint) = &az.endpoint {
                        builder = builder.with_endpoint(endpoint.clone());
                    }
                    (
                        Arc::new(builder.build().map_err(invalid)?),
                        az.prefix.trim_matches('/').to_owned(),
                        None,
                    )
                }
            };
        Ok(Self {
            store,
            prefix,
            local_root,
            display,
        })
    }

    /// How the location is shown to people.
    /// How many handles share this backend's store (tests: what is still held).
    #[cfg(test)]
    pub(crate) fn handles(&self) -> usize {
        Arc::strong_count(&self.store)
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    fn path(&self, key: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key)
        } else {
            StorePath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn fault(&self, what: String, e: object_store::Error) -> RepoError {
        RepoError::Storage {
            fault: classify(&e),
            location: self.display.clone(),
            what,
            source: Box::new(e),
        }
    }

    /// Writes `bytes` under `key`; when this returns, the object is durable.
    pub async fn put(&self, key: &str, bytes: Bytes) -> RepoResult<()> {
        if let Some(root) = &self.local_root {
            let root = root.clone();
            let key_owned = key.to_owned();
            return tokio::task::spawn_blocking(move || {
                local::durable_put(&root, &key_owned, &bytes)
            })
            .await
            .map_err(RepoError::task("write"))?
            .map_err(|e| {
                let fault = if crate::error::is_no_space(&e) {
                    StorageFault::NoSpace
                } else {
                    StorageFault::Other
                };
                RepoError::Storage {
                    fault,
                    location: self.display.clone(),
                    what: format!("writing {key}"),
                    source: Box::new(e),
                }
            });
        }
        self.store
            .put(&self.path(key), bytes.into())
            .await
            .map_err(|e| self.fault(format!("writing {key}"), e))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> RepoResult<Bytes> {
        let got = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| self.fault(format!("reading {key}"), e))?;
        got.bytes()
            .await
            .map_err(|e| self.fault(format!("reading {key}"), e))
    }

    /// `None` when the object does not exist (a missing bucket is still an error).
    pub async fn get_optional(&self, key: &str) -> RepoResult<Option<Bytes>> {
        match self.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(RepoError::Storage {
                fault: StorageFault::NotFound,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_range(&self, key: &str, range: Range<u64>) -> RepoResult<Bytes> {
        let want = range.end - range.start;
        let bytes = self
            .store
            .get_range(&self.path(key), range.clone())
            .await
            .map_err(|e| self.fault(format!("reading {key} bytes {range:?}"), e))?;
        if bytes.len() as u64 != want {
            return Err(RepoError::damaged(
                key.to_owned(),
                format!("asked for {want} bytes, got {}", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Every object under the folder `dir` (recursively), named relative to it.
    pub async fn list(&self, dir: &str) -> RepoResult<Vec<Listed>> {
        let base = self.path(dir);
        let prefix_len = base.as_ref().len() + 1;
        let metas: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.fault(format!("listing {dir}/"), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref();
                let rel = full.get(prefix_len..)?;
                let name = rel.rsplit('/').next()?.to_owned();
                (!name.starts_with('.')).then_some(Listed {
                    name,
                    size: m.size,
                    last_modified: m.last_modified,
                })
            })
            .collect())
    }

    pub async fn delete(&self, key: &str) -> RepoResult<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fault(format!("deleting {key}"), e)),
        }
    }

    /// Checks that the storage answers and the bucket exists: lists the root.
    pub async fn probe(&self) -> RepoResult<()> {
        let base = if self.prefix.is_empty() {
            None
        } else {
            Some(StorePath::from(self.prefix.as_str()))
        };
        self.store
            .list_with_delimiter(base.as_ref())
            .await
            .map_err(|e| self.fault("listing the repository folder".into(), e))?;
        Ok(())
    }
}

/// Sorts an object_store error into what an administrator can act on. The services say what
/// went wrong only in the status and body of their answers, which object_store keeps as text.
fn classify(e: &object_store::Error) -> StorageFault {
    let text = format!("{e:?} {e}");
    let has = |needle: &str| text.contains(needle);
    if has("NoSuchBucket")
        || has("ContainerNotFound")
        || has("The specified container does not exist")
    {
        return StorageFault::NoBucket;
    }
    match e {
        object_store::Error::NotFound { .. } => return StorageFault::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => return StorageFault::AccessDenied,
        _ => {}
    }
    if has("InvalidAccessKeyId")
        || has("SignatureDoesNotMatch")
        || has("AuthenticationFailed")
        || has("AuthorizationFailure")
        || has("AccessDenied")
        || has("403 Forbidden")
    {
        StorageFault::AccessDenied
    } else if has("No space left") || has("os error 28") {
        StorageFault::NoSpace
    } else if has("onnect") || has("timed out") || has("dns error") || has("error sending request")
    {
        StorageFault::Unreachable
    } else {
        StorageFault::Other
    }
}
