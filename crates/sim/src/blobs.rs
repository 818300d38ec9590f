//! Content uploaded by clients (restores write real bytes): one file per blob in a temporary
//! folder that goes with the simulator, hashed (quickXorHash, SHA-256) while it is written, so
//! memory stays flat whatever is uploaded. A writer can take a checkpoint and roll back to it,
//! which is what an upload session does with a fragment that did not arrive whole.

use std::collections::HashMap;
use std::io::{SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use quickxorhash::QuickXorHash;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// A blob's number in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub u64);

/// Uploaded bytes on disk, with their hashes.
#[derive(Debug)]
pub struct Blob {
    pub id: BlobId,
    pub path: PathBuf,
    pub size: u64,
    pub quick_xor_hash: String,
    pub sha256: String,
}

/// Bytes read from a blob's file per chunk of a stream.
const READ_CHUNK: usize = 256 << 10;

impl Blob {
    /// The bytes `[from, to)`, read from disk chunk by chunk.
    pub fn stream(
        &self,
        from: u64,
        to: u64,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let path = self.path.clone();
        futures_util::stream::try_unfold((None::<tokio::fs::File>, from), move |(file, pos)| {
            let path = path.clone();
            async move {
                if pos >= to {
                    return Ok(None);
                }
                let mut file = match file {
                    Some(f) => f,
                    None => {
                        let mut f = tokio::fs::File::open(&path).await?;
                        f.seek(SeekFrom::Start(pos)).await?;
                        f
                    }
                };
                let n = (to - pos).min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; n];
                file.read_exact(&mut buf).await?;
                Ok(Some((Bytes::from(buf), (Some(file), pos + n as u64))))
            }
        })
    }
}

pub struct BlobStore {
    dir: tempfile::TempDir,
    next: AtomicU64,
    blobs: Mutex<HashMap<BlobId, Arc<Blob>>>,
}

impl BlobStore {
    /// A store in a new temporary folder (removed when the store goes).
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("m365sim-blobs-")
                .tempdir()?,
            next: AtomicU64::new(1),
            blobs: Mutex::default(),
        })
    }

    pub fn get(&self, id: BlobId) -> Option<Arc<Blob>> {
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    fn allocate(&self) -> (BlobId, PathBuf) {
        let id = BlobId(self.next.fetch_add(1, Ordering::Relaxed));
        (id, self.dir.path().join(id.0.to_string()))
    }

    fn register(&self, blob: Blob) -> Arc<Blob> {
        let blob = Arc::new(blob);
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(blob.id, blob.clone());
        blob
    }

    /// Forgets a blob nothing refers to (an upload that could not be placed).
    pub fn discard(&self, id: BlobId) {
        let blob = self
            .blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(b) = blob {
            let _ = std::fs::remove_file(&b.path);
        }
    }

    /// Stores `bytes` at once (for tests' mutations).
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<Arc<Blob>> {
        let (id, path) = self.allocate();
        let mut file = std::fs::File::create(&path)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        let mut qxh = QuickXorHash::new();
        qxh.update(bytes);
        Ok(self.register(Blob {
            id,
            path,
            size: bytes.len() as u64,
            quick_xor_hash: qxh.finalize_base64(),
            sha256: hex(&Sha256::digest(bytes)),
        }))
    }

    /// A writer for a new blob, streamed.
    pub async fn writer(&self) -> std::io::Result<BlobWriter> {
        let (id, path) = self.allocate();
        let file = tokio::fs::File::create(&path).await?;
        Ok(BlobWriter {
            id,
            path,
            file,
            state: Written::default(),
            finished: false,
        })
    }

    /// Registers what `writer` wrote as a blob.
    pub async fn finish(&self, mut writer: BlobWriter) -> std::io::Result<Arc<Blob>> {
        writer.file.flush().await?;
        writer.finished = true;
        let Written { size, qxh, sha } = std::mem::take(&mut writer.state);
        Ok(self.register(Blob {
            id: writer.id,
            path: writer.path.clone(),
            size,
            quick_xor_hash: qxh.finalize_base64(),
            sha256: hex(&sha.finalize()),
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a writer has taken so far: length and running hashes.
#[derive(Clone, Default)]
pub struct Written {
    pub size: u64,
    qxh: QuickXorHash,
    sha: Sha256,
}

/// A blob being written; its file is removed unless it is finished.
pub struct BlobWriter {
    id: BlobId,
    path: PathBuf,
    file: tokio::fs::File,
    state: Written,
    finished: bool,
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.state.size
    }

    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all(data).await?;
        self.state.size += data.len() as u64;
        self.state.qxh.update(data);
        self.state.sha.update(data);
        Ok(())
    }

    /// Where the writer stands, to come back to.
    pub fn checkpoint(&self) -> Written {
        self.state.clone()
    }

    /// Forgets everything written after `checkpoint`.
    pub async fn rollback(&mut self, checkpoint: Written) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.set_len(checkpoint.size).await?;
        self.file.seek(SeekFrom::Start(checkpoint.size)).await?;
        self.state = checkpoint;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[tokio::test]
    async fn a_rolled_back_fragment_leaves_no_trace() {
        let store = BlobStore::new().unwrap();
        let mut w = store.writer().await.unwrap();
        w.write(b"hello ").await.unwrap();
        let cp = w.checkpoint();
        w.write(b"garbage that was cut").await.unwrap();
        w.rollback(cp).await.unwrap();
        w.write(b"world").await.unwrap();
        let blob = store.finish(w).await.unwrap();
        assert_eq!(std::fs::read(&blob.path).unwrap(), b"hello world");
        assert_eq!(blob.quick_xor_hash, quickxorhash::base64_of(b"hello world"));
        assert_eq!(blob.sha256, hex(&Sha256::digest(b"hello world")));
        let parts: Vec<Bytes> = blob.stream(3, 9).try_collect().await.unwrap();
        assert_eq!(parts.concat(), b"lo wor");
        let again = store.put(b"x").unwrap();
        assert_eq!(store.get(again.id).unwrap().size, 1);
        // An unfinished writer's file goes away.
        let w = store.writer().await.unwrap();
        let path = w.path.clone();
        drop(w);
        assert!(!path.exists());
    }
}
