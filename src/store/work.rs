//! A unit of work: the reads and writes for several mails in one transaction.
//!
//! A drain commits a whole fetch batch at once instead of one transaction per mail:
//! SQLite writes each shared page (indexes, the case sequence) once per batch instead
//! of once per mail, and the reads that feed the decision step run on the same
//! connection. Later mails in a batch see what earlier ones wrote (a reply threads onto
//! the case its question opened a moment before). Nothing is visible to anyone else,
//! and nothing may leave the inbox, until [`Work::commit`] returns.

use std::sync::Arc;

use super::raw_files::{RawFiles, Writing};
use super::{Backend, Store, StoreError};
use sqlx::{Any, Transaction};

/// An open unit of work. Dropping it without [`Work::commit`] rolls everything back.
pub struct Work {
    pub(super) tx: Transaction<'static, Any>,
    pub(super) backend: Backend,
    /// Some plan queued outbound mail (the outbox worker is woken after `commit`).
    pub(super) queued_mail: bool,
    /// Mails committed so far.
    pub(super) mails: usize,
    /// The dedup key last looked up and not found (see [`Work::write_plan`]).
    pub(super) absent: Option<String>,
    /// SQLite: the number of the next case this unit of work opens, when known.
    pub(super) next_case: Option<i64>,
    pub(super) raw_files: Option<Arc<RawFiles>>,
    /// Raw mail files being written; all must be complete before the commit.
    pub(super) writing: Vec<Writing>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("backend", &self.backend)
            .field("mails", &self.mails)
            .finish()
    }
}

impl Store {
    /// Open a unit of work. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first could not upgrade to a
    /// writer after another connection committed, and would fail instead of waiting.
    pub async fn begin_work(&self) -> Result<Work, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Work {
            tx,
            backend: self.backend,
            queued_mail: false,
            mails: 0,
            absent: None,
            next_case: None,
            raw_files: self.raw_files.clone(),
            writing: Vec::new(),
        })
    }
}

impl Work {
    /// Commit everything; returns true when outbound mail was queued.
    pub async fn commit(self) -> Result<bool, StoreError> {
        // A row must never name a file that is not complete: a failed write rolls
        // everything back (dropping the transaction).
        for writing in self.writing {
            writing.done().await?;
        }
        self.tx.commit().await?;
        Ok(self.queued_mail)
    }

    /// Roll everything back (also what dropping does, without waiting for it).
    pub async fn abandon(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Mails (cases, duplicates excluded, and quarantine entries) written so far.
    pub fn len(&self) -> usize {
        self.mails
    }

    pub fn is_empty(&self) -> bool {
        self.mails == 0
    }
}
