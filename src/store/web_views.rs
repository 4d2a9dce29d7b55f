//! Read models of the status pages (`src/web/`): what a support lead reads at a glance.
//! Counting is done in SQL; anything that needs the SLA calendar (business time left)
//! is left to the caller, which has the configuration.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, to_ms};
use crate::domain::CaseNumber;

/// Open cases of one queue, by status and by severity.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueLoad {
    pub queue: String,
    /// status -> cases (only `new`, `open`, `waiting`).
    pub by_status: BTreeMap<String, i64>,
    /// severity (0 when unset) -> cases.
    pub by_severity: BTreeMap<i64, i64>,
    pub open: i64,
}

/// Mails that opened a case in a period, per (language, queue).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Intake {
    pub language: String,
    pub queue: String,
    pub cases: i64,
}

/// A running (or breached) clock of an open case: the overview's at-risk list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpenClock {
    pub case: CaseNumber,
    pub subject: String,
    pub queue: String,
    pub region: String,
    /// The customer's country, whose time zone and work week the clock runs on.
    pub country: Option<String>,
    pub tier: String,
    pub severity: i64,
    pub clock: String,
    pub due: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
}

/// One SLA clock of a case, for the case page's timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClockLine {
    pub kind: String,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
}

/// The team page's measures for one engineer over a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EngineerMeasures {
    pub engineer: String,
    /// Distinct cases the engineer replied on.
    pub cases_commented: i64,
    /// Replies (engineer mails) on cases.
    pub comments: i64,
    /// Cases owned that were open at some time in the period (created before its end,
    /// not closed before its start).
    pub owned: i64,
    /// Average customer rating of owned cases rated in the period.
    pub average_feedback: Option<f64>,
    /// Clocks of owned cases that came due (or were met) in the period.
    pub clocks_met: i64,
    pub clocks_missed: i64,
    /// `#kb URL` links the engineer made.
    pub kb_articles: i64,
}

/// The team page's measures for one queue over a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueMeasures {
    pub queue: String,
    pub cases_commented: i64,
    pub comments: i64,
    pub opened: i64,
    pub average_feedback: Option<f64>,
    pub clocks_met: i64,
    pub clocks_missed: i64,
    pub kb_articles: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TeamMeasures {
    pub engineers: Vec<EngineerMeasures>,
    pub queues: Vec<QueueMeasures>,
}

/// Met and missed clocks that came due in one week (starting Monday 00:00 UTC).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeekAttainment {
    pub week_start: DateTime<Utc>,
    pub met: i64,
    pub missed: i64,
}

/// Open cases (not closed, not refused) at the end of one day (UTC).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayBacklog {
    pub day_end: DateTime<Utc>,
    pub open: i64,
}

const OPEN: &str = "('new', 'open', 'waiting')";

impl Store {
    /// Open cases per queue, by status and severity.
    pub async fn queue_loads(&self) -> Result<Vec<QueueLoad>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COALESCE(queue, ''), status, COALESCE(severity, 0), COUNT(*) FROM cases \
             WHERE status IN {OPEN} GROUP BY COALESCE(queue, ''), status, COALESCE(severity, 0)"
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut loads: BTreeMap<String, QueueLoad> = BTreeMap::new();
        for r in &rows {
            let queue: String = r.get(0);
            let n: i64 = r.get(3);
            let load = loads.entry(queue.clone()).or_insert_with(|| QueueLoad {
                queue,
                ..QueueLoad::default()
            });
            *load.by_status.entry(r.get(1)).or_default() += n;
            *load.by_severity.entry(r.get(2)).or_default() += n;
            load.open += n;
        }
        Ok(loads.into_values().collect())
    }

    /// Cases opened in `[from, to)`, per language and queue.
    pub async fn intake(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Intake>, StoreError> {
        let rows = sqlx::query(
            "SELECT COALESCE(language, ''), COALESCE(queue, ''), COUNT(*) FROM cases \
             WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY COALESCE(language, ''), COALESCE(queue, '') ORDER BY 1, 2",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Intake {
                language: r.get(0),
                queue: r.get(1),
                cases: r.get(2),
            })
            .collect())
    }

    /// Running or breached clocks of open cases, soonest due first; `queue` filters.
    pub async fn open_clocks(&self, queue: Option<&str>) -> Result<Vec<OpenClock>, StoreError> {
        let sql = format!(
            "SELECT c.id, c.subject, COALESCE(c.queue, ''), COALESCE(c.region, ''), COALESCE(c.tier, ''), COALESCE(c.severity, 0), \
             k.kind, k.due_at, k.warn_at, c.country FROM sla_clocks k JOIN cases c ON c.id = k.case_id \
             WHERE k.state IN ('running', 'breached') AND c.status IN {OPEN} \
             AND ($1 = '' OR COALESCE(c.queue, '') = $1) ORDER BY k.due_at, c.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(queue.unwrap_or("").to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| OpenClock {
                case: CaseNumber(r.get(0)),
                subject: r.get(1),
                queue: r.get(2),
                region: r.get(3),
                tier: r.get(4),
                severity: r.get(5),
                clock: r.get(6),
                due: from_ms(r.get(7)),
                warn_at: from_ms(r.get(8)),
                country: r.get(9),
            })
            .collect())
    }

    /// Every clock of case `n`, in the order they started.
    pub async fn case_clocks(&self, n: CaseNumber) -> Result<Vec<ClockLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, state, started_at, warn_at, due_at, met_at FROM sla_clocks \
             WHERE case_id = $1 ORDER BY started_at, id",
        )
        .bind(n.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ClockLine {
                kind: r.get(0),
                state: r.get(1),
                started_at: from_ms(r.get(2)),
                warn_at: from_ms(r.get(3)),
                due_at: from_ms(r.get(4)),
                met_at: r.get::<Option<i64>, _>(5).map(from_ms),
            })
            .collect())
    }

    /// Open cases of `queue` ("" for cases without one), most severe and oldest first.
    pub async fn queue_cases(&self, queue: &str) -> Result<Vec<super::CaseSummary>, StoreError> {
        let ids: Vec<i64> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM cases WHERE status IN {OPEN} AND COALESCE(queue, '') = $1 \
             ORDER BY COALESCE(severity, 9), id"
        )))
        .bind(queue.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.case_summary(CaseNumber(id)).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The team page: per engineer and per queue, over `[from, to)`. Every name in
    /// `engineers` (the configured staff) has a row, also without activity.
    pub async fn team_measures(
        &self,
        engineers: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<TeamMeasures, StoreError> {
        let (a, b) = (to_ms(from), to_ms(to));
        let mut people: BTreeMap<String, EngineerMeasures> = engineers
            .iter()
            .map(|e| {
                let e = e.to_lowercase();
                (
                    e.clone(),
                    EngineerMeasures {
                        engineer: e,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut queues: BTreeMap<String, QueueMeasures> = BTreeMap::new();
        let replies = sqlx::query(
            "SELECT LOWER(m.from_addr), COALESCE(c.queue, ''), COUNT(DISTINCT m.case_id), COUNT(*) \
             FROM messages m JOIN cases c ON c.id = m.case_id \
             WHERE m.role = 'engineer' AND m.direction = 'in' AND m.received_at >= $1 AND m.received_at < $2 \
             GROUP BY LOWER(m.from_addr), COALESCE(c.queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &replies {
            let e = engineer(&mut people, r.get(0));
            e.cases_commented += r.get::<i64, _>(2);
            e.comments += r.get::<i64, _>(3);
        }
        let per_queue = sqlx::query(
            "SELECT COALESCE(c.queue, ''), COUNT(DISTINCT m.case_id), COUNT(*) \
             FROM messages m JOIN cases c ON c.id = m.case_id \
             WHERE m.role = 'engineer' AND m.direction = 'in' AND m.received_at >= $1 AND m.received_at < $2 \
             GROUP BY COALESCE(c.queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &per_queue {
            let q = queue_row(&mut queues, r.get(0));
            q.cases_commented = r.get(1);
            q.comments = r.get(2);
        }
        let owned = sqlx::query(
            "SELECT LOWER(owner), COUNT(*) FROM cases WHERE owner IS NOT NULL AND created_at < $2 \
             AND (closed_at IS NULL OR closed_at >= $1) GROUP BY LOWER(owner)",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &owned {
            engineer(&mut people, r.get(0)).owned = r.get(1);
        }
        let feedback = sqlx::query(
            "SELECT LOWER(COALESCE(owner, '')), COALESCE(queue, ''), SUM(feedback_rating), COUNT(*) FROM cases \
             WHERE feedback_rating IS NOT NULL AND feedback_at >= $1 AND feedback_at < $2 \
             GROUP BY LOWER(COALESCE(owner, '')), COALESCE(queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        let mut by_owner: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut by_queue: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for r in &feedback {
            let (owner, queue, sum, n): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let o = by_owner.entry(owner).or_default();
            (o.0, o.1) = (o.0 + sum, o.1 + n);
            let q = by_queue.entry(queue).or_default();
            (q.0, q.1) = (q.0 + sum, q.1 + n);
        }
        for (owner, (sum, n)) in by_owner {
            if !owner.is_empty() && n > 0 {
                engineer(&mut people, owner).average_feedback = Some(sum as f64 / n as f64);
            }
        }
        for (queue, (sum, n)) in by_queue {
            if n > 0 {
                queue_row(&mut queues, queue).average_feedback = Some(sum as f64 / n as f64);
            }
        }
        // A clock counts in the period it came due in, or was met in when met early.
        let clocks = sqlx::query(
            "SELECT LOWER(COALESCE(c.owner, '')), COALESCE(c.queue, ''), \
             SUM(CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN 1 ELSE 0 END), \
             SUM(CASE WHEN k.state = 'breached' OR (k.state = 'met' AND k.met_at > k.due_at) \
                      OR (k.state = 'running' AND k.due_at <= $2) THEN 1 ELSE 0 END) \
             FROM sla_clocks k JOIN cases c ON c.id = k.case_id \
             WHERE (CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN k.met_at ELSE k.due_at END) >= $1 \
             AND (CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN k.met_at ELSE k.due_at END) < $2 \
             GROUP BY LOWER(COALESCE(c.owner, '')), COALESCE(c.queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &clocks {
            let (owner, queue, met, missed): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if !owner.is_empty() {
                let e = engineer(&mut people, owner);
                e.clocks_met += met;
                e.clocks_missed += missed;
            }
            let q = queue_row(&mut queues, queue);
            q.clocks_met += met;
            q.clocks_missed += missed;
        }
        let opened = sqlx::query(
            "SELECT COALESCE(queue, ''), COUNT(*) FROM cases WHERE created_at >= $1 AND created_at < $2 \
             AND status <> 'refused' GROUP BY COALESCE(queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &opened {
            queue_row(&mut queues, r.get(0)).opened = r.get(1);
        }
        // `#kb URL` links, from the audit trail (the link table does not say who).
        let kb = sqlx::query(
            "SELECT LOWER(e.actor), COALESCE(c.queue, ''), e.detail FROM events e JOIN cases c ON c.id = e.case_id \
             WHERE e.kind = 'linked_reference' AND e.at >= $1 AND e.at < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &kb {
            let detail: String = r.get(2);
            let is_kb = serde_json::from_str::<serde_json::Value>(&detail)
                .ok()
                .is_some_and(|d| d["kind"] == "kb");
            if is_kb {
                engineer(&mut people, r.get(0)).kb_articles += 1;
                queue_row(&mut queues, r.get(1)).kb_articles += 1;
            }
        }
        Ok(TeamMeasures {
            engineers: people.into_values().collect(),
            queues: queues.into_values().collect(),
        })
    }

    /// Met and missed clocks per week for the `weeks` weeks up to `now` (oldest first);
    /// a week's clocks are those that came due in it (or were met in it, when met early).
    pub async fn weekly_attainment(
        &self,
        now: DateTime<Utc>,
        weeks: u32,
    ) -> Result<Vec<WeekAttainment>, StoreError> {
        let monday = week_start(now);
        let mut out = Vec::new();
        for i in (0..weeks).rev() {
            let start = monday - Duration::weeks(i64::from(i));
            let end = (start + Duration::weeks(1)).min(now);
            let row = sqlx::query(
                "SELECT \
                 COALESCE(SUM(CASE WHEN state = 'met' AND met_at <= due_at THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN state = 'met' AND met_at <= due_at THEN 0 ELSE 1 END), 0) \
                 FROM sla_clocks WHERE \
                 (CASE WHEN state = 'met' AND met_at <= due_at THEN met_at ELSE due_at END) >= $1 \
                 AND (CASE WHEN state = 'met' AND met_at <= due_at THEN met_at ELSE due_at END) < $2",
            )
            .bind(to_ms(start))
            .bind(to_ms(end))
            .fetch_one(&self.pool)
            .await?;
            out.push(WeekAttainment {
                week_start: start,
                met: row.get(0),
                missed: row.get(1),
            });
        }
        Ok(out)
    }

    /// Open cases at the end of each of the `days` days up to `now` (oldest first; the
    /// last point is `now` itself). A case is open from its creation until it closed.
    pub async fn daily_backlog(
        &self,
        now: DateTime<Utc>,
        days: u32,
    ) -> Result<Vec<DayBacklog>, StoreError> {
        let today = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let mut out = Vec::new();
        for i in (0..days).rev() {
            let end = (today + Duration::days(1) - Duration::days(i64::from(i))).min(now);
            let open: i64 = sqlx::query(
                "SELECT COUNT(*) FROM cases WHERE status <> 'refused' AND created_at < $1 \
                 AND (closed_at IS NULL OR closed_at >= $1)",
            )
            .bind(to_ms(end))
            .fetch_one(&self.pool)
            .await?
            .get(0);
            out.push(DayBacklog { day_end: end, open });
        }
        Ok(out)
    }
}

/// Monday 00:00 UTC of the week holding `t`.
fn week_start(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Datelike;
    let day = t.date_naive() - Duration::days(i64::from(t.weekday().num_days_from_monday()));
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn engineer(people: &mut BTreeMap<String, EngineerMeasures>, e: String) -> &mut EngineerMeasures {
    let key = e.to_lowercase();
    people
        .entry(key.clone())
        .or_insert_with(|| EngineerMeasures {
            engineer: key,
            ..Default::default()
        })
}

fn queue_row(queues: &mut BTreeMap<String, QueueMeasures>, q: String) -> &mut QueueMeasures {
    queues.entry(q.clone()).or_insert_with(|| QueueMeasures {
        queue: q,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn weeks_start_on_monday_midnight_utc() {
        // 2026-12-03 is a Thursday.
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 15, 4, 5).unwrap();
        let m = super::week_start(t);
        assert_eq!(m.to_rfc3339(), "2026-11-30T00:00:00+00:00");
    }
}
