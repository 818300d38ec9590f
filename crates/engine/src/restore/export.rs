//! Saving backed-up items: one document as its own bytes (whole or a range), or anything else as
//! a ZIP streamed as it is written — folders as in Microsoft 365, file times kept, ZIP64 for files
//! or archives over 4 GiB, memory flat whatever the size. A client that goes away stops the work
//! (the pipe to it breaks and the writer ends).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTimeBuilder, ZipEntryBuilder};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures_util::stream::{self, BoxStream};
use futures_util::{AsyncWriteExt, Stream, StreamExt, TryStreamExt};
use m365backup_core::error::{CoreError, CoreResult};
use m365backup_core::log_text::LogText;
use m365backup_repo::{Item, ItemKind};
use tokio::sync::oneshot;
use tokio_util::compat::TokioAsyncWriteCompatExt;
use tokio_util::io::ReaderStream;
use tracing::Instrument;

use crate::restore::browse::{repo_error, RestorePoint};
use crate::restore::selection::Selection;

/// How much of the archive may wait for the client.
pub(crate) const PIPE_BYTES: usize = 1024 * 1024;
/// How much of the archive one read of the pipe takes.
const READ_BYTES: usize = 256 * 1024;
/// Chunks of a document read ahead of the archive writer.
const READ_AHEAD_CHUNKS: usize = 4;

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

pub(crate) fn join(prefix: &str, name: &str) -> String {
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

/// What a finished save reports: the documents and bytes the client received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub documents: u64,
    pub bytes: u64,
}

/// How a save ended: its statistics once the client has read the last byte, the error that
/// stopped it, or nothing at all when the client went away first (the sender is dropped).
pub type ExportDone = oneshot::Receiver<Result<ExportStats, String>>;

/// A save in progress: the bytes to send and how it ended.
pub struct Export {
    pub stream: BoxStream<'static, std::io::Result<Bytes>>,
    pub done: ExportDone,
}

/// One document's bytes (`range` of them) as a save whose end is reported.
///
/// The answer carries its length, so the HTTP server stops reading the stream once it has sent
/// that much: the save has ended when the last byte went out, not when the stream is drained.
pub fn document_export(
    point: &RestorePoint,
    item: &Item,
    range: Option<Range<u64>>,
) -> CoreResult<Export> {
    let expected = range.as_ref().map_or(item.size, |r| r.end - r.start);
    let (tx, done) = oneshot::channel();
    let report = Arc::new(Mutex::new(Some(tx)));
    let finish = move |report: &Mutex<Option<oneshot::Sender<_>>>, bytes: u64| {
        if let Some(tx) = report.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(Ok(ExportStats {
                documents: 1,
                bytes,
            }));
        }
    };
    if expected == 0 {
        finish(&report, 0);
    }
    let name = item.name.clone();
    let sent = AtomicU64::new(0);
    let on_chunk = report.clone();
    let body = document_stream(point, item, range)?
        .inspect_ok(move |chunk| {
            let total = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            if total >= expected {
                finish(&on_chunk, total);
            }
        })
        .inspect_err(
            move |e| tracing::warn!(document = %LogText(&name), error = %m365backup_core::Chain(&e), "a save stopped"),
        );
    Ok(Export {
        stream: body.boxed(),
        done,
    })
}

/// A ZIP of `entries` (each selection under its path prefix, `""` for the top), produced while
/// it is read. An error inside aborts the stream, so the client never takes a truncated archive
/// for a whole one.
pub fn zip_export(entries: Vec<(Selection, String)>) -> Export {
    let (reader, writer) = tokio::io::duplex(PIPE_BYTES);
    let (written_tx, written) = oneshot::channel::<CoreResult<ExportStats>>();
    tokio::spawn(
        async move {
            let mut zip = ZipFileWriter::new(writer.compat_write());
            let mut stats = ExportStats::default();
            let mut outcome = Ok(());
            for (selection, prefix) in entries {
                outcome = write_selection(&mut zip, selection, &prefix, &mut stats).await;
                if outcome.is_err() {
                    break;
                }
            }
            let outcome = match outcome {
                Ok(()) => match zip.close().await {
                    Ok(mut inner) => inner.close().await.map(|_| stats).map_err(archive_failed),
                    Err(e) => Err(archive_failed(e)),
                },
                Err(e) => Err(e),
            };
            let _ = written_tx.send(outcome);
        }
        .in_current_span(),
    );
    let (tx, done) = oneshot::channel();
    let tail = stream::once(async move {
        let outcome = match written.await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the archive writer stopped".to_owned()),
        };
        let error = outcome.as_ref().err().cloned();
        let _ = tx.send(outcome);
        error.map(|e| Err(std::io::Error::other(e)))
    })
    .filter_map(std::future::ready);
    Export {
        // Large reads: the default 4 KiB would cut the archive into tiny frames.
        stream: ReaderStream::with_capacity(reader, READ_BYTES)
            .chain(tail)
            .boxed(),
        done,
    }
}

/// The archive entries of `selections`: a whole OneDrive or library beside others keeps its
/// name as a folder; anything alone sits at the top of the archive.
pub fn archive_entries(selections: &[Selection]) -> Vec<(Selection, String)> {
    let alone = selections.len() == 1;
    selections
        .iter()
        .map(|s| {
            let prefix = match s {
                Selection::Object { point } if !alone => safe_segment(&point.object().name),
                _ => String::new(),
            };
            (s.clone(), prefix)
        })
        .collect()
}

/// The documents of a selection and their bytes, from the catalog (no repository reads).
pub async fn selection_totals(selection: &Selection) -> CoreResult<ExportStats> {
    let (point, top) = match selection {
        Selection::Document { item, .. } => {
            return Ok(ExportStats {
                documents: 1,
                bytes: item.size,
            })
        }
        Selection::Folder { point, folder } => (point, Some(folder.id.clone())),
        Selection::Object { point } => (point, None),
    };
    let mut totals = ExportStats::default();
    let mut pending = vec![top];
    while let Some(folder) = pending.pop() {
        for child in point.children(folder.as_deref()).await? {
            match child.kind {
                ItemKind::File => {
                    totals.documents += 1;
                    totals.bytes += child.size;
                }
                ItemKind::Folder => pending.push(Some(child.id)),
            }
        }
    }
    Ok(totals)
}

/// How many items a restore of `selection` meets, as it counts them (the selected folder, and
/// every folder and document below it or the object), from the catalog: the length of a
/// restore's progress.
pub async fn selection_items(selection: &Selection) -> CoreResult<u64> {
    let (point, top, mut items) = match selection {
        Selection::Document { .. } => return Ok(1),
        Selection::Folder { point, folder } => (point, Some(folder.id.clone()), 1),
        Selection::Object { point } => (point, None, 0),
    };
    let mut pending = vec![top];
    while let Some(folder) = pending.pop() {
        for child in point.children(folder.as_deref()).await? {
            items += 1;
            if child.kind == ItemKind::Folder {
                pending.push(Some(child.id));
            }
        }
    }
    Ok(items)
}

fn archive_failed(e: impl Into<m365backup_core::BoxError>) -> CoreError {
    CoreError::unavailable_because("writing the archive failed", e)
}

type Zip = ZipFileWriter<tokio_util::compat::Compat<tokio::io::DuplexStream>>;

async fn write_selection(
    zip: &mut Zip,
    selection: Selection,
    prefix: &str,
    stats: &mut ExportStats,
) -> CoreResult<()> {
    match selection {
        Selection::Document { point, item } => {
            write_document(zip, &point, &item, &join(prefix, &item.name), stats).await
        }
        Selection::Folder { point, folder } => {
            let path = join(prefix, &folder.name);
            write_tree(zip, &point, Some(folder.id.clone()), &path, stats).await
        }
        Selection::Object { point } => write_tree(zip, &point, None, prefix, stats).await,
    }
}

/// A folder's documents and sub-folders, depth first, without holding more than one folder's
/// listing per level.
async fn write_tree(
    zip: &mut Zip,
    point: &RestorePoint,
    folder: Option<String>,
    path: &str,
    stats: &mut ExportStats,
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
                    write_document(zip, point, &child, &join(&path, &child.name), stats).await?
                }
                ItemKind::Folder => {
                    pending.push((Some(child.id.clone()), join(&path, &child.name)))
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn write_folder_entry(zip: &mut Zip, path: &str) -> CoreResult<()> {
    let entry = ZipEntryBuilder::new(format!("{path}/").into(), Compression::Stored);
    zip.write_entry_whole(entry, &[])
        .await
        .map_err(archive_failed)
}

async fn write_document(
    zip: &mut Zip,
    point: &RestorePoint,
    item: &Item,
    path: &str,
    stats: &mut ExportStats,
) -> CoreResult<()> {
    let entry = ZipEntryBuilder::new(path.to_owned().into(), Compression::Stored)
        .last_modification_date(zip_time(item.modified));
    let mut content = read_ahead(document_stream(point, item, None)?);
    let mut writer = zip
        .write_entry_stream(entry)
        .await
        .map_err(archive_failed)?;
    while let Some(chunk) = content.next().await {
        let chunk = chunk.map_err(archive_failed)?;
        writer.write_all(&chunk).await.map_err(archive_failed)?;
        stats.bytes += chunk.len() as u64;
    }
    writer.close().await.map_err(archive_failed)?;
    stats.documents += 1;
    Ok(())
}

/// Chunks of a document read while earlier ones are archived: the repository's reading
/// (decryption, decompression, hash checks) runs beside the archive's CRC and copies. A few
/// chunks at most wait, so memory stays flat; the reader stops when the archive is dropped.
fn read_ahead(
    content: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
    tokio::spawn(
        async move {
            let mut content = std::pin::pin!(content);
            while let Some(chunk) = content.next().await {
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
        }
        .in_current_span(),
    );
    stream::poll_fn(move |cx| rx.poll_recv(cx))
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

    mod properties {
        use proptest::prelude::*;

        /// Names as Microsoft 365, or a hostile tenant or repository, may give them.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,12}",
                "[./\\\\ ]{0,4}",
                "[a\\x00-\\x1f\\x7f\\x{85}\\x{202e}]{0,4}",
                Just("..".to_owned()),
                Just(String::new()),
                "[a-z]{200,260}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases / 4))]

            /// Any names of an object, its folders and a document: an archive path of plain
            /// names, which a real archive holds as written.
            #[test]
            fn archive_paths_stay_inside_whatever_the_names(
                object in proptest::option::of(name()),
                names in prop::collection::vec(name(), 1..6),
            ) {
                let mut data = object.map(|o| format!("{o}\n")).unwrap_or_else(|| "\n".into());
                data.push_str(&names.join("\n"));
                crate::fuzzing::zip_entry_names(data.as_bytes());
            }
        }
    }

    /// A path longer than a ZIP entry name can be (65,535 bytes) is the writer's error, not a
    /// panic.
    #[test]
    fn overlong_archive_paths_are_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (writer, _reader) = tokio::io::duplex(PIPE_BYTES);
            let mut zip = ZipFileWriter::new(writer.compat_write());
            let path = join(&"a".repeat(40_000), &"b".repeat(40_000));
            assert!(write_folder_entry(&mut zip, &path).await.is_err());
        });
    }
}
