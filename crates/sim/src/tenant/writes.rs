//! Changes to a drive, as OneDrive for Business makes them: create (with a conflict behaviour),
//! new content (a new version), restore of a version, rename, move, times, sharing, delete.
//! Each change is logged for delta; a refused change changes nothing.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::drive::DriveState;
use super::item::{item_id, FileInfo, FileVersion, Grant, Item, Permission};
use super::names::{check_name, numbered, MAX_PATH_CHARS};
use crate::content::ContentSource;

/// Why a change was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("no such live item")]
    NotFound,
    /// The target is not a live folder, or the move would put a folder inside itself.
    #[error("the parent is not a live folder of the drive, or lies inside the item")]
    InvalidParent,
    /// A live sibling already has the name.
    #[error("a live item of that name is already there")]
    NameTaken,
    #[error("'{0}' is not a valid OneDrive name")]
    InvalidName(String),
    #[error("the item's full path would exceed {MAX_PATH_CHARS} characters")]
    PathTooLong,
    /// The root folder cannot be renamed, moved or deleted.
    #[error("the root folder cannot be changed so")]
    Root,
    #[error("the item is a folder, not a file")]
    NotAFile,
    #[error("no such version")]
    NoSuchVersion,
    #[error("no such permission")]
    NoSuchPermission,
}

/// `@microsoft.graph.conflictBehavior`: what happens when the name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conflict {
    Fail,
    Replace,
    Rename,
}

/// `fileSystemInfo` as a client sets it; absent fields keep their value (or take "now").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub created: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
}

/// Where a create or an upload landed: the item, and whether it is new (Graph's 201) or an
/// existing one (200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub index: usize,
    pub created: bool,
}

impl DriveState {
    /// Characters of the full decoded path of folder `p` (the library's path included).
    fn folder_path_chars(&self, p: usize) -> usize {
        let folders: usize = self
            .chain(p)
            .into_iter()
            .filter(|&a| self.items[a].parent.is_some())
            .map(|a| 1 + self.items[a].name.chars().count())
            .sum();
        self.base_path.chars().count() + folders
    }

    /// The longest path below item `i`, relative to it, in characters (0 for a file).
    fn subtree_suffix(&self, i: usize) -> usize {
        fn walk(
            s: &DriveState,
            i: usize,
            children: &std::collections::HashMap<usize, Vec<usize>>,
        ) -> usize {
            children
                .get(&i)
                .map(|c| {
                    c.iter()
                        .map(|&c| 1 + s.items[c].name.chars().count() + walk(s, c, children))
                        .max()
                        .unwrap_or(0)
                })
                .unwrap_or(0)
        }
        if self.items[i].is_folder() {
            walk(self, i, &self.children_map())
        } else {
            0
        }
    }

    /// Refuses `name` under folder `p` when it (or, `below` characters deeper, a descendant)
    /// would exceed the path limit.
    fn check_path(&self, p: usize, name: &str, below: usize) -> Result<(), ChangeError> {
        let chars = self.folder_path_chars(p) + 1 + name.chars().count() + below;
        if chars > MAX_PATH_CHARS {
            Err(ChangeError::PathTooLong)
        } else {
            Ok(())
        }
    }

    /// Refuses new names under folder `p` (folders, then a file: `["A", "B", "f.txt"]`) that
    /// OneDrive would refuse: an invalid name, or a full path over the limit.
    pub fn check_new_path(&self, p: usize, names: &[&str]) -> Result<(), ChangeError> {
        for name in names {
            check_name(name)?;
        }
        let below: usize = names.iter().map(|n| 1 + n.chars().count()).sum();
        if self.folder_path_chars(p) + below > MAX_PATH_CHARS {
            return Err(ChangeError::PathTooLong);
        }
        Ok(())
    }

    /// The first `name n.ext` free under folder `p`.
    fn free_name(&self, p: usize, name: &str) -> String {
        let mut n = 1;
        loop {
            let candidate = numbered(name, n);
            if self.child(p, &candidate).is_none() {
                return candidate;
            }
            n += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_child(
        &mut self,
        rng: &mut impl Rng,
        p: usize,
        name: &str,
        file: Option<FileInfo>,
        times: Times,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> usize {
        let parent = self.items[p].id.clone();
        self.push(Item::new(
            item_id(rng),
            name.to_owned(),
            Some(parent),
            file,
            times.created.unwrap_or(now),
            times.modified.unwrap_or(now),
            by,
        ))
    }

    /// Where a new item named `name` goes under `parent` given `conflict`: its parent index,
    /// its final name and the live sibling it displaces or updates, if any.
    fn placement(
        &self,
        parent: &str,
        name: &str,
        conflict: Conflict,
    ) -> Result<(usize, String, Option<usize>), ChangeError> {
        check_name(name)?;
        let p = self.live_folder(parent).ok_or(ChangeError::InvalidParent)?;
        let (name, existing) = match (self.child(p, name), conflict) {
            (None, _) => (name.to_owned(), None),
            (Some(_), Conflict::Fail) => return Err(ChangeError::NameTaken),
            (Some(_), Conflict::Rename) => (self.free_name(p, name), None),
            (Some(e), Conflict::Replace) => (name.to_owned(), Some(e)),
        };
        self.check_path(p, &name, 0)?;
        Ok((p, name, existing))
    }

    /// Creates a folder (`POST …/children` with `folder: {}`). `replace` onto a folder answers
    /// that folder unchanged, as OneDrive for Business does; onto a file, the file goes.
    #[allow(clippy::too_many_arguments)]
    pub fn create_folder(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        conflict: Conflict,
        times: Times,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<Placed, ChangeError> {
        let (p, name, existing) = self.placement(parent, name, conflict)?;
        if let Some(e) = existing {
            if self.items[e].is_folder() {
                return Ok(Placed {
                    index: e,
                    created: false,
                });
            }
            self.delete_index(e, now);
        }
        let index = self.insert_child(rng, p, &name, None, times, now, by);
        Ok(Placed {
            index,
            created: true,
        })
    }

    /// Writes a file under `parent`: a new item, or with `replace` a new version of the file
    /// of that name (a folder of that name is never replaced by a file).
    #[allow(clippy::too_many_arguments)]
    pub fn put_file(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        size: u64,
        content: ContentSource,
        conflict: Conflict,
        times: Times,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<Placed, ChangeError> {
        let (p, name, existing) = self.placement(parent, name, conflict)?;
        if let Some(e) = existing {
            if self.items[e].is_folder() {
                return Err(ChangeError::NameTaken);
            }
            self.new_version(e, size, content, times.modified.unwrap_or(now), by);
            return Ok(Placed {
                index: e,
                created: false,
            });
        }
        let file = FileInfo {
            size,
            version: 1,
            content,
        };
        let index = self.insert_child(rng, p, &name, Some(file), times, now, by);
        Ok(Placed {
            index,
            created: true,
        })
    }

    /// Adds a file of generated content under `parent` (a folder id); the new item's id.
    pub fn add_file(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        size: u64,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<String, ChangeError> {
        let content = ContentSource::Generated { version: 1 };
        let times = Times::default();
        let placed = self.put_file(
            rng,
            parent,
            name,
            size,
            content,
            Conflict::Fail,
            times,
            now,
            by,
        )?;
        Ok(self.items[placed.index].id.clone())
    }

    pub fn add_folder(
        &mut self,
        rng: &mut impl Rng,
        parent: &str,
        name: &str,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<String, ChangeError> {
        let placed =
            self.create_folder(rng, parent, name, Conflict::Fail, Times::default(), now, by)?;
        Ok(self.items[placed.index].id.clone())
    }

    /// Index of a live file.
    fn live_file(&self, id: &str) -> Result<usize, ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        if self.items[i].is_folder() {
            return Err(ChangeError::NotAFile);
        }
        Ok(i)
    }

    /// A new current version of file `i`; the old one goes to the history.
    fn new_version(
        &mut self,
        i: usize,
        size: u64,
        content: ContentSource,
        modified: DateTime<Utc>,
        by: Option<usize>,
    ) {
        let item = &mut self.items[i];
        let Some(file) = item.file.as_mut() else {
            return;
        };
        item.history.push(FileVersion {
            version: file.version,
            size: file.size,
            modified: item.modified,
            modified_by: item.modified_by,
            content: file.content,
        });
        *file = FileInfo {
            size,
            version: file.version + 1,
            content,
        };
        item.modified = modified;
        item.modified_by = by.or(item.modified_by);
        self.touch(i);
    }

    /// New content for a file (`PUT …/{id}/content`, an upload session on an item).
    pub fn replace_content(
        &mut self,
        id: &str,
        size: u64,
        content: ContentSource,
        modified: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<(), ChangeError> {
        let i = self.live_file(id)?;
        self.new_version(i, size, content, modified.unwrap_or(now), by);
        Ok(())
    }

    /// New generated content (and size) for a file: a new version.
    pub fn modify_file(
        &mut self,
        id: &str,
        size: u64,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<(), ChangeError> {
        let i = self.live_file(id)?;
        // Version numbers only grow, so the new number has never named any content.
        let next = self.items[i].file.map_or(1, |f| f.version + 1);
        let content = ContentSource::Generated { version: next };
        self.new_version(i, size, content, now, by);
        Ok(())
    }

    /// `restoreVersion`: an older version's content becomes a new current version.
    pub fn restore_version(
        &mut self,
        id: &str,
        version: u64,
        now: DateTime<Utc>,
        by: Option<usize>,
    ) -> Result<(), ChangeError> {
        let i = self.live_file(id)?;
        let old = self.items[i]
            .version(version)
            .ok_or(ChangeError::NoSuchVersion)?;
        self.new_version(i, old.size, old.content, now, by);
        Ok(())
    }

    /// Renames, moves and/or sets the times of an item (`PATCH`). Only the item changes: its
    /// descendants keep their change numbers (their paths follow from the parents).
    pub fn update(
        &mut self,
        id: &str,
        name: Option<&str>,
        parent: Option<&str>,
        times: Times,
        conflict: Conflict,
        now: DateTime<Utc>,
    ) -> Result<(), ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        let moving = name.is_some() || parent.is_some();
        if !moving && times == Times::default() {
            return Ok(());
        }
        let mut displaced = None;
        if moving {
            let old_parent = self.items[i].parent.clone().ok_or(ChangeError::Root)?;
            let new_parent = parent.unwrap_or(&old_parent).to_owned();
            let p = self
                .live_folder(&new_parent)
                .ok_or(ChangeError::InvalidParent)?;
            // A folder cannot move into itself or its own subtree.
            if self.chain(p).contains(&i) {
                return Err(ChangeError::InvalidParent);
            }
            let mut new_name = name.unwrap_or(&self.items[i].name).to_owned();
            check_name(&new_name)?;
            match self.child(p, &new_name).filter(|&e| e != i) {
                None => {}
                Some(_) if conflict == Conflict::Fail => return Err(ChangeError::NameTaken),
                Some(_) if conflict == Conflict::Rename => new_name = self.free_name(p, &new_name),
                Some(e) => displaced = Some(e),
            }
            self.check_path(p, &new_name, self.subtree_suffix(i))?;
            if let Some(e) = displaced {
                self.delete_index(e, now);
            }
            self.unname(i);
            let item = &mut self.items[i];
            item.name = new_name;
            item.parent = Some(new_parent);
            item.modified = now;
            self.name(i);
        } else if self.items[i].parent.is_none() {
            return Err(ChangeError::Root);
        }
        let item = &mut self.items[i];
        if let Some(c) = times.created {
            item.created = c;
        }
        if let Some(m) = times.modified {
            item.modified = m;
        }
        self.touch(i);
        Ok(())
    }

    /// Renames and/or moves an item, refusing a taken name.
    pub fn rename_or_move(
        &mut self,
        id: &str,
        name: Option<&str>,
        parent: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ChangeError> {
        self.update(id, name, parent, Times::default(), Conflict::Fail, now)
    }

    /// Replaces an item's explicit permissions (one per user or link kind: the last wins).
    pub fn set_grants(&mut self, id: &str, grants: Vec<Grant>) -> Result<(), ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        let item_id = self.items[i].id.clone();
        let mut permissions: Vec<Permission> = Vec::new();
        for g in grants {
            permissions.retain(|p| !p.same_subject(&g));
            permissions.push(Permission::new(&item_id, g));
        }
        self.items[i].grants = permissions;
        self.touch(i);
        Ok(())
    }

    /// Grants one permission (a user invited again gets the new role); the permission and
    /// whether it is new.
    pub fn grant(&mut self, id: &str, grant: Grant) -> Result<(Permission, bool), ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        let item = &mut self.items[i];
        let permission = Permission::new(&item.id, grant.clone());
        let new = match item.grants.iter_mut().find(|p| p.same_subject(&grant)) {
            Some(p) if p.grant == grant => return Ok((p.clone(), false)),
            Some(p) => {
                p.grant = grant;
                false
            }
            None => {
                item.grants.push(permission.clone());
                true
            }
        };
        self.touch(i);
        Ok((permission, new))
    }

    /// Removes one explicit permission by id.
    pub fn revoke(&mut self, id: &str, permission: &str) -> Result<(), ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        let before = self.items[i].grants.len();
        self.items[i].grants.retain(|p| p.id != permission);
        if self.items[i].grants.len() == before {
            return Err(ChangeError::NoSuchPermission);
        }
        self.touch(i);
        Ok(())
    }

    /// Deletes live item `i` with everything in it, deepest first, so that in delta a folder
    /// is reported deleted after its children.
    fn delete_index(&mut self, i: usize, now: DateTime<Utc>) {
        let children = self.children_map();
        let mut order = Vec::new();
        post_order(i, &children, &mut order);
        for j in order {
            self.unname(j);
            self.items[j].deleted = true;
            self.items[j].modified = now;
            self.touch(j);
        }
    }

    /// Deletes an item; a folder goes with everything in it.
    pub fn delete_item(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), ChangeError> {
        let i = self.live(id).ok_or(ChangeError::NotFound)?;
        if self.items[i].parent.is_none() {
            return Err(ChangeError::Root);
        }
        self.delete_index(i, now);
        Ok(())
    }
}

fn post_order(
    i: usize,
    children: &std::collections::HashMap<usize, Vec<usize>>,
    out: &mut Vec<usize>,
) {
    for &c in children.get(&i).map(Vec::as_slice).unwrap_or_default() {
        post_order(c, children, out);
    }
    out.push(i);
}

#[cfg(test)]
mod tests {
    use super::super::drive::tests::{drive, names};
    use super::super::item::{LinkScope, Role};
    use super::*;

    fn stored(n: u64) -> ContentSource {
        ContentSource::Stored(crate::blobs::BlobId(n))
    }

    #[test]
    fn conflict_behaviours() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let t = Times::default();
        let first = s
            .put_file(
                &mut rng,
                &root,
                "a.txt",
                3,
                stored(1),
                Conflict::Fail,
                t,
                now,
                None,
            )
            .unwrap();
        assert!(first.created);
        assert_eq!(
            s.put_file(
                &mut rng,
                &root,
                "A.TXT",
                3,
                stored(2),
                Conflict::Fail,
                t,
                now,
                None
            ),
            Err(ChangeError::NameTaken),
            "names compare case-insensitively"
        );
        let renamed = s
            .put_file(
                &mut rng,
                &root,
                "a.txt",
                4,
                stored(2),
                Conflict::Rename,
                t,
                now,
                None,
            )
            .unwrap();
        assert_eq!(s.items[renamed.index].name, "a 1.txt");
        let again = s
            .put_file(
                &mut rng,
                &root,
                "a.txt",
                5,
                stored(3),
                Conflict::Rename,
                t,
                now,
                None,
            )
            .unwrap();
        assert_eq!(s.items[again.index].name, "a 2.txt");
        let replaced = s
            .put_file(
                &mut rng,
                &root,
                "a.txt",
                6,
                stored(4),
                Conflict::Replace,
                t,
                now,
                None,
            )
            .unwrap();
        assert_eq!(
            replaced,
            Placed {
                index: first.index,
                created: false
            }
        );
        let f = s.items[first.index].file.unwrap();
        assert_eq!((f.version, f.size, f.content), (2, 6, stored(4)));
        assert_eq!(s.items[first.index].history.len(), 1);

        // Folders: replace onto a folder keeps it; onto a file, the file goes.
        let folder = s
            .create_folder(&mut rng, &root, "F", Conflict::Fail, t, now, None)
            .unwrap();
        let same = s
            .create_folder(&mut rng, &root, "f", Conflict::Replace, t, now, None)
            .unwrap();
        assert_eq!(
            same,
            Placed {
                index: folder.index,
                created: false
            }
        );
        assert_eq!(
            s.put_file(
                &mut rng,
                &root,
                "F",
                1,
                stored(5),
                Conflict::Replace,
                t,
                now,
                None
            ),
            Err(ChangeError::NameTaken),
            "a file never replaces a folder"
        );
        let over_file = s
            .create_folder(&mut rng, &root, "a 1.txt", Conflict::Replace, t, now, None)
            .unwrap();
        assert!(over_file.created && s.items[renamed.index].deleted);
    }

    #[test]
    fn times_versions_and_paths() {
        let (mut s, mut rng) = drive();
        s.base_path = "/sites/x/Shared Documents".into();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let when = "2020-05-01T10:00:00Z".parse().unwrap();
        let times = Times {
            created: Some(when),
            modified: Some(when),
        };
        let dir = s
            .create_folder(&mut rng, &root, "Dir", Conflict::Fail, times, now, None)
            .unwrap();
        assert_eq!(s.items[dir.index].created, when);
        let dir_id = s.items[dir.index].id.clone();
        let file = s
            .put_file(
                &mut rng,
                &dir_id,
                "f.bin",
                10,
                stored(1),
                Conflict::Fail,
                Times::default(),
                now,
                None,
            )
            .unwrap();
        let id = s.items[file.index].id.clone();
        s.replace_content(&id, 20, stored(2), None, now, None)
            .unwrap();
        s.restore_version(&id, 1, now, None).unwrap();
        let f = s.items[file.index].file.unwrap();
        assert_eq!((f.version, f.size, f.content), (3, 10, stored(1)));
        assert_eq!(
            s.restore_version(&id, 9, now, None),
            Err(ChangeError::NoSuchVersion)
        );
        assert_eq!(
            s.restore_version(&dir_id, 1, now, None),
            Err(ChangeError::NotAFile)
        );
        let mark = s.log.len();
        s.update(&id, None, None, times, Conflict::Fail, now)
            .unwrap();
        assert_eq!(s.items[file.index].modified, when);
        assert_eq!(
            names(&s, &s.delta_page(mark, mark, 10)),
            ["root", "Dir", "f.bin"]
        );

        // The library's path counts: 25 + "/Dir" + "/" + name ≤ 400.
        let longest = "n".repeat(400 - 25 - 4 - 1);
        s.put_file(
            &mut rng,
            &dir_id,
            &longest,
            1,
            stored(3),
            Conflict::Fail,
            Times::default(),
            now,
            None,
        )
        .unwrap();
        assert_eq!(
            s.create_folder(
                &mut rng,
                &dir_id,
                &format!("{longest}x"),
                Conflict::Fail,
                Times::default(),
                now,
                None
            ),
            Err(ChangeError::PathTooLong)
        );
        // Renaming the folder would push its child over the limit.
        assert_eq!(
            s.update(
                &dir_id,
                Some("Dir2"),
                None,
                Times::default(),
                Conflict::Fail,
                now
            ),
            Err(ChangeError::PathTooLong)
        );
        assert_eq!(s.items[dir.index].name, "Dir", "nothing changed");
    }

    #[test]
    fn moves_honour_the_conflict_behaviour() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let a = s.add_folder(&mut rng, &root, "a", now, None).unwrap();
        let x = s.add_file(&mut rng, &root, "x.txt", 1, now, None).unwrap();
        let y = s.add_file(&mut rng, &a, "x.txt", 1, now, None).unwrap();
        let t = Times::default();
        assert_eq!(
            s.update(&x, None, Some(&a), t, Conflict::Fail, now),
            Err(ChangeError::NameTaken)
        );
        s.update(&x, None, Some(&a), t, Conflict::Rename, now)
            .unwrap();
        assert_eq!(s.get(&x).unwrap().name, "x 1.txt");
        s.update(&x, Some("x.txt"), None, t, Conflict::Replace, now)
            .unwrap();
        assert!(s.get(&y).unwrap().deleted);
        assert_eq!(s.get(&x).unwrap().name, "x.txt");
    }

    #[test]
    fn grants_have_stable_ids() {
        let (mut s, mut rng) = drive();
        let now = Utc::now();
        let root = s.root_id().to_owned();
        let f = s.add_file(&mut rng, &root, "f", 1, now, None).unwrap();
        let (p, new) = s
            .grant(
                &f,
                Grant::User {
                    user: 3,
                    role: Role::Read,
                },
            )
            .unwrap();
        assert!(new);
        let (again, new) = s
            .grant(
                &f,
                Grant::User {
                    user: 3,
                    role: Role::Write,
                },
            )
            .unwrap();
        assert!(
            !new && again.id == p.id,
            "a user has one permission per item"
        );
        let (link, _) = s
            .grant(
                &f,
                Grant::Link {
                    scope: LinkScope::Organization,
                    role: Role::Read,
                },
            )
            .unwrap();
        assert_eq!(s.get(&f).unwrap().grants.len(), 2);
        s.revoke(&f, &p.id).unwrap();
        assert_eq!(s.revoke(&f, &p.id), Err(ChangeError::NoSuchPermission));
        assert_eq!(s.get(&f).unwrap().grants, [link]);
    }
}
