//! Large raw mails as files beside the SQLite database.
//!
//! SQLite writes every page twice: to the write-ahead log at commit, then into the
//! database at the checkpoint, reading it back in between. For mail with a 1 MB
//! attachment that copying was most of a drain's I/O and a third of its CPU. A raw
//! mail of at least [`FILE_BYTES`] is therefore written once, to the folder
//! `<database file>-mail/`, and its message row names the file (`raw_file`).
//!
//! A file is written under a temporary name, synced and renamed into place before its
//! unit of work commits, so a committed row always finds a complete file. Its name
//! comes from the mail's dedup key, which only one row can hold: a batch that rolled
//! back and is retried writes the same name again. A rolled-back mail that is never
//! retried leaves a file no row names, which is harmless.
//! PostgreSQL keeps every raw mail in the database (several instances may share it).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::StoreError;

/// Raw mails from this size on are kept as files.
pub(super) const FILE_BYTES: usize = 64 * 1024;

/// The folder of raw mail files of one SQLite database.
#[derive(Debug)]
pub(super) struct RawFiles {
    dir: PathBuf,
}

impl RawFiles {
    /// `<database file>-mail/`, beside the database (created on the first write).
    pub(super) fn beside(database: &Path) -> RawFiles {
        let mut dir = database.as_os_str().to_owned();
        dir.push("-mail");
        RawFiles { dir: PathBuf::from(dir) }
    }

    /// The file name for the mail with this dedup key: `ab/ab12…ef.eml` (256 folders
    /// keep each one small).
    pub(super) fn name_for(dedup_key: &str) -> String {
        let hash = hex::encode(Sha256::digest(dedup_key.as_bytes()));
        format!("{}/{hash}.eml", &hash[..2])
    }

    /// Write a file on a blocking thread; the unit of work awaits it before committing.
    pub(super) fn write(&self, name: String, bytes: Vec<u8>) -> JoinHandle<Result<(), StoreError>> {
        let path = self.dir.join(name);
        tokio::task::spawn_blocking(move || write_synced(&path, &bytes).map_err(|e| file_error(&path, e)))
    }

    pub(super) async fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(name);
        tokio::fs::read(&path).await.map_err(|e| file_error(&path, e))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension("eml.partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&partial, path)
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::RawFile { path: path.display().to_string(), source }
}

/// The database file of a SQLite URL; `None` for an in-memory database.
pub(super) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (file, options) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = file.is_empty() || file == ":memory:" || options.split('&').any(|o| o == "mode=memory");
    (!in_memory).then(|| PathBuf::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_sit_beside_file_databases_only() {
        assert_eq!(sqlite_file("sqlite://data/casegate.db?mode=rwc"), Some(PathBuf::from("data/casegate.db")));
        assert_eq!(sqlite_file("sqlite:///var/lib/casegate.db"), Some(PathBuf::from("/var/lib/casegate.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory&cache=shared"), None);
        let files = RawFiles::beside(Path::new("/var/lib/casegate.db"));
        assert_eq!(files.dir, PathBuf::from("/var/lib/casegate.db-mail"));
    }

    #[test]
    fn names_follow_the_dedup_key() {
        let name = RawFiles::name_for("mid:a@b");
        assert_eq!(name, RawFiles::name_for("mid:a@b"));
        assert_ne!(name, RawFiles::name_for("mid:a@c"));
        assert!(name.ends_with(".eml") && name[..2] == name[3..5], "{name}");
    }

    #[tokio::test]
    async fn a_written_file_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let files = RawFiles::beside(&dir.path().join("casegate.db"));
        let name = RawFiles::name_for("mid:a@b");
        files.write(name.clone(), b"raw mail".to_vec()).await.unwrap().unwrap();
        assert_eq!(files.read(&name).await.unwrap(), b"raw mail");
        // Written again (a retried batch): replaced, no partial file left behind.
        files.write(name.clone(), b"raw mail 2".to_vec()).await.unwrap().unwrap();
        assert_eq!(files.read(&name).await.unwrap(), b"raw mail 2");
        let folder = dir.path().join("casegate.db-mail").join(&name[..2]);
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 1);
        assert!(matches!(files.read("ff/missing.eml").await, Err(StoreError::RawFile { .. })));
    }
}
