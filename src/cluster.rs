//! Several instances on one PostgreSQL database: which mailboxes this instance reads.
//!
//! Each round (a third of the takeover time) the instance renews its heartbeat and its
//! leases, counts the instances alive, and takes or hands over leases to hold its fair
//! share ([`crate::domain::share`]). Each held mailbox runs the ordinary intake with its
//! lease, which every commit proves (`store::leases`). A lease found lost (the instance
//! was paused or cut off past its expiry, and another took it) stops that intake at once;
//! a commit it still attempts is refused by the fencing check. On shutdown every lease
//! is released, so the others take the mailboxes over without waiting for the expiry.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::MailboxSettings;
use crate::domain::share::{Rebalance, rebalance};
use crate::intake::{self, IntakeError, Source};
use crate::pipeline::Pipeline;
use crate::runtime::{Shutdown, ShutdownTrigger, shutdown_channel};
use crate::store::{Lease, Store};

/// This instance's part in the cluster.
#[derive(Debug, Clone)]
pub struct Member {
    /// Unique per process: `<host>-<pid>`.
    pub name: String,
    pub host: String,
    pub pid: u32,
    /// The lease time (`cluster.takeover_ms`).
    pub takeover: Duration,
}

impl Member {
    /// This process, named after its host and process id.
    pub fn this_process(takeover: Duration) -> Member {
        let host = host_name();
        let pid = std::process::id();
        Member {
            name: format!("{host}-{pid}"),
            host,
            pid,
            takeover,
        }
    }
}

/// A mailbox this instance reads now.
struct Held {
    lease: Lease,
    /// Stops this mailbox's intake alone (lease lost, handed over, shutdown).
    stop: ShutdownTrigger,
    task: JoinHandle<Result<(), IntakeError>>,
    /// Found taken over: not released at the end (it is not ours any more).
    lost: bool,
    /// Being handed over to spread the load.
    leaving: bool,
}

/// Read this instance's share of `mailboxes` until `shutdown`. Fails only when an
/// intake fails for good (bad credentials, a missing folder), as the single intake does.
pub async fn run(
    member: Member,
    store: Store,
    mailboxes: Vec<MailboxSettings>,
    pipeline: watch::Receiver<Pipeline>,
    mut shutdown: Shutdown,
) -> Result<(), IntakeError> {
    let round = (member.takeover / 3).max(Duration::from_millis(100));
    let mut held: HashMap<String, Held> = HashMap::new();
    // Where this instance starts looking for free mailboxes: instances starting together
    // try different mailboxes first.
    let offset = member.pid as usize % mailboxes.len().max(1);
    info!(instance = %member.name, mailboxes = mailboxes.len(), takeover_ms = member.takeover.as_millis() as u64, "cluster: sharing mailboxes through PostgreSQL leases");
    let mut failure = None;
    while !shutdown.is_shutdown() {
        if let Err(e) = step(&member, &store, &mailboxes, &pipeline, &mut held, offset).await {
            match e {
                IntakeError::Imap(_) => {
                    failure = Some(e);
                    break;
                }
                e => {
                    warn!(instance = %member.name, error = %e, "cluster: database error; retrying")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(round) => {}
            _ = shutdown.recv() => {}
        }
    }
    for h in held.values() {
        h.stop.trigger();
    }
    for (name, h) in held.drain() {
        if let Ok(Err(e)) = h.task.await {
            warn!(mailbox = %name, error = %e, "intake stopped with an error during shutdown");
        }
        if !h.lost
            && let Err(e) = store.release_lease(&h.lease).await
        {
            warn!(mailbox = %name, error = %e, "cluster: lease not released; it expires by itself");
        }
    }
    if let Err(e) = store.remove_instance(&member.name).await {
        warn!(error = %e, "cluster: instance row not removed; it expires by itself");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One round: heartbeat, renew, reap finished intakes, take or hand over leases.
async fn step(
    member: &Member,
    store: &Store,
    mailboxes: &[MailboxSettings],
    pipeline: &watch::Receiver<Pipeline>,
    held: &mut HashMap<String, Held>,
    offset: usize,
) -> Result<(), IntakeError> {
    let now = Utc::now();
    let takeover = chrono::Duration::from_std(member.takeover).unwrap_or(chrono::Duration::MAX);
    store
        .heartbeat_instance(&member.name, &member.host, member.pid, now)
        .await?;
    // Intakes that ended: handed over (release the lease), lost, or failed for good.
    let ended: Vec<String> = held
        .iter()
        .filter(|(_, h)| h.task.is_finished())
        .map(|(n, _)| n.clone())
        .collect();
    for name in ended {
        let Some(h) = held.remove(&name) else {
            continue;
        };
        let result = h.task.await;
        crate::metrics::metrics().forget_connection(&name);
        if !h.lost {
            store.release_lease(&h.lease).await?;
        }
        match result {
            Ok(Err(e @ IntakeError::Imap(_))) => return Err(e),
            Ok(_) if h.leaving => {
                info!(instance = %member.name, mailbox = %name, "cluster: mailbox handed over")
            }
            Ok(_) => {}
            Err(e) => return Err(IntakeError::Internal(format!("intake task: {e}"))),
        }
    }
    for (name, h) in held.iter_mut().filter(|(_, h)| !h.lost) {
        if !store.renew_lease(&h.lease, now + takeover).await? {
            warn!(instance = %member.name, mailbox = %name, token = h.lease.token, "cluster: lease lost to another instance; stopping this mailbox's intake");
            h.lost = true;
            h.stop.trigger();
        }
    }
    let alive = store.alive_instances(now - takeover).await?;
    let active = held.values().filter(|h| !h.lost && !h.leaving).count();
    match rebalance(active, mailboxes.len(), alive) {
        Rebalance::Hold => {}
        Rebalance::GiveUpOne => {
            // The most recently taken: the one with the least work in hand, likely.
            if let Some((name, h)) = held
                .iter_mut()
                .filter(|(_, h)| !h.lost && !h.leaving)
                .max_by_key(|(_, h)| h.lease.token)
            {
                info!(instance = %member.name, mailbox = %name, alive, "cluster: more than a fair share; handing one mailbox over");
                h.leaving = true;
                h.stop.trigger();
            }
        }
        Rebalance::Take(mut wanted) => {
            let order = (0..mailboxes.len()).map(|i| &mailboxes[(i + offset) % mailboxes.len()]);
            for mailbox in order {
                if wanted == 0 {
                    break;
                }
                if held.contains_key(&mailbox.name) {
                    continue;
                }
                let Some(lease) = store
                    .acquire_lease(&mailbox.name, &member.name, now, now + takeover)
                    .await?
                else {
                    continue;
                };
                info!(instance = %member.name, mailbox = %mailbox.name, token = lease.token, alive, "cluster: took the mailbox's lease");
                let (stop, listen) = shutdown_channel();
                let source = Source {
                    mailbox: mailbox.clone(),
                    lease: Some(lease.clone()),
                };
                let task = tokio::spawn(intake::run(source, pipeline.clone(), listen));
                held.insert(
                    mailbox.name.clone(),
                    Held {
                        lease,
                        stop,
                        task,
                        lost: false,
                        leaving: false,
                    },
                );
                wanted -= 1;
            }
        }
    }
    Ok(())
}

/// The host's name (`gethostname`), else "localhost".
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into a buffer this function owns.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if ok && !h.is_empty() => h.to_string(),
        _ => "localhost".to_string(),
    }
}
