//! What an action of a restore session works on: a whole OneDrive or library, a folder of it, or
//! one document — each with the restore point it is read from. Saving ([`super::export`]) and
//! restoring to Microsoft 365 take the same selections.

use m365backup_repo::{Item, ItemKind};

use crate::restore::browse::RestorePoint;

#[derive(Clone)]
pub enum Selection {
    /// Everything a OneDrive or a library held.
    Object { point: RestorePoint },
    /// A folder and what it holds.
    Folder { point: RestorePoint, folder: Item },
    /// One document (at the restore point's version).
    Document { point: RestorePoint, item: Item },
}

impl Selection {
    /// A folder or a document of `point`.
    pub fn item(point: RestorePoint, item: Item) -> Self {
        match item.kind {
            ItemKind::Folder => Selection::Folder {
                point,
                folder: item,
            },
            ItemKind::File => Selection::Document { point, item },
        }
    }

    pub fn point(&self) -> &RestorePoint {
        match self {
            Selection::Object { point }
            | Selection::Folder { point, .. }
            | Selection::Document { point, .. } => point,
        }
    }

    /// The selected item's name (the object's name for a whole object).
    pub fn name(&self) -> &str {
        match self {
            Selection::Object { point } => &point.object().name,
            Selection::Folder { folder: item, .. } | Selection::Document { item, .. } => &item.name,
        }
    }

    /// `OneDrive`, `Library`, `Folder` or `Document` (event item types).
    pub fn item_type(&self) -> &'static str {
        match self {
            Selection::Object { point } => match point.object().kind {
                m365backup_repo::ObjectKind::OneDrive => "OneDrive",
                _ => "Library",
            },
            Selection::Folder { .. } => "Folder",
            Selection::Document { .. } => "Document",
        }
    }
}
