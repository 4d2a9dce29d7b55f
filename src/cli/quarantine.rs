use std::path::Path;

use chrono::Utc;
use clap::{Args, Subcommand};

use crate::pipeline::Pipeline;
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
                let (_, pipeline) = open(path).await?;
                let tally = crate::replay::replay_all(&pipeline).await?;
                for line in &tally.lines {
                    println!("{line}");
                }
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
