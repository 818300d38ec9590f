//! A drive's items and its change log, which delta tokens point into.
//!
//! Items are never removed (a deleted item stays as a tombstone), so indexes are stable. Every
//! change (creation, new content, rename, move, sharing, deletion) takes the next change number
//! and appends an entry to the log; an item's *current* entry is its latest one. A delta round
//! walks the log from where the previous round ended and emits the current entries it meets, as
//! OneDrive for Business does: a change made while a client pages comes again later in the same
//! round, the live parents of a changed item come with it, and a deleted folder's children are
//! deleted (and logged) before the folder.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub name: String,
    /// `None` for the root folder.
    pub parent: Option<String>,
    pub file: Option<FileInfo>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Users (tenant indexes) who created and last changed the item.
    pub created_by: Option<usize>,
    pub modified_by: Option<usize>,
    /// Change number of the last change.
    pub changed_seq: u64,
    /// Position of the last change in [`DriveState::log`].
    pub log_pos: usize,
    pub deleted: bool,
    /// Explicit permissions: the item is shared when there are any.
    pub grants: Vec<Grant>,
    /// Earlier versions of a file, oldest first (the current one is [`Item::file`]).
    pub history: Vec<FileVersion>,
}

#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    pub size: u64,
    /// Bumped by every content change; with the item id it determines the bytes.
    pub version: u64,
}

/// An earlier version of a file.
#[derive(Debug, Clone, Copy)]
pub struct FileVersion {
    pub version: u64,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub modified_by: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkScope {
    Organization,
    Anonymous,
}

/// One explicit permission on an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Shared with a user (tenant index).
    User { user: usize, role: Role },
    /// A sharing link.
    Link { scope: LinkScope, role: Role },
}

impl Item {
    /// A drive's root folder.
    pub fn root(id: String, created: DateTime<Utc>) -> Self {
        Self {
            id,
            name: "root".into(),
            parent: None,
            file: None,
            created,
            modified: created,
            created_by: None,
            modified_by: None,
            changed_seq: 0,
            log_pos: 0,
            deleted: false,
            grants: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Key of the content generator for this item: unique across drives.
    pub fn content_key(&self, drive_id: &str) -> String {
        format!("{drive_id}/{}", self.id)
    }

    pub fn is_folder(&self) -> bool {
        self.file.is_none()
    }

    /// Size of version `version` of the file, if the file has (had) it.
    pub fn version_size(&self, version: u64) -> Option<u64> {
        let current = self.file?;
        if current.version == version {
            return Some(current.size);
        }
        self.history
            .iter()
            .find(|v| v.version == version)
            .map(|v| v.size)
    }
}

/// Why a change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeError {
    NotFound,
    /// The target is not a live folder, or the move would put a folder inside itself.
    InvalidParent,
    /// A live sibling already has the name.
    NameTaken,
    InvalidName,
    /// The root folder cannot be renamed, moved or deleted.
    Root,
}

/// One page of a delta round: the items to emit (indexes, in order) and where it ended.
#[derive(Debug)]
pub struct DeltaPage {
    pub items: Vec<usize>,
    /// Log position the next page starts from.
    pub next: usize,
    /// The round has reached the end of the log.
    pub done: bool,
}

#[derive(Debug, Default)]
pub struct DriveState {
    /// Last change number handed out.
    pub seq: u64,
    pub items: Vec<Item>,
    pub index: HashMap<String, usize>,
    /// Every change in order: (change number, item index).
    pub log: Vec<(u64, usize)>,
    /// Bumped when a resync is forced: delta tokens of an earlier epoch are refused with 410.
    pub epoch: u64,
}

impl DriveState {
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    pub fn root_id(&self) -> &str {
        &self.items[0].id
    }

    /// Logs a change of item `i`.
    fn touch(&mut self, i: usize) {
        self.seq += 1;
        let item = &mut self.items[i];
        item.changed_seq = self.seq;
        item.log_pos = self.log.len();
        self.log.push((self.seq, i));
    }

    /// Adds an item (its `changed_seq` and `log_pos` are set here); its index.
    pub fn push(&mut self, item: Item) -> usize {
        let i = self.items.len();
        self.index.insert(item.id.clone(), i);
        self.items.push(item);
        self.touch(i);
        i
    }

    fn live_folder(&self, id: &str) -> Option<usize> {
        let &i = self.index.get(id)?;
        let item = &self.items[i];
        (!item.deleted && item.is_folder()).then_some(i)
    }

    fn name_taken(&self, parent: &str, name: &str, except: Option<usize>) -> bool {
        self.items.iter().enumerate().any(|(i, it)| {
            Some(i) != except
                && !it.deleted
                && it.parent.as_deref() == Some(parent)
                && it.name.to_lowercase() == name.to_lowercase()
        })
    }

    fn check_name(name: &str) -> Result<(), ChangeError> {
        // SharePoint refuses these characters and names that end with a dot or space.
        let bad = name.is_empty()
            || name.len() > 400
            || name.contains(['"', '*', ':', '<', '>', '?', '/', '\\', '|'])
            || name.ends_with(['.', ' '])
            || name.starts_with(' ');
        if bad {
            Err(ChangeError::InvalidName)
        } else {
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        file: Option<FileInfo>,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<String, ChangeError> {
        Self::check_name(name)?;
        self.live_folder(parent).ok_or(ChangeError::InvalidParent)?;
        if self.name_taken(parent, name, None) {
            return Err(ChangeError::NameTaken);
        }
        let id = item_id(rng);
        self.push(Item {
            id: id.clone(),
            name: name.to_owned(),
            parent: Some(parent.to_owned()),
            file,
            created: now,
            modified: now,
            created_by: by,
            modified_by: by,
            changed_seq: 0,
            log_pos: 0,
            deleted: false,
            grants: Vec::new(),
            history: Vec::new(),
        });
        Ok(id)
    }

    /// Adds a file under `parent` (a folder id); the new item's id.
    pub fn add_file(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        size: u64,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<String, ChangeError> {
        let file = FileInfo { size, version: 1 };
        self.add(rng, parent, name, Some(file), now, by)
    }

    pub fn add_folder(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<String, ChangeError> {
        self.add(rng, parent, name, None, now, by)
    }

    /// New content (and size) for a file: a new version; the old one goes to the history.
    pub fn modify_file(
        &mut self,
        id: &str,
        size: u64,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<(), ChangeError> {
        let &i = self.index.get(id).ok_or(ChangeError::NotFound)?;
        let item = &mut self.items[i];
        let Some(file) = item.file.as_mut().filter(|_| !item.deleted) else {
            return Err(ChangeError::NotFound);
        };
        item.history.push(FileVersion {
            version: file.version,
            size: file.size,
            modified: item.modified,
            modified_by: item.modified_by,
        });
        file.size = size;
        file.version += 1;
        item.modified = now;
        item.modified_by = by.or(item.modified_by);
        self.touch(i);
        Ok(())
    }

    /// Renames and/or moves an item. Only the item changes: its descendants keep their
    /// change numbers (their paths follow from the parents).
    pub fn rename_or_move(
        &mut self,
        id: &str,
        name: Option<&str>,
        parent: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ChangeError> {
        let &i = self.index.get(id).ok_or(ChangeError::NotFound)?;
        if self.items[i].deleted {
            return Err(ChangeError::NotFound);
        }
        let old_parent = self.items[i].parent.clone().ok_or(ChangeError::Root)?;
        let new_parent = parent.map(str::to_owned).unwrap_or(old_parent);
        let p = self
            .live_folder(&new_parent)
            .ok_or(ChangeError::InvalidParent)?;
        // A folder cannot move into itself or its own subtree.
        if self.chain(p).contains(&i) {
            return Err(ChangeError::InvalidParent);
        }
        let new_name = name.unwrap_or(&self.items[i].name).to_owned();
        Self::check_name(&new_name)?;
        if self.name_taken(&new_parent, &new_name, Some(i)) {
            return Err(ChangeError::NameTaken);
        }
        let item = &mut self.items[i];
        item.name = new_name;
        item.parent = Some(new_parent);
        item.modified = now;
        self.touch(i);
        Ok(())
    }

    /// Replaces an item's explicit permissions.
    pub fn set_grants(&mut self, id: &str, grants: Vec<Grant>) -> Result<(), ChangeError> {
        let &i = self.index.get(id).ok_or(ChangeError::NotFound)?;
        if self.items[i].deleted {
            return Err(ChangeError::NotFound);
        }
        self.items[i].grants = grants;
        self.touch(i);
        Ok(())
    }

    /// Deletes an item; a folder goes with everything in it, deepest first, so that in delta a
    /// folder is reported deleted after its children.
    pub fn delete_item(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), ChangeError> {
        let &i = self.index.get(id).ok_or(ChangeError::NotFound)?;
        if self.items[i].deleted {
            return Err(ChangeError::NotFound);
        }
        if self.items[i].parent.is_none() {
            return Err(ChangeError::Root);
        }
        let children = self.children_map();
        let mut order = Vec::new();
        post_order(i, &children, &mut order);
        for j in order {
            self.items[j].deleted = true;
            self.items[j].modified = now;
            self.touch(j);
        }
        Ok(())
    }

    /// Live children per folder index.
    fn children_map(&self) -> HashMap<usize, Vec<usize>> {
        let mut map: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, item) in self.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
            if let Some(&p) = item.parent.as_ref().and_then(|p| self.index.get(p)) {
                map.entry(p).or_default().push(i);
            }
        }
        map
    }

    /// Item `i` and its ancestors, from `i` up to the root.
    fn chain(&self, i: usize) -> Vec<usize> {
        let mut chain = vec![i];
        let mut at = i;
        while let Some(&p) = self.items[at]
            .parent
            .as_ref()
            .and_then(|p| self.index.get(p))
        {
            if chain.contains(&p) {
                break;
            }
            chain.push(p);
            at = p;
        }
        chain
    }

    /// Ancestors of item `i`, root first.
    pub fn ancestors(&self, i: usize) -> Vec<usize> {
        let mut chain = self.chain(i);
        chain.remove(0);
        chain.reverse();
        chain
    }

    /// `/drive/root:` followed by the names of the item's parent folders (Graph's
    /// `parentReference.path`; the root's children have `/drive/root:`).
    pub fn parent_path(&self, i: usize) -> String {
        let mut path = String::from("/drive/root:");
        for a in self.ancestors(i).into_iter().skip(1) {
            path.push('/');
            path.push_str(&self.items[a].name);
        }
        path
    }

    /// Number of live children per folder index.
    pub fn child_counts(&self) -> HashMap<usize, u64> {
        self.children_map()
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect()
    }

    /// One page of the delta round that started at log position `start`, from position `next`
    /// on, about `top` items long. An entry is emitted when it is its item's current one; a
    /// live item brings its live ancestors along unless they were already emitted earlier in
    /// this round (their current entry lies between `start` and here) or on this page.
    pub fn delta_page(&self, start: usize, next: usize, top: usize) -> DeltaPage {
        let mut items = Vec::with_capacity(top);
        let mut on_page = HashSet::new();
        let mut at = next;
        while at < self.log.len() && items.len() < top {
            let (seq, i) = self.log[at];
            at += 1;
            let item = &self.items[i];
            if item.changed_seq != seq {
                continue; // a later change of this item is further on
            }
            if !item.deleted {
                for a in self.ancestors(i) {
                    let ancestor = &self.items[a];
                    let emitted_earlier = (start..at - 1).contains(&ancestor.log_pos);
                    if !ancestor.deleted && !emitted_earlier && on_page.insert(a) {
                        items.push(a);
                    }
                }
            }
            if on_page.insert(i) {
                items.push(i);
            }
        }
        DeltaPage {
            items,
            next: at,
            done: at >= self.log.len(),
        }
    }
}

fn post_order(i: usize, children: &HashMap<usize, Vec<usize>>, out: &mut Vec<usize>) {
    for &c in children.get(&i).map(Vec::as_slice).unwrap_or_default() {
        post_order(c, children, out);
    }
    out.push(i);
}

/// Graph-style drive item id: 34 upper-case base-32 characters starting with "01".
pub fn item_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("01");
    id.extend((0..32).map(|_| ALPHABET[rng.gen_range(0..32)] as char));
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn drive() -> (DriveState, rand_chacha::ChaCha8Rng) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut state = DriveState::default();
        state.push(Item::root(item_id(&mut rng), Utc::now()));
        (state, rng)
    }

    fn ids(state: &DriveState, page: &DeltaPage) -> Vec<String> {
        page.items
            .iter()
            .map(|&i| state.items[i].name.clone())
            .collect()
    }

    #[test]
    fn deleting_a_folder_deletes_its_subtree_children_first() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let a = s.add_folder(&mut rng, &root, "a", now, None).unwrap();
        let b = s.add_folder(&mut rng, &a, "b", now, None).unwrap();
        s.add_file(&mut rng, &b, "f", 1, now, None).unwrap();
        s.add_file(&mut rng, &a, "g", 1, now, None).unwrap();
        let mark = s.log.len();
        s.delete_item(&a, now).unwrap();
        assert!(s.items.iter().skip(1).all(|i| i.deleted), "no orphans left");
        let round = s.delta_page(mark, mark, 100);
        let names = ids(&s, &round);
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("f") < pos("b") && pos("b") < pos("a") && pos("g") < pos("a"));
        assert_eq!(s.delete_item(&root, now), Err(ChangeError::Root));
    }

    #[test]
    fn a_move_reports_the_item_and_its_parents_not_its_descendants() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let a = s.add_folder(&mut rng, &root, "a", now, None).unwrap();
        let b = s.add_folder(&mut rng, &root, "b", now, None).unwrap();
        let inner = s.add_folder(&mut rng, &a, "inner", now, None).unwrap();
        s.add_file(&mut rng, &inner, "deep", 1, now, None).unwrap();
        let mark = s.log.len();
        s.rename_or_move(&inner, Some("moved"), Some(&b), now)
            .unwrap();
        let names = ids(&s, &s.delta_page(mark, mark, 100));
        assert_eq!(names, ["root", "b", "moved"]);
        let i = s.items.iter().position(|x| x.name == "deep").unwrap();
        assert_eq!(s.parent_path(i), "/drive/root:/b/moved");
        assert_eq!(
            s.rename_or_move(&b, None, Some(&inner), now),
            Err(ChangeError::InvalidParent),
            "not into its own subtree"
        );
        assert_eq!(
            s.rename_or_move(&inner, Some("a"), Some(&root), now),
            Err(ChangeError::NameTaken)
        );
    }

    #[test]
    fn a_change_during_a_round_comes_again_later_in_it() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let f = s.add_file(&mut rng, &root, "f", 1, now, None).unwrap();
        s.add_file(&mut rng, &root, "g", 1, now, None).unwrap();
        let first = s.delta_page(0, 0, 2);
        assert_eq!(ids(&s, &first), ["root", "f"]);
        s.modify_file(&f, 5, now, None).unwrap();
        let second = s.delta_page(0, first.next, 10);
        assert_eq!(
            ids(&s, &second),
            ["g", "f"],
            "f again, with its new content"
        );
        assert!(second.done);
        assert_eq!(s.get(&f).unwrap().history.len(), 1);
    }
}
