//! Read models for the team's own measures: SLA attainment and per-engineer and
//! per-queue work. Aggregation that SQL does well is done in SQL; percentiles in Rust.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, to_ms};
use crate::domain::CaseNumber;
use crate::domain::kb::ArticleStatus;

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
}

// --- issue 18a: the team's measures over a period (`casegate report`) ---

/// One engineer's or queue's (or the whole team's) measures over a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Measures {
    /// Distinct cases with at least one reply to the customer or internal note in the
    /// period (owned or not).
    pub cases_commented: i64,
    /// Replies to the customer and internal notes in the period.
    pub comments: i64,
    /// Cases owned that were live at some time in the period (created before its end,
    /// not closed before its start).
    pub cases_owned: i64,
    /// Knowledge-base articles published in the period (by their author; for a queue,
    /// from its cases).
    pub articles_written: i64,
    /// Ratings given in the period (of owned cases, for an engineer) and their average.
    pub ratings: i64,
    pub average_rating: Option<f64>,
    /// SLA clocks that came due (or were met early) in the period.
    pub sla_met: i64,
    pub sla_missed: i64,
    /// Share of those clocks met, percent; `None` without clocks.
    pub sla_attainment_percent: Option<f64>,
    /// Median customer messages up to the first engineer reply, over cases first
    /// answered in the period (the team aims for three).
    pub median_round_trips: Option<f64>,
    /// Cases whose resolution path was recorded in the period, by path (`upgrade`,
    /// `workaround`, `new_bug`, `advice`, `no_fault_found`).
    pub resolutions: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EngineerPeriod {
    pub engineer: String,
    #[serde(flatten)]
    pub measures: Measures,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueuePeriod {
    pub queue: String,
    #[serde(flatten)]
    pub measures: Measures,
}

/// `casegate report`: the measures per engineer, per queue and for the team.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PeriodReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub engineers: Vec<EngineerPeriod>,
    pub queues: Vec<QueuePeriod>,
    pub team: Measures,
}

/// Values per engineer, per queue and for the team.
type PerScope<T> = (BTreeMap<String, T>, BTreeMap<String, T>, T);

/// Who a row of measures belongs to.
#[derive(Default)]
struct Tally {
    engineers: BTreeMap<String, Measures>,
    queues: BTreeMap<String, Measures>,
    team: Measures,
    /// Round trips per case, collected for the medians.
    trips: PerScope<Vec<f64>>,
}

impl Store {
    /// The team's measures over `[from, to)`, with a row for each of `engineers` (the
    /// configured staff addresses) even without activity.
    pub async fn period_report(
        &self,
        engineers: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PeriodReport, StoreError> {
        let (a, b) = (to_ms(from), to_ms(to));
        let mut t = Tally::default();
        for e in engineers {
            t.engineers.entry(e.to_lowercase()).or_default();
        }
        // Comments: the audit trail's replies and internal notes (a mail holding only
        // commands is not a comment).
        let comments = sqlx::query(
            "SELECT LOWER(e.actor), COALESCE(c.queue, ''), e.case_id FROM events e JOIN cases c ON c.id = e.case_id \
             WHERE e.kind IN ('engineer_reply', 'internal_note') AND e.at >= $1 AND e.at < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        let mut commented: PerScope<std::collections::BTreeSet<i64>> = Default::default();
        for r in &comments {
            let (actor, queue, case): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            t.engineers.entry(actor.clone()).or_default().comments += 1;
            t.queues.entry(queue.clone()).or_default().comments += 1;
            t.team.comments += 1;
            commented.0.entry(actor).or_default().insert(case);
            commented.1.entry(queue).or_default().insert(case);
            commented.2.insert(case);
        }
        for (e, cases) in commented.0 {
            t.engineers.entry(e).or_default().cases_commented = cases.len() as i64;
        }
        for (q, cases) in commented.1 {
            t.queues.entry(q).or_default().cases_commented = cases.len() as i64;
        }
        t.team.cases_commented = commented.2.len() as i64;
        let owned = sqlx::query(
            "SELECT LOWER(owner), COALESCE(queue, ''), COUNT(*) FROM cases WHERE owner IS NOT NULL AND created_at < $2 \
             AND (closed_at IS NULL OR closed_at >= $1) GROUP BY LOWER(owner), COALESCE(queue, '')",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &owned {
            let (owner, queue, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            t.engineers.entry(owner).or_default().cases_owned += n;
            t.queues.entry(queue).or_default().cases_owned += n;
            t.team.cases_owned += n;
        }
        let ratings = sqlx::query(
            "SELECT LOWER(COALESCE(owner, '')), COALESCE(queue, ''), feedback_rating FROM cases \
             WHERE feedback_rating IS NOT NULL AND feedback_at >= $1 AND feedback_at < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        let mut sums: PerScope<i64> = Default::default();
        for r in &ratings {
            let (owner, queue, rating): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            if !owner.is_empty() {
                t.engineers.entry(owner.clone()).or_default().ratings += 1;
                *sums.0.entry(owner).or_default() += rating;
            }
            t.queues.entry(queue.clone()).or_default().ratings += 1;
            *sums.1.entry(queue).or_default() += rating;
            t.team.ratings += 1;
            sums.2 += rating;
        }
        let average = |sum: i64, n: i64| (n > 0).then(|| sum as f64 / n as f64);
        for (e, sum) in sums.0 {
            let m = t.engineers.entry(e).or_default();
            m.average_rating = average(sum, m.ratings);
        }
        for (q, sum) in sums.1 {
            let m = t.queues.entry(q).or_default();
            m.average_rating = average(sum, m.ratings);
        }
        t.team.average_rating = average(sums.2, t.team.ratings);
        let articles = sqlx::query(
            "SELECT LOWER(k.author), COALESCE(c.queue, ''), COUNT(*) FROM kb_articles k JOIN cases c ON c.id = k.case_id \
             WHERE k.status = $1 AND k.published_at >= $2 AND k.published_at < $3 GROUP BY LOWER(k.author), COALESCE(c.queue, '')",
        )
        .bind(ArticleStatus::Published.as_str())
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &articles {
            let (author, queue, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            t.engineers.entry(author).or_default().articles_written += n;
            t.queues.entry(queue).or_default().articles_written += n;
            t.team.articles_written += n;
        }
        // A clock counts in the period it came due in, or was met in when met early.
        let clocks = sqlx::query(
            "SELECT LOWER(COALESCE(c.owner, '')), COALESCE(c.queue, ''), \
             CAST(CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN 1 ELSE 0 END AS BIGINT), \
             CAST(CASE WHEN k.state = 'breached' OR (k.state = 'met' AND k.met_at > k.due_at) \
                  OR (k.state = 'running' AND k.due_at <= $2) THEN 1 ELSE 0 END AS BIGINT) \
             FROM sla_clocks k JOIN cases c ON c.id = k.case_id \
             WHERE (CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN k.met_at ELSE k.due_at END) >= $1 \
             AND (CASE WHEN k.state = 'met' AND k.met_at <= k.due_at THEN k.met_at ELSE k.due_at END) < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &clocks {
            let (owner, queue, met, missed): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let add = |m: &mut Measures| {
                m.sla_met += met;
                m.sla_missed += missed;
            };
            if !owner.is_empty() {
                add(t.engineers.entry(owner).or_default());
            }
            add(t.queues.entry(queue).or_default());
            add(&mut t.team);
        }
        // Round trips in the order casegate filed the mails (the audit trail's ids): the
        // customer's mails (the first and each update) before the first engineer reply.
        // Receipt times carry only the server's second, too coarse for a quick exchange.
        let trips = sqlx::query(
            "SELECT LOWER(COALESCE(c.owner, '')), COALESCE(c.queue, ''), \
             (SELECT COUNT(*) FROM events x WHERE x.case_id = c.id \
              AND x.kind IN ('case_opened', 'customer_update') \
              AND x.id < (SELECT MIN(y.id) FROM events y WHERE y.case_id = c.id AND y.kind = 'engineer_reply')) \
             FROM cases c WHERE c.first_response_at >= $1 AND c.first_response_at < $2",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        for r in &trips {
            let (owner, queue, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
            if !owner.is_empty() {
                t.trips.0.entry(owner).or_default().push(n as f64);
            }
            t.trips.1.entry(queue).or_default().push(n as f64);
            t.trips.2.push(n as f64);
        }
        // The resolution a case has now, once per case, for the engineer who last set
        // it in the period.
        let resolved = sqlx::query(
            "SELECT e.case_id, LOWER(e.actor), COALESCE(c.queue, ''), c.resolution FROM events e \
             JOIN cases c ON c.id = e.case_id WHERE e.kind = 'resolution_set' AND c.resolution IS NOT NULL \
             AND e.at >= $1 AND e.at < $2 ORDER BY e.id",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        let mut last: BTreeMap<i64, (String, String, String)> = BTreeMap::new();
        for r in &resolved {
            last.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
        }
        for (actor, queue, resolution) in last.into_values() {
            for m in [
                t.engineers.entry(actor).or_default(),
                t.queues.entry(queue).or_default(),
                &mut t.team,
            ] {
                *m.resolutions.entry(resolution.clone()).or_default() += 1;
            }
        }
        Ok(t.finish(from, to))
    }
}

impl Tally {
    fn finish(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> PeriodReport {
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            median(v)
        };
        let settle = |m: &mut Measures| {
            let total = m.sla_met + m.sla_missed;
            m.sla_attainment_percent = (total > 0).then(|| 100.0 * m.sla_met as f64 / total as f64);
        };
        for (e, mut v) in std::mem::take(&mut self.trips.0) {
            self.engineers.entry(e).or_default().median_round_trips = median(&mut v);
        }
        for (q, mut v) in std::mem::take(&mut self.trips.1) {
            self.queues.entry(q).or_default().median_round_trips = median(&mut v);
        }
        self.team.median_round_trips = median(&mut self.trips.2);
        settle(&mut self.team);
        PeriodReport {
            from,
            to,
            engineers: self
                .engineers
                .into_iter()
                .map(|(engineer, mut measures)| {
                    settle(&mut measures);
                    EngineerPeriod { engineer, measures }
                })
                .collect(),
            queues: self
                .queues
                .into_iter()
                .map(|(queue, mut measures)| {
                    settle(&mut measures);
                    QueuePeriod { queue, measures }
                })
                .collect(),
            team: self.team,
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
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

    #[test]
    fn medians() {
        assert_eq!(super::median(&[]), None);
        assert_eq!(super::median(&[1.0, 3.0, 7.0]), Some(3.0));
        assert_eq!(super::median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
    }
}
