//! Item changes of a writer, sorted by item id with bounded memory: they are kept in a sorted
//! map and, past a size, written out as a sorted run to an anonymous temporary file. Reading
//! merges the runs; for an id changed more than once, the latest change wins.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use crate::catalog::ItemChange;
use crate::error::{RepoError, RepoResult};

/// Changes held in memory before a run is written out.
const SPILL_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct ChangeBuffer {
    memory: BTreeMap<String, ItemChange>,
    memory_bytes: usize,
    runs: Vec<File>,
}

fn approx_size(change: &ItemChange) -> usize {
    match change {
        ItemChange::Put(item) => {
            256 + item.name.len()
                + item.chunks().count() * 48
                + item.permissions.as_ref().map_or(0, |p| p.to_string().len())
        }
        ItemChange::Remove(id) => 64 + id.len(),
    }
}

impl ChangeBuffer {
    pub fn push(&mut self, change: ItemChange) -> RepoResult<()> {
        self.memory_bytes += approx_size(&change);
        self.memory.insert(change.item_id().to_owned(), change);
        if self.memory_bytes > SPILL_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> RepoResult<()> {
        let io = |e| RepoError::io("writing item changes to a temporary file", e);
        let mut file = tempfile::tempfile().map_err(io)?;
        {
            let mut out = BufWriter::new(&mut file);
            for change in std::mem::take(&mut self.memory).into_values() {
                serde_json::to_writer(&mut out, &change).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
            }
            out.flush().map_err(io)?;
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.runs.push(file);
        self.memory_bytes = 0;
        Ok(())
    }

    /// The changes in id order.
    pub fn into_sorted(self) -> SortedChanges {
        let mut sources: Vec<Box<dyn Iterator<Item = RepoResult<ItemChange>> + Send>> = self
            .runs
            .into_iter()
            .map(|file| {
                let lines = BufReader::new(file).lines();
                Box::new(lines.map(|line| {
                    let line =
                        line.map_err(|e| RepoError::io("reading spilled item changes", e))?;
                    serde_json::from_str(&line).map_err(|e| {
                        RepoError::io("reading spilled item changes", std::io::Error::from(e))
                    })
                })) as Box<dyn Iterator<Item = RepoResult<ItemChange>> + Send>
            })
            .collect();
        sources.push(Box::new(self.memory.into_values().map(Ok)));
        SortedChanges {
            heads: sources.iter().map(|_| None).collect(),
            sources,
            primed: false,
        }
    }
}

/// A k-way merge of sorted runs; later sources (newer runs) win ties.
pub(crate) struct SortedChanges {
    sources: Vec<Box<dyn Iterator<Item = RepoResult<ItemChange>> + Send>>,
    heads: Vec<Option<ItemChange>>,
    primed: bool,
}

impl SortedChanges {
    fn fill(&mut self, i: usize) -> RepoResult<()> {
        self.heads[i] = self.sources[i].next().transpose()?;
        Ok(())
    }
}

impl Iterator for SortedChanges {
    type Item = RepoResult<ItemChange>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.sources.len() {
                if let Err(e) = self.fill(i) {
                    return Some(Err(e));
                }
            }
        }
        let min_id = self
            .heads
            .iter()
            .flatten()
            .map(|c| c.item_id().to_owned())
            .min()?;
        let mut winner = None;
        for i in 0..self.heads.len() {
            if self.heads[i]
                .as_ref()
                .is_some_and(|c| c.item_id() == min_id)
            {
                winner = self.heads[i].take();
                if let Err(e) = self.fill(i) {
                    return Some(Err(e));
                }
            }
        }
        winner.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::item::Item;

    #[test]
    fn merges_runs_in_order_latest_wins() {
        let mut buf = ChangeBuffer::default();
        buf.push(ItemChange::Put(Item::file("b", None, "old")))
            .unwrap();
        buf.push(ItemChange::Put(Item::file("d", None, "d")))
            .unwrap();
        buf.spill().unwrap();
        buf.push(ItemChange::Put(Item::file("a", None, "a")))
            .unwrap();
        buf.push(ItemChange::Put(Item::file("b", None, "new")))
            .unwrap();
        buf.spill().unwrap();
        buf.push(ItemChange::Remove("d".into())).unwrap();
        buf.push(ItemChange::Put(Item::file("c", None, "c")))
            .unwrap();
        let out: Vec<ItemChange> = buf.into_sorted().map(Result::unwrap).collect();
        let ids: Vec<&str> = out.iter().map(|c| c.item_id()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert!(matches!(&out[1], ItemChange::Put(i) if i.name == "new"));
        assert!(matches!(&out[3], ItemChange::Remove(_)));
    }
}
