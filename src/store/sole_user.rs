//! One casegate process per SQLite database: an OS file lock (`flock`) on
//! `<database file>.lock`, held for the life of the process. The kernel releases it when
//! the process ends, however it ends (`kill -9` included), so a lock that can be taken
//! proves that no other casegate is running on the database, and every outbox row still
//! `sending` when this process's sender starts belongs to a dead process
//! ([`Store::release_abandoned`]). The lock is taken on the database's canonical path
//! (a symlink to it takes the same lock), and claiming outbox rows without it is refused
//! ([`StoreError::Unlocked`]).
//!
//! PostgreSQL is shared by design (several instances claim with `SKIP LOCKED`); it takes
//! no lock here and keeps the lease semantics.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{Backend, Store, StoreError};

/// The lock, kept by the [`Store`] (every clone of it) for the rest of the process.
#[derive(Debug)]
pub struct SoleUser {
    _file: File,
    path: PathBuf,
}

impl Store {
    /// Take the database for this process alone, for the rest of its life (`casegate
    /// run`: the processes that send the outbox). Returns the lock file, or `None` on
    /// PostgreSQL and for an in-memory SQLite database; [`StoreError::InUse`] (naming the
    /// database file) when another process holds it.
    pub fn lock_sole_user(&self) -> Result<Option<PathBuf>, StoreError> {
        let Some(db) = self.url.as_deref().and_then(super::raw_files::sqlite_file) else {
            return Ok(None);
        };
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        if let Some(held) = self.sole_user.get() {
            return Ok(Some(held.path.clone()));
        }
        let lock = lock_file(&db)?;
        let path = lock.path.clone();
        let _ = self.sole_user.set(lock);
        Ok(Some(path))
    }

    /// True once [`Store::lock_sole_user`] took the database for this process.
    pub(super) fn is_sole_user(&self) -> bool {
        self.sole_user.get().is_some()
    }

    /// Whether this process may claim outbox rows: on a SQLite database file only with
    /// its lock, so that every `sending` row found at start-up is a dead process's.
    /// PostgreSQL (leases) and in-memory SQLite (no other process can open it) may.
    pub(super) fn check_may_claim(&self) -> Result<(), StoreError> {
        let file = self.url.as_deref().and_then(super::raw_files::sqlite_file);
        match file {
            Some(db) if self.backend == Backend::Sqlite && !self.is_sole_user() => {
                Err(StoreError::Unlocked {
                    database: db.display().to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// The lock file of database file `db`: `<db>.lock`, beside it.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The lock of database file `db` for `casegate restore`, which may create the file:
/// on its canonical path when it exists (as the daemon takes it), else beside its name
/// in its folder's canonical path. [`StoreError::InUse`] while a daemon runs on it.
pub(super) fn lock_for_restore(db: &Path) -> Result<SoleUser, StoreError> {
    if db.exists() {
        return lock_file(db);
    }
    let folder = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let real = std::fs::canonicalize(folder)
        .map(|f| f.join(db.file_name().unwrap_or_default()))
        .map_err(|cause| StoreError::LockFile {
            path: lock_path(db).display().to_string(),
            cause,
        })?;
    lock_at(db, lock_path(&real))
}

/// The lock of database file `db` (which exists): on its canonical path, so that every
/// name of one database (a symlink, a relative path) takes the same lock.
fn lock_file(db: &Path) -> Result<SoleUser, StoreError> {
    let path = std::fs::canonicalize(db)
        .map(|real| lock_path(&real))
        .map_err(|cause| StoreError::LockFile {
            path: lock_path(db).display().to_string(),
            cause,
        })?;
    lock_at(db, path)
}

/// Take the lock file `path` of database `db`.
fn lock_at(db: &Path, path: PathBuf) -> Result<SoleUser, StoreError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|cause| StoreError::LockFile {
            path: path.display().to_string(),
            cause,
        })?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if taken {
        return Ok(SoleUser { _file: file, path });
    }
    let cause = std::io::Error::last_os_error();
    if cause.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(StoreError::InUse {
            database: db.display().to_string(),
        })
    } else {
        Err(StoreError::LockFile {
            path: path.display().to_string(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("casegate-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        std::fs::write(&db, b"").unwrap();
        let first = lock_file(&db).expect("first lock");
        assert_eq!(first.path, dir.join("x.db.lock"));
        // flock locks belong to the open file description: a second open is a second holder.
        match lock_file(&db) {
            Err(StoreError::InUse { database }) => assert!(database.ends_with("x.db")),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        assert!(lock_file(&db).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
