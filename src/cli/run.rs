use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::config::Config;
use crate::daemon::{self, import_contracts_file, retry_policy};
use crate::intake;
use crate::outbox;
use crate::pipeline::Pipeline;
use crate::runtime::shutdown_channel;
use crate::sla_timer::{self, SlaTimer};
use crate::store::{Backend, Lease, OutboxStatus};

/// Run the gateway: read the support mailbox, file every mail into a case, send the
/// outbox, keep the SLA clocks.
///
/// SIGTERM or SIGINT: finish the mail in hand, then exit 0. SIGHUP: reload and check the
/// configuration (routing, templates, SLA); a bad one is refused and the daemon keeps
/// the last good one.
#[derive(Debug, Args)]
pub struct Run {
    /// Process everything pending (mailbox, SLA timers, outbox), then exit 0.
    #[arg(long)]
    once: bool,
}

impl Run {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let config = super::load_config(path)?;
        super::init_tracing(&config);
        let pipeline = super::pipeline(&config).await?;
        // Held until the process ends: on SQLite no second casegate runs meanwhile.
        pipeline.store().lock_sole_user()?;
        // A database that is busy now is retried by the sender's first round.
        let recovered = match pipeline.store().release_abandoned(Utc::now()).await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox: crash recovery postponed to the first round");
                0
            }
        };
        pipeline.store().spawn_checkpointer().await;
        startup_summary(&config, self.once, recovered);
        for w in &config.warnings {
            warn!(warning = %w, "configuration");
        }
        import_contracts_file(&config, &pipeline).await?;
        let code = if self.once {
            once(&config, &pipeline, recovered).await?
        } else {
            daemon(path, &config, pipeline.clone()).await?
        };
        pipeline.store().close().await;
        Ok(code)
    }
}

/// `run --once`: the mailbox, then the SLA timers, then the outbox (so the mail the first
/// two queued goes out in the same run). A part that fails does not stop the others
/// (the outbox still goes out when IMAP is down); then the run fails naming each. Only a
/// database that failed holds the outbox back: a mail sent now might not be recorded as
/// sent (a full disk), and the next run would send it again; it stays queued instead.
async fn once(config: &Arc<Config>, pipeline: &Pipeline, recovered: u64) -> anyhow::Result<i32> {
    let (_trigger, shutdown) = shutdown_channel();
    let mut failed: Vec<String> = Vec::new();
    let mut database_failed = false;
    let several = config.mailboxes.len() > 1;
    for mailbox in &config.mailboxes {
        // One mailbox prints as it always did; several, each under its name.
        let label = if several {
            format!("mailbox {}: ", mailbox.name)
        } else {
            String::new()
        };
        let lease = match once_lease(pipeline, &mailbox.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                println!("{label}read by another instance now (skipped)");
                continue;
            }
            Err(e) => {
                database_failed = true;
                failed.push(format!("{label}mailbox: {e}"));
                continue;
            }
        };
        let source = intake::Source {
            mailbox: mailbox.clone(),
            lease: lease.clone(),
        };
        let drain = intake::run_once(&source, pipeline, &shutdown);
        let drained = match &lease {
            Some(lease) => {
                tokio::pin!(drain);
                tokio::select! {
                    r = &mut drain => r,
                    () = renew_while_draining(pipeline, lease, config.cluster.takeover) => drain.await,
                }
            }
            None => drain.await,
        };
        match drained {
            Ok(s) => println!(
                "{label}processed {} mail(s): {} new case(s), {} added to existing cases, {} duplicate(s), {} quarantined",
                s.total(),
                s.opened,
                s.added,
                s.duplicates,
                s.quarantined
            ),
            Err(e) => {
                database_failed |= matches!(e, intake::IntakeError::Store(_));
                failed.push(format!("{label}mailbox: {e}"));
            }
        }
        if let Some(lease) = &lease
            && let Err(e) = pipeline.store().release_lease(lease).await
        {
            warn!(mailbox = %mailbox.name, error = %e, "lease not released; it expires by itself");
        }
    }
    let timer = SlaTimer {
        store: pipeline.store().clone(),
        config: config.clone(),
        outbox_wake: pipeline.outbox_wake(),
    };
    match sla_timer::tick(&timer, Utc::now()).await {
        Ok(t) => println!("SLA: {} warning(s), {} breach(es)", t.warned, t.breached),
        Err(e) => {
            database_failed = true;
            failed.push(format!("SLA timers: {e}"));
        }
    }
    if database_failed && config.smtp.is_some() {
        println!(
            "outbox: held back (the database failed above); queued mail goes out on the next run"
        );
    } else if let Some(smtp) = &config.smtp {
        let alerts = Some(outbox::FailureAlerts::new(config.clone()));
        match outbox::drain_once_alerting(pipeline.store(), smtp, &retry_policy(config), alerts)
            .await
        {
            Ok(r) => println!(
                "outbox: {} sent, {} to retry, {} failed, {} recovered from an interrupted run",
                r.sent,
                r.retried,
                r.failed,
                recovered + r.released
            ),
            Err(e) => failed.push(format!("outbox: {e}")),
        }
        // PostgreSQL only: rows another instance is sending now (or died sending; its
        // lease then runs out and the next round sends them). Not waited for.
        let leased = pipeline
            .store()
            .outbox_list(Some(OutboxStatus::Sending))
            .await?
            .len();
        if leased > 0 {
            println!("outbox: {leased} being sent by another instance (not waited for)");
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    // Each failure once, here (not also as a log line while the other parts ran).
    for f in &failed {
        eprintln!("casegate: run --once: {f}");
    }
    Ok(1)
}

/// Renew `lease` every third of the takeover time while `run --once` drains, as the
/// daemon does, so a drain longer than the takeover time is not taken over. Returns only
/// when the lease is lost: the drain then goes on, and the fencing
/// check refuses its next commit.
async fn renew_while_draining(pipeline: &Pipeline, lease: &Lease, takeover: std::time::Duration) {
    let term = chrono::Duration::from_std(takeover).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::time::sleep(takeover / 3).await;
        match pipeline.store().renew_lease(lease, Utc::now() + term).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(mailbox = %lease.mailbox, token = lease.token, "lease lost: another instance took the mailbox over");
                return;
            }
            // The next round tries again; a lease that expires meanwhile is lost.
            Err(e) => warn!(mailbox = %lease.mailbox, error = %e, "lease not renewed; retrying"),
        }
    }
}

/// `run --once` on PostgreSQL reads a mailbox only with its lease (`Ok(None)`: another
/// instance holds it); SQLite needs none (`Ok(Some(None))`): the database lock is held.
async fn once_lease(
    pipeline: &Pipeline,
    mailbox: &str,
) -> Result<Option<Option<Lease>>, crate::store::StoreError> {
    let store = pipeline.store();
    if store.backend() != Backend::Postgres {
        return Ok(Some(None));
    }
    let config = pipeline.config();
    let member = crate::cluster::Member::this_process(config.cluster.takeover);
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(member.takeover).unwrap_or(chrono::Duration::MAX);
    Ok(store
        .acquire_lease(mailbox, &member.name, now, until)
        .await?
        .map(Some))
}

/// The daemon: SIGTERM and SIGINT stop it, SIGHUP reloads (see [`daemon::run`]).
async fn daemon(path: &Path, config: &Arc<Config>, pipeline: Pipeline) -> anyhow::Result<i32> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let hup = signal(SignalKind::hangup())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: finishing the mail in hand, then stopping"),
            _ = int.recv() => info!("SIGINT: finishing the mail in hand, then stopping"),
        }
    };
    let reloads = futures::stream::unfold(hup, |mut hup| async move {
        hup.recv().await.map(|()| ((), hup))
    });
    daemon::run(path, config.clone(), pipeline, shutdown, reloads).await?;
    Ok(0)
}

fn startup_summary(config: &Config, once: bool, outbox_recovered: u64) {
    let imap = config.imap.as_ref();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.display(),
        mode = if once { "once" } else { "daemon" },
        database = %super::redact_url(&config.database.url),
        imap = %imap.map(|i| format!("{}@{}:{} ({})", i.username, i.host, i.port, i.tls)).unwrap_or_else(|| "off".into()),
        mailbox = %imap.map(|i| format!("{} -> {} / {}", i.mailbox, i.processed_mailbox, i.quarantine_mailbox)).unwrap_or_default(),
        idle = imap.is_some_and(|i| i.idle),
        mailboxes = %config.mailboxes.iter().map(|m| format!("{} <{}>", m.name, m.support_address)).collect::<Vec<_>>().join(", "),
        smtp = %config.smtp.as_ref().map(|s| format!("{}:{} ({})", s.host, s.port, s.tls)).unwrap_or_else(|| "off".into()),
        queues = config.routing.queues.len(),
        support_address = %config.gateway.support_address,
        outbox_recovered,
        "casegate starting"
    );
}
