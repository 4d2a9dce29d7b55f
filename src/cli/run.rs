use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::outbox::{self, RetryPolicy};
use crate::pipeline::Pipeline;
use crate::runtime::shutdown_channel;
use crate::store::OutboxStatus;
use crate::{intake, sla_timer};

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

/// `gateway.contracts_file`, imported (upserted) at start-up and on every reload.
async fn import_contracts_file(config: &Config, pipeline: &Pipeline) -> anyhow::Result<()> {
    if let Some(contracts) = &config.contracts {
        let (path, list) = contracts.as_ref();
        let s = pipeline.store().import_contracts(list, Utc::now()).await?;
        info!(file = %path.display(), new = s.inserted, updated = s.updated, unchanged = s.unchanged, "contracts imported");
    }
    Ok(())
}

/// Modification times and sizes of the configuration's files (templates: every file in
/// the folder): a change means an admin edited something.
fn fingerprint(config: &Config) -> Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)> {
    fn walk(
        p: &Path,
        out: &mut Vec<(std::path::PathBuf, Option<std::time::SystemTime>, u64)>,
        depth: u8,
    ) {
        let meta = std::fs::metadata(p).ok();
        out.push((
            p.to_path_buf(),
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map(|m| m.len()).unwrap_or(0),
        ));
        if depth > 0
            && p.is_dir()
            && let Ok(entries) = std::fs::read_dir(p)
        {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for e in paths {
                walk(&e, out, depth - 1);
            }
        }
    }
    let mut out = Vec::new();
    for p in &config.watched {
        walk(p, &mut out, 2);
    }
    out
}

fn retry_policy(config: &Config) -> RetryPolicy {
    let o = &config.outbox;
    RetryPolicy {
        initial: o.retry_initial,
        cap: o.retry_cap,
        max_age: o.max_age,
    }
}

/// `run --once`: the mailbox, then the SLA timers, then the outbox (so the mail the first
/// two queued goes out in the same run). A part that fails does not stop the others
/// (the outbox still goes out when IMAP is down); then the run fails naming each.
async fn once(config: &Arc<Config>, pipeline: &Pipeline, recovered: u64) -> anyhow::Result<i32> {
    let (_trigger, shutdown) = shutdown_channel();
    let mut failed: Vec<String> = Vec::new();
    if let Some(imap) = &config.imap {
        match intake::run_once(imap, pipeline, &shutdown).await {
            Ok(s) => println!(
                "processed {} mail(s): {} new case(s), {} added to existing cases, {} duplicate(s), {} quarantined",
                s.total(),
                s.opened,
                s.added,
                s.duplicates,
                s.quarantined
            ),
            Err(e) => failed.push(format!("mailbox: {e}")),
        }
    }
    match sla_timer::tick(pipeline, Utc::now()).await {
        Ok(t) => println!("SLA: {} warning(s), {} breach(es)", t.warned, t.breached),
        Err(e) => failed.push(format!("SLA timers: {e}")),
    }
    if let Some(smtp) = &config.smtp {
        let alerts = Some(outbox::FailureAlerts {
            config: config.clone(),
        });
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

/// The daemon: one task per worker, all stopped by the same shutdown signal.
async fn daemon(path: &Path, config: &Arc<Config>, pipeline: Pipeline) -> anyhow::Result<i32> {
    let (trigger, shutdown) = shutdown_channel();
    let (pipeline_tx, pipeline_rx) = watch::channel(pipeline.clone());
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    if let Some(imap) = config.imap.clone() {
        let (rx, sd) = (pipeline_rx.clone(), shutdown.clone());
        tasks.spawn(async move { Ok(intake::run(imap, rx, sd).await?) });
    }
    if let Some(smtp) = config.smtp.clone() {
        let (store, policy, sd, wake) = (
            pipeline.store().clone(),
            retry_policy(config),
            shutdown.clone(),
            pipeline.outbox_wake(),
        );
        let alerts = Some(outbox::FailureAlerts {
            config: config.clone(),
        });
        tasks.spawn(async move {
            Ok(outbox::run_alerting(store, smtp, policy, sd, wake, alerts).await?)
        });
    }
    let (rx, sd) = (pipeline_rx.clone(), shutdown.clone());
    tasks.spawn(async move { Ok(sla_timer::run(rx, sd).await?) });
    drop(shutdown);

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut current = config.clone();
    let mut seen = fingerprint(&current);
    let mut watch_files = tokio::time::interval(std::time::Duration::from_secs(2));
    let mut failure = None;
    loop {
        tokio::select! {
            _ = watch_files.tick() => {
                let now_seen = fingerprint(&current);
                if now_seen != seen {
                    info!("configuration files changed: reloading");
                    seen = now_seen;
                    if let Some(new) = reload(path, &current, &pipeline_tx) {
                        if let Err(e) = import_contracts_file(&new, &pipeline).await {
                            warn!(error = %format!("{e:#}"), "contracts file not imported");
                        }
                        seen = fingerprint(&new);
                        current = new;
                    }
                }
            }
            _ = term.recv() => { info!("SIGTERM: finishing the mail in hand, then stopping"); break; }
            _ = int.recv() => { info!("SIGINT: finishing the mail in hand, then stopping"); break; }
            _ = hup.recv() => {
                if let Some(new) = reload(path, &current, &pipeline_tx) {
                    if let Err(e) = import_contracts_file(&new, &pipeline).await {
                        warn!(error = %format!("{e:#}"), "contracts file not imported");
                    }
                    seen = fingerprint(&new);
                    current = new;
                }
            }
            Some(done) = tasks.join_next() => {
                match done {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => { error!(error = %format!("{e:#}"), "a worker stopped; shutting down"); failure = Some(e); }
                    Err(e) => { error!(error = %e, "a worker panicked; shutting down"); failure = Some(e.into()); }
                }
                break;
            }
        }
    }
    trigger.trigger();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            warn!(error = %format!("{e:#}"), "worker stopped with an error during shutdown");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            info!("stopped");
            Ok(0)
        }
    }
}

/// Check the edited configuration in full before using any of it.
fn reload(path: &Path, running: &Config, tx: &watch::Sender<Pipeline>) -> Option<Arc<Config>> {
    match crate::config::load(path) {
        Ok(new) => {
            let connection = |c: &Config| {
                let smtp = c.smtp.as_ref().map(|s| format!("{s:?}"));
                let imap = c.imap.as_ref().map(|i| format!("{i:?}"));
                (
                    imap,
                    smtp,
                    c.database.url.clone(),
                    format!("{:?}", c.outbox),
                )
            };
            if connection(&new) != connection(running) {
                warn!(
                    "reload: [imap], [smtp], [outbox] and [database] changes take effect after a restart"
                );
            }
            for w in &new.warnings {
                warn!(warning = %w, "configuration");
            }
            let new = Arc::new(new);
            let pipeline = tx.borrow().reconfigured(new.clone());
            tx.send_replace(pipeline);
            info!(config = %path.display(), "reload: configuration, routing and templates applied");
            Some(new)
        }
        Err(problems) => {
            for p in &problems.0 {
                error!(problem = %p, "reload refused");
            }
            warn!("reload refused: keeping the last good configuration");
            None
        }
    }
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
        smtp = %config.smtp.as_ref().map(|s| format!("{}:{} ({})", s.host, s.port, s.tls)).unwrap_or_else(|| "off".into()),
        queues = config.routing.queues.len(),
        support_address = %config.gateway.support_address,
        outbox_recovered,
        "casegate starting"
    );
}
