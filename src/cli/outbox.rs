use std::path::Path;

use chrono::Utc;
use clap::{Args, Subcommand};

use crate::store::{OutboxRow, OutboxStatus, Retried};

/// Outbound mail: what is queued, sent or failed, and why.
#[derive(Debug, Subcommand)]
pub enum Outbox {
    /// List outbound mails, oldest first, with attempts and the last error.
    List(List),
    /// Send failed (or waiting) mail again at the next outbox round (`run --once`, or
    /// the daemon within 30 s). A mail keeps its Message-ID.
    Retry(Retry),
}

#[derive(Debug, Args)]
pub struct List {
    /// Only rows with this status (pending, sending, sent, failed).
    #[arg(long)]
    status: Option<OutboxStatus>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Retry {
    /// The row's id, as `outbox list` prints it.
    #[arg(required_unless_present = "failed", conflicts_with = "failed")]
    id: Option<i64>,
    /// Every failed row.
    #[arg(long)]
    failed: bool,
}

impl Outbox {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let store = super::open_store_only(path).await?;
        let code = match self {
            Outbox::List(l) => {
                let rows = store.outbox_list(l.status).await?;
                if l.json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print_table(&rows);
                }
                0
            }
            Outbox::Retry(Retry { failed: true, .. }) => {
                let ids = store.retry_failed_outbox(Utc::now()).await?;
                println!("{} failed mail(s) queued again", ids.len());
                0
            }
            Outbox::Retry(Retry { id, .. }) => {
                let id = id.unwrap_or_default();
                match store.retry_outbox(id, Utc::now()).await? {
                    Retried::Queued => {
                        println!("outbox row {id} queued again");
                        0
                    }
                    Retried::NotFound => {
                        eprintln!("casegate: no outbox row {id}");
                        1
                    }
                    Retried::AlreadySent => {
                        eprintln!(
                            "casegate: outbox row {id} was sent already; it is not sent twice"
                        );
                        1
                    }
                    Retried::InFlight => {
                        eprintln!("casegate: outbox row {id} is being sent right now");
                        1
                    }
                }
            }
        };
        store.close().await;
        Ok(code)
    }
}

fn print_table(rows: &[OutboxRow]) {
    if rows.is_empty() {
        println!("the outbox is empty");
        return;
    }
    println!(
        "{:>6}  {:<7}  {:<8}  {:<22}  {:>3}  {:<16}  {:<30}  LAST ERROR",
        "ID", "STATUS", "CASE", "KIND", "TRY", "SENT / NEXT TRY", "TO"
    );
    for r in rows {
        let when = match (r.status, r.sent_at) {
            (OutboxStatus::Sent, Some(t)) => t,
            _ => r.next_attempt_at,
        };
        println!(
            "{:>6}  {:<7}  {:<8}  {:<22}  {:>3}  {:<16}  {:<30}  {}",
            r.id,
            r.status.as_str(),
            r.case.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.kind,
            r.attempts,
            when.format("%Y-%m-%d %H:%M"),
            r.recipients.join(", "),
            r.last_error.as_deref().unwrap_or("")
        );
    }
}
