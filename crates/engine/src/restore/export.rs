//! Saving backed-up items: one document as its own bytes (whole or a range), or anything else as
//! a ZIP streamed as it is written — folders as in Microsoft 365, file times kept, ZIP64 for files
//! or archives over 4 GiB, memory flat whatever the size. A client that goes away stops the work
//! (the pipe to it breaks and the writer ends).

use std::ops::Range;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTimeBuilder, ZipEntryBuilder};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::{AsyncWriteExt, Stream, StreamExt};
use m365backup_core::error::{CoreError, CoreResult};
use m365backup_repo::{Item, ItemKind};
use tokio_util::compat::TokioAsyncWriteCompatExt;
use tokio_util::io::ReaderStream;

use crate::restore::browse::{repo_error, RestorePoint};

/// How much of the archive may wait for the client.
const PIPE_BYTES: usize = 1024 * 1024;

/// One document's bytes, `range` of them when given.
pub fn document_stream(
    point: &RestorePoint,
    item: &Item,
    range: Option<Range<u64>>,
) -> CoreResult<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let content = item
        .content
        .as_ref()
        .ok_or_else(|| CoreError::Invalid(format!("'{}' is not a document", item.name)))?;
    let stream = point
        .repo
        .read_content(content, range)
        .map_err(repo_error)?;
    Ok(stream.map(|chunk| chunk.map_err(std::io::Error::other)))
}

/// Something to put in an archive: a whole restore point, a folder of it, or a document.
#[derive(Clone)]
pub enum ArchiveRoot {
    /// Everything of a OneDrive or a library, under `prefix`.
    Object { point: RestorePoint, prefix: String },
    /// A folder and what it holds, as `<prefix>/<folder name>/…`.
    Folder {
        point: RestorePoint,
        folder: Item,
        prefix: String,
    },
    Document {
        point: RestorePoint,
        item: Item,
        prefix: String,
    },
}

/// A name made safe as a path segment in an archive: no separators, no `..`, no controls.
pub fn safe_segment(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    match cleaned.trim() {
        "" | "." | ".." => "_".to_owned(),
        _ => cleaned,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        safe_segment(name)
    } else {
        format!("{prefix}/{}", safe_segment(name))
    }
}

fn zip_time(t: Option<DateTime<Utc>>) -> async_zip::ZipDateTime {
    let t = t.unwrap_or_else(Utc::now);
    ZipDateTimeBuilder::new()
        .year(t.year().clamp(1980, 2107))
        .month(t.month())
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .build()
}

/// A ZIP of `roots`, produced while it is read. Errors inside end the stream early (the
/// client sees a truncated archive, never a wrong file).
pub fn zip_stream(
    roots: Vec<ArchiveRoot>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (reader, writer) = tokio::io::duplex(PIPE_BYTES);
    tokio::spawn(async move {
        let mut zip = ZipFileWriter::new(writer.compat_write());
        for root in roots {
            if let Err(e) = write_root(&mut zip, root).await {
                tracing::warn!(error = %e, "export stopped");
                return;
            }
        }
        match zip.close().await {
            Ok(mut inner) => {
                let _ = inner.close().await;
            }
            Err(e) => tracing::warn!(error = %e, "export could not be finished"),
        }
    });
    ReaderStream::new(reader)
}

type Zip = ZipFileWriter<tokio_util::compat::Compat<tokio::io::DuplexStream>>;

async fn write_root(zip: &mut Zip, root: ArchiveRoot) -> CoreResult<()> {
    match root {
        ArchiveRoot::Document {
            point,
            item,
            prefix,
        } => write_document(zip, &point, &item, &join(&prefix, &item.name)).await,
        ArchiveRoot::Folder {
            point,
            folder,
            prefix,
        } => {
            let path = join(&prefix, &folder.name);
            write_tree(zip, &point, Some(folder.id.clone()), &path).await
        }
        ArchiveRoot::Object { point, prefix } => write_tree(zip, &point, None, &prefix).await,
    }
}

/// A folder's documents and sub-folders, depth first, without holding more than one folder's
/// listing per level.
async fn write_tree(
    zip: &mut Zip,
    point: &RestorePoint,
    folder: Option<String>,
    path: &str,
) -> CoreResult<()> {
    let mut pending = vec![(folder, path.to_owned())];
    while let Some((folder, path)) = pending.pop() {
        let children = point.children(folder.as_deref()).await?;
        if children.is_empty() && !path.is_empty() {
            write_folder_entry(zip, &path).await?;
        }
        for child in children {
            match child.kind {
                ItemKind::File => {
                    write_document(zip, point, &child, &join(&path, &child.name)).await?
                }
                ItemKind::Folder => {
                    pending.push((Some(child.id.clone()), join(&path, &child.name)))
                }
            }
        }
    }
    Ok(())
}

async fn write_folder_entry(zip: &mut Zip, path: &str) -> CoreResult<()> {
    let entry = ZipEntryBuilder::new(format!("{path}/").into(), Compression::Stored);
    zip.write_entry_whole(entry, &[])
        .await
        .map_err(|e| CoreError::Unavailable(format!("writing the archive failed: {e}")))
}

async fn write_document(
    zip: &mut Zip,
    point: &RestorePoint,
    item: &Item,
    path: &str,
) -> CoreResult<()> {
    let failed = |e: &dyn std::fmt::Display| {
        CoreError::Unavailable(format!("writing the archive failed: {e}"))
    };
    let entry = ZipEntryBuilder::new(path.to_owned().into(), Compression::Stored)
        .last_modification_date(zip_time(item.modified));
    let mut content = document_stream(point, item, None)?;
    let mut writer = zip
        .write_entry_stream(entry)
        .await
        .map_err(|e| failed(&e))?;
    while let Some(chunk) = content.next().await {
        let chunk = chunk.map_err(|e| failed(&e))?;
        writer.write_all(&chunk).await.map_err(|e| failed(&e))?;
    }
    writer.close().await.map_err(|e| failed(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        assert_eq!(safe_segment(".."), "_");
        assert_eq!(safe_segment("a/../b"), "a_.._b");
        assert_eq!(safe_segment("c:\\x"), "c:_x");
        assert_eq!(safe_segment("new\nline"), "new_line");
        assert_eq!(
            safe_segment("Übersicht #1 – 100%.docx"),
            "Übersicht #1 – 100%.docx"
        );
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("x", ".."), "x/_");
    }
}
