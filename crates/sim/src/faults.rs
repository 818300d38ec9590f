//! Faults a test injects into the tenant: per drive item, its content (or one version's) answers
//! `404 itemNotFound` (the file vanished between listing and download), `423 resourceLocked`,
//! or its download stream is cut after some bytes; per file name, the upload sessions that write
//! it expire midway. Each fault holds until cleared, or for the next `times` requests it meets.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// What a content request meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultKind {
    /// `404 itemNotFound`, at `/content` and at the download URL.
    NotFound,
    /// `423 resourceLocked`, at `/content` and at the download URL.
    Locked,
    /// The download URL's response ends after this many bytes of the body (its
    /// `Content-Length` promises the whole).
    Cut {
        #[serde(rename = "afterBytes")]
        after_bytes: u64,
    },
}

/// A fault on one drive item's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only this version's content (the number of version id `3.0` is 3); every version when
    /// absent.
    #[serde(default)]
    pub version: Option<u64>,
    /// For the next `times` requests that meet it; until cleared when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

impl ItemFault {
    /// Until cleared, on every version.
    pub fn permanent(kind: FaultKind) -> Self {
        Self {
            kind,
            version: None,
            times: None,
        }
    }

    /// For the next `times` requests, on every version.
    pub fn times(kind: FaultKind, times: u32) -> Self {
        Self {
            kind,
            version: None,
            times: Some(times),
        }
    }

    /// Only on version `version`.
    pub fn on_version(self, version: u64) -> Self {
        Self {
            version: Some(version),
            ..self
        }
    }
}

/// Where a request meets an item's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `GET …/content`, `GET …/versions/{id}/content` (answers before any byte).
    Graph,
    /// The pre-authenticated download URL.
    Download,
}

/// Upload sessions writing a file of this name (in any folder of the drive) expire once they
/// have received `expire_after_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadFault {
    pub name: String,
    pub expire_after_bytes: u64,
    /// For the next `times` sessions; until cleared when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Default)]
pub struct Faults {
    items: Mutex<HashMap<(String, String), Vec<ItemFault>>>,
    uploads: Mutex<Vec<(String, UploadFault)>>,
}

/// Counts one use of a fault with a budget; whether it is used up.
fn spend(times: &mut Option<u32>) -> bool {
    match times {
        Some(n) => {
            *n = n.saturating_sub(1);
            *n == 0
        }
        None => false,
    }
}

impl Faults {
    /// Sets a fault on an item; it replaces one for the same version (or for every version).
    pub fn set(&self, drive: &str, item: &str, fault: ItemFault) {
        let mut map = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry((drive.to_owned(), item.to_owned())).or_default();
        list.retain(|f| f.version != fault.version);
        list.push(fault);
    }

    /// Clears the faults of one item, or of the whole drive.
    pub fn clear(&self, drive: &str, item: Option<&str>) {
        let mut map = self.items.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|(d, i), _| d != drive || item.is_some_and(|item| item != i));
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(d, _)| item.is_some() || d != drive);
    }

    /// Every fault still active: (drive, item, fault).
    pub fn list(&self) -> Vec<(String, String, ItemFault)> {
        let map = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map
            .iter()
            .flat_map(|((d, i), fs)| fs.iter().map(move |f| (d.clone(), i.clone(), *f)))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// The fault a request for version `version` of an item meets at `stage`, counted as one
    /// use; a cut only applies to the download itself.
    pub fn take(&self, drive: &str, item: &str, version: u64, stage: Stage) -> Option<FaultKind> {
        let mut map = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let key = (drive.to_owned(), item.to_owned());
        let list = map.get_mut(&key)?;
        // A version's own fault before one on every version.
        let at = list
            .iter()
            .position(|f| f.version == Some(version))
            .or_else(|| list.iter().position(|f| f.version.is_none()))?;
        let fault = &mut list[at];
        if stage == Stage::Graph && matches!(fault.kind, FaultKind::Cut { .. }) {
            return None;
        }
        let kind = fault.kind;
        if spend(&mut fault.times) {
            list.remove(at);
            if list.is_empty() {
                map.remove(&key);
            }
        }
        Some(kind)
    }

    pub fn set_upload(&self, drive: &str, fault: UploadFault) {
        let mut list = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        list.retain(|(d, f)| d != drive || !f.name.eq_ignore_ascii_case(&fault.name));
        list.push((drive.to_owned(), fault));
    }

    /// The byte count after which a new upload session for `name` expires, counted as one use.
    pub fn take_upload(&self, drive: &str, name: &str) -> Option<u64> {
        let mut list = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let at = list
            .iter()
            .position(|(d, f)| d == drive && f.name.eq_ignore_ascii_case(name))?;
        let after = list[at].1.expire_after_bytes;
        if spend(&mut list[at].1.times) {
            list.remove(at);
        }
        Some(after)
    }

    pub fn uploads(&self) -> Vec<(String, UploadFault)> {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_counted_and_versions_come_first() {
        let f = Faults::default();
        f.set("d", "i", ItemFault::times(FaultKind::NotFound, 2));
        f.set(
            "d",
            "i",
            ItemFault::permanent(FaultKind::Locked).on_version(1),
        );
        assert_eq!(f.take("d", "i", 1, Stage::Graph), Some(FaultKind::Locked));
        assert_eq!(f.take("d", "i", 3, Stage::Graph), Some(FaultKind::NotFound));
        assert_eq!(
            f.take("d", "i", 3, Stage::Download),
            Some(FaultKind::NotFound)
        );
        assert_eq!(f.take("d", "i", 3, Stage::Download), None, "used up");
        assert_eq!(
            f.take("d", "i", 1, Stage::Download),
            Some(FaultKind::Locked)
        );
        assert_eq!(f.take("d", "other", 1, Stage::Download), None);

        let cut = FaultKind::Cut { after_bytes: 10 };
        f.set("d", "c", ItemFault::times(cut, 1));
        assert_eq!(
            f.take("d", "c", 1, Stage::Graph),
            None,
            "a cut waits for the bytes"
        );
        assert_eq!(f.take("d", "c", 1, Stage::Download), Some(cut));
        assert_eq!(f.take("d", "c", 1, Stage::Download), None);
        f.clear("d", None);
        assert!(f.list().is_empty());

        let json: ItemFault =
            serde_json::from_str(r#"{"kind":"cut","afterBytes":5,"version":2,"times":1}"#).unwrap();
        assert_eq!(
            json,
            ItemFault::times(FaultKind::Cut { after_bytes: 5 }, 1).on_version(2)
        );
        f.set_upload(
            "d",
            UploadFault {
                name: "Big.bin".into(),
                expire_after_bytes: 100,
                times: Some(1),
            },
        );
        assert_eq!(f.take_upload("d", "big.BIN"), Some(100));
        assert_eq!(f.take_upload("d", "big.bin"), None);
    }
}
