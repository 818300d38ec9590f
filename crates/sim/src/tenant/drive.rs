//! A drive's items and its change log, which delta tokens point into.
//!
//! Items are never removed (a deleted item stays as a tombstone), so indexes are stable. Every
//! change (creation, new content, rename, move, sharing, deletion) takes the next change number
//! and appends an entry to the log; an item's *current* entry is its latest one. A delta round
//! walks the log from where the previous round ended and emits the current entries it meets, as
//! OneDrive for Business does: a change made while a client pages comes again later in the same
//! round, the live parents of a changed item come with it, and a deleted folder's children are
//! deleted (and logged) before the folder. The changes themselves are in `writes.rs`.

use std::collections::{HashMap, HashSet};

use super::item::Item;

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
    /// The library's decoded site-relative path (`/sites/site1/Shared Documents`): it counts
    /// toward the 400 characters a full path may have.
    pub base_path: String,
    /// Live items by (parent index, lower-case name).
    pub(super) names: HashMap<(usize, String), usize>,
}

impl DriveState {
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.index.get(id).map(|&i| &self.items[i])
    }

    pub fn root_id(&self) -> &str {
        &self.items[0].id
    }

    /// Index of a live item.
    pub fn live(&self, id: &str) -> Option<usize> {
        self.index
            .get(id)
            .copied()
            .filter(|&i| !self.items[i].deleted)
    }

    /// Index of a live folder.
    pub fn live_folder(&self, id: &str) -> Option<usize> {
        self.live(id).filter(|&i| self.items[i].is_folder())
    }

    /// The live child of folder `parent` (an index) named `name`, case-insensitively.
    pub fn child(&self, parent: usize, name: &str) -> Option<usize> {
        self.names.get(&(parent, name.to_lowercase())).copied()
    }

    /// Logs a change of item `i`.
    pub(super) fn touch(&mut self, i: usize) {
        self.seq += 1;
        let item = &mut self.items[i];
        item.changed_seq = self.seq;
        item.log_pos = self.log.len();
        self.log.push((self.seq, i));
    }

    fn name_key(&self, i: usize) -> Option<(usize, String)> {
        let item = &self.items[i];
        let parent = *self.index.get(item.parent.as_ref()?)?;
        Some((parent, item.name.to_lowercase()))
    }

    /// Takes a live item out of the name index (before a rename, a move or a deletion).
    pub(super) fn unname(&mut self, i: usize) {
        if let Some(key) = self.name_key(i) {
            self.names.remove(&key);
        }
    }

    /// Puts a live item into the name index under its current parent and name.
    pub(super) fn name(&mut self, i: usize) {
        if let Some(key) = self.name_key(i) {
            self.names.insert(key, i);
        }
    }

    /// Adds an item (its `changed_seq` and `log_pos` are set here); its index.
    pub fn push(&mut self, item: Item) -> usize {
        let i = self.items.len();
        self.index.insert(item.id.clone(), i);
        let live = !item.deleted;
        self.items.push(item);
        if live {
            self.name(i);
        }
        self.touch(i);
        i
    }

    /// Live children per folder index.
    pub(super) fn children_map(&self) -> HashMap<usize, Vec<usize>> {
        let mut map: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, item) in self.items.iter().enumerate().filter(|(_, it)| !it.deleted) {
            if let Some(&p) = item.parent.as_ref().and_then(|p| self.index.get(p)) {
                map.entry(p).or_default().push(i);
            }
        }
        map
    }

    /// Item `i` and its ancestors, from `i` up to the root.
    pub(super) fn chain(&self, i: usize) -> Vec<usize> {
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

    /// The item's path from the drive's root: `/Folder/file.docx` (the root is `/`).
    pub fn path(&self, i: usize) -> String {
        if self.items[i].parent.is_none() {
            return "/".into();
        }
        let mut path = String::new();
        for a in self.ancestors(i).into_iter().skip(1).chain([i]) {
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::item::item_id;
    use super::super::writes::ChangeError;
    use super::*;
    use chrono::Utc;
    use rand::SeedableRng;

    pub(crate) fn drive() -> (DriveState, rand_chacha::ChaCha8Rng) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut state = DriveState::default();
        state.push(Item::root(item_id(&mut rng), Utc::now()));
        (state, rng)
    }

    pub(crate) fn names(state: &DriveState, page: &DeltaPage) -> Vec<String> {
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
        let names = names(&s, &round);
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("f") < pos("b") && pos("b") < pos("a") && pos("g") < pos("a"));
        assert_eq!(s.delete_item(&root, now), Err(ChangeError::Root));
        // A deleted name is free again.
        s.add_folder(&mut rng, &root, "A", now, None).unwrap();
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
        let names = names(&s, &s.delta_page(mark, mark, 100));
        assert_eq!(names, ["root", "b", "moved"]);
        let i = s.items.iter().position(|x| x.name == "deep").unwrap();
        assert_eq!(s.parent_path(i), "/drive/root:/b/moved");
        assert_eq!(s.path(i), "/b/moved/deep");
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
        assert_eq!(names(&s, &first), ["root", "f"]);
        s.modify_file(&f, 5, now, None).unwrap();
        let second = s.delta_page(0, first.next, 10);
        assert_eq!(
            names(&s, &second),
            ["g", "f"],
            "f again, with its new content"
        );
        assert!(second.done);
        assert_eq!(s.get(&f).unwrap().history.len(), 1);
    }
}
