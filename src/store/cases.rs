//! Committing plans and gathering the facts the decision step needs.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, from_ms, to_ms};
use crate::domain::decide::{EventOn, Plan, Target};
use crate::domain::thread::{CaseFacts, ThreadFacts};
use crate::domain::{CaseNumber, Status};

/// A message row to store with a plan.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub direction: &'static str,
    pub dedup_key: String,
    pub message_id: Option<String>,
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub received_at: DateTime<Utc>,
    pub text: String,
    pub html_only: bool,
    pub size: u64,
    /// The mail as received, kept for audit and replay.
    pub raw: Option<Vec<u8>>,
    pub attachments: Vec<NewAttachment>,
}

#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub content: Option<Vec<u8>>,
}

/// The result of committing one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Stored; `opened` when it opened the case.
    Stored { case: CaseNumber, opened: bool },
    /// This mail (same dedup key) was stored before: nothing was written.
    Duplicate { case: CaseNumber },
}

impl Store {
    /// The case holding a message with this dedup key, if it was stored before.
    pub async fn find_duplicate(&self, dedup_key: &str) -> Result<Option<CaseNumber>, StoreError> {
        let row = sqlx::query("SELECT case_id FROM messages WHERE dedup_key = $1")
            .bind(dedup_key.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| CaseNumber(r.get::<i64, _>(0))))
    }

    /// Candidate cases for threading: the most recent referenced message we know
    /// (In-Reply-To first, then References from newest to oldest) and the tagged case.
    pub async fn thread_facts(
        &self,
        references: &[String],
        tag: Option<CaseNumber>,
        sender: &str,
    ) -> Result<ThreadFacts, StoreError> {
        let mut facts = ThreadFacts::default();
        for mid in references.iter().take(50) {
            let row = sqlx::query("SELECT case_id FROM messages WHERE message_id = $1 ORDER BY id DESC LIMIT 1")
                .bind(mid.clone())
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                facts.by_reference = self.case_facts(CaseNumber(r.get(0)), sender).await?;
                break;
            }
        }
        if let Some(n) = tag {
            facts.by_tag = self.case_facts(n, sender).await?;
        }
        Ok(facts)
    }

    async fn case_facts(&self, n: CaseNumber, sender: &str) -> Result<Option<CaseFacts>, StoreError> {
        let row = sqlx::query(
            "SELECT status, closed_at, customer, \
             (SELECT COUNT(*) FROM case_participants p WHERE p.case_id = c.id AND p.email = $2) \
             FROM cases c WHERE id = $1",
        )
        .bind(n.0)
        .bind(sender.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let customer: String = r.get(2);
        Ok(Some(CaseFacts {
            number: n,
            status: parse_status(&r.get::<String, _>(0))?,
            closed_at: r.get::<Option<i64>, _>(1).map(from_ms),
            customer_domain: customer.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default(),
            sender_participates: r.get::<i64, _>(3) > 0,
        }))
    }

    /// Write a plan and its message in one transaction. A concurrent or earlier copy of
    /// the same mail (same dedup key) rolls the whole transaction back: never two cases.
    pub async fn commit(&self, plan: &Plan, msg: &NewMessage, now: DateTime<Utc>) -> Result<Committed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (case, opened) = match &plan.target {
            Target::New(c) => {
                let id: i64 = sqlx::query(
                    "INSERT INTO cases (subject, status, customer, customer_name, related_case, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                )
                .bind(c.subject.clone())
                .bind(c.status.as_str())
                .bind(c.customer.clone())
                .bind(c.customer_name.clone())
                .bind(c.related.map(|n| n.0))
                .bind(to_ms(now))
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                (CaseNumber(id), true)
            }
            Target::Existing { number, status } => {
                touch_case(&mut tx, *number, *status, now).await?;
                (*number, false)
            }
        };
        let Some(row_id) = insert_message(&mut tx, case, msg, plan.role.as_str()).await? else {
            tx.rollback().await?;
            let existing = self.find_duplicate(&msg.dedup_key).await?.unwrap_or(case);
            return Ok(Committed::Duplicate { case: existing });
        };
        insert_attachments(&mut tx, row_id, &msg.attachments).await?;
        for p in &plan.participants {
            sqlx::query("INSERT INTO case_participants (case_id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(case.0)
                .bind(p.clone())
                .execute(&mut *tx)
                .await?;
        }
        for e in &plan.events {
            let on = match e.on {
                EventOn::Target => case,
                EventOn::Case(n) => n,
            };
            insert_event(&mut tx, Some(on), now, &e.actor, e.kind, &e.detail).await?;
        }
        tx.commit().await?;
        Ok(Committed::Stored { case, opened })
    }

    /// An audit event outside any plan (quarantine, security notices).
    pub async fn record_event(
        &self,
        case: Option<CaseNumber>,
        now: DateTime<Utc>,
        actor: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, case, now, actor, kind, detail).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn touch_case(
    tx: &mut Transaction<'_, Any>,
    n: CaseNumber,
    status: Option<Status>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match status {
        Some(s) => {
            sqlx::query("UPDATE cases SET status = $1, updated_at = $2, closed_at = NULL WHERE id = $3")
                .bind(s.as_str())
                .bind(to_ms(now))
                .bind(n.0)
                .execute(&mut **tx)
                .await?;
        }
        None => {
            sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
                .bind(to_ms(now))
                .bind(n.0)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Returns the new row id, or `None` when the dedup key exists already.
async fn insert_message(
    tx: &mut Transaction<'_, Any>,
    case: CaseNumber,
    m: &NewMessage,
    role: &str,
) -> Result<Option<i64>, StoreError> {
    let row: Option<AnyRow> = sqlx::query(
        "INSERT INTO messages (case_id, direction, role, dedup_key, message_id, from_addr, from_name, \
         to_addrs, cc_addrs, subject, received_at, text, html_only, size, raw) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
    )
    .bind(case.0)
    .bind(m.direction)
    .bind(role.to_string())
    .bind(m.dedup_key.clone())
    .bind(m.message_id.clone())
    .bind(m.from.clone())
    .bind(m.from_name.clone())
    .bind(m.to.join(", "))
    .bind(m.cc.join(", "))
    .bind(m.subject.clone())
    .bind(to_ms(m.received_at))
    .bind(m.text.clone())
    .bind(i64::from(m.html_only))
    .bind(m.size as i64)
    .bind(m.raw.clone())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn insert_attachments(
    tx: &mut Transaction<'_, Any>,
    message_row: i64,
    attachments: &[NewAttachment],
) -> Result<(), StoreError> {
    for a in attachments {
        sqlx::query(
            "INSERT INTO attachments (message_row, filename, content_type, size, content) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(message_row)
        .bind(a.filename.clone())
        .bind(a.content_type.clone())
        .bind(a.size as i64)
        .bind(a.content.clone())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    case: Option<CaseNumber>,
    now: DateTime<Utc>,
    actor: &str,
    kind: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (case_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(case.map(|n| n.0))
        .bind(to_ms(now))
        .bind(actor.to_string())
        .bind(kind.to_string())
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt { column: "cases.status", value: s.to_string() })
}
