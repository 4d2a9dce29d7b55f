//! The sender worker: takes due rows from the outbox and delivers them over SMTP.
//!
//! Delivery is at most once in normal operation: a row is leased (`sending`) before the
//! SMTP transaction and marked `sent` by a statement that commits on its own right after
//! the server's 250 to the end of DATA, one row at a time (never after a batch); that
//! statement travels with the claim of the next row, in one round trip. One window
//! remains: a crash between that 250 and the commit of `mark_sent` leaves the row
//! `sending`, and the mail is sent a second time, with the same
//! Message-ID (at the next start on SQLite, where the database lock proves the row's
//! sender dead; when its lease runs out on PostgreSQL). SMTP itself has the same window
//! (RFC 1047: a lost 250 makes the client resend), so it cannot be closed from here.
//! A database that fails there without a crash resends nothing: the worker keeps the
//! accepted row in memory and records it before anything else in its next round.
//! Its width from here is logged (debug level) with each sent mail (`commit_us`,
//! microseconds from the 250 to the commit); the whole window also holds the 250's trip
//! back from the server (the README has both, measured from the sink's acceptance). The failpoint
//! `outbox_after_accept` aborts exactly there.
//!
//! Temporary failures retry with capped exponential backoff until the row is older than
//! `max_age` (RFC 5321 §4.5.4.1: retry, then give up with a failure notice, here a
//! `delivery_failed` event on the case); permanent ones fail at once. When the server
//! itself is unreachable the worker stops the round and backs off as a whole, instead
//! of failing every queued row in turn.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::alert::FailureAlerts;
use super::smtp::{SmtpClient, SmtpError};
use crate::config::SmtpSettings;
use crate::runtime::Shutdown;
use crate::store::{OutboxRow, Store, StoreError};

/// Retry timing for temporary failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
    /// A mail still undelivered this long after it was queued fails.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    /// 1 minute doubling up to 1 hour, for up to 2 days. Shorter than an MTA's 4-5 day
    /// give-up (RFC 5321 §4.5.4.1): an acknowledgement days late helps nobody, and the
    /// case records the failure for an engineer to follow up.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(60),
            cap: Duration::from_secs(3600),
            max_age: Duration::from_secs(2 * 86_400),
        }
    }
}

/// No retry sooner than this, whatever the policy says: a zero delay would make a
/// failing row spin.
const MIN_DELAY: Duration = Duration::from_millis(50);

impl RetryPolicy {
    /// The wait after the `failures`th consecutive failure (1-based).
    pub fn delay(&self, failures: i64) -> Duration {
        let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let delay = self.initial.saturating_mul(2u32.saturating_pow(exp));
        delay.min(self.cap).max(MIN_DELAY)
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: u64,
    /// Temporary failures, queued again.
    pub retried: u64,
    /// Permanent failures and give-ups (each with a `delivery_failed` event).
    pub failed: u64,
    /// Rows a dead process left `sending` (crash recovery), put back: all of them on
    /// SQLite, where the database lock proves their sender dead; on PostgreSQL those
    /// past their lease.
    pub released: u64,
    /// The round stopped early because the server (or our SMTP setup) failed.
    pub server_unavailable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The SMTP settings cannot work (plaintext to a remote host, bad CA file).
    #[error(transparent)]
    Setup(#[from] SmtpError),
}

/// How long a claimed row stays leased. Covers connect, TLS, AUTH and the transaction
/// (each bounded by `timeout`) with room to spare; after it, another worker may retry.
fn lease_for(smtp: &SmtpSettings) -> Duration {
    smtp.timeout.saturating_mul(8) + Duration::from_secs(30)
}

/// A worker's delivery state: the store, the (reused) SMTP connection and the policy.
struct Delivery {
    store: Store,
    client: SmtpClient,
    policy: RetryPolicy,
    lease: Duration,
    /// Tells the escalation address when an engineer notification fails for good.
    alerts: Option<FailureAlerts>,
    /// Alerts queued in the current round (sent in the next one).
    queued_alerts: u64,
    /// Rows the server accepted whose `mark_sent` failed (database busy or gone), with
    /// the time of their acceptance: recorded before anything else in the next round,
    /// never sent again.
    unrecorded: Vec<(i64, DateTime<Utc>)>,
    /// The first round ran (and released what a dead process left `sending`).
    started: bool,
    /// The row the server accepted last, recorded together with the next claim.
    accepted: Option<Accepted>,
}

/// A mail the server accepted, not yet recorded as sent (its row, without the mail).
struct Accepted {
    id: i64,
    message_id: String,
    kind: crate::domain::outbound::OutboundKind,
    case: Option<crate::domain::CaseNumber>,
    /// When the server accepted it (its 250 to the end of DATA).
    at: DateTime<Utc>,
    instant: std::time::Instant,
}

enum Outcome {
    /// Accepted by the server at this instant (the 250 to the end of DATA).
    Sent(std::time::Instant),
    Retry(SmtpError),
    Failed(SmtpError),
    GaveUp(SmtpError),
}

impl Delivery {
    fn new(store: Store, smtp: &SmtpSettings, policy: RetryPolicy) -> Result<Delivery, SmtpError> {
        let client = SmtpClient::new(smtp.clone())?;
        Ok(Delivery {
            store,
            client,
            policy,
            lease: lease_for(smtp),
            alerts: None,
            queued_alerts: 0,
            unrecorded: Vec::new(),
            started: false,
            accepted: None,
        })
    }

    /// Deliver every row due at the start of the round, one connection for all of
    /// them; stop early on shutdown or when the server is unreachable.
    async fn round(&mut self, shutdown: Option<&Shutdown>) -> Result<DrainReport, StoreError> {
        let start = Utc::now();
        let mut report = DrainReport {
            sent: self.record_unrecorded().await?,
            ..Default::default()
        };
        // Every `sending` row is a dead process's only before this process's first
        // send (the database lock on SQLite): later rounds release expired leases only,
        // and never before the accepted-but-unrecorded rows above are recorded.
        report.released = if self.started {
            self.store.release_expired_leases(start).await?
        } else {
            self.store.release_abandoned(start).await?
        };
        self.started = true;
        while !shutdown.is_some_and(Shutdown::is_shutdown) {
            let elapsed = (Utc::now() - start).to_std().unwrap_or_default();
            let Some(row) = self
                .claim_recording(start, self.lease + elapsed, &mut report)
                .await?
                .into_iter()
                .next()
            else {
                break;
            };
            let (outcome, server_down) = self.deliver(&row).await;
            self.settle(&row, outcome, start, &mut report).await?;
            if server_down {
                report.server_unavailable = true;
                break;
            }
        }
        // The last accepted mail of the round (there was no next claim to record it).
        if let Some(accepted) = self.accepted.take() {
            self.record(accepted, false, &mut report).await?;
        }
        self.client.close().await;
        Ok(report)
    }

    /// The next due row, recording the mail accepted before it in the same round trip.
    async fn claim_recording(
        &mut self,
        start: DateTime<Utc>,
        lease: Duration,
        report: &mut DrainReport,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let Some(accepted) = self.accepted.take() else {
            return self.store.claim_due(start, 1, lease).await;
        };
        let both = if crate::failpoint::fails("outbox_mark_sent") {
            Err(StoreError::Db(sqlx::Error::PoolTimedOut))
        } else {
            self.store
                .claim_due_after(Some((accepted.id, accepted.at)), start, 1, lease)
                .await
        };
        match both {
            Ok(rows) => {
                recorded(&accepted, report);
                Ok(rows)
            }
            // Whether the mail was recorded is unknown: record it (again) on its own.
            Err(e) => {
                tracing::error!(id = accepted.id, error = %e, "cannot record a sent mail; retrying");
                self.record(accepted, true, report).await?;
                self.store.claim_due(start, 1, lease).await
            }
        }
    }

    /// Record an accepted mail as sent ([`mark_sent`]); kept in memory when that fails.
    async fn record(
        &mut self,
        accepted: Accepted,
        tried_once: bool,
        report: &mut DrainReport,
    ) -> Result<(), StoreError> {
        if let Err(e) = mark_sent(&self.store, accepted.id, accepted.at, tried_once).await {
            self.unrecorded.push((accepted.id, accepted.at));
            return Err(e);
        }
        recorded(&accepted, report);
        Ok(())
    }

    /// Record the rows accepted in an earlier round whose `mark_sent` failed; how many.
    async fn record_unrecorded(&mut self) -> Result<u64, StoreError> {
        let mut recorded = 0;
        while let Some(&(id, accepted_at)) = self.unrecorded.first() {
            mark_sent(&self.store, id, accepted_at, false).await?;
            tracing::info!(id, "sent mail recorded late");
            self.unrecorded.remove(0);
            recorded += 1;
        }
        Ok(recorded)
    }

    async fn deliver(&mut self, row: &OutboxRow) -> (Outcome, bool) {
        let started = std::time::Instant::now();
        match self
            .client
            .send(&row.sender, &row.recipients, &row.raw)
            .await
        {
            Ok(()) => {
                let accepted = std::time::Instant::now();
                crate::metrics::metrics()
                    .outbox_send_seconds
                    .observe((accepted - started).as_secs_f64());
                crate::failpoint::hit("outbox_after_accept");
                (Outcome::Sent(accepted), false)
            }
            Err(e) if e.is_permanent() => (Outcome::Failed(e), false),
            Err(e) => {
                let server_down = e.affects_server();
                let age = (Utc::now() - row.queued_at()).to_std().unwrap_or_default();
                let next = self.policy.delay(row.attempts);
                if age + next > self.policy.max_age {
                    (Outcome::GaveUp(e), server_down)
                } else {
                    (Outcome::Retry(e), server_down)
                }
            }
        }
    }

    async fn settle(
        &mut self,
        row: &OutboxRow,
        outcome: Outcome,
        start: DateTime<Utc>,
        report: &mut DrainReport,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        match outcome {
            Outcome::Sent(instant) => {
                // Recorded with the next claim, or at the end of the round.
                self.accepted = Some(Accepted {
                    id: row.id,
                    message_id: row.message_id.clone(),
                    kind: row.kind,
                    case: row.case,
                    at: now,
                    instant,
                });
            }
            Outcome::Retry(e) => {
                let delay = chrono::Duration::from_std(self.policy.delay(row.attempts))
                    .unwrap_or(chrono::Duration::hours(1));
                // Never due again within this round: a round only takes what was due at its start.
                let next = (now + delay).max(start + chrono::Duration::milliseconds(1));
                log_failure(row, &e, "will retry");
                self.store.mark_retry(row.id, next, &e.to_string()).await?;
                report.retried += 1;
            }
            Outcome::Failed(e) => {
                log_failure(row, &e, "permanent failure");
                self.fail(row, e.status(), &e.to_string(), now).await?;
                report.failed += 1;
                crate::metrics::metrics().outbox_failed.inc();
            }
            Outcome::GaveUp(e) => {
                log_failure(row, &e, "giving up");
                let why = format!("gave up after {} attempts: {e}", row.attempts);
                self.fail(row, e.status(), &why, now).await?;
                report.failed += 1;
                crate::metrics::metrics().outbox_failed.inc();
            }
        }
        Ok(())
    }

    /// Mark `row` failed for good, and queue its alert (if it needs one) in the same
    /// transaction.
    async fn fail(
        &mut self,
        row: &OutboxRow,
        status: Option<u16>,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let alert = match &self.alerts {
            Some(alerts) => alerts.alert_for(&self.store, row, why, now).await?,
            None => None,
        };
        let queued = self
            .store
            .mark_failed_alerting(row.id, status, why, now, alert.as_ref())
            .await?;
        if let (Some(_), Some(alert)) = (queued, &alert) {
            let case = row.case.map_or_else(|| "-".to_string(), |c| c.to_string());
            tracing::warn!(case = %case, to = %alert.recipients.join(", "), "an engineer notification failed; the escalation address is told");
            self.queued_alerts += 1;
        }
        Ok(())
    }
}

fn log_failure(row: &OutboxRow, e: &SmtpError, what: &str) {
    let (id, mid, attempts) = (row.id, &row.message_id, row.attempts);
    if e.is_transient() || e.is_permanent() {
        tracing::warn!(id, message_id = %mid, attempts, error = %e, "{what}");
    } else {
        tracing::error!(id, message_id = %mid, attempts, error = %e, "{what}; check the [smtp] settings");
    }
}

/// A sent mail is recorded: the log line and the count.
fn recorded(a: &Accepted, report: &mut DrainReport) {
    // The double-send window of this mail: from the 250 to the commit.
    let commit_us = u64::try_from(a.instant.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(id = a.id, commit_us, "sent mail recorded");
    tracing::info!(id = a.id, message_id = %a.message_id, kind = %a.kind, case = %a.case.map_or_else(|| "-".to_string(), |c| c.to_string()), "mail sent");
    report.sent += 1;
    crate::metrics::metrics().outbox_sent.inc();
}

/// `mark_sent` right after the 250, retried briefly (`tried_once`: its first attempt,
/// with the next claim, failed already): if it cannot be recorded the worker keeps the
/// row in memory and records it first in its next round; only a process that dies
/// meanwhile leaves it `sending` (the documented window).
async fn mark_sent(
    store: &Store,
    id: i64,
    now: DateTime<Utc>,
    tried_once: bool,
) -> Result<(), StoreError> {
    let mut last = None;
    let pauses: &[u64] = if tried_once {
        &[100, 500, 2000]
    } else {
        &[0, 100, 500, 2000]
    };
    for &pause in pauses {
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let recorded = if crate::failpoint::fails("outbox_mark_sent") {
            Err(StoreError::Db(sqlx::Error::PoolTimedOut))
        } else {
            store.mark_sent(id, now).await
        };
        match recorded {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::error!(id, error = %e, "cannot record a sent mail; retrying");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(StoreError::Corrupt {
        column: "outbox.status",
        value: "unrecorded send".into(),
    }))
}

/// `casegate run --once`: deliver everything due now, then return what was done.
pub async fn drain_once(
    store: &Store,
    smtp: &SmtpSettings,
    policy: &RetryPolicy,
) -> Result<DrainReport, OutboxError> {
    drain_once_alerting(store, smtp, policy, None).await
}

/// [`drain_once`], telling the escalation address about engineer notifications that
/// fail for good ([`FailureAlerts`]); those alerts go out in a second round.
pub async fn drain_once_alerting(
    store: &Store,
    smtp: &SmtpSettings,
    policy: &RetryPolicy,
    alerts: Option<FailureAlerts>,
) -> Result<DrainReport, OutboxError> {
    let mut delivery = Delivery::new(store.clone(), smtp, *policy)?;
    delivery.alerts = alerts;
    let mut report = delivery.round(None).await?;
    if delivery.queued_alerts > 0 && !report.server_unavailable {
        let more = delivery.round(None).await?;
        report.sent += more.sent;
        report.retried += more.retried;
        report.failed += more.failed;
        report.released += more.released;
        report.server_unavailable = more.server_unavailable;
    }
    Ok(report)
}

/// Longest sleep without a wake-up: picks up mail queued by another process (`casegate
/// ingest`, another instance on PostgreSQL), which cannot notify this one.
pub const IDLE_POLL: Duration = Duration::from_secs(30);

/// The daemon's sender: a round whenever a row is due, `wake` is notified (use
/// `notify_one`, so a wake-up during a round is not lost) or [`IDLE_POLL`] passed;
/// backs off while the server is unreachable. Returns on shutdown (after the message in
/// hand), or at once when the SMTP settings cannot work.
pub async fn run(
    store: Store,
    smtp: SmtpSettings,
    policy: RetryPolicy,
    shutdown: Shutdown,
    wake: Arc<Notify>,
) -> Result<(), OutboxError> {
    run_alerting(store, smtp, policy, shutdown, wake, None).await
}

/// [`run`] with [`FailureAlerts`] for engineer notifications that fail for good.
pub async fn run_alerting(
    store: Store,
    smtp: SmtpSettings,
    policy: RetryPolicy,
    mut shutdown: Shutdown,
    wake: Arc<Notify>,
    alerts: Option<FailureAlerts>,
) -> Result<(), OutboxError> {
    let mut delivery = Delivery::new(store.clone(), &smtp, policy)?;
    delivery.alerts = alerts;
    let mut failures: i64 = 0;
    while !shutdown.is_shutdown() {
        let wait = match delivery.round(Some(&shutdown)).await {
            Ok(report) if report.server_unavailable => {
                failures += 1;
                policy.delay(failures)
            }
            Ok(_) => {
                failures = 0;
                until_next_due(&store).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "outbox: cannot read the next due time");
                    IDLE_POLL
                })
            }
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, "outbox: database error; backing off");
                policy.delay(failures).min(IDLE_POLL)
            }
        };
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = wake.notified(), if failures == 0 => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    delivery.client.close().await;
    Ok(())
}

async fn until_next_due(store: &Store) -> Result<Duration, StoreError> {
    Ok(match store.next_due().await? {
        Some(due) => (due - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(IDLE_POLL),
        None => IDLE_POLL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            initial: Duration::from_secs(60),
            cap: Duration::from_secs(600),
            max_age: Duration::from_secs(86_400),
        };
        let delays: Vec<u64> = (1..=6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![60, 120, 240, 480, 600, 600]);
        assert_eq!(p.delay(0).as_secs(), 60);
        assert_eq!(p.delay(i64::MAX).as_secs(), 600);
    }

    #[test]
    fn zero_delay_is_raised() {
        let p = RetryPolicy {
            initial: Duration::ZERO,
            cap: Duration::ZERO,
            max_age: Duration::ZERO,
        };
        assert_eq!(p.delay(1), MIN_DELAY);
    }
}
