//! Durable writes to a local folder: object_store's local backend renames a temporary file into
//! place but does not fsync, and a backup must not reference a file before it is on disk. Here a
//! write goes to `<root>/tmp/`, is fsynced, renamed into place, and the folder is fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const TMP_DIR: &str = "tmp";

pub(crate) fn durable_put(root: &Path, key: &str, bytes: &[u8]) -> std::io::Result<()> {
    let target = root.join(key);
    let dir = target.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let tmp_dir = root.join(TMP_DIR);
    std::fs::create_dir_all(&tmp_dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".put-")
        .tempfile_in(&tmp_dir)?;
    // On failure the temporary file is removed when `tmp` is dropped.
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    sync_dir(&dir)?;
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Total and available bytes of the file system holding `path` (its nearest existing ancestor).
pub fn file_system_space(path: &Path) -> std::io::Result<(u64, u64)> {
    let mut probe: PathBuf = path.to_path_buf();
    while !probe.exists() {
        match probe.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => probe = parent.to_path_buf(),
            _ => {
                probe = PathBuf::from(".");
                break;
            }
        }
    }
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(probe.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    Ok((stat.f_blocks as u64 * block, stat.f_bavail as u64 * block))
}
