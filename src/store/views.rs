//! Read models for the CLI and reports: the JSON shape of DESIGN section 4.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::cases::parse_status;
use super::{Store, StoreError, from_ms};
use crate::domain::event::EventKind;
use crate::domain::{CaseNumber, Status};

#[derive(Debug, Clone, Serialize)]
pub struct SlaView {
    pub first_response_due: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub next_response_due: Option<DateTime<Utc>>,
    pub breached: bool,
}

/// One line of `cases list`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub number: CaseNumber,
    pub subject: String,
    pub status: Status,
    pub queue: Option<String>,
    pub product: Option<String>,
    pub language: Option<String>,
    pub region: Option<String>,
    pub severity: Option<i64>,
    pub owner: Option<String>,
    pub customer: String,
    /// The customer's display name from their first mail, when it carried one.
    pub customer_name: Option<String>,
    pub account: Option<String>,
    pub entitlement: Option<String>,
    pub related_case: Option<CaseNumber>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub sla: SlaView,
    pub message_count: i64,
    /// How the case was resolved (`#known`, `#bug`, `#resolution`); `None` while open.
    pub resolution: Option<crate::domain::known_issue::Resolution>,
    /// The customer's rating after closing (1–5) and their comment.
    pub feedback: Option<FeedbackView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackView {
    pub rating: i64,
    pub comment: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    /// For `casegate cases attachment ID`.
    pub id: i64,
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// False when the content was over the size cap and only name, type and size were kept.
    pub content_kept: bool,
}

/// Where an attachment's content is: decoded in its own row (stored before migration
/// 0006), or inside its message's raw mail at `span` (bytes).
#[derive(Debug, Clone)]
pub enum AttachmentSource {
    Decoded(Vec<u8>),
    InRaw {
        raw: Vec<u8>,
        span: (usize, usize),
    },
    /// Over the size cap when it arrived: only name, type and size were kept.
    NotKept,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub direction: String,
    pub role: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub text: String,
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: EventKind,
    pub detail: serde_json::Value,
}

/// `cases show`: the summary plus messages and the audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
}

const SUMMARY_COLUMNS: &str = "c.id, c.subject, c.status, c.queue, c.product, c.language, c.region, c.severity, \
    c.owner, c.customer, c.account, c.entitlement, c.related_case, c.created_at, c.updated_at, c.closed_at, \
    c.first_response_due, c.first_response_at, c.next_response_due, c.breached, \
    (SELECT COUNT(*) FROM messages m WHERE m.case_id = c.id), c.customer_name, \
    c.resolution, c.feedback_rating, c.feedback_comment, c.feedback_at";

impl Store {
    /// Cases, newest first; `status` filters when given.
    pub async fn list_cases(
        &self,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<CaseSummary>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM cases c WHERE c.status = $1 ORDER BY c.id DESC LIMIT $2"
                )))
                .bind(s.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {SUMMARY_COLUMNS} FROM cases c ORDER BY c.id DESC LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(summary).collect()
    }

    /// One case's summary (no messages or events).
    pub async fn case_summary(&self, n: CaseNumber) -> Result<Option<CaseSummary>, StoreError> {
        case_summary(&self.pool, n).await
    }

    pub async fn case_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM cases")
            .fetch_one(&self.pool)
            .await?
            .get(0))
    }

    /// Where attachment `id`'s content is; `None` for an unknown id.
    pub async fn attachment_source(&self, id: i64) -> Result<Option<AttachmentSource>, StoreError> {
        let row = sqlx::query(
            "SELECT a.content, a.raw_start, a.raw_end, m.raw, m.raw_file FROM attachments a \
             JOIN messages m ON m.id = a.message_row WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        if let Some(content) = r.get::<Option<Vec<u8>>, _>(0) {
            return Ok(Some(AttachmentSource::Decoded(content)));
        }
        let offset = |i: usize| {
            r.get::<Option<i64>, _>(i)
                .and_then(|v| usize::try_from(v).ok())
        };
        let (Some(start), Some(end)) = (offset(1), offset(2)) else {
            return Ok(Some(AttachmentSource::NotKept));
        };
        // The raw mail (a file read only now) is needed only for a kept attachment.
        let raw = match (
            r.get::<Option<Vec<u8>>, _>(3),
            r.get::<Option<String>, _>(4),
            &self.raw_files,
        ) {
            (Some(raw), ..) => Some(raw),
            (None, Some(name), Some(files)) => Some(files.read(&name).await?),
            _ => None,
        };
        Ok(Some(raw.map_or(AttachmentSource::NotKept, |raw| {
            AttachmentSource::InRaw {
                raw,
                span: (start, end),
            }
        })))
    }

    pub async fn show_case(&self, n: CaseNumber) -> Result<Option<CaseView>, StoreError> {
        let Some(summary) = self.case_summary(n).await? else {
            return Ok(None);
        };
        let messages = self.messages(n).await?;
        let events = sqlx::query(
            "SELECT at, actor, kind, detail FROM events WHERE case_id = $1 ORDER BY id",
        )
        .bind(n.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.get(2);
            Ok(EventView {
                at: from_ms(r.get(0)),
                actor: r.get(1),
                kind: EventKind::parse(&kind).ok_or(StoreError::Corrupt {
                    column: "events.kind",
                    value: kind,
                })?,
                detail: serde_json::from_str(&r.get::<String, _>(3))
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect::<Result<_, StoreError>>()?;
        Ok(Some(CaseView {
            summary,
            messages,
            events,
        }))
    }

    async fn messages(&self, n: CaseNumber) -> Result<Vec<MessageView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, direction, role, from_addr, to_addrs, cc_addrs, subject, message_id, received_at, text \
             FROM messages WHERE case_id = $1 ORDER BY received_at, id",
        )
        .bind(n.0)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let attachments = sqlx::query(
                "SELECT id, filename, content_type, size, content IS NOT NULL OR raw_start IS NOT NULL FROM attachments \
                 WHERE message_row = $1 ORDER BY id",
            )
            .bind(r.get::<i64, _>(0))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| AttachmentView {
                id: a.get(0),
                filename: a.get(1),
                content_type: a.get(2),
                size: a.get::<i64, _>(3) as u64,
                content_kept: flag(a, 4),
            })
            .collect();
            out.push(MessageView {
                direction: r.get(1),
                role: r.get(2),
                from: r.get(3),
                to: split_list(&r.get::<String, _>(4)),
                cc: split_list(&r.get::<String, _>(5)),
                subject: r.get(6),
                message_id: r.get(7),
                received_at: from_ms(r.get(8)),
                text: r.get(9),
                attachments,
            });
        }
        Ok(out)
    }
}

/// One case's summary, read through `exec` (the pool, or a unit of work).
pub(super) async fn case_summary<'e, E>(
    exec: E,
    n: CaseNumber,
) -> Result<Option<CaseSummary>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SUMMARY_COLUMNS} FROM cases c WHERE c.id = $1"
    )))
    .bind(n.0)
    .fetch_optional(exec)
    .await?;
    row.as_ref().map(summary).transpose()
}

fn summary(r: &AnyRow) -> Result<CaseSummary, StoreError> {
    let opt_time = |i: usize| r.get::<Option<i64>, _>(i).map(from_ms);
    Ok(CaseSummary {
        number: CaseNumber(r.get(0)),
        subject: r.get(1),
        status: parse_status(&r.get::<String, _>(2))?,
        queue: r.get(3),
        product: r.get(4),
        language: r.get(5),
        region: r.get(6),
        severity: r.get(7),
        owner: r.get(8),
        customer: r.get(9),
        customer_name: r.get(21),
        account: r.get(10),
        entitlement: r.get(11),
        related_case: r.get::<Option<i64>, _>(12).map(CaseNumber),
        created_at: from_ms(r.get(13)),
        updated_at: from_ms(r.get(14)),
        closed_at: opt_time(15),
        sla: SlaView {
            first_response_due: opt_time(16),
            first_response_at: opt_time(17),
            next_response_due: opt_time(18),
            breached: flag(r, 19),
        },
        message_count: r.get(20),
        resolution: super::cases::parse_column(
            "cases.resolution",
            r.get(22),
            crate::domain::known_issue::Resolution::parse,
        )?,
        feedback: r.get::<Option<i64>, _>(23).map(|rating| FeedbackView {
            rating,
            comment: r.get(24),
            at: opt_time(25),
        }),
    })
}

/// Booleans come back as integers from SQLite and as booleans from PostgreSQL.
fn flag(r: &AnyRow, i: usize) -> bool {
    r.try_get::<bool, _>(i)
        .or_else(|_| r.try_get::<i64, _>(i).map(|v| v != 0))
        .unwrap_or(false)
}

fn split_list(s: &str) -> Vec<String> {
    s.split(", ")
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}
