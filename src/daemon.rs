//! The daemon as a library function (as in mini-redis): [`run`] takes the
//! configuration, the pipeline, a shutdown future and a stream of reload requests, so
//! the binary only turns signals into those two (`cli/run.rs`) and a test can drive a
//! daemon in its own process.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::Utc;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::intake::{self, IntakeError};
use crate::metrics::metrics;
use crate::outbox::{self, OutboxError, RetryPolicy};
use crate::pipeline::Pipeline;
use crate::runtime::shutdown_channel;
use crate::sla_timer::{self, SlaTimer};
use crate::store::{Backend, StoreError};

/// Why the daemon stopped before it was asked to: a worker failed for good. Each
/// variant is its worker's own error (printed as it is, once).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    SlaTimer(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// The status pages' templates (`web.templates_dir`) do not load.
    #[error("status pages (web.templates_dir):\n{0}")]
    WebPages(crate::problem::Problems),
    #[error(transparent)]
    Panicked(#[from] tokio::task::JoinError),
}

/// The outbox retry policy of `config`.
pub fn retry_policy(config: &Config) -> RetryPolicy {
    let o = &config.outbox;
    RetryPolicy {
        initial: o.retry_initial,
        cap: o.retry_cap,
        max_age: o.max_age,
    }
}

/// `gateway.contracts_file`, imported (upserted) at start-up and on every reload.
pub async fn import_contracts_file(config: &Config, pipeline: &Pipeline) -> Result<(), StoreError> {
    if let Some(contracts) = &config.contracts {
        let (path, list) = contracts.as_ref();
        let s = pipeline.store().import_contracts(list, Utc::now()).await?;
        info!(file = %path.display(), new = s.inserted, updated = s.updated, unchanged = s.unchanged, "contracts imported");
    }
    Ok(())
}

/// Run the workers (intake, outbox sender, SLA timer) until `shutdown` resolves or one
/// of them fails. Each item of `reloads` (and every edit of the configuration's files,
/// looked for every 2 s) reloads the configuration read from `path`: a bad one is
/// refused and the last good one kept.
pub async fn run(
    path: &Path,
    config: Arc<Config>,
    pipeline: Pipeline,
    shutdown: impl Future<Output = ()>,
    reloads: impl Stream<Item = ()>,
) -> Result<(), DaemonError> {
    let (trigger, stop) = shutdown_channel();
    let (pipeline_tx, pipeline_rx) = watch::channel(pipeline.clone());
    let (timer_tx, timer_rx) = watch::channel(SlaTimer {
        store: pipeline.store().clone(),
        config: config.clone(),
        outbox_wake: pipeline.outbox_wake(),
    });
    let mut tasks: JoinSet<Result<(), DaemonError>> = JoinSet::new();
    if let Some(addr) = config.admin.listen {
        let listener = crate::admin::bind(addr).await?;
        let pages = crate::web::render::Pages::load(&config.web.templates_dir)
            .map_err(|p| DaemonError::WebPages(crate::problem::Problems(p)))?;
        let web = crate::web::WebState::new(pipeline_rx.clone(), pages);
        let (store, sd) = (pipeline.store().clone(), stop.clone());
        tasks.spawn(async move { Ok(crate::admin::serve(listener, store, web, sd).await?) });
    }
    if pipeline.store().backend() == Backend::Postgres && !config.mailboxes.is_empty() {
        // Shared by design: each mailbox read by one instance at a time, through leases.
        let member = crate::cluster::Member::this_process(config.cluster.takeover);
        let (store, mailboxes) = (pipeline.store().clone(), config.mailboxes.clone());
        let (rx, sd) = (pipeline_rx.clone(), stop.clone());
        tasks
            .spawn(async move { Ok(crate::cluster::run(member, store, mailboxes, rx, sd).await?) });
    } else {
        // SQLite: this process holds the database's lock, so it is the only reader.
        for mailbox in config.mailboxes.clone() {
            let (rx, sd) = (pipeline_rx.clone(), stop.clone());
            let source = intake::Source {
                mailbox,
                lease: None,
            };
            tasks.spawn(async move { Ok(intake::run(source, rx, sd).await?) });
        }
    }
    if let Some(smtp) = config.smtp.clone() {
        let (store, policy, sd, wake) = (
            pipeline.store().clone(),
            retry_policy(&config),
            stop.clone(),
            pipeline.outbox_wake(),
        );
        let alerts = Some(outbox::FailureAlerts::following(pipeline_rx.clone()));
        tasks.spawn(async move {
            Ok(outbox::run_alerting(store, smtp, policy, sd, wake, alerts).await?)
        });
    }
    let sd = stop.clone();
    tasks.spawn(async move { Ok(sla_timer::run(timer_rx, sd).await?) });
    drop(stop);

    tokio::pin!(shutdown);
    tokio::pin!(reloads);
    let mut reloads_open = true;
    let mut current = config;
    let mut seen = fingerprint(&current);
    let mut watch_files = tokio::time::interval(std::time::Duration::from_secs(2));
    let mut failure = None;
    // systemd (Type=notify): READY once the mailbox is connected (at once without one),
    // WATCHDOG pings at half the watchdog interval. Without NOTIFY_SOCKET both do nothing.
    // On PostgreSQL an instance may hold no mailbox at all (others do): ready at once.
    let mailboxes: Vec<String> = match pipeline.store().backend() {
        Backend::Sqlite => current.mailboxes.iter().map(|m| m.name.clone()).collect(),
        Backend::Postgres => Vec::new(),
    };
    let mut ready = false;
    let mut ready_check = tokio::time::interval(std::time::Duration::from_millis(100));
    let watchdog = sd_notify::watchdog_enabled();
    let mut watchdog_tick =
        tokio::time::interval(watchdog.map_or(std::time::Duration::from_secs(3600), |w| w / 2));
    loop {
        let requested = tokio::select! {
            _ = ready_check.tick(), if !ready => {
                if mailboxes.iter().all(|m| metrics().connected(m)) {
                    ready = true;
                    notify(sd_notify::NotifyState::Ready);
                }
                false
            }
            _ = watchdog_tick.tick(), if watchdog.is_some() => {
                notify(sd_notify::NotifyState::Watchdog);
                false
            }
            _ = watch_files.tick() => {
                let now_seen = fingerprint(&current);
                let changed = now_seen != seen;
                if changed {
                    info!("configuration files changed: reloading");
                    seen = now_seen;
                }
                changed
            }
            r = reloads.next(), if reloads_open => {
                reloads_open = r.is_some();
                reloads_open
            }
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next() => {
                match done {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => { error!(error = %e, "a worker stopped; shutting down"); failure = Some(e); }
                    Err(e) => { error!(error = %e, "a worker panicked; shutting down"); failure = Some(e.into()); }
                }
                break;
            }
        };
        if !requested {
            continue;
        }
        let Some(new) = reload(path, &current) else {
            metrics().reload_failures.inc();
            continue;
        };
        metrics().reloads.inc();
        // Not in one statement: the borrow's read lock would be held by send_replace.
        let reconfigured = pipeline_tx.borrow().reconfigured(new.clone());
        pipeline_tx.send_replace(reconfigured);
        timer_tx.send_modify(|t| t.config = new.clone());
        info!(config = %path.display(), "reload: configuration, routing and templates applied");
        if let Err(e) = import_contracts_file(&new, &pipeline).await {
            warn!(error = %e, "contracts file not imported");
        }
        seen = fingerprint(&new);
        current = new;
    }
    notify(sd_notify::NotifyState::Stopping);
    trigger.trigger();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            warn!(error = %e, "worker stopped with an error during shutdown");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}

/// Check the edited configuration in full before using any of it.
fn reload(path: &Path, running: &Config) -> Option<Arc<Config>> {
    match crate::config::load(path) {
        Ok(new) => {
            let connection = |c: &Config| {
                (
                    c.mailboxes.clone(),
                    c.cluster,
                    c.smtp.clone(),
                    c.database.url.clone(),
                    c.outbox,
                )
            };
            if connection(&new) != connection(running) {
                warn!(
                    "reload: [imap], [[mailboxes]], [cluster], [smtp], [outbox] and [database] changes take effect after a restart"
                );
            }
            for w in &new.warnings {
                warn!(warning = %w, "configuration");
            }
            Some(Arc::new(new))
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

type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// Modification times and sizes of the configuration's files (templates: every file in
/// the folder): a change means an admin edited something.
fn fingerprint(config: &Config) -> Fingerprint {
    fn walk(p: &Path, out: &mut Fingerprint, depth: u8) {
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

/// Tell systemd (when it started us with a notify socket).
fn notify(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        warn!(error = %e, "cannot notify systemd");
    }
}
