//! The transactional outbox: outbound mail is written in the same transaction as the
//! case change that causes it ([`insert_outbox`]), then delivered by the sender worker.
//!
//! Row life cycle (`status`):
//! `pending` --claim--> `sending` --250--> `sent`
//!                         |--4xx/outage--> `pending` (later `next_attempt_at`)
//!                         |--5xx / too old--> `failed` (+ a `delivery_failed` event)
//! While a row is `sending`, `next_attempt_at` holds its lease expiry: a worker that
//! dies mid-send leaves the row `sending`. [`Store::release_abandoned`] puts it back to
//! `pending` (crash recovery): at once on SQLite, where the database lock proves that
//! its worker is dead, once the lease has run out on PostgreSQL. On PostgreSQL several
//! instances claim concurrently with `FOR UPDATE SKIP LOCKED`, so a row is only ever
//! claimed by one of them; SQLite serialises writers, so the plain UPDATE is enough.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::batch::{Batch, Value};
use super::cases::{insert_event, inserted_id, returning_id};
use super::{Backend, Store, StoreError, from_ms, to_ms};
use crate::domain::CaseNumber;
use crate::domain::event::EventKind;
use crate::domain::outbound::{OutboundKind, SentCounting};

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl std::str::FromStr for OutboxStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutboxStatus::parse(s)
            .map_err(|_| format!("expected pending, sending, sent or failed, found {s:?}"))
    }
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> Result<OutboxStatus, StoreError> {
        Ok(match s {
            "pending" => OutboxStatus::Pending,
            "sending" => OutboxStatus::Sending,
            "sent" => OutboxStatus::Sent,
            "failed" => OutboxStatus::Failed,
            _ => {
                return Err(StoreError::Corrupt {
                    column: "outbox.status",
                    value: s.to_string(),
                });
            }
        })
    }
}

/// A mail to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    pub case: Option<CaseNumber>,
    /// A template for automatic mail; forwards and engineer replies are mail a person
    /// wrote, which rate limiting does not count.
    pub kind: OutboundKind,
    /// The mail's Message-ID without brackets; unique: queuing it again does nothing.
    pub message_id: String,
    /// Envelope sender (MAIL FROM); "" for the null sender.
    pub sender: String,
    /// Envelope recipients (RCPT TO).
    pub recipients: Vec<String>,
    /// The composed mail ([`crate::mail::compose::compose`]).
    pub raw: Vec<u8>,
}

/// A queued mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub case: Option<CaseNumber>,
    pub kind: OutboundKind,
    pub message_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: OutboxStatus,
    /// Delivery attempts started (counted when claimed).
    pub attempts: i64,
    /// When it is due; while `sending`, when the lease expires.
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// When an admin last queued it again (`casegate outbox retry`).
    pub retried_at: Option<DateTime<Utc>>,
}

impl OutboxRow {
    /// Where its give-up age counts from: the last admin retry, else its creation.
    pub fn queued_at(&self) -> DateTime<Utc> {
        self.retried_at.unwrap_or(self.created_at)
    }
}

pub(super) const COLUMNS: &str = "id, case_id, kind, message_id, sender, recipients, raw, status, attempts, \
                       next_attempt_at, created_at, sent_at, last_error, retried_at";

/// Queue a mail inside the caller's transaction (the case commit), so that the mail
/// exists exactly when the case change does. `Ok(None)`: this Message-ID is queued
/// already (the same mail decided twice), nothing written.
pub(crate) async fn insert_outbox(
    tx: &mut Transaction<'_, Any>,
    row: &NewOutbox,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let mut batch = Batch::new();
    batch.push(
        returning_id(tx, INSERT_OUTBOX),
        outbox_values(
            row.case,
            row.kind,
            &row.message_id,
            &row.sender,
            &row.recipients,
            &row.raw,
            now,
        ),
    );
    Ok(inserted_id(&batch.run(tx).await?))
}

pub(super) const INSERT_OUTBOX: &str = "INSERT INTO outbox (case_id, kind, message_id, sender, recipients, raw, status, \
     attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) \
     ON CONFLICT (message_id) DO NOTHING";

/// The values of [`INSERT_OUTBOX`].
pub(super) fn outbox_values<'a>(
    case: Option<CaseNumber>,
    kind: OutboundKind,
    message_id: &str,
    sender: &str,
    recipients: &[String],
    raw: &'a [u8],
    now: DateTime<Utc>,
) -> Vec<Value<'a>> {
    vec![
        case.map(|n| n.0).into(),
        kind.as_str().into(),
        message_id.into(),
        sender.into(),
        recipients_json(recipients).into(),
        Some(raw).into(),
        to_ms(now).into(),
    ]
}

/// Recipients are stored as a JSON array: addresses may (rarely) hold commas.
fn recipients_json(recipients: &[String]) -> String {
    serde_json::to_string(recipients).unwrap_or_else(|_| "[]".into())
}

pub(super) fn row(r: &AnyRow) -> Result<OutboxRow, StoreError> {
    let recipients: String = r.get(5);
    let status: String = r.get(7);
    let kind: String = r.get(2);
    Ok(OutboxRow {
        id: r.get(0),
        case: r.get::<Option<i64>, _>(1).map(CaseNumber),
        kind: OutboundKind::parse(&kind).ok_or(StoreError::Corrupt {
            column: "outbox.kind",
            value: kind.clone(),
        })?,
        message_id: r.get(3),
        sender: r.get(4),
        recipients: serde_json::from_str(&recipients).map_err(|_| StoreError::Corrupt {
            column: "outbox.recipients",
            value: recipients.clone(),
        })?,
        // NULL in listings, which leave the mail itself out.
        raw: r.get::<Option<Vec<u8>>, _>(6).unwrap_or_default(),
        status: OutboxStatus::parse(&status)?,
        attempts: r.get(8),
        next_attempt_at: from_ms(r.get(9)),
        created_at: from_ms(r.get(10)),
        sent_at: r.get::<Option<i64>, _>(11).map(from_ms),
        last_error: r.get(12),
        retried_at: r.get::<Option<i64>, _>(13).map(from_ms),
    })
}

const MARK_SENT: &str =
    "UPDATE outbox SET status = 'sent', sent_at = $2, last_error = NULL WHERE id = $1";

/// One statement: pick due rows and lease them. PostgreSQL skips rows another instance
/// is claiming at this moment instead of waiting for them. The limit is written into
/// the SQL, not bound: SQLite re-prepares a statement whose LIMIT is bound each time it
/// is bound anew (it checks whether the value is a constant), a tenth of the outbox's
/// CPU; each limit is then one cached statement.
fn claim_sql(backend: Backend, limit: u32) -> String {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = $2 \
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT {limit}{lock}) RETURNING {COLUMNS}"
    )
}

/// The rate limits' two counts as two columns of a select list, for mail to the
/// recipient bound at `$2` (see [`recipient_key`]): the kinds and times to count come
/// from `counting` and are bound from placeholder `$first` on ([`bind_sent_counts`]).
pub(super) fn sent_counts_sql(counting: &SentCounting, first: usize) -> String {
    let automatic = placeholders(first + 1, counting.automatic.len());
    let refusals_at = first + 1 + counting.automatic.len();
    let refusals = placeholders(refusals_at + 1, counting.refusals.len());
    format!(
        "(SELECT COUNT(*) FROM outbox WHERE LOWER(recipients) = LOWER($2) AND created_at >= ${first} \
         AND kind IN ({automatic})), \
         (SELECT COUNT(*) FROM outbox WHERE LOWER(recipients) = LOWER($2) AND created_at >= ${refusals_at} \
         AND kind IN ({refusals}))"
    )
}

/// `$from, $from+1, ...`: `n` placeholders (`NULL` for none, which matches nothing).
fn placeholders(from: usize, n: usize) -> String {
    if n == 0 {
        return "NULL".into();
    }
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds what [`sent_counts_sql`] refers to, in its order.
pub(super) fn bind_sent_counts<'q>(
    mut q: sqlx::query::Query<'q, Any, <Any as sqlx::Database>::Arguments>,
    counting: &SentCounting,
) -> sqlx::query::Query<'q, Any, <Any as sqlx::Database>::Arguments> {
    q = q.bind(to_ms(counting.automatic_since));
    for k in &counting.automatic {
        q = q.bind(k.as_str());
    }
    q = q.bind(to_ms(counting.refusals_since));
    for k in &counting.refusals {
        q = q.bind(k.as_str());
    }
    q
}

/// How the outbox stores a single recipient (what [`sent_counts_sql`] compares with).
pub(super) fn recipient_key(recipient: &str) -> String {
    recipients_json(&[recipient.trim().to_string()])
}

/// What casegate sent one address lately, for the rate limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentCounts {
    /// Automatic mails to the address alone (RFC 3834 §2: a responder must not flood
    /// one address).
    pub auto_replies: i64,
    /// Refusals to the address.
    pub refusals: i64,
}

impl Store {
    /// Queue a mail in a transaction of its own (mail not caused by a case commit).
    pub async fn enqueue_outbox(
        &self,
        row: &NewOutbox,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_outbox(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Lease up to `limit` rows due at `now` for `lease`: they become `sending` and no
    /// other worker claims them until [`Store::release_expired_leases`] after the lease.
    /// On a SQLite file only after [`Store::lock_sole_user`] ([`StoreError::Unlocked`]).
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim_due_after(None, now, limit, lease).await
    }

    /// [`Store::mark_sent`] of `sent` (id, when), then [`Store::claim_due`]: the sender's
    /// next row comes with the record of its last one, one round trip on SQLite instead
    /// of two (each statement still commits on its own). An error leaves it unknown
    /// whether `sent` was recorded: record it again ([`Store::mark_sent`] is idempotent).
    pub async fn claim_due_after(
        &self,
        sent: Option<(i64, DateTime<Utc>)>,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.check_may_claim()?;
        let lease_until =
            now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let mut batch = Batch::new();
        if let Some((id, at)) = sent {
            batch.push(MARK_SENT, vec![id.into(), to_ms(at).into()]);
        }
        batch.push(
            claim_sql(self.backend, limit),
            vec![to_ms(now).into(), to_ms(lease_until).into()],
        );
        let mut conn = self.pool.acquire().await?;
        let rows = batch.run_on(&mut conn).await?;
        let mut rows: Vec<OutboxRow> = rows.iter().map(row).collect::<Result<_, _>>()?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// The server accepted the mail (250 after DATA). Unconditional: even if the lease
    /// ran out meanwhile, the mail went out and must not be sent again.
    pub async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(MARK_SENT)
            .bind(id)
            .bind(to_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A temporary failure: try again at `next_at`.
    pub async fn mark_retry(
        &self,
        id: i64,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, last_error = $3 \
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .bind(to_ms(next_at))
        .bind(error.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A permanent failure (5xx, or temporary ones for longer than the retry age): the
    /// row stops, and its case gets a `delivery_failed` event with the SMTP status.
    pub async fn mark_failed(
        &self,
        id: i64,
        smtp_status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.mark_failed_alerting(id, smtp_status, error, now, None)
            .await
            .map(|_| ())
    }

    /// [`Store::mark_failed`], and in the same transaction queue `alert` (the mail that
    /// tells someone of the failure): a crash leaves both or neither. Returns the
    /// alert's row id when it was queued (not when the row was already sent, nor when
    /// an alert with its Message-ID is queued already).
    pub async fn mark_failed_alerting(
        &self,
        id: i64,
        smtp_status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
        alert: Option<&NewOutbox>,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut queued = None;
        let found = sqlx::query(AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'failed', last_error = $2 WHERE id = $1 AND status <> 'sent' \
             RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(error.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = found.as_ref().map(row).transpose()? {
            let detail = json!({
                "message_id": r.message_id, "kind": r.kind, "recipients": r.recipients,
                "smtp_status": smtp_status, "error": error, "attempts": r.attempts, "source": "smtp",
            });
            insert_event(
                &mut tx,
                r.case,
                now,
                "casegate",
                EventKind::DeliveryFailed,
                &detail,
            )
            .await?;
            if let Some(alert) = alert {
                queued = insert_outbox(&mut tx, alert, now).await?;
            }
        }
        tx.commit().await?;
        Ok(queued)
    }
}

/// A bounce (DSN) came back for the mail with this Message-ID: inside the bounce's own
/// commit, the row becomes `failed` and its case gets a `delivery_failed` event
/// (`detail` is merged in: the DSN's status and diagnostic). Returns the case, or
/// `None` when the id is not one of ours.
pub(super) async fn record_bounce(
    tx: &mut Transaction<'_, Any>,
    message_id: &str,
    detail: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<CaseNumber>, StoreError> {
    {
        let found = sqlx::query(AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'failed', last_error = $2 WHERE message_id = $1 RETURNING {COLUMNS}"
        )))
        .bind(message_id.to_string())
        .bind(format!("bounced: {detail}"))
        .fetch_optional(&mut **tx)
        .await?;
        let Some(r) = found.as_ref().map(row).transpose()? else {
            return Ok(None);
        };
        let mut event = json!({
            "message_id": r.message_id, "kind": r.kind, "recipients": r.recipients, "source": "bounce",
        });
        if let (Some(e), Some(d)) = (event.as_object_mut(), detail.as_object()) {
            e.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        insert_event(
            tx,
            r.case,
            now,
            "casegate",
            EventKind::DeliveryFailed,
            &event,
        )
        .await?;
        Ok(r.case)
    }
}

impl Store {
    /// Crash recovery, at start-up and at the sender's first round (a process has one
    /// sender, which has sent nothing yet). With the database to ourselves
    /// (SQLite, [`Store::lock_sole_user`]) every `sending` row was left by a process that
    /// died mid-send, and goes back to `pending` at once. Shared (PostgreSQL), a
    /// `sending` row may be another live instance's delivery in progress: only expired
    /// leases are released. Returns how many rows were put back.
    pub async fn release_abandoned(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        if !self.is_sole_user() {
            return self.release_expired_leases(now).await;
        }
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1 WHERE status = 'sending'",
        )
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Crash recovery: rows left `sending` past their lease go back to `pending`, due at
    /// once. Returns how many.
    pub async fn release_expired_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1 \
             WHERE status = 'sending' AND next_attempt_at <= $1",
        )
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the worker must look again: the earliest due row or lease expiry.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?
        .get(0);
        Ok(ms.map(from_ms))
    }

    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM outbox WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    pub async fn outbox_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<OutboxRow>, StoreError> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM outbox WHERE message_id = $1"
        )))
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    /// A case's outbound mail (every row with `None`), oldest first.
    pub async fn outbox_rows(
        &self,
        case: Option<CaseNumber>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = match case {
            Some(n) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox WHERE case_id = $1 ORDER BY id"
                )))
                .bind(n.0)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM outbox ORDER BY id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_sql_differs_only_in_the_lock() {
        let (sqlite, postgres) = (
            claim_sql(Backend::Sqlite, 7),
            claim_sql(Backend::Postgres, 7),
        );
        assert!(postgres.contains("LIMIT 7 FOR UPDATE SKIP LOCKED)"));
        assert_eq!(
            sqlite.replace("LIMIT 7)", "LIMIT 7 FOR UPDATE SKIP LOCKED)"),
            postgres
        );
    }

    #[test]
    fn sent_counts_number_their_placeholders_after_the_callers() {
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let counting = SentCounting::since(t, t);
        let n = counting.automatic.len();
        let sql = sent_counts_sql(&counting, 5);
        assert!(sql.contains("created_at >= $5 AND kind IN ($6, "), "{sql}");
        let refusals = format!(
            "created_at >= ${} AND kind IN (${}, ${}, ${}))",
            6 + n,
            7 + n,
            8 + n,
            9 + n
        );
        assert!(sql.contains(&refusals), "{sql}");
        assert!(!sql.contains('\''), "kinds are bound, not spliced: {sql}");
    }
}
