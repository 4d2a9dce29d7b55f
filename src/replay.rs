//! Replaying quarantined mail through the pipeline again (after a fix or a config
//! change), shared by `casegate quarantine replay` and the status pages' replay button.
//! Mails that now succeed move to the processed folder; the rest stay. Nothing is
//! doubled: a mail already on a case is only released.

use std::collections::BTreeSet;

use chrono::Utc;

use crate::config::{Config, MailboxSettings};
use crate::imap::{ImapClient, ImapError};
use crate::pipeline::{Origin, Outcome, Pipeline, Received};
use crate::progress::Progress;
use crate::store::{QuarantineStatus, StoreError};

/// What one replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub released: u64,
    pub held: u64,
    /// One line per mail: "released to case N" or "still held: REASON".
    pub lines: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replay every held mail: each mailbox's IMAP quarantine folder (the source of truth
/// for mail that came by IMAP), then the piped mails kept in the register.
pub async fn replay_all(pipeline: &Pipeline) -> Result<Tally, ReplayError> {
    let mut tally = Tally::default();
    let folders = quarantine_folders(pipeline.config());
    for mailbox in &folders {
        let label = match folders.len() {
            1 => "quarantine replay (IMAP)".to_string(),
            _ => format!("quarantine replay (IMAP {})", mailbox.name),
        };
        replay_imap(mailbox, &label, pipeline, &mut tally).await?;
    }
    replay_piped(pipeline, &mut tally).await?;
    Ok(tally)
}

/// The mailboxes whose quarantine folders to read: `[imap]` and every `[[mailboxes]]`
/// entry, each folder once (two entries on one account may share a quarantine folder).
fn quarantine_folders(config: &Config) -> Vec<&MailboxSettings> {
    let mut seen = BTreeSet::new();
    config
        .mailboxes
        .iter()
        .filter(|m| {
            let i = &m.imap;
            seen.insert((&i.host, i.port, &i.username, &i.quarantine_mailbox))
        })
        .collect()
}

async fn replay_imap(
    mailbox: &MailboxSettings,
    label: &str,
    pipeline: &Pipeline,
    tally: &mut Tally,
) -> Result<(), ReplayError> {
    let settings = &mailbox.imap;
    let mut client = ImapClient::connect(settings).await?;
    client.ensure_mailbox(&settings.processed_mailbox).await?;
    client.ensure_mailbox(&settings.quarantine_mailbox).await?;
    client.select(&settings.quarantine_mailbox).await?;
    let metas = client.list_after(0).await?;
    let limit = pipeline.max_message_bytes();
    let small: Vec<u32> = metas
        .iter()
        .filter(|m| u64::from(m.size) <= limit)
        .map(|m| m.uid)
        .collect();
    tally.held += (metas.len() - small.len()) as u64;
    let discarded: BTreeSet<String> = pipeline
        .store()
        .quarantine_list(false)
        .await?
        .into_iter()
        .filter(|e| e.status == QuarantineStatus::Discarded)
        .map(|e| e.dedup_key)
        .collect();
    let mut released = Vec::new();
    let mut progress = Progress::new(label, small.len() as u64);
    for chunk in small.chunks(settings.batch_size as usize) {
        for mail in client.fetch(chunk).await? {
            progress.advance(1);
            if discarded.contains(&crate::mail::parse::dedup_key(&mail.raw)) {
                continue;
            }
            let received = Received::from_mailbox(mail.raw, mail.internal_date, mailbox);
            if release(pipeline, received, tally).await? {
                released.push(mail.uid);
            }
        }
    }
    progress.finish();
    if !released.is_empty() {
        client
            .move_to(&released, &settings.processed_mailbox)
            .await?;
    }
    client.logout().await;
    Ok(())
}

/// Replay one held mail by its quarantine id (the status pages' per-mail button);
/// `None` when there is no such entry. A mail no longer held is left alone.
pub async fn replay_one(pipeline: &Pipeline, id: i64) -> Result<Option<Tally>, ReplayError> {
    let Some(entry) = pipeline.store().quarantine_entry(id).await? else {
        return Ok(None);
    };
    let mut tally = Tally::default();
    if entry.status != QuarantineStatus::Held {
        return Ok(Some(tally));
    }
    if entry.source == Origin::Stdin.as_str() {
        match entry.raw {
            Some(raw) => {
                let received = Received::whole(raw, entry.received_at, Origin::Stdin);
                release(pipeline, received, &mut tally).await?;
            }
            None => tally.held += 1,
        }
        return Ok(Some(tally));
    }
    // The register does not say which mailbox held it: look in each quarantine folder.
    for mailbox in quarantine_folders(pipeline.config()) {
        if replay_imap_one(mailbox, pipeline, &entry.dedup_key, &mut tally).await? {
            return Ok(Some(tally));
        }
    }
    tally.held += 1;
    tally
        .lines
        .push("still held: too large to replay, or no longer in the folder".to_string());
    Ok(Some(tally))
}

/// The mail in this mailbox's IMAP quarantine folder whose dedup key is `key`, replayed
/// and, when now on a case, moved to the processed folder; false when it is not there.
async fn replay_imap_one(
    mailbox: &MailboxSettings,
    pipeline: &Pipeline,
    key: &str,
    tally: &mut Tally,
) -> Result<bool, ReplayError> {
    let settings = &mailbox.imap;
    let mut client = ImapClient::connect(settings).await?;
    client.ensure_mailbox(&settings.processed_mailbox).await?;
    client.ensure_mailbox(&settings.quarantine_mailbox).await?;
    client.select(&settings.quarantine_mailbox).await?;
    let limit = pipeline.max_message_bytes();
    let small: Vec<u32> = client
        .list_after(0)
        .await?
        .iter()
        .filter(|m| u64::from(m.size) <= limit)
        .map(|m| m.uid)
        .collect();
    let mut found = false;
    for chunk in small.chunks(settings.batch_size.max(1) as usize) {
        for mail in client.fetch(chunk).await? {
            if found || crate::mail::parse::dedup_key(&mail.raw) != key {
                continue;
            }
            found = true;
            let uid = mail.uid;
            let received = Received::from_mailbox(mail.raw, mail.internal_date, mailbox);
            if release(pipeline, received, tally).await? {
                client.move_to(&[uid], &settings.processed_mailbox).await?;
            }
        }
        if found {
            break;
        }
    }
    client.logout().await;
    Ok(found)
}

/// Piped mail has no folder: its bytes were kept in the register.
async fn replay_piped(pipeline: &Pipeline, tally: &mut Tally) -> Result<(), ReplayError> {
    let held = pipeline.store().quarantine_list(true).await?;
    let piped: Vec<_> = held
        .iter()
        .filter(|e| e.status == QuarantineStatus::Held && e.source == Origin::Stdin.as_str())
        .collect();
    let mut progress = Progress::new("quarantine replay (piped)", piped.len() as u64);
    for e in piped {
        progress.advance(1);
        if let Some(raw) = &e.raw {
            release(
                pipeline,
                Received::whole(raw.clone(), e.received_at, Origin::Stdin),
                tally,
            )
            .await?;
        }
    }
    progress.finish();
    Ok(())
}

/// Process one mail again; true when it is now on a case.
async fn release(
    pipeline: &Pipeline,
    received: Received,
    tally: &mut Tally,
) -> Result<bool, ReplayError> {
    let now = Utc::now();
    let key = crate::mail::parse::dedup_key(&received.bytes);
    match pipeline.process(received, now).await? {
        Outcome::Stored { case, .. } | Outcome::Duplicate { case } => {
            pipeline.store().quarantine_release(&key, case, now).await?;
            tally.lines.push(format!("released to case {case}"));
            tally.released += 1;
            Ok(true)
        }
        Outcome::Quarantined { reason } => {
            tally.lines.push(format!("still held: {reason}"));
            tally.held += 1;
            Ok(false)
        }
    }
}
