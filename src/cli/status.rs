use std::path::Path;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;

use crate::store::{Backend, LeaseRow};

/// The instances alive, which one reads which mailbox (since when, its last commit),
/// and the outbox and SLA-timer backlog.
#[derive(Debug, Args)]
pub struct Status {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Status {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let config = super::load_config(path)?;
        let store = super::open_store_only(path).await?;
        let now = Utc::now();
        let takeover =
            chrono::Duration::from_std(config.cluster.takeover).unwrap_or(chrono::Duration::MAX);
        let (instances, leases) = store.cluster_state().await?;
        let outbox = store.outbox_counts().await?;
        let (running, due) = store.clock_backlog(now).await?;
        let alive = |heartbeat: DateTime<Utc>| heartbeat >= now - takeover;
        // Every configured mailbox, leased or not (SQLite takes no leases).
        let mailboxes: Vec<(String, Option<&LeaseRow>)> = config
            .mailboxes
            .iter()
            .map(|m| (m.name.clone(), leases.iter().find(|l| l.mailbox == m.name)))
            .chain(
                leases
                    .iter()
                    .filter(|l| !config.mailboxes.iter().any(|m| m.name == l.mailbox))
                    .map(|l| (l.mailbox.clone(), Some(l))),
            )
            .collect();
        let held = |l: &LeaseRow| l.holder.is_some() && l.expires_at > now;
        if self.json {
            let value = json!({
                "at": now,
                "database": match store.backend() { Backend::Sqlite => "sqlite", Backend::Postgres => "postgres" },
                "takeover_ms": config.cluster.takeover.as_millis() as u64,
                "instances": instances.iter().map(|i| json!({
                    "name": i.name, "host": i.host, "pid": i.pid,
                    "started_at": i.started_at, "heartbeat_at": i.heartbeat_at,
                    "alive": alive(i.heartbeat_at),
                })).collect::<Vec<_>>(),
                "mailboxes": mailboxes.iter().map(|(name, l)| json!({
                    "mailbox": name,
                    "holder": l.filter(|l| held(l)).and_then(|l| l.holder.clone()),
                    "since": l.filter(|l| held(l)).map(|l| l.acquired_at),
                    "last_commit_at": l.and_then(|l| l.last_commit_at),
                    "token": l.map(|l| l.token),
                    "expires_at": l.filter(|l| l.holder.is_some()).map(|l| l.expires_at),
                })).collect::<Vec<_>>(),
                "outbox": {
                    "pending": outbox.pending, "sending": outbox.sending,
                    "sent": outbox.sent, "failed": outbox.failed,
                },
                "sla_timer": { "running": running, "due": due },
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
            return Ok(0);
        }
        let alive_count = instances.iter().filter(|i| alive(i.heartbeat_at)).count();
        match store.backend() {
            Backend::Sqlite => {
                println!("database: SQLite (one instance: `casegate run` holds its lock file)")
            }
            Backend::Postgres => println!(
                "database: PostgreSQL; {alive_count} instance(s) alive, takeover after {} ms",
                config.cluster.takeover.as_millis()
            ),
        }
        if !instances.is_empty() {
            println!(
                "\n{:<32}  {:<8}  {:<20}  {:<20}  STATE",
                "INSTANCE", "PID", "STARTED", "HEARTBEAT"
            );
            for i in &instances {
                println!(
                    "{:<32}  {:<8}  {:<20}  {:<20}  {}",
                    i.name,
                    i.pid,
                    short(i.started_at),
                    short(i.heartbeat_at),
                    if alive(i.heartbeat_at) {
                        "alive"
                    } else {
                        "gone"
                    }
                );
            }
        }
        println!(
            "\n{:<24}  {:<32}  {:<20}  {:<20}  TOKEN",
            "MAILBOX", "HOLDER", "SINCE", "LAST COMMIT"
        );
        for (name, lease) in &mailboxes {
            let (holder, since) = match lease {
                Some(l) if held(l) => (l.holder.clone().unwrap_or_default(), short(l.acquired_at)),
                Some(l) if l.holder.is_some() => ("(expired: being taken over)".into(), "-".into()),
                _ if store.backend() == Backend::Sqlite => {
                    ("(this database's daemon)".into(), "-".into())
                }
                _ => ("(free)".into(), "-".into()),
            };
            println!(
                "{:<24}  {:<32}  {:<20}  {:<20}  {}",
                name,
                holder,
                since,
                lease
                    .and_then(|l| l.last_commit_at)
                    .map_or("-".into(), short),
                lease.map_or("-".into(), |l| l.token.to_string())
            );
        }
        println!(
            "\noutbox: {} pending, {} sending, {} failed ({} sent)",
            outbox.pending, outbox.sending, outbox.failed, outbox.sent
        );
        println!("SLA timer: {running} clock(s) running, {due} due now");
        Ok(0)
    }
}

fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
