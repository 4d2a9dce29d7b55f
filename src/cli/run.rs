use std::path::Path;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::intake;
use crate::pipeline::Pipeline;
use crate::runtime::shutdown_channel;

/// Run the gateway: read the support mailbox, file every mail into a case.
///
/// SIGTERM or SIGINT: finish the mail in hand, then exit 0. SIGHUP: reload and check the
/// configuration; a bad one is refused and the daemon keeps the last good one.
#[derive(Debug, Args)]
pub struct Run {
    /// Process everything pending, then exit 0.
    #[arg(long)]
    once: bool,
}

impl Run {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let config = super::load_config(path)?;
        super::init_tracing(&config);
        let pipeline = super::pipeline(&config).await?;
        let imap = config.imap.clone().context("no [imap] section in the configuration: nothing to run")?;
        startup_summary(&config, self.once);
        if self.once {
            let (_trigger, shutdown) = shutdown_channel();
            let stats = intake::run_once(&imap, &pipeline, &shutdown).await?;
            println!(
                "processed {} mail(s): {} new case(s), {} added to existing cases, {} duplicate(s), {} quarantined",
                stats.total(),
                stats.opened,
                stats.added,
                stats.duplicates,
                stats.quarantined
            );
            pipeline.store().close().await;
            return Ok(0);
        }
        let (trigger, shutdown) = shutdown_channel();
        let (pipeline_tx, pipeline_rx) = watch::channel(pipeline.clone());
        let intake_task = tokio::spawn(intake::run(imap, pipeline_rx, shutdown));
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut intake_task = intake_task;
        let result = loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: finishing the mail in hand, then stopping"); break None; }
                _ = int.recv() => { info!("SIGINT: finishing the mail in hand, then stopping"); break None; }
                _ = hup.recv() => reload(path, &config, &pipeline, &pipeline_tx),
                r = &mut intake_task => break Some(r),
            }
        };
        trigger.trigger();
        let finished = match result {
            Some(r) => r,
            None => intake_task.await,
        };
        pipeline.store().close().await;
        match finished {
            Ok(Ok(())) => {
                info!("stopped");
                Ok(0)
            }
            Ok(Err(e)) => {
                error!(error = %e, "intake stopped");
                Err(e.into())
            }
            Err(e) => Err(anyhow::anyhow!("intake task failed: {e}")),
        }
    }
}

/// Check the edited configuration in full before using any of it.
fn reload(path: &Path, running: &Config, pipeline: &Pipeline, tx: &watch::Sender<Pipeline>) {
    match crate::config::load(path) {
        Ok(new) => {
            if new.imap.as_ref().map(|i| (&i.host, i.port, &i.username, &i.mailbox))
                != running.imap.as_ref().map(|i| (&i.host, i.port, &i.username, &i.mailbox))
                || new.database.url != running.database.url
            {
                warn!("reload: IMAP connection and database settings take effect after a restart");
            }
            tx.send_replace(Pipeline::new(pipeline.store().clone(), &new));
            info!(config = %path.display(), "reload: configuration applied");
        }
        Err(problems) => {
            for p in &problems.0 {
                error!(problem = %p, "reload refused");
            }
            warn!("reload refused: keeping the last good configuration");
        }
    }
}

fn startup_summary(config: &Config, once: bool) {
    let imap = config.imap.as_ref();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.display(),
        mode = if once { "once" } else { "daemon" },
        database = %super::redact_url(&config.database.url),
        imap = %imap.map(|i| format!("{}@{}:{} ({})", i.username, i.host, i.port, i.tls)).unwrap_or_default(),
        mailbox = %imap.map(|i| format!("{} -> {} / {}", i.mailbox, i.processed_mailbox, i.quarantine_mailbox)).unwrap_or_default(),
        idle = imap.is_some_and(|i| i.idle),
        poll_interval_secs = imap.map(|i| i.poll_interval.as_secs()).unwrap_or(0),
        support_address = %config.gateway.support_address,
        "casegate starting"
    );
}
