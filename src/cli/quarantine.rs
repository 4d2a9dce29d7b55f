use std::path::Path;

use chrono::Utc;
use clap::{Args, Subcommand};

use crate::imap::ImapClient;
use crate::pipeline::{Origin, Outcome, Pipeline, Received};
use crate::progress::Progress;
use crate::store::{OpenMode, QuarantineEntry, QuarantineStatus};

/// Mails that could not become cases, and why.
#[derive(Debug, Subcommand)]
pub enum Quarantine {
    /// List quarantined mails with the reason.
    List(List),
    /// Run the held mails through the pipeline again (after a fix or a config change).
    /// Mails that now succeed move to the processed folder; the rest stay. Nothing is
    /// doubled: a mail already on a case is only released.
    Replay(Replay),
    /// One quarantined mail: why, its size, where it came from, and its headers.
    Show(Show),
    /// Give up on a quarantined mail: it is no longer listed or replayed (it stays in
    /// the IMAP quarantine folder; the register keeps an audit event).
    Discard(Discard),
}

#[derive(Debug, Args)]
pub struct Show {
    /// The entry's id (as `quarantine list --json` prints it).
    id: i64,
}

#[derive(Debug, Args)]
pub struct Discard {
    /// The entry's id.
    id: i64,
    /// Who discards it, for the audit trail.
    #[arg(long, default_value = "admin")]
    actor: String,
}

#[derive(Debug, Args)]
pub struct List {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also show mails released by an earlier replay.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
pub struct Replay {}

impl Quarantine {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        match self {
            Quarantine::Show(s) => show(path, s.id).await,
            Quarantine::Discard(d) => discard(path, d).await,
            Quarantine::List(l) => {
                let (_, pipeline) = open(path).await?;
                let entries: Vec<_> = pipeline
                    .store()
                    .quarantine_list(false)
                    .await?
                    .into_iter()
                    .filter(|e| l.all || e.status == QuarantineStatus::Held)
                    .collect();
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else {
                    print_table(&entries);
                }
                Ok(0)
            }
            Quarantine::Replay(_) => {
                let (config, pipeline) = open(path).await?;
                let mut tally = Tally::default();
                if let Some(imap) = &config.imap {
                    replay_imap(imap, &pipeline, &mut tally).await?;
                }
                replay_piped(&pipeline, &mut tally).await?;
                println!(
                    "replayed {} mail(s): {} released, {} still held",
                    tally.released + tally.held,
                    tally.released,
                    tally.held
                );
                Ok(0)
            }
        }
    }
}

/// The whole configuration and the pipeline over the existing database.
async fn open(path: &Path) -> anyhow::Result<(std::sync::Arc<crate::config::Config>, Pipeline)> {
    let config = super::load_config(path)?;
    super::init_tracing(&config);
    let pipeline = super::pipeline_with(&config, OpenMode::Existing).await?;
    Ok((config, pipeline))
}

async fn discard(path: &Path, d: Discard) -> anyhow::Result<i32> {
    let store = super::open_store_only(path).await?;
    match store.quarantine_discard(d.id, &d.actor, Utc::now()).await? {
        None => {
            eprintln!("casegate: no quarantined mail {}", d.id);
            Ok(1)
        }
        Some(e) if e.status != QuarantineStatus::Held => {
            eprintln!(
                "casegate: quarantined mail {} is {}, not held: unchanged",
                d.id,
                e.status.as_str()
            );
            Ok(1)
        }
        Some(e) => {
            println!(
                "discarded quarantined mail {} from {} ({})",
                e.id,
                e.from.as_deref().unwrap_or("an unknown sender"),
                e.reason
            );
            Ok(0)
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    released: u64,
    held: u64,
}

async fn show(path: &Path, id: i64) -> anyhow::Result<i32> {
    let store = super::open_store_only(path).await?;
    let Some(e) = store.quarantine_entry(id).await? else {
        eprintln!("casegate: no quarantined mail {id}");
        return Ok(1);
    };
    println!("Quarantined mail {}  [{}]", e.id, e.status.as_str());
    println!("Reason: {}", e.reason);
    println!("Size: {} bytes", e.size);
    println!("From: {}", e.from.as_deref().unwrap_or("-"));
    println!("Subject: {}", e.subject.as_deref().unwrap_or("-"));
    println!("Message-ID: {}", e.message_id.as_deref().unwrap_or("-"));
    println!(
        "Received: {}  Quarantined: {}  Source: {}",
        e.received_at.to_rfc3339(),
        e.quarantined_at.to_rfc3339(),
        e.source
    );
    if let Some(case) = e.released_case {
        println!("Released to case {case}");
    }
    match &e.raw {
        Some(raw) => {
            println!("\nHeaders:");
            println!("{}", header_block(raw));
        }
        None if e.status != QuarantineStatus::Held => {
            println!("\nHeaders: no longer kept (dropped once released or discarded)")
        }
        None => println!("\nHeaders: not kept (an oversized piped mail is not stored)"),
    }
    Ok(0)
}

/// The header block of a raw mail (up to the first empty line), as text.
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = text.replace("\r\n", "\n");
    match text.find("\n\n") {
        Some(end) => text[..end].to_string(),
        None => text.trim_end().to_string(),
    }
}

/// The IMAP quarantine folder is the source of truth for mail that came by IMAP.
async fn replay_imap(
    settings: &crate::config::ImapSettings,
    pipeline: &Pipeline,
    tally: &mut Tally,
) -> anyhow::Result<()> {
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
    let discarded: std::collections::BTreeSet<String> = pipeline
        .store()
        .quarantine_list(false)
        .await?
        .into_iter()
        .filter(|e| e.status == QuarantineStatus::Discarded)
        .map(|e| e.dedup_key)
        .collect();
    let mut released = Vec::new();
    let mut progress = Progress::new("quarantine replay (IMAP)", small.len() as u64);
    for chunk in small.chunks(settings.batch_size as usize) {
        for mail in client.fetch(chunk).await? {
            progress.advance(1);
            if discarded.contains(&crate::mail::parse::dedup_key(&mail.raw)) {
                continue;
            }
            let received = Received::whole(mail.raw, mail.internal_date, Origin::Imap);
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

/// Piped mail has no folder: its bytes were kept in the register.
async fn replay_piped(pipeline: &Pipeline, tally: &mut Tally) -> anyhow::Result<()> {
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
) -> anyhow::Result<bool> {
    let now = Utc::now();
    let key = crate::mail::parse::dedup_key(&received.bytes);
    match pipeline.process(received, now).await? {
        Outcome::Stored { case, .. } | Outcome::Duplicate { case } => {
            pipeline.store().quarantine_release(&key, case, now).await?;
            println!("released to case {case}");
            tally.released += 1;
            Ok(true)
        }
        Outcome::Quarantined { reason } => {
            println!("still held: {reason}");
            tally.held += 1;
            Ok(false)
        }
    }
}

fn print_table(entries: &[QuarantineEntry]) {
    if entries.is_empty() {
        println!("quarantine is empty");
        return;
    }
    println!(
        "{:>6}  {:<16}  {:<9}  {:>10}  {:<30}  REASON",
        "ID", "QUARANTINED", "STATUS", "BYTES", "FROM"
    );
    for e in entries {
        println!(
            "{:>6}  {:<16}  {:<9}  {:>10}  {:<30}  {}",
            e.id,
            e.quarantined_at.format("%Y-%m-%d %H:%M"),
            e.status.as_str(),
            e.size,
            e.from.as_deref().unwrap_or("-"),
            e.reason
        );
    }
}
