//! `casegate backup DIR` and `casegate restore DIR` (see `store::backup`).

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Args;

use crate::store::{OpenMode, backup};

/// Back up the SQLite database and its raw-mail files into DIR (a new or empty folder),
/// also while the daemon runs: a consistent snapshot (VACUUM INTO), then the files it
/// names. On PostgreSQL, use pg_dump.
#[derive(Debug, Args)]
pub struct Backup {
    /// The folder to write (created; must be empty if it exists).
    dir: PathBuf,
}

impl Backup {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let store = super::open_store_only_with(path, OpenMode::Existing).await?;
        let manifest = store.backup(&self.dir, Utc::now()).await?;
        let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
        println!(
            "backed up {} to {}: {} cases, {} messages, {} raw-mail files ({bytes} bytes)",
            manifest.source,
            self.dir.display(),
            manifest.cases,
            manifest.messages,
            manifest.files.len()
        );
        Ok(0)
    }
}

/// Check a backup made by `casegate backup` and put it in place as the configured
/// SQLite database (database.url) and its raw-mail folder. Refused while casegate runs
/// on that database; an existing database is replaced only with --replace.
#[derive(Debug, Args)]
pub struct Restore {
    /// The backup folder.
    dir: PathBuf,
    /// Replace an existing database (casegate must not be running on it).
    #[arg(long)]
    replace: bool,
    /// Only check the backup (database integrity, counts, every file's size and
    /// SHA-256); change nothing.
    #[arg(long)]
    check: bool,
}

impl Restore {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        if self.check {
            let m = backup::check(&self.dir).await?;
            println!(
                "backup {} is sound: {} cases, {} messages, {} raw-mail files, taken {} from {}",
                self.dir.display(),
                m.cases,
                m.messages,
                m.files.len(),
                m.created_at.to_rfc3339(),
                m.source
            );
            return Ok(0);
        }
        let db = crate::config::load_database(path)
            .map_err(|problems| anyhow::anyhow!("invalid configuration:\n{problems}"))?;
        let restored = backup::restore(&self.dir, &db.url, self.replace).await?;
        let m = &restored.manifest;
        println!(
            "restored {} (taken {}) to {}: {} cases, {} messages, {} raw-mail files",
            self.dir.display(),
            m.created_at.to_rfc3339(),
            restored.database.display(),
            m.cases,
            m.messages,
            m.files.len()
        );
        Ok(0)
    }
}
