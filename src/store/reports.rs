//! Read models for the team's own measures: SLA attainment and per-engineer and
//! per-queue work. Aggregation that SQL does well is done in SQL; percentiles in Rust.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, to_ms};
use crate::domain::CaseNumber;

/// Attainment for one (queue, tier, severity).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Attainment {
    pub queue: String,
    pub tier: String,
    pub severity: i64,
    pub met: i64,
    pub missed: i64,
}

/// A clock at risk or breached at the report time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClockState {
    pub case: CaseNumber,
    pub clock: String,
    pub queue: String,
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlaReport {
    pub at: DateTime<Utc>,
    pub attainment: Vec<Attainment>,
    pub at_risk: Vec<ClockState>,
    pub breached: Vec<ClockState>,
    /// Time to first response, minutes: median and 90th percentile over met clocks.
    pub first_response_median_minutes: Option<f64>,
    pub first_response_p90_minutes: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EngineerStats {
    pub engineer: String,
    pub cases_owned: i64,
    pub replies: i64,
    pub average_rating: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueStats {
    pub queue: String,
    /// Cases not closed or refused.
    pub backlog: i64,
    /// Average number of customer messages before the first engineer reply.
    pub round_trips_to_first_reply: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TeamReport {
    pub engineers: Vec<EngineerStats>,
    pub queues: Vec<QueueStats>,
    pub average_rating: Option<f64>,
}

/// Running clocks that need attention now (for the `casegate_sla_clocks` gauge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClocksAtRisk {
    /// Past the warning time, not yet due.
    pub at_risk: i64,
    /// Past the due time and still running (or escalated and still unanswered).
    pub overdue: i64,
}

impl Store {
    /// How many running clocks are at risk or overdue at `at`.
    pub async fn clocks_at_risk(&self, at: DateTime<Utc>) -> Result<ClocksAtRisk, StoreError> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN state = 'running' AND warn_at <= $1 AND due_at > $1 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN state = 'breached' OR (state = 'running' AND due_at <= $1) THEN 1 ELSE 0 END), 0) \
             FROM sla_clocks",
        )
        .bind(to_ms(at))
        .fetch_one(&self.pool)
        .await?;
        Ok(ClocksAtRisk {
            at_risk: r.get(0),
            overdue: r.get(1),
        })
    }

    /// SLA attainment and the state of the clocks at `at`.
    pub async fn sla_report(&self, at: DateTime<Utc>) -> Result<SlaReport, StoreError> {
        let at_ms = to_ms(at);
        let rows = sqlx::query(
            "SELECT COALESCE(c.queue, ''), COALESCE(c.tier, ''), COALESCE(c.severity, 0), \
             SUM(CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN 1 ELSE 0 END), \
             SUM(CASE WHEN k.state = 'breached' OR (k.state = 'met' AND k.met_at > k.due_at) \
                      OR (k.state = 'running' AND k.due_at <= $1) THEN 1 ELSE 0 END) \
             FROM sla_clocks k JOIN cases c ON c.id = k.case_id WHERE k.started_at <= $1 \
             GROUP BY COALESCE(c.queue, ''), COALESCE(c.tier, ''), COALESCE(c.severity, 0) ORDER BY 1, 2, 3",
        )
        .bind(at_ms)
        .fetch_all(&self.pool)
        .await?;
        let attainment = rows
            .iter()
            .map(|r| Attainment {
                queue: r.get(0),
                tier: r.get(1),
                severity: r.get(2),
                met: r.get(3),
                missed: r.get(4),
            })
            .collect();
        let states = sqlx::query(
            "SELECT k.case_id, k.kind, COALESCE(c.queue, ''), k.due_at, k.warn_at FROM sla_clocks k JOIN cases c ON c.id = k.case_id \
             WHERE k.started_at <= $1 AND k.warn_at <= $1 \
             AND (k.state IN ('running', 'breached') OR (k.state = 'met' AND k.met_at > $1)) ORDER BY k.due_at",
        )
        .bind(at_ms)
        .fetch_all(&self.pool)
        .await?;
        let (mut at_risk, mut breached) = (Vec::new(), Vec::new());
        for r in &states {
            let due: i64 = r.get(3);
            let state = ClockState {
                case: CaseNumber(r.get(0)),
                clock: r.get(1),
                queue: r.get(2),
                due: from_ms(due),
            };
            if due <= at_ms {
                breached.push(state)
            } else {
                at_risk.push(state)
            }
        }
        let mut minutes: Vec<f64> = sqlx::query(
            "SELECT met_at - started_at FROM sla_clocks WHERE kind = 'first_response' AND state = 'met' AND met_at <= $1",
        )
        .bind(at_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0) as f64 / 60_000.0)
        .collect();
        minutes.sort_by(f64::total_cmp);
        Ok(SlaReport {
            at,
            attainment,
            at_risk,
            breached,
            first_response_median_minutes: percentile(&minutes, 0.5),
            first_response_p90_minutes: percentile(&minutes, 0.9),
        })
    }

    /// Per engineer: cases owned, replies, average rating; per queue: backlog and round trips.
    pub async fn team_report(&self) -> Result<TeamReport, StoreError> {
        self.team_report_for(&[]).await
    }

    /// As [`Store::team_report`], with a row for each of `engineers` (the configured
    /// staff addresses) even before their first case or reply.
    pub async fn team_report_for(&self, engineers: &[String]) -> Result<TeamReport, StoreError> {
        let mut engineers: BTreeMap<String, EngineerStats> = engineers
            .iter()
            .map(|e| {
                let e = e.to_lowercase();
                let stats = EngineerStats {
                    engineer: e.clone(),
                    cases_owned: 0,
                    replies: 0,
                    average_rating: None,
                };
                (e, stats)
            })
            .collect();
        let owned = sqlx::query(
            "SELECT owner, COUNT(*), CAST(AVG(feedback_rating) AS DOUBLE PRECISION) FROM cases WHERE owner IS NOT NULL GROUP BY owner",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &owned {
            let e: String = r.get(0);
            let stats = engineers.entry(e.clone()).or_insert(EngineerStats {
                engineer: e,
                cases_owned: 0,
                replies: 0,
                average_rating: None,
            });
            stats.cases_owned = r.get(1);
            stats.average_rating = r.get(2);
        }
        let replies = sqlx::query("SELECT from_addr, COUNT(*) FROM messages WHERE role = 'engineer' AND direction = 'in' GROUP BY from_addr")
            .fetch_all(&self.pool)
            .await?;
        for r in &replies {
            let e: String = r.get(0);
            engineers
                .entry(e.clone())
                .or_insert(EngineerStats {
                    engineer: e,
                    cases_owned: 0,
                    replies: 0,
                    average_rating: None,
                })
                .replies = r.get(1);
        }
        let queues = sqlx::query(
            "SELECT COALESCE(c.queue, ''), \
             SUM(CASE WHEN c.status IN ('new', 'open', 'waiting') THEN 1 ELSE 0 END), \
             CAST(AVG(CASE WHEN c.first_response_at IS NULL THEN NULL ELSE \
                 (SELECT COUNT(*) FROM messages m WHERE m.case_id = c.id AND m.role = 'customer' \
                  AND m.direction = 'in' AND m.received_at <= c.first_response_at) END) AS DOUBLE PRECISION) \
             FROM cases c WHERE c.status <> 'refused' GROUP BY COALESCE(c.queue, '') ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| QueueStats { queue: r.get(0), backlog: r.get(1), round_trips_to_first_reply: r.get(2) })
        .collect();
        let average_rating: Option<f64> =
            sqlx::query("SELECT CAST(AVG(feedback_rating) AS DOUBLE PRECISION) FROM cases WHERE feedback_rating IS NOT NULL").fetch_one(&self.pool).await?.get(0);
        Ok(TeamReport {
            engineers: engineers.into_values().collect(),
            queues,
            average_rating,
        })
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank_percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(super::percentile(&v, 0.5), Some(5.0));
        assert_eq!(super::percentile(&v, 0.9), Some(9.0));
        assert_eq!(super::percentile(&[], 0.5), None);
    }
}
