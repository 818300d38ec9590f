//! Fuzz targets of the engine's readers of outside input: Graph's delta pages as the backup
//! reads them, and the names the export ZIP writer turns into entry names. Each takes any bytes
//! and panics only when a promise is broken. The cargo-fuzz targets under `fuzz/` call them
//! (feature `fuzzing`); the property tests next to the code and the corpus replay call them in
//! `cargo test`.

// A fuzz target reports a broken promise by panicking: that is its job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_zip::base::read::mem::ZipFileReader;
use async_zip::base::write::ZipFileWriter;
use tokio::io::AsyncReadExt;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::backup::drive::{change_tag, graph_relative, GraphItem};
use crate::discovery::Page;
use crate::restore::export::{join, safe_segment, write_folder_entry, PIPE_BYTES};

/// A delta page: an error, or items the repository takes or refuses (never a panic), and a
/// delta link kept without its host.
pub fn delta_page(data: &[u8]) {
    let Ok(page) = serde_json::from_slice::<Page<GraphItem>>(data) else {
        return;
    };
    for g in &page.value {
        let item = g.to_item();
        let _ = item.validate();
        let _ = change_tag(g);
        let _ = item.version_key();
    }
    if let Some(link) = page.delta_link {
        assert!(link.ends_with(&graph_relative(&link)));
    }
}

/// Lines of text as the names of an object (the first line; none when empty) and of nested
/// folders: an archive path of plain names (no separator, `.`, `..`, control character or
/// empty segment), which a real archive holds as written, or the writer's error for a path
/// longer than an entry name can be.
pub fn zip_entry_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let object = lines.next().unwrap_or_default();
    let mut path = if object.is_empty() {
        String::new()
    } else {
        safe_segment(object)
    };
    for name in lines.take(16) {
        path = join(&path, name);
    }
    if path.is_empty() {
        return;
    }
    for segment in path.split('/') {
        assert!(!matches!(segment.trim(), "" | "." | ".."), "{path:?}");
        assert!(!segment.contains('\\'), "{path:?}");
        assert!(!segment.chars().any(char::is_control), "{path:?}");
    }
    match archived(&path) {
        Ok(names) => assert_eq!(names, vec![format!("{path}/")]),
        Err(e) => assert!(path.len() >= u16::MAX as usize, "{e}"),
    }
}

/// `path` as a folder entry of a real archive, read back: the entry names, or the error.
fn archived(path: &str) -> Result<Vec<String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    rt.block_on(async {
        let (writer, mut reader) = tokio::io::duplex(PIPE_BYTES);
        let read = tokio::spawn(async move {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).await.map(|_| bytes)
        });
        let mut zip = ZipFileWriter::new(writer.compat_write());
        let written = write_folder_entry(&mut zip, path).await;
        let closed = match written {
            Ok(()) => zip.close().await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let bytes = read
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        closed?;
        let archive = ZipFileReader::new(bytes).await.map_err(|e| e.to_string())?;
        archive
            .file()
            .entries()
            .iter()
            .map(|e| {
                e.filename()
                    .as_str()
                    .map(str::to_owned)
                    .map_err(|e| e.to_string())
            })
            .collect()
    })
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn corpus_replays() {
        use m365backup_core::fuzzing::replay_corpus;
        replay_corpus("delta_page", delta_page);
        replay_corpus("zip_entry_names", zip_entry_names);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(ProptestConfig::default().cases / 4))]

        #[test]
        fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            delta_page(&data);
            zip_entry_names(&data);
        }
    }
}
