//! Backups of a SQLite database and its raw-mail folder (`casegate backup` and
//! `casegate restore`), also while the daemon runs.
//!
//! The database is copied with `VACUUM INTO`: SQLite writes the copy from one read
//! transaction, so it is one consistent snapshot whatever the daemon commits meanwhile
//! (in WAL mode a reader never blocks the writer, nor the writer it), and compacted.
//! (The online backup API gives the same snapshot, but sqlx does not expose it.) Then
//! the raw-mail files that the copy names are copied: a file is complete and synced
//! before the row naming it commits, and is never rewritten, so every file the snapshot
//! names is already whole. Files of mail committed after the snapshot are left out: no
//! row of the copy names them.
//!
//! A backup folder holds `casegate.db`, `mail/` (the files, by the names the rows
//! give) and `manifest.json` (counts, and each file's size and SHA-256), which
//! `restore` checks before it touches anything. PostgreSQL databases are backed up
//! with `pg_dump`, not here.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};

use super::raw_files::{RawFiles, sqlite_file};
use super::{Backend, Store, StoreError, sole_user};

/// The database file inside a backup folder.
pub const DATABASE: &str = "casegate.db";
/// The raw-mail folder inside a backup folder.
pub const MAIL: &str = "mail";
pub const MANIFEST: &str = "manifest.json";

/// What a backup holds, written to its `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub created_at: DateTime<Utc>,
    /// The database it was taken from.
    pub source: String,
    pub cases: i64,
    pub messages: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What `restore` put in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub database: PathBuf,
    pub manifest: Manifest,
}

fn problem(path: &Path, what: impl std::fmt::Display) -> StoreError {
    StoreError::Backup {
        path: path.display().to_string(),
        problem: what.to_string(),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| problem(path, e)
}

impl Store {
    /// Back the SQLite database and the raw-mail files it names up into `dir`, which
    /// must be missing or empty.
    pub async fn backup(&self, dir: &Path, now: DateTime<Utc>) -> Result<Manifest, StoreError> {
        let source = match (self.backend, self.url.as_deref().and_then(sqlite_file)) {
            (Backend::Sqlite, Some(file)) => file,
            _ => return Err(StoreError::UsePgDump),
        };
        prepare_empty(dir)?;
        let copy = dir.join(DATABASE);
        sqlx::query("VACUUM INTO $1")
            .bind(copy.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        let (cases, messages, names) = contents(&copy).await?;
        let from = RawFiles::beside(&source).dir().to_path_buf();
        let to = dir.join(MAIL);
        let files = tokio::task::spawn_blocking(move || copy_files(&from, &to, &names))
            .await
            .map_err(|e| problem(dir, e))??;
        let manifest = Manifest {
            format: 1,
            created_at: now,
            source: source.display().to_string(),
            cases,
            messages,
            files,
        };
        let path = dir.join(MANIFEST);
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| problem(&path, e))?;
        write_synced(&path, &text)?;
        sync_folder(dir)?;
        Ok(manifest)
    }
}

/// Check the backup in `dir`, then put it in place as the SQLite database of
/// `database_url` and its raw-mail folder. Refused while a casegate process holds the
/// database, and when the database exists unless `replace`.
pub async fn restore(
    dir: &Path,
    database_url: &str,
    replace: bool,
) -> Result<Restored, StoreError> {
    let database = match sqlite_file(database_url) {
        Some(file) if database_url.starts_with("sqlite:") => file,
        _ => return Err(StoreError::UsePgDump),
    };
    let database = database.as_path();
    let manifest = check(dir).await?;
    let folder = match database.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(StoreError::NoFolder(folder.display().to_string()));
    }
    // Held until the copy is in place: no daemon can start on it halfway.
    let _lock = sole_user::lock_for_restore(database)?;
    if database.exists() && !replace {
        return Err(problem(
            database,
            "the database exists; restore over it with --replace (stop casegate first)",
        ));
    }
    let from = dir.join(MAIL);
    let to = RawFiles::beside(database).dir().to_path_buf();
    let names: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    let (db_from, db_to) = (dir.join(DATABASE), database.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        // The files first: the database never names a file that is not there yet.
        copy_files(&from, &to, &names)?;
        let mut temp = db_to.as_os_str().to_owned();
        temp.push(".restoring");
        let temp = PathBuf::from(temp);
        std::fs::copy(&db_from, &temp).map_err(io(&temp))?;
        sync_file(&temp)?;
        // A log or index of the replaced database would be applied to the copy.
        for suffix in ["-wal", "-shm"] {
            let mut side = db_to.as_os_str().to_owned();
            side.push(suffix);
            match std::fs::remove_file(PathBuf::from(&side)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(problem(Path::new(&side), e)),
            }
        }
        std::fs::rename(&temp, &db_to).map_err(io(&db_to))?;
        sync_folder(db_to.parent().unwrap_or(Path::new(".")))
    })
    .await
    .map_err(|e| problem(dir, e))??;
    Ok(Restored {
        database: database.to_path_buf(),
        manifest,
    })
}

/// Read the manifest of the backup in `dir` and check the copy against it: the
/// database passes `PRAGMA integrity_check` and holds the counted cases and messages,
/// and every file it names is there with its size and SHA-256.
pub async fn check(dir: &Path) -> Result<Manifest, StoreError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| problem(&path, e))?;
    let db = dir.join(DATABASE);
    if !db.is_file() {
        return Err(problem(&db, "missing"));
    }
    let mut conn = open_read_only(&db).await?;
    let verdict: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?
        .get(0);
    conn.close().await?;
    if verdict != "ok" {
        return Err(problem(&db, format!("integrity check: {verdict}")));
    }
    let (cases, messages, names) = contents(&db).await?;
    if (cases, messages) != (manifest.cases, manifest.messages) {
        return Err(problem(
            &db,
            format!(
                "holds {cases} cases and {messages} messages, the manifest says {} and {}",
                manifest.cases, manifest.messages
            ),
        ));
    }
    let listed: std::collections::BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    for name in &names {
        let Some(entry) = listed.get(name.as_str()) else {
            return Err(problem(
                &path,
                format!("{name}: named by the database, not listed"),
            ));
        };
        let file = dir.join(MAIL).join(name);
        let (bytes, sha256) = digest(&file)?;
        if bytes != entry.bytes || sha256 != entry.sha256 {
            return Err(problem(
                &file,
                format!(
                    "{bytes} bytes with SHA-256 {sha256}, the manifest says {} bytes with {}",
                    entry.bytes, entry.sha256
                ),
            ));
        }
    }
    Ok(manifest)
}

async fn open_read_only(db: &Path) -> Result<SqliteConnection, StoreError> {
    Ok(SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await?)
}

/// Cases, messages and the raw-mail files named in the SQLite database `db`.
async fn contents(db: &Path) -> Result<(i64, i64, Vec<String>), StoreError> {
    let mut conn = open_read_only(db).await?;
    let cases: i64 = sqlx::query("SELECT COUNT(*) FROM cases")
        .fetch_one(&mut conn)
        .await?
        .get(0);
    let messages: i64 = sqlx::query("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await?
        .get(0);
    let names =
        sqlx::query("SELECT DISTINCT raw_file FROM messages WHERE raw_file IS NOT NULL ORDER BY 1")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
    conn.close().await?;
    Ok((cases, messages, names))
}

/// `dir` missing (created) or an empty folder.
fn prepare_empty(dir: &Path) -> Result<(), StoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(problem(dir, "not empty: back up into a new folder"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(dir))
        }
        Err(e) => Err(problem(dir, e)),
    }
}

/// Copy each named file from `from` to `to` (each synced, through a temporary name),
/// with its size and SHA-256.
fn copy_files(from: &Path, to: &Path, names: &[String]) -> Result<Vec<FileEntry>, StoreError> {
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        // Names come from our own rows (`ab/<sha256>.eml`); refuse anything else.
        if name.split('/').any(|part| part.is_empty() || part == "..") || name.starts_with('/') {
            return Err(problem(
                from,
                format!("unexpected raw-mail file name {name:?}"),
            ));
        }
        let source = from.join(name);
        let target = to.join(name);
        let folder = target.parent().unwrap_or(to);
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        let mut temp = target.as_os_str().to_owned();
        temp.push(".part");
        let temp = PathBuf::from(temp);
        std::fs::copy(&source, &temp).map_err(io(&source))?;
        sync_file(&temp)?;
        std::fs::rename(&temp, &target).map_err(io(&target))?;
        let (bytes, sha256) = digest(&target)?;
        entries.push(FileEntry {
            name: name.clone(),
            bytes,
            sha256,
        });
    }
    let mut folders: Vec<&Path> = entries
        .iter()
        .filter_map(|e| Path::new(&e.name).parent())
        .collect();
    folders.sort();
    folders.dedup();
    for f in folders {
        sync_folder(&to.join(f))?;
    }
    if to.is_dir() {
        sync_folder(to)?;
    }
    Ok(entries)
}

fn digest(path: &Path) -> Result<(u64, String), StoreError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    std::fs::write(path, bytes).map_err(io(path))?;
    sync_file(path)
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn sync_folder(folder: &Path) -> Result<(), StoreError> {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(io(folder))
}
