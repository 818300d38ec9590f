//! The repositories a server knows (the v5 `BackupRepositories`): where each lives, its
//! retention, and its secrets (the repository password and the storage's secret key), sealed
//! under the server key. [`RepositoryService`] creates, edits, opens and maintains them.

mod retention_settings;
mod service;
mod store;

pub use retention_settings::{
    DailyType, RetentionFrequencyType, RetentionPeriodType, RetentionSettings,
    YearlyRetentionPeriod,
};
pub use service::{
    NewRepository, ProtectedSummary, RepositoryEdit, RepositoryService, RepositoryStatus,
    DEFAULT_REPOSITORY_NAME,
};
pub use store::RegistryStore;

use chrono::{DateTime, Utc};
use m365backup_core::Secret;
use serde::{Deserialize, Serialize};

use crate::backend::{AzureLocation, Location, S3Location};

/// A registered repository, without secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    pub storage: StorageSettings,
    pub retention: RetentionSettings,
    /// The proxy (server node) that added it.
    pub proxy_id: uuid::Uuid,
    pub is_default: bool,
    /// For object storage: the id of its v5 `ObjectStorageRepositories` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_storage_id: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retention_at: Option<DateTime<Utc>>,
}

/// Where a repository lives, without secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StorageSettings {
    Local {
        path: std::path::PathBuf,
    },
    #[serde(rename_all = "camelCase")]
    S3 {
        /// `AmazonS3` or `S3Compatible`.
        flavor: S3Flavor,
        endpoint: Option<String>,
        region: String,
        bucket: String,
        prefix: String,
        access_key_id: String,
        allow_http: bool,
        path_style: bool,
    },
    #[serde(rename_all = "camelCase")]
    Azure {
        account: String,
        container: String,
        prefix: String,
        endpoint: Option<String>,
        allow_http: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum S3Flavor {
    AmazonS3,
    S3Compatible,
}

impl StorageSettings {
    /// `local`, `s3` or `azure`.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageSettings::Local { .. } => "local",
            StorageSettings::S3 { .. } => "s3",
            StorageSettings::Azure { .. } => "azure",
        }
    }

    pub fn is_object_storage(&self) -> bool {
        !matches!(self, StorageSettings::Local { .. })
    }

    /// The location with its secret filled in.
    pub fn location(&self, storage_secret: Option<&Secret>) -> Location {
        let secret = || storage_secret.cloned().unwrap_or_default();
        match self {
            StorageSettings::Local { path } => Location::Local { path: path.clone() },
            StorageSettings::S3 {
                endpoint,
                region,
                bucket,
                prefix,
                access_key_id,
                allow_http,
                path_style,
                ..
            } => Location::S3(S3Location {
                endpoint: endpoint.clone(),
                region: region.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret(),
                allow_http: *allow_http,
                path_style: *path_style,
            }),
            StorageSettings::Azure {
                account,
                container,
                prefix,
                endpoint,
                allow_http,
            } => Location::Azure(AzureLocation {
                account: account.clone(),
                access_key: secret(),
                container: container.clone(),
                prefix: prefix.clone(),
                endpoint: endpoint.clone(),
                allow_http: *allow_http,
            }),
        }
    }

    /// The v5 `path`: the folder, `s3://bucket/prefix` or `azure://account/container/prefix`.
    pub fn display(&self) -> String {
        self.location(None).display()
    }
}

/// The sealed half of a record: the repository password and the storage's secret key.
#[derive(Clone, Debug, Default)]
pub struct RepositorySecrets {
    pub password: Secret,
    pub storage_secret: Option<Secret>,
}

/// The plaintext that is sealed (and nothing else ever sees it).
#[derive(Serialize, Deserialize)]
struct SealedForm {
    password: String,
    #[serde(default)]
    storage_secret: Option<String>,
}

impl RepositorySecrets {
    pub(crate) fn to_plaintext(&self) -> serde_json::Result<zeroize::Zeroizing<Vec<u8>>> {
        let form = SealedForm {
            password: self.password.expose().to_owned(),
            storage_secret: self.storage_secret.as_ref().map(|s| s.expose().to_owned()),
        };
        let json = serde_json::to_vec(&form).map(zeroize::Zeroizing::new);
        let SealedForm {
            mut password,
            storage_secret,
        } = form;
        zeroize::Zeroize::zeroize(&mut password);
        if let Some(mut s) = storage_secret {
            zeroize::Zeroize::zeroize(&mut s);
        }
        json
    }

    pub(crate) fn from_plaintext(plain: &[u8]) -> Result<Self, serde_json::Error> {
        let form: SealedForm = serde_json::from_slice(plain)?;
        Ok(Self {
            password: Secret::new(form.password),
            storage_secret: form.storage_secret.map(Secret::new),
        })
    }
}
