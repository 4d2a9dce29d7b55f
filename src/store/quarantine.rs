//! The quarantine register: mails that could not be turned into a case, and why.
//! The mail itself sits in the IMAP quarantine folder; the raw bytes are also kept
//! here (when under the size cap) so that piped (`ingest`) mail can be replayed too.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, Work, from_ms, to_ms};
use crate::domain::CaseNumber;
use crate::domain::event::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineStatus {
    /// Waiting for a fix and a replay.
    Held,
    /// Replayed successfully into a case.
    Released,
    /// An admin decided it is not worth a case (`casegate quarantine discard`); replays
    /// leave it alone. The mail itself stays in the IMAP quarantine folder.
    Discarded,
}

impl QuarantineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineStatus::Held => "held",
            QuarantineStatus::Released => "released",
            QuarantineStatus::Discarded => "discarded",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub dedup_key: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub reason: String,
    pub size: u64,
    pub received_at: DateTime<Utc>,
    pub quarantined_at: DateTime<Utc>,
    /// `imap` or `stdin`.
    pub source: String,
    pub status: QuarantineStatus,
    pub released_case: Option<CaseNumber>,
    #[serde(skip)]
    pub raw: Option<Vec<u8>>,
}

impl Work {
    /// Register a quarantined mail (again: a second quarantine of the same mail updates
    /// the reason and holds it again) with an audit event.
    pub async fn quarantine(
        &mut self,
        e: &QuarantineEntry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO quarantine (dedup_key, message_id, from_addr, subject, reason, size, received_at, \
             quarantined_at, source, status, raw) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'held', $10) \
             ON CONFLICT (dedup_key) DO UPDATE SET reason = excluded.reason, status = 'held', \
             quarantined_at = excluded.quarantined_at",
        )
        .bind(e.dedup_key.clone())
        .bind(e.message_id.clone())
        .bind(e.from.clone())
        .bind(e.subject.clone())
        .bind(e.reason.clone())
        .bind(e.size as i64)
        .bind(to_ms(e.received_at))
        .bind(to_ms(now))
        .bind(e.source.clone())
        .bind(e.raw.clone())
        .execute(&mut *self.tx)
        .await?;
        let detail = serde_json::json!({
            "reason": e.reason, "message_id": e.message_id, "from": e.from, "size": e.size, "source": e.source,
        });
        super::cases::insert_event(
            &mut self.tx,
            None,
            now,
            "casegate",
            EventKind::Quarantined,
            &detail,
        )
        .await?;
        self.mails += 1;
        Ok(())
    }
}

impl Store {
    /// Held entries first, newest first.
    pub async fn quarantine_list(
        &self,
        with_raw: bool,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        let sql = if with_raw {
            "SELECT id, dedup_key, message_id, from_addr, subject, reason, size, received_at, quarantined_at, \
             source, status, released_case, raw FROM quarantine ORDER BY status, id DESC"
        } else {
            "SELECT id, dedup_key, message_id, from_addr, subject, reason, size, received_at, quarantined_at, \
             source, status, released_case, NULL FROM quarantine ORDER BY status, id DESC"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(entry).collect()
    }

    /// One entry with its raw bytes (when kept).
    pub async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineEntry>, StoreError> {
        let row = sqlx::query(
            "SELECT id, dedup_key, message_id, from_addr, subject, reason, size, received_at, quarantined_at, \
             source, status, released_case, raw FROM quarantine WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entry).transpose()
    }

    /// Mark a held entry discarded (its kept bytes are dropped), with an audit event.
    /// Returns the entry as it was, `None` when there is no such entry; an entry that is
    /// not held is left as it is.
    pub async fn quarantine_discard(
        &self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<QuarantineEntry>, StoreError> {
        let Some(e) = self.quarantine_entry(id).await? else {
            return Ok(None);
        };
        if e.status != QuarantineStatus::Held {
            return Ok(Some(e));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE quarantine SET status = 'discarded', raw = NULL WHERE id = $1 AND status = 'held'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({
            "quarantine_id": id, "dedup_key": e.dedup_key, "message_id": e.message_id,
            "from": e.from, "reason": e.reason,
        });
        super::cases::insert_event(
            &mut tx,
            None,
            now,
            actor,
            EventKind::QuarantineDiscarded,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(e))
    }

    pub async fn quarantine_release(
        &self,
        dedup_key: &str,
        case: CaseNumber,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE quarantine SET status = 'released', released_case = $1, raw = NULL WHERE dedup_key = $2")
            .bind(case.0)
            .bind(dedup_key.to_string())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::json!({ "dedup_key": dedup_key });
        super::cases::insert_event(
            &mut tx,
            Some(case),
            now,
            "casegate",
            EventKind::ReleasedFromQuarantine,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn entry(r: &sqlx::any::AnyRow) -> Result<QuarantineEntry, StoreError> {
    let status: String = r.get(10);
    Ok(QuarantineEntry {
        id: r.get(0),
        dedup_key: r.get(1),
        message_id: r.get(2),
        from: r.get(3),
        subject: r.get(4),
        reason: r.get(5),
        size: r.get::<i64, _>(6) as u64,
        received_at: from_ms(r.get(7)),
        quarantined_at: from_ms(r.get(8)),
        source: r.get(9),
        status: match status.as_str() {
            "held" => QuarantineStatus::Held,
            "released" => QuarantineStatus::Released,
            "discarded" => QuarantineStatus::Discarded,
            _ => {
                return Err(StoreError::Corrupt {
                    column: "quarantine.status",
                    value: status,
                });
            }
        },
        released_case: r.get::<Option<i64>, _>(11).map(CaseNumber),
        raw: r.get(12),
    })
}
