//! SLA clocks. `next_check_at` is the clock's next moment of interest (its warning,
//! then its due time; NULL once met, stopped or breached), indexed, so the timer finds
//! due clocks without scanning cases.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::batch::Batch;
use super::{Backend, CaseSummary, Store, StoreError, Work, from_ms, to_ms};
use crate::domain::CaseNumber;
use crate::domain::event::EventKind;
use crate::domain::triage::{ClockKind, ClockStart};

/// A running clock whose warning or due time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueClock {
    pub id: i64,
    pub case: CaseNumber,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
    pub warned: bool,
}

/// Start a plan's clocks inside its commit; an existing case then shows their due
/// times (a case opened by the plan was inserted with them).
pub(super) fn push_clocks(
    batch: &mut Batch<'_>,
    case: CaseNumber,
    clocks: &[ClockStart],
    case_is_new: bool,
) {
    let columns = "sla_clocks (case_id, kind, started_at, due_at, warn_at, state, next_check_at)";
    super::cases::push_rows(batch, columns, 7, "", clocks, |c| {
        // A running clock's next moment of interest is its warning.
        let (due, warn) = (to_ms(c.due_at), to_ms(c.warn_at));
        vec![
            case.0.into(),
            c.kind.as_str().into(),
            to_ms(c.started_at).into(),
            due.into(),
            warn.into(),
            "running".into(),
            warn.into(),
        ]
    });
    if case_is_new {
        return;
    }
    for c in clocks {
        let sql = match c.kind {
            ClockKind::FirstResponse => "UPDATE cases SET first_response_due = $1 WHERE id = $2",
            ClockKind::NextResponse => "UPDATE cases SET next_response_due = $1 WHERE id = $2",
        };
        batch.push(sql, vec![to_ms(c.due_at).into(), case.0.into()]);
    }
}

impl Store {
    /// Running clocks whose next check is due at `now`, oldest first.
    pub async fn due_clocks(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueClock>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_id, kind, started_at, due_at, warn_at, warned_at FROM sla_clocks \
             WHERE next_check_at IS NOT NULL AND next_check_at <= $1 ORDER BY next_check_at, id LIMIT $2",
        )
        .bind(to_ms(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DueClock {
                id: r.get(0),
                case: CaseNumber(r.get(1)),
                kind: r.get(2),
                started_at: from_ms(r.get(3)),
                due_at: from_ms(r.get(4)),
                warn_at: from_ms(r.get(5)),
                warned: r.get::<Option<i64>, _>(6).is_some(),
            })
            .collect())
    }

    /// Clocks the SLA timer settles per unit of work. SQLite has one writer: a whole
    /// tick commits at once. On PostgreSQL each clock commits on its own, so that its
    /// row locks never add up with an intake batch's into a deadlock.
    pub fn clocks_per_unit(&self) -> usize {
        match self.backend {
            Backend::Sqlite => 200,
            Backend::Postgres => 1,
        }
    }

    /// When the timer must next wake, if any clock runs.
    pub async fn next_clock_check(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_check_at) FROM sla_clocks WHERE next_check_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<Option<i64>, _>(0).map(from_ms))
    }
}

/// What the timer does to a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockAction {
    Warn,
    Breach,
}

impl Work {
    /// A case's summary, as this unit of work sees it.
    pub async fn case_summary(&mut self, n: CaseNumber) -> Result<Option<CaseSummary>, StoreError> {
        super::views::case_summary(&mut *self.tx, n).await
    }

    /// Claim a due clock for this unit of work: on PostgreSQL its case and clock rows
    /// are locked with `SKIP LOCKED`, so several SLA timers never wait on each other (or
    /// on an intake batch writing to the case); `false` means another holds them, and
    /// the clock is left for a later tick. SQLite has one writer: always `true`.
    pub async fn claim_clock(&mut self, clock: &DueClock) -> Result<bool, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(true);
        }
        let tx = &mut self.tx;
        // The case first, then its clock: the order the intake and `settle_clock` take
        // them in.
        let case: Option<i64> =
            sqlx::query_scalar("SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED")
                .bind(clock.case.0)
                .fetch_optional(&mut **tx)
                .await?;
        if case.is_none() {
            return Ok(false);
        }
        let claimed: Option<i64> =
            sqlx::query_scalar("SELECT id FROM sla_clocks WHERE id = $1 FOR UPDATE SKIP LOCKED")
                .bind(clock.id)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(claimed.is_some())
    }

    /// Record a warning or breach for a clock exactly once, with its mail and event.
    /// Returns false when it was already recorded (by an earlier run or another
    /// instance), or when the clock is no longer due (a mail moved it meanwhile): then
    /// nothing is written.
    pub async fn settle_clock<F>(
        &mut self,
        clock: &DueClock,
        action: ClockAction,
        now: DateTime<Utc>,
        detail: &serde_json::Value,
        render: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(i64) -> Vec<super::Outbound>,
    {
        let tx = &mut self.tx;
        if self.backend == Backend::Postgres {
            // The case first, then its clock: the order the intake takes them in, so the
            // two never deadlock; it also keeps the intake from numbering the case's next
            // mail at the same moment.
            sqlx::query("SELECT id FROM cases WHERE id = $1 FOR NO KEY UPDATE")
                .bind(clock.case.0)
                .fetch_optional(&mut **tx)
                .await?;
        }
        let updated = match action {
            ClockAction::Warn => sqlx::query(
                "UPDATE sla_clocks SET warned_at = $1, next_check_at = due_at \
                 WHERE id = $2 AND state = 'running' AND warned_at IS NULL AND next_check_at <= $1",
            ),
            ClockAction::Breach => sqlx::query(
                "UPDATE sla_clocks SET breached_at = $1, state = 'breached', next_check_at = NULL \
                 WHERE id = $2 AND state = 'running' AND due_at <= $1",
            ),
        }
        .bind(to_ms(now))
        .bind(clock.id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if action == ClockAction::Breach {
            sqlx::query("UPDATE cases SET breached = 1 WHERE id = $1")
                .bind(clock.case.0)
                .execute(&mut **tx)
                .await?;
        }
        let kind = match action {
            ClockAction::Warn => EventKind::SlaWarning,
            ClockAction::Breach => EventKind::SlaBreached,
        };
        super::cases::insert_event(tx, Some(clock.case), now, "casegate", kind, detail).await?;
        let sent = super::cases::sent_count(tx, clock.case).await?;
        for out in render(sent + 1) {
            super::cases::queue_outbound(tx, clock.case, &out, now).await?;
            self.queued_mail = true;
        }
        Ok(true)
    }
}
