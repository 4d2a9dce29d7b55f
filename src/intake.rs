//! The IMAP intake loop: poll + IDLE, UID checkpoints, settle only after commit.
//!
//! Nothing is lost: a mail leaves the inbox (MOVE to the processed or quarantine folder)
//! only after the pipeline accounted for it. Nothing is doubled: a crash between commit
//! and MOVE leaves the mail in the inbox, and the pipeline's dedup key recognises it on
//! the next pass. New mail is found by UID from a checkpoint, never by the \Seen flag.

use chrono::Utc;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::config::ImapSettings;
use crate::imap::{Backoff, IdleEnd, ImapClient, ImapError, MailMeta};
use crate::pipeline::{Origin, Outcome, Pipeline, Received, too_large};
use crate::runtime::Shutdown;
use crate::store::{Checkpoint, StoreError};

/// Why the intake loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A problem retrying cannot fix (bad credentials, missing mailbox, TLS misconfigured).
    #[error("IMAP: {0}")]
    Imap(#[from] ImapError),
    /// The database failed during a single pass (`run --once`); the mail stays in the inbox.
    #[error("{0}; the mail stays in the inbox and is retried on the next run")]
    Store(#[from] StoreError),
}

/// Counts for one pass over the inbox (printed by `run --once`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub opened: u64,
    pub added: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

impl PassStats {
    pub fn total(&self) -> u64 {
        self.opened + self.added + self.duplicates + self.quarantined
    }

    fn count(&mut self, o: &Outcome) {
        match o {
            Outcome::Stored { opened: true, .. } => self.opened += 1,
            Outcome::Stored { opened: false, .. } => self.added += 1,
            Outcome::Duplicate { .. } => self.duplicates += 1,
            Outcome::Quarantined { .. } => self.quarantined += 1,
        }
    }

    fn add(&mut self, o: PassStats) {
        self.opened += o.opened;
        self.added += o.added;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
    }
}

/// Drain the mailbox once and return (`run --once`).
pub async fn run_once(settings: &ImapSettings, pipeline: &Pipeline, shutdown: &Shutdown) -> Result<PassStats, IntakeError> {
    let mut client = open(settings).await?;
    let stats = drain(&mut client, settings, pipeline, shutdown).await;
    client.logout().await;
    stats
}

/// The daemon's intake: drain, then IDLE (or poll) until new mail, until shutdown.
/// Transient failures (connection, database) reconnect with capped exponential backoff.
/// The pipeline comes through a watch channel so that a reload (SIGHUP) takes effect at
/// the next batch without a restart.
pub async fn run(settings: ImapSettings, pipeline: watch::Receiver<Pipeline>, mut shutdown: Shutdown) -> Result<(), IntakeError> {
    let mut backoff = Backoff::default();
    while !shutdown.is_shutdown() {
        match session(&settings, &pipeline, &mut shutdown, &mut backoff).await {
            Ok(()) => break,
            Err(IntakeError::Imap(e)) if !e.is_transient() => return Err(IntakeError::Imap(e)),
            Err(e) => {
                let wait = backoff.next_delay();
                warn!(error = %e, retry_in_secs = wait.as_secs_f32(), "intake interrupted; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.recv() => {}
                }
            }
        }
    }
    Ok(())
}

/// One connection's life: returns Ok on shutdown, Err to reconnect.
async fn session(
    settings: &ImapSettings,
    pipeline: &watch::Receiver<Pipeline>,
    shutdown: &mut Shutdown,
    backoff: &mut Backoff,
) -> Result<(), IntakeError> {
    let mut client = open(settings).await?;
    info!(host = %settings.host, mailbox = %settings.mailbox, idle = client.has_idle() && settings.idle, "IMAP connected");
    loop {
        let current = pipeline.borrow().clone();
        drain(&mut client, settings, &current, shutdown).await?;
        backoff.reset();
        if shutdown.is_shutdown() {
            client.logout().await;
            return Ok(());
        }
        if client.has_idle() && settings.idle {
            // Servers drop IDLE after 30 minutes; the poll interval also bounds the wait
            // so that a missed notification costs at most one interval.
            match client.idle_wait(settings.poll_interval, shutdown).await? {
                IdleEnd::Shutdown => {
                    client.logout().await;
                    return Ok(());
                }
                IdleEnd::NewMail | IdleEnd::Timeout => {}
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(settings.poll_interval) => {}
                _ = shutdown.recv() => {}
            }
        }
    }
}

async fn open(settings: &ImapSettings) -> Result<ImapClient, IntakeError> {
    let mut client = ImapClient::connect(settings).await?;
    client.ensure_mailbox(&settings.processed_mailbox).await?;
    client.ensure_mailbox(&settings.quarantine_mailbox).await?;
    Ok(client)
}

/// Process everything new in the inbox, batch by batch, until it is empty or shutdown.
async fn drain(
    client: &mut ImapClient,
    settings: &ImapSettings,
    pipeline: &Pipeline,
    shutdown: &Shutdown,
) -> Result<PassStats, IntakeError> {
    let mut stats = PassStats::default();
    loop {
        let selected = client.select(&settings.mailbox).await?;
        let store = pipeline.store();
        let mut cp = match store.checkpoint(&settings.mailbox).await? {
            Some(cp) if cp.uid_validity == selected.uid_validity => cp,
            Some(old) => {
                // Every UID may have been reassigned: read the whole mailbox again. The
                // dedup key (Message-ID, else content hash) keeps this from doubling cases.
                warn!(old = old.uid_validity, new = selected.uid_validity, "UIDVALIDITY changed: rescanning the mailbox");
                Checkpoint { uid_validity: selected.uid_validity, last_uid: 0 }
            }
            None => Checkpoint { uid_validity: selected.uid_validity, last_uid: 0 },
        };
        let metas = client.list_after(cp.last_uid).await?;
        if metas.is_empty() {
            store.save_checkpoint(&settings.mailbox, cp, Utc::now()).await?;
            return Ok(stats);
        }
        debug!(count = metas.len(), after_uid = cp.last_uid, "new mail");
        for chunk in metas.chunks(settings.batch_size as usize) {
            let (batch, done) = process_batch(client, pipeline, chunk, shutdown).await;
            stats.add(batch.stats);
            settle(client, settings, &batch).await?;
            if let Some(uid) = batch.settled_up_to {
                cp.last_uid = uid;
                store.save_checkpoint(&settings.mailbox, cp, Utc::now()).await?;
            }
            match done {
                BatchEnd::Complete => {}
                BatchEnd::Shutdown => return Ok(stats),
                BatchEnd::Failed(e) => return Err(e),
            }
        }
    }
}

/// The result of processing one batch: what to move where.
#[derive(Debug, Default)]
struct Batch {
    processed: Vec<u32>,
    quarantined: Vec<u32>,
    /// The highest UID such that it and every UID before it in the batch are accounted for.
    settled_up_to: Option<u32>,
    stats: PassStats,
}

enum BatchEnd {
    Complete,
    Shutdown,
    Failed(IntakeError),
}

async fn process_batch(
    client: &mut ImapClient,
    pipeline: &Pipeline,
    chunk: &[MailMeta],
    shutdown: &Shutdown,
) -> (Batch, BatchEnd) {
    let mut batch = Batch::default();
    let limit = pipeline.max_message_bytes();
    let (small, big): (Vec<&MailMeta>, Vec<&MailMeta>) = chunk.iter().partition(|m| u64::from(m.size) <= limit);
    let wanted: Vec<u32> = small.iter().map(|m| m.uid).collect();
    let fetched = match client.fetch(&wanted).await {
        Ok(f) => f,
        Err(e) => return (batch, BatchEnd::Failed(e.into())),
    };
    let mut bodies: std::collections::HashMap<u32, _> = fetched.into_iter().map(|f| (f.uid, f)).collect();
    for meta in chunk {
        if shutdown.is_shutdown() {
            return (batch, BatchEnd::Shutdown);
        }
        let now = Utc::now();
        let result = if big.iter().any(|b| b.uid == meta.uid) {
            oversized(client, pipeline, meta).await
        } else if let Some(mail) = bodies.remove(&meta.uid) {
            let received = Received::whole(&mail.raw, mail.internal_date, Origin::Imap);
            pipeline.process(&received, now).await.map_err(IntakeError::from)
        } else {
            // Expunged by someone else between listing and fetching: nothing to do.
            batch.settled_up_to = Some(meta.uid);
            continue;
        };
        match result {
            Ok(outcome) => {
                crate::failpoint::hit("after_commit");
                batch.stats.count(&outcome);
                match outcome {
                    Outcome::Quarantined { .. } => batch.quarantined.push(meta.uid),
                    _ => batch.processed.push(meta.uid),
                }
                batch.settled_up_to = Some(meta.uid);
            }
            Err(e) => {
                error!(uid = meta.uid, error = %e, "mail not processed; it stays in the inbox");
                return (batch, BatchEnd::Failed(e));
            }
        }
    }
    (batch, BatchEnd::Complete)
}

/// An oversized mail is quarantined from its headers alone: its body is never loaded.
async fn oversized(client: &mut ImapClient, pipeline: &Pipeline, meta: &MailMeta) -> Result<Outcome, IntakeError> {
    let header = client.fetch_header(meta.uid).await?;
    let size = u64::from(meta.size);
    let reason = too_large(size, pipeline.max_message_bytes());
    let mail = Received { bytes: &header, size, received_at: meta.internal_date, origin: Origin::Imap };
    Ok(pipeline.quarantine(&mail, reason, Utc::now()).await?)
}

/// Move what the batch accounted for out of the inbox.
async fn settle(client: &mut ImapClient, settings: &ImapSettings, batch: &Batch) -> Result<(), IntakeError> {
    if !batch.processed.is_empty() {
        client.move_to(&batch.processed, &settings.processed_mailbox).await?;
    }
    if !batch.quarantined.is_empty() {
        client.move_to(&batch.quarantined, &settings.quarantine_mailbox).await?;
    }
    Ok(())
}
