//! What admins see of the outbox and may do to it (`casegate outbox list|retry`).

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{AssertSqlSafe, Row};

use super::cases::insert_event;
use super::outbox::{COLUMNS, row};
use super::{OutboxRow, OutboxStatus, Store, StoreError, to_ms};
use crate::domain::event::EventKind;

/// The listing's columns: every column but the mail itself.
fn list_columns() -> String {
    COLUMNS.replace(" raw,", " NULL,")
}

/// What `retry` did to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    /// Due again at once (it was `failed`, or `pending` and waiting for its next try).
    Queued,
    NotFound,
    /// Sent already: sending it again would double it.
    AlreadySent,
    /// A worker is sending it right now (or claimed it while the retry ran).
    InFlight,
}

/// Rows per status (the admin listener's `/metrics` and `/readyz`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
}

impl Store {
    /// How many rows are in each status.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = OutboxCounts::default();
        for r in &rows {
            let n: i64 = r.get(1);
            match OutboxStatus::parse(&r.get::<String, _>(0))? {
                OutboxStatus::Pending => counts.pending = n,
                OutboxStatus::Sending => counts.sending = n,
                OutboxStatus::Sent => counts.sent = n,
                OutboxStatus::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    /// Outbox rows without their mail, oldest first; `status` filters.
    pub async fn outbox_list(
        &self,
        status: Option<OutboxStatus>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {} FROM outbox WHERE status = $1 ORDER BY id",
                    list_columns()
                )))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {} FROM outbox ORDER BY id",
                    list_columns()
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(row).collect()
    }

    /// Make row `id` due now (an admin's retry after fixing the cause), with a
    /// `delivery_retried` event on its case: attempts start again from 0 and the give-up
    /// age from now (`retried_at`). Sent and in-flight rows (also one claimed while this
    /// runs) are left alone.
    pub async fn retry_outbox(&self, id: i64, now: DateTime<Utc>) -> Result<Retried, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("SELECT status, case_id, message_id FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(r) = found else {
            return Ok(Retried::NotFound);
        };
        let (case, message_id): (Option<i64>, String) = (r.get(1), r.get(2));
        let status = OutboxStatus::parse(&r.get::<String, _>(0))?;
        match status {
            OutboxStatus::Sent => return Ok(Retried::AlreadySent),
            OutboxStatus::Sending => return Ok(Retried::InFlight),
            OutboxStatus::Pending | OutboxStatus::Failed => {}
        }
        // A fresh start: attempts and the give-up age count from now.
        let queued = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $2, retried_at = $2, \
             attempts = 0 WHERE id = $1 AND status IN ('pending', 'failed')",
        )
        .bind(id)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        if queued.rows_affected() == 0 {
            // A worker claimed it since the read above (pending -> sending).
            return Ok(Retried::InFlight);
        }
        let detail = json!({ "outbox_id": id, "message_id": message_id, "was": status.as_str() });
        let case = case.map(crate::domain::CaseNumber);
        insert_event(
            &mut tx,
            case,
            now,
            "admin",
            EventKind::DeliveryRetried,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Retried::Queued)
    }

    /// Every `failed` row due again now; returns their ids.
    pub async fn retry_failed_outbox(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query("SELECT id FROM outbox WHERE status = 'failed' ORDER BY id")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
        let mut queued = Vec::new();
        for id in ids {
            if self.retry_outbox(id, now).await? == Retried::Queued {
                queued.push(id);
            }
        }
        Ok(queued)
    }
}
