//! Large raw mails as files beside the SQLite database.
//!
//! SQLite writes every page twice: to the write-ahead log at commit, then into the
//! database at the checkpoint, reading it back in between. For mail with a 1 MB
//! attachment that copying was most of a drain's I/O and a third of its CPU. A raw
//! mail of at least [`FILE_BYTES`] is therefore written once, to the folder
//! `<database file>-mail/`, and its message row names the file (`raw_file`).
//!
//! A file and its folder entry are written and synced before its unit of work commits,
//! so a committed row always finds a complete file. Its name comes from the mail's
//! dedup key, which only one stored mail can hold: a batch that rolled back and is
//! retried writes the same name again, and a file that a committed row names is never
//! written again (a case split copies the row, and both rows name the one file). A
//! rolled-back mail that is never retried leaves a file no row names, which is
//! harmless. PostgreSQL keeps every raw mail in the database (several instances may
//! share it).

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
        RawFiles {
            dir: PathBuf::from(dir),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name for the mail with this dedup key: `ab/ab12…ef.eml` (256 folders
    /// keep each one small).
    pub(super) fn name_for(dedup_key: &str) -> String {
        let hash = hex::encode(Sha256::digest(dedup_key.as_bytes()));
        format!("{}/{hash}.eml", &hash[..2])
    }

    /// Write a file on a blocking thread; the unit of work awaits it before committing.
    pub(super) fn write(&self, name: String, bytes: &[u8]) -> Writing {
        let path = self.dir.join(name);
        let block = Block::of(bytes);
        let task = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_synced(&path, &block))
        };
        Writing { path, task }
    }

    pub(super) async fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(name);
        tokio::fs::read(&path)
            .await
            .map_err(|e| file_error(&path, e))
    }
}

/// A raw mail file being written.
#[derive(Debug)]
pub(super) struct Writing {
    path: PathBuf,
    task: JoinHandle<std::io::Result<()>>,
}

impl Writing {
    /// Wait until the file is complete and synced.
    pub(super) async fn done(self) -> Result<(), StoreError> {
        match self.task.await {
            Ok(result) => result.map_err(|e| file_error(&self.path, e)),
            Err(e) => Err(file_error(&self.path, std::io::Error::other(e))),
        }
    }
}

/// Direct I/O works in whole blocks of this size, from memory aligned to it.
const BLOCK: usize = 4096;

/// A copy of a raw mail for direct I/O: aligned in memory, zero-padded to whole blocks.
struct Block {
    buffer: Vec<u8>,
    start: usize,
    len: usize,
}

impl Block {
    fn of(bytes: &[u8]) -> Block {
        let padded = bytes.len().div_ceil(BLOCK) * BLOCK;
        let mut buffer = vec![0u8; padded + BLOCK];
        let start = buffer.as_ptr().align_offset(BLOCK).min(BLOCK);
        buffer[start..start + bytes.len()].copy_from_slice(bytes);
        Block {
            buffer,
            start,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buffer[self.start..self.start + self.len]
    }

    fn padded(&self) -> &[u8] {
        &self.buffer[self.start..self.start + self.len.div_ceil(BLOCK) * BLOCK]
    }
}

/// Write and sync the file, then the folder entries that make it reachable. No row
/// names the file until its unit of work commits, so it is written in place.
fn write_synced(path: &Path, block: &Block) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let new_folder = !folder.is_dir();
    if new_folder {
        std::fs::create_dir_all(folder)?;
    }
    let file = match write_direct(path, block) {
        Ok(file) => file,
        // A filesystem without direct I/O (tmpfs, some network filesystems).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let mut file = std::fs::File::create(path)?;
            file.write_all(block.bytes())?;
            file
        }
        Err(e) => return Err(e),
    };
    file.sync_data()?;
    sync_folder(folder)?;
    if new_folder {
        // `-mail/` itself, or its `xx/` folder, was new: their own entries too.
        for above in folder.ancestors().skip(1).take(2) {
            sync_folder(above)?;
        }
    }
    Ok(())
}

/// Direct I/O: the mail goes from this buffer to the disk, without a copy into the
/// page cache. Copying a 1 MB mail into new page-cache pages cost seven times the CPU
/// of this on our machines, and a mail file is rarely read again.
fn write_direct(path: &Path, block: &Block) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)?;
    file.write_all(block.padded())?;
    file.set_len(block.len as u64)?;
    Ok(file)
}

fn sync_folder(folder: &Path) -> std::io::Result<()> {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    std::fs::File::open(folder)?.sync_all()
}

fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::RawFile {
        path: path.display().to_string(),
        cause: source,
    }
}

/// The database file of a SQLite URL; `None` for an in-memory database.
pub(super) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (file, options) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        file.is_empty() || file == ":memory:" || options.split('&').any(|o| o == "mode=memory");
    (!in_memory).then(|| PathBuf::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_sit_beside_file_databases_only() {
        assert_eq!(
            sqlite_file("sqlite://data/casegate.db?mode=rwc"),
            Some(PathBuf::from("data/casegate.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/casegate.db"),
            Some(PathBuf::from("/var/lib/casegate.db"))
        );
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
        // Sizes around whole blocks of direct I/O, and one of many blocks.
        let large: Vec<u8> = (0..70_001u32).map(|i| (i % 251) as u8).collect();
        for len in [4095, 4096, 4097, 1, 70_001] {
            files
                .write(name.clone(), &large[..len])
                .done()
                .await
                .unwrap();
            assert_eq!(
                files.read(&name).await.unwrap(),
                &large[..len],
                "{len} bytes"
            );
        }
        // Written again (a retried batch): replaced whole, nothing else left behind.
        files.write(name.clone(), b"raw mail").done().await.unwrap();
        assert_eq!(files.read(&name).await.unwrap(), b"raw mail");
        let folder = dir.path().join("casegate.db-mail").join(&name[..2]);
        assert_eq!(std::fs::read_dir(folder).unwrap().count(), 1);
        assert!(matches!(
            files.read("ff/missing.eml").await,
            Err(StoreError::RawFile { .. })
        ));
        // Without direct I/O (tmpfs): written the usual way.
        if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
            let files = RawFiles::beside(&shm.path().join("casegate.db"));
            files.write(name.clone(), &large).done().await.unwrap();
            assert_eq!(files.read(&name).await.unwrap(), large);
        }
        // A folder that cannot be made: the error names the file.
        let blocked =
            RawFiles::beside(&dir.path().join("casegate.db-mail").join(&name).join("x.db"));
        let err = blocked.write(name.clone(), b"x").done().await.unwrap_err();
        assert!(err.to_string().contains("x.db-mail/"), "{err}");
    }
}
