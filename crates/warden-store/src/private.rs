//! Files and folders only this OS user may open: Warden's data folder
//! (0700), the database and its write-ahead log, logs, configuration and
//! exports (0600). Each is created with its mode, never opened to others
//! first and narrowed after; what an older Warden left wider is narrowed
//! when found. Log files are the exception: tracing-appender creates them
//! with the process's usual mode, and the two 0700 folders around them are
//! what keeps them from others. Other OS users then get nothing: not the
//! password and credential hashes, not the activity log. (Processes of the same user
//! are another matter: see the README's threat model.)

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700, and narrows `dir`
/// itself to 0700 if it was there already.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700).create(dir)?;
        narrow(dir, 0o700)?;
    }
    #[cfg(not(unix))]
    builder.create(dir)?;
    Ok(())
}

/// How [`create_file`] treats a file that is there already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refused: the file must be new.
    Refuse,
    /// Emptied, to be written again.
    Replace,
    /// Kept as it is (a database).
    Keep,
}

/// Opens `path` for writing, created with mode 0600 if it is missing, and
/// narrowed to 0600 if it was there wider.
pub fn create_file(path: &Path, existing: Existing) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true);
    match existing {
        Existing::Refuse => options.create_new(true),
        Existing::Replace => options.create(true).truncate(true),
        Existing::Keep => options.create(true).truncate(false),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    narrow(path, 0o600)?;
    Ok(file)
}

/// Narrows an existing file or folder to `mode` when it is wider.
#[cfg(unix)]
pub fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o777 & !mode != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_this_users_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        create_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700, "parents too");
        let file = dir.join("f");
        std::io::Write::write_all(
            &mut create_file(&file, Existing::Refuse).expect("file"),
            b"kept",
        )
        .expect("write");
        assert_eq!(mode(&file), 0o600);
        assert!(
            create_file(&file, Existing::Refuse).is_err(),
            "new means new"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_dir(&dir).expect("again");
        create_file(&file, Existing::Keep).expect("again");
        assert_eq!(
            (mode(&dir), mode(&file)),
            (0o700, 0o600),
            "narrowed when found wider"
        );
        assert_eq!(
            std::fs::read(&file).expect("read"),
            b"kept",
            "kept means kept"
        );
        create_file(&file, Existing::Replace).expect("replace");
        assert_eq!(
            std::fs::read(&file).expect("read"),
            b"",
            "replaced means emptied"
        );
    }
}
