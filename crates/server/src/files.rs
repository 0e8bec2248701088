//! The data dir and the files in it that only the server's own user may read: the dir is
//! created 0700, the database, the JWT secret and the node-id file 0600. Modes are given to
//! `mkdir`/`open` (the process umask is left alone: it is not a library's to change), so an
//! existing dir or file keeps its mode.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Permission bits of group and others: a private file or dir has none of them.
pub const OPEN_TO_OTHERS: u32 = 0o077;

/// Creates `dir` (and its missing parents, with the usual modes) with mode 0700 unless it
/// exists; an existing dir is left as it is (see [`open_to_others`]).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        // Another process made it at the same moment.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Creates `path` for writing with mode 0600; fails with `AlreadyExists` if it is there, so
/// two processes never both write it.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Creates `path` empty with mode 0600 unless it exists (an existing file keeps its mode).
pub fn ensure_private_file(path: &Path) -> Result<()> {
    match create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The permission bits of `path` if group or others have any (`None` when it is private).
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & OPEN_TO_OTHERS != 0).then_some(mode))
}

/// Logs a warning when the data dir can be read or entered by group or others: the database
/// and the files in it are private, but their names and any file created with a looser mode
/// are not.
pub fn warn_if_open(dir: &Path) {
    if let Ok(Some(mode)) = open_to_others(dir) {
        tracing::warn!(
            dir = %dir.display(),
            mode = %format!("{mode:o}"),
            "the data dir is open to group or others; `chmod 700` it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_dirs_and_files_are_private_and_existing_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(open_to_others(&dir).unwrap(), None);
        create_private_dir(&dir).unwrap();

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open).unwrap();
        assert_eq!(mode(&open), 0o755, "an existing dir keeps its mode");
        assert_eq!(open_to_others(&open).unwrap(), Some(0o755));

        let f = dir.join("f");
        ensure_private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        ensure_private_file(&f).unwrap();
        let e = create_private_file(&f).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }
}
