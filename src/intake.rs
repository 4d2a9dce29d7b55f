//! The IMAP intake loop: poll + IDLE, UID checkpoints, settle only after commit.
//!
//! Nothing is lost: a mail leaves the inbox (MOVE to the processed or quarantine folder)
//! only after the pipeline accounted for it. Nothing is doubled: a crash between commit
//! and MOVE leaves the mail in the inbox, and the pipeline's dedup key recognises it on
//! the next pass. New mail is found by UID from a checkpoint, never by the \Seen flag.

use std::collections::HashMap;

use chrono::Utc;
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::{ImapSettings, MailboxSettings};
use crate::imap::{Backoff, FetchedMail, IdleEnd, ImapClient, ImapError, MailMeta};
use crate::metrics::metrics;
use crate::pipeline::{Origin, Outcome, Pipeline, Prepared, Received, too_large};
use crate::progress::Progress;
use crate::runtime::Shutdown;
use crate::store::{Checkpoint, Lease, StoreError};

/// Why the intake loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A problem retrying cannot fix (bad credentials, missing mailbox, TLS misconfigured).
    /// Not a `#[source]`: the message already holds it, and `{:#}` would print it twice.
    #[error("IMAP: {0}")]
    Imap(ImapError),
    /// The database failed during a single pass (`run --once`); the mail stays in the inbox.
    #[error("{0}; the mail stays in the inbox and is retried on the next run")]
    Store(StoreError),
    /// A bug stopped a batch (the thread preparing its mail died); the mail stays in the inbox.
    #[error("internal error: {0}; the mail stays in the inbox")]
    Internal(String),
}

// The variants above print their cause in their own message, so they do not also
// return it as `source()`: `{:#}` (anyhow) would print it twice.
impl From<ImapError> for IntakeError {
    fn from(e: ImapError) -> Self {
        IntakeError::Imap(e)
    }
}

impl From<StoreError> for IntakeError {
    fn from(e: StoreError) -> Self {
        IntakeError::Store(e)
    }
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

/// What one intake reads, and by what right.
#[derive(Debug, Clone)]
pub struct Source {
    pub mailbox: MailboxSettings,
    /// On PostgreSQL, the mailbox's lease: every commit proves it still holds it (the
    /// fencing check). `None` on SQLite, whose lock makes this process the only reader.
    pub lease: Option<Lease>,
}

/// Drain the mailbox once and return (`run --once`).
pub async fn run_once(
    source: &Source,
    pipeline: &Pipeline,
    shutdown: &Shutdown,
) -> Result<PassStats, IntakeError> {
    let settings = &source.mailbox.imap;
    let mut client = open(settings).await?;
    let mut progress = Progress::new("run --once", 0);
    let stats = drain(&mut client, source, pipeline, shutdown, Some(&mut progress)).await;
    progress.finish();
    client.logout().await;
    stats
}

/// The daemon's intake: drain, then IDLE (or poll) until new mail, until shutdown.
/// Transient failures (connection, database) reconnect with capped exponential backoff.
/// The pipeline comes through a watch channel so that a reload (SIGHUP) takes effect at
/// the next batch without a restart.
pub async fn run(
    source: Source,
    pipeline: watch::Receiver<Pipeline>,
    mut shutdown: Shutdown,
) -> Result<(), IntakeError> {
    let mut backoff = Backoff::default();
    let name = &source.mailbox.name;
    metrics().declare_mailbox(name);
    while !shutdown.is_shutdown() {
        match session(&source, &pipeline, &mut shutdown, &mut backoff).await {
            Ok(()) => break,
            Err(IntakeError::Imap(e)) if !e.is_transient() => return Err(IntakeError::Imap(e)),
            Err(e) => {
                let wait = backoff.next_delay();
                warn!(mailbox = %name, error = %e, retry_in_secs = wait.as_secs_f32(), "intake interrupted; will retry");
                let m = metrics();
                m.set_connection(name, Some(e.to_string()));
                m.imap_reconnects.get_or_create(&m.mailbox(name)).inc();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.recv() => {}
                }
            }
        }
    }
    Ok(())
}

/// After a pass that found mail, the IDLE re-check runs this many times as often (50 ms
/// with the default 200): the look rate rises only while mail arrives.
const BUSY_RECHECK_DIVISOR: u32 = 4;

/// One connection's life: returns Ok on shutdown, Err to reconnect.
async fn session(
    source: &Source,
    pipeline: &watch::Receiver<Pipeline>,
    shutdown: &mut Shutdown,
    backoff: &mut Backoff,
) -> Result<(), IntakeError> {
    let settings = &source.mailbox.imap;
    let mut client = open(settings).await?;
    info!(host = %settings.host, mailbox = %source.mailbox.name, folder = %settings.mailbox, idle = client.has_idle() && settings.idle, "IMAP connected");
    metrics().set_connection(&source.mailbox.name, None);
    loop {
        let current = pipeline.borrow().clone();
        let found = drain(&mut client, source, &current, shutdown, None).await?;
        backoff.reset();
        if shutdown.is_shutdown() {
            client.logout().await;
            return Ok(());
        }
        if client.has_idle() && settings.idle {
            // Servers drop IDLE after 30 minutes; the poll interval also bounds the wait
            // so that a missed notification costs at most one interval. While mail keeps
            // coming, the next look comes sooner: a steady stream would otherwise wait a
            // whole re-check (the server holding its news back) on every pass.
            let recheck = match found.total() {
                0 => settings.idle_recheck,
                _ => settings.idle_recheck.map(|r| r / BUSY_RECHECK_DIVISOR),
            };
            let wait = recheck.map_or(settings.poll_interval, |r| r.min(settings.poll_interval));
            match client.idle_wait(wait, shutdown).await? {
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
    source: &Source,
    pipeline: &Pipeline,
    shutdown: &Shutdown,
    // `run --once`: how far through the backlog it is.
    mut progress: Option<&mut Progress>,
) -> Result<PassStats, IntakeError> {
    let settings = &source.mailbox.imap;
    // Checkpoints are kept by mailbox name: two accounts may both read their INBOX.
    let name = source.mailbox.name.as_str();
    let mut stats = PassStats::default();
    loop {
        if shutdown.is_shutdown() {
            return Ok(stats);
        }
        let selected = client.select(&settings.mailbox).await?;
        let store = pipeline.store();
        let stored = store.checkpoint(name).await?;
        let mut cp = match stored {
            Some(cp) if cp.uid_validity == selected.uid_validity => cp,
            Some(old) => {
                // Every UID may have been reassigned: read the whole mailbox again. The
                // dedup key (Message-ID, else content hash) keeps this from doubling cases.
                warn!(
                    old = old.uid_validity,
                    new = selected.uid_validity,
                    "UIDVALIDITY changed: rescanning the mailbox"
                );
                Checkpoint {
                    uid_validity: selected.uid_validity,
                    last_uid: 0,
                }
            }
            None => Checkpoint {
                uid_validity: selected.uid_validity,
                last_uid: 0,
            },
        };
        let metas = client.list_after(cp.last_uid).await?;
        if metas.is_empty() {
            if stored != Some(cp) {
                store.save_checkpoint(name, cp, Utc::now()).await?;
            }
            return Ok(stats);
        }
        debug!(count = metas.len(), after_uid = cp.last_uid, "new mail");
        if let Some(p) = progress.as_mut() {
            p.set_total(p.done() + metas.len() as u64);
        }
        // A pipeline over the batches: while batch N commits, the IMAP connection moves
        // batch N-1 out of the inbox and fetches batch N+1, which blocking threads then
        // prepare. The checkpoint for N-1 is recorded in N's unit of work, once its
        // MOVE succeeded.
        let mut chunks = batches(&metas, settings.batch_size as usize, settings.batch_bytes);
        let mut next = match chunks.next() {
            Some(chunk) => Some(fetch_batch(client, source, pipeline, chunk).await?),
            None => None,
        };
        let mut unsettled: Option<Batch> = None;
        while let Some(fetched) = next.take() {
            let upcoming = chunks.next();
            let moving = unsettled.take();
            let (moved_tx, moved_rx) = oneshot::channel();
            let mark = Mark {
                mailbox: name,
                checkpoint: cp,
                moved: moved_rx,
                lease: source.lease.as_ref(),
            };
            let ((batch, done, marked), imap) =
                tokio::join!(commit_batch(pipeline, fetched, mark, shutdown), async {
                    match &moving {
                        Some(b) => {
                            settle(client, settings, b).await?;
                            let _ = moved_tx.send(b.settled_up_to);
                        }
                        None => drop(moved_tx),
                    }
                    match upcoming {
                        Some(chunk) if !shutdown.is_shutdown() => {
                            fetch_batch(client, source, pipeline, chunk).await.map(Some)
                        }
                        _ => Ok(None),
                    }
                });
            stats.add(batch.stats);
            if let Some(p) = progress.as_mut() {
                p.advance(batch.stats.total());
            }
            if let BatchEnd::Failed(e) = done {
                return Err(e);
            }
            // This batch is committed. If the previous one's MOVE failed, stop here: both
            // stay in the inbox, the checkpoint stays before them, and their dedup keys
            // make the next pass settle them without doubling anything.
            let fetched_next = imap?;
            match (marked, moving.and_then(|b| b.settled_up_to)) {
                (Some(uid), _) => cp.last_uid = uid,
                // Moved, but after the unit of work had finished: record it on its own.
                (None, Some(uid)) => {
                    cp.last_uid = uid;
                    store.save_checkpoint(name, cp, Utc::now()).await?;
                }
                (None, None) => {}
            }
            if matches!(done, BatchEnd::Shutdown) {
                settle_and_mark(client, source, store, &batch, &mut cp).await?;
                return Ok(stats);
            }
            unsettled = Some(batch);
            next = fetched_next;
        }
        if let Some(batch) = unsettled {
            settle_and_mark(client, source, store, &batch, &mut cp).await?;
        }
    }
}

/// Move a committed batch out of the inbox, then advance the checkpoint past it.
async fn settle_and_mark(
    client: &mut ImapClient,
    source: &Source,
    store: &crate::store::Store,
    batch: &Batch,
    cp: &mut Checkpoint,
) -> Result<(), IntakeError> {
    settle(client, &source.mailbox.imap, batch).await?;
    if let Some(uid) = batch.settled_up_to {
        cp.last_uid = uid;
        store
            .save_checkpoint(&source.mailbox.name, *cp, Utc::now())
            .await?;
    }
    Ok(())
}

/// The checkpoint a unit of work records once the previous batch has left the inbox:
/// `moved` brings the highest UID it settled (nothing when its MOVE failed).
struct Mark<'a> {
    mailbox: &'a str,
    checkpoint: Checkpoint,
    moved: oneshot::Receiver<Option<u32>>,
    /// Proven inside the unit of work, just before it commits (see `store::leases`).
    lease: Option<&'a Lease>,
}

/// Consecutive batches of at most `count` mails and `bytes` bytes (a mail larger than
/// `bytes` is a batch of its own).
fn batches(metas: &[MailMeta], count: usize, bytes: u64) -> impl Iterator<Item = &[MailMeta]> {
    let mut rest = metas;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0u64;
        let mut n = 0;
        while n < rest.len() && n < count.max(1) {
            total += u64::from(rest[n].size);
            if n > 0 && total > bytes {
                break;
            }
            n += 1;
        }
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
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

/// One batch as read from the server and prepared (parsed, classified) on blocking
/// threads, while the previous batch commits; for oversized mail the header only.
struct Fetched<'a> {
    chunk: &'a [MailMeta],
    prepared: HashMap<u32, Prepared>,
    headers: HashMap<u32, Vec<u8>>,
}

async fn fetch_batch<'a>(
    client: &mut ImapClient,
    source: &Source,
    pipeline: &Pipeline,
    chunk: &'a [MailMeta],
) -> Result<Fetched<'a>, IntakeError> {
    let limit = pipeline.max_message_bytes();
    let wanted: Vec<u32> = chunk
        .iter()
        .filter(|m| u64::from(m.size) <= limit)
        .map(|m| m.uid)
        .collect();
    let bodies = client.fetch(&wanted).await?;
    let mut headers = HashMap::new();
    // An oversized mail is quarantined from its headers alone: its body is never loaded.
    for meta in chunk.iter().filter(|m| u64::from(m.size) > limit) {
        headers.insert(meta.uid, client.fetch_header(meta.uid).await?);
    }
    let prepared = prepare_all(pipeline, bodies, &source.mailbox).await?;
    Ok(Fetched {
        chunk,
        prepared,
        headers,
    })
}

/// Blocking threads that prepare a batch: one per core, at most four. Parsing (base64
/// decoding above all) is the heaviest step for mail with attachments; on two cores,
/// two threads keep it ahead of the writer.
fn preparers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// Prepare a batch's mails, shared out by size over [`preparers`] blocking threads.
async fn prepare_all(
    pipeline: &Pipeline,
    bodies: Vec<FetchedMail>,
    mailbox: &MailboxSettings,
) -> Result<HashMap<u32, Prepared>, IntakeError> {
    let mut shares: Vec<(usize, Vec<FetchedMail>)> =
        (0..preparers()).map(|_| (0, Vec::new())).collect();
    for mail in bodies {
        if let Some(share) = shares.iter_mut().min_by_key(|(bytes, _)| *bytes) {
            share.0 += mail.raw.len();
            share.1.push(mail);
        }
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .filter(|(_, mails)| !mails.is_empty())
        .map(|(_, mails)| {
            let preparer = pipeline.clone();
            let mailbox = mailbox.clone();
            tokio::task::spawn_blocking(move || {
                mails
                    .into_iter()
                    .map(|mail| {
                        let received =
                            Received::from_mailbox(mail.raw, mail.internal_date, &mailbox);
                        (mail.uid, preparer.prepare(received))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut prepared = HashMap::new();
    for task in tasks {
        prepared.extend(
            task.await
                .map_err(|e| IntakeError::Internal(format!("preparing mail failed: {e}")))?,
        );
    }
    Ok(prepared)
}

/// One fetch batch in one unit of work: everything commits at once at the end (or at
/// shutdown, with the mails done so far). A store error rolls the whole batch back: it
/// stays in the inbox and is retried.
/// Returns the batch, how it ended, and the UID the checkpoint now records (`mark`).
async fn commit_batch(
    pipeline: &Pipeline,
    fetched: Fetched<'_>,
    mark: Mark<'_>,
    shutdown: &Shutdown,
) -> (Batch, BatchEnd, Option<u32>) {
    let Fetched {
        chunk,
        mut prepared,
        mut headers,
    } = fetched;
    let mut work = match pipeline.store().begin_work().await {
        Ok(w) => w,
        Err(e) => return (Batch::default(), BatchEnd::Failed(e.into()), None),
    };
    let mut batch = Batch::default();
    let mut end = BatchEnd::Complete;
    let started = std::time::Instant::now();
    let m = metrics();
    let label = m.mailbox(mark.mailbox);
    // Counted once committed: (outcome, arrival).
    let mut outcomes = Vec::new();
    for meta in chunk {
        if shutdown.is_shutdown() {
            end = BatchEnd::Shutdown;
            break;
        }
        let now = Utc::now();
        if headers.contains_key(&meta.uid) || prepared.contains_key(&meta.uid) {
            m.mails_fetched.get_or_create(&label).inc();
        }
        let result = if let Some(header) = headers.remove(&meta.uid) {
            let size = u64::from(meta.size);
            let reason = too_large(size, pipeline.max_message_bytes());
            let mail = Received {
                bytes: header,
                size,
                received_at: meta.internal_date,
                origin: Origin::Imap,
                recipient: None,
                mailbox_address: None,
                mailbox_defaults: Default::default(),
            };
            pipeline.quarantine(&mut work, &mail, reason, now).await
        } else if let Some(mail) = prepared.remove(&meta.uid) {
            pipeline.write_plan(&mut work, mail, now).await
        } else {
            // Expunged by someone else between listing and fetching: nothing to do.
            batch.settled_up_to = Some(meta.uid);
            continue;
        };
        match result {
            Ok(outcome) => {
                batch.stats.count(&outcome);
                outcomes.push((outcome.clone(), meta.internal_date));
                match outcome {
                    Outcome::Quarantined { .. } => batch.quarantined.push(meta.uid),
                    _ => batch.processed.push(meta.uid),
                }
                batch.settled_up_to = Some(meta.uid);
            }
            Err(e) => {
                // The mails logged as stored before this one are undone with it.
                let rolled_back = batch.processed.len() + batch.quarantined.len();
                error!(uid = meta.uid, rolled_back, error = %e, "batch rolled back; its mail stays in the inbox and is retried");
                end = BatchEnd::Failed(e.into());
                break;
            }
        }
    }
    if matches!(end, BatchEnd::Failed(_)) {
        // Dropping the unit of work rolls it back.
        return (Batch::default(), end, None);
    }
    // Never wait for IMAP while holding the write lock: a MOVE not done yet is recorded
    // by the caller on its own.
    let mut moved = mark.moved;
    let marked = match moved.try_recv() {
        Ok(Some(uid)) => Some(uid),
        _ => None,
    };
    let recorded = match marked {
        Some(uid) => {
            work.save_checkpoint(
                mark.mailbox,
                Checkpoint {
                    last_uid: uid,
                    ..mark.checkpoint
                },
                Utc::now(),
            )
            .await
        }
        None => Ok(()),
    };
    let fenced = match (recorded, mark.lease) {
        (Ok(()), Some(lease)) => {
            crate::failpoint::pause("before_fence");
            work.fence(lease, Utc::now()).await
        }
        (r, _) => r,
    };
    let committed = match fenced {
        Ok(()) => pipeline.commit(work).await,
        Err(e) => Err(e),
    };
    if let Err(e) = committed {
        let rolled_back = batch.processed.len() + batch.quarantined.len();
        error!(rolled_back, error = %e, "batch rolled back; its mail stays in the inbox and is retried");
        return (Batch::default(), BatchEnd::Failed(e.into()), None);
    }
    m.batch_commit_seconds
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    let committed_at = Utc::now();
    for (outcome, arrived) in &outcomes {
        m.count_outcome(mark.mailbox, outcome);
        m.arrival_to_commit_seconds
            .get_or_create(&label)
            .observe((committed_at - *arrived).as_seconds_f64().max(0.0));
    }
    crate::failpoint::hit("after_commit");
    (batch, end, marked)
}

/// Move what the batch accounted for out of the inbox.
async fn settle(
    client: &mut ImapClient,
    settings: &ImapSettings,
    batch: &Batch,
) -> Result<(), IntakeError> {
    if !batch.processed.is_empty() {
        client
            .move_to(&batch.processed, &settings.processed_mailbox)
            .await?;
    }
    if !batch.quarantined.is_empty() {
        client
            .move_to(&batch.quarantined, &settings.quarantine_mailbox)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metas(sizes: &[u32]) -> Vec<MailMeta> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| MailMeta {
                uid: i as u32 + 1,
                size,
                internal_date: Utc::now(),
            })
            .collect()
    }

    fn shape(sizes: &[u32], count: usize, bytes: u64) -> Vec<usize> {
        batches(&metas(sizes), count, bytes)
            .map(<[MailMeta]>::len)
            .collect()
    }

    #[test]
    fn batches_are_bounded_by_count_and_by_bytes() {
        assert_eq!(shape(&[10; 5], 2, 1000), vec![2, 2, 1]);
        assert_eq!(shape(&[400, 400, 400, 10], 10, 1000), vec![2, 2]);
        // A mail larger than the byte budget still goes, alone.
        assert_eq!(shape(&[5000, 10, 10], 10, 1000), vec![1, 2]);
        assert!(shape(&[], 10, 1000).is_empty());
    }
}
