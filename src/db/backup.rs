//! Online backup: a consistent copy of a live database file, with SQLite's backup API.
//!
//! The whole database is copied in one backup step, which reads one snapshot: in WAL mode
//! that is a read transaction, so the server keeps writing meanwhile, and the copy holds
//! exactly the transactions committed before the step began. The copy is written to a
//! temporary file beside the destination, switched to a rollback journal (so it is one
//! self-contained file), checked (`PRAGMA quick_check`), synced, and only then linked
//! into place: `PATH` is either absent or a complete copy, and an existing `PATH` is
//! never overwritten. The copy is created mode 0600, as the database itself is.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// How long the copy waits for a lock held by another connection before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database file at {0}")]
    NoSource(String),
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    #[error("the database stayed busy")]
    Busy,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Other(anyhow::Error::new(e).context("sqlite"))
    }
}

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Backed {
    pub bytes: u64,
    pub pages: i64,
}

/// Removes the temporary copy unless the backup got as far as linking it into place.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(&path);
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut side = path.clone().into_os_string();
                side.push(suffix);
                let _ = std::fs::remove_file(side);
            }
        }
    }
}

/// Copies the database at `source` to the new file `dest`. Blocking.
pub fn copy(source: &Path, dest: &Path) -> Result<Backed, BackupError> {
    use anyhow::Context;
    let shown = |p: &Path| p.display().to_string();
    if dest.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(shown(dest)));
    }
    if !source.is_file() {
        return Err(BackupError::NoSource(shown(source)));
    }
    let name = dest.file_name().with_context(|| format!("{} names no file", shown(dest)))?;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".partial-{}", uuid::Uuid::new_v4()));
    let temp = Partial(Some(dir.join(temp_name)));
    let temp_path = temp.0.clone().context("temporary path")?;

    // No CREATE: a mistyped --database must not back up a fresh empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let src = Connection::open_with_flags(source, flags)
        .with_context(|| format!("cannot open the database {}", shown(source)))?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    create_private(&temp_path)
        .with_context(|| format!("cannot create a file in {}", shown(&dir)))?;
    let mut dst = Connection::open(&temp_path)
        .with_context(|| format!("cannot create a file in {}", shown(&dir)))?;
    {
        let backup = Backup::new(&src, &mut dst).context("starting the backup")?;
        match backup.step(-1).with_context(|| format!("copying {}", shown(source)))? {
            StepResult::Done => {}
            StepResult::Busy | StepResult::Locked => return Err(BackupError::Busy),
            _ => return Err(anyhow::anyhow!("backup stopped before the end").into()),
        }
    }
    // The copy is one self-contained file: rollback journal, not WAL (a server opening it
    // after a restore switches it back to WAL).
    let mode: String = dst.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(anyhow::anyhow!("the copy stayed in {mode} mode").into());
    }
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(anyhow::anyhow!("the copy failed its integrity check: {check}").into());
    }
    let pages: i64 = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    dst.close().map_err(|(_, e)| e)?;
    std::fs::File::open(&temp_path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", temp_path.display()))?;
    link_new(&temp_path, dest)?;
    // The copy now has its name; dropping `temp` removes only the temporary one.
    drop(temp);
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(dest).with_context(|| format!("reading {}", shown(dest)))?.len();
    Ok(Backed { bytes, pages })
}

/// Creates the (empty) file SQLite will write the copy into, readable by its owner only
/// (0600, whatever the umask): a backup holds everything the database does. SQLite
/// gives its side files the same mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
}

/// Gives the finished copy its name without ever replacing a file: a hard link fails if
/// the name is taken. Where links are not supported, a rename after a last check.
fn link_new(temp: &Path, dest: &Path) -> Result<(), BackupError> {
    use anyhow::Context;
    match std::fs::hard_link(temp, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::Exists(dest.display().to_string()))
        }
        Err(_) if dest.symlink_metadata().is_ok() => {
            Err(BackupError::Exists(dest.display().to_string()))
        }
        Err(_) => Ok(std::fs::rename(temp, dest)
            .with_context(|| format!("cannot write {}", dest.display()))?),
    }
}
