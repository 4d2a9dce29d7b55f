use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use clap::Args;

use super::sla::{At, parse_at};
use crate::domain::known_issue::Resolution;
use crate::store::{Measures, PeriodReport, Store};

/// The team's measures for a period (the last 30 days unless --from/--to say
/// otherwise): per engineer and per queue, cases commented (a reply or an internal
/// note), comments, cases owned, articles published, ratings and their average, SLA
/// attainment, the median round trips until the first engineer reply, and the
/// resolution paths.
#[derive(Debug, Args)]
pub struct Report {
    /// Start of the period: an RFC 3339 time or a date (midnight UTC). Default: 30 days
    /// before --to.
    #[arg(long, value_parser = parse_at)]
    from: Option<At>,
    /// End of the period (not included): an RFC 3339 time, or a date, whose whole day
    /// is included. Default: now.
    #[arg(long, value_parser = parse_at)]
    to: Option<At>,
    /// Print JSON instead of text.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one row per engineer, per queue and for the team) instead of text.
    #[arg(long)]
    csv: bool,
    /// Also write the monthly trend (average rating per month, the 12 months up to
    /// the end of the period) as an SVG chart to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

impl Report {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let store = super::open_store_only(path).await?;
        // Every configured engineer has a row, also before their first case. A config
        // being edited (invalid) still gives the report of those with activity.
        let engineers: Vec<String> = match crate::config::load(path) {
            Ok(c) => c
                .staff
                .engineers
                .iter()
                .map(|e| e.address.clone())
                .collect(),
            Err(problems) => {
                eprintln!(
                    "casegate: the configuration has problems (see check-config), so engineers without activity are not listed:\n{problems}"
                );
                Vec::new()
            }
        };
        let to = match self.to {
            Some(At {
                time,
                from_date: true,
            }) => time + Duration::days(1),
            Some(at) => at.time,
            None => Utc::now(),
        };
        let from = self.from.map_or(to - Duration::days(30), |a| a.time);
        if from >= to {
            eprintln!(
                "casegate: --from ({}) must be before --to ({})",
                from.to_rfc3339(),
                to.to_rfc3339()
            );
            return Ok(2);
        }
        let report = store.period_report(&engineers, from, to).await?;
        if let Some(file) = &self.svg {
            let series = monthly_ratings(&store, &engineers, to).await?;
            std::fs::write(file, crate::charts::line_chart(&series, 640, 300)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if self.csv {
            print!("{}", csv(&report));
        } else {
            print_text(&report);
        }
        Ok(0)
    }
}

/// The average rating in each of the 12 calendar months (UTC) up to `to`.
async fn monthly_ratings(
    store: &Store,
    engineers: &[String],
    to: DateTime<Utc>,
) -> anyhow::Result<crate::charts::Series> {
    let month_start = |y: i32, m: u32| {
        NaiveDate::from_ymd_opt(y, m, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
    };
    let (mut y, mut m) = (to.year(), to.month());
    let mut months = Vec::new();
    for _ in 0..12 {
        months.push((y, m));
        (y, m) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    }
    months.reverse();
    let mut points = Vec::new();
    for (y, m) in months {
        let start = month_start(y, m);
        let end = if m == 12 {
            month_start(y + 1, 1)
        } else {
            month_start(y, m + 1)
        };
        let r = store.period_report(engineers, start, end.min(to)).await?;
        points.push((format!("{y}-{m:02}"), r.team.average_rating));
    }
    Ok(crate::charts::Series {
        title: "Average customer rating per month".into(),
        y_label: "rating (1-5)".into(),
        points,
        y_max: Some(5.0),
    })
}

fn rating(m: &Measures) -> String {
    m.average_rating
        .map(|v| format!("{v:.2} ({})", m.ratings))
        .unwrap_or_else(|| "-".into())
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into())
}

fn trips(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// `upgrade 2, workaround 1`, in the order of [`Resolution::ALL`].
fn resolutions(m: &Measures) -> String {
    let parts: Vec<String> = Resolution::ALL
        .iter()
        .filter_map(|r| m.resolutions.get(r.as_str()).map(|n| format!("{r} {n}")))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn print_text(report: &PeriodReport) {
    let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    println!(
        "Team report from {} to {} (not included)",
        time(&report.from),
        time(&report.to)
    );
    let header = |first: &str| {
        println!(
            "\n{first:<32}  {:>9}  {:>8}  {:>5}  {:>8}  {:>11}  {:>6}  {:>11}  RESOLUTIONS",
            "COMMENTED", "COMMENTS", "OWNED", "ARTICLES", "RATING (N)", "SLA", "ROUND TRIPS"
        )
    };
    let row = |name: &str, m: &Measures| {
        println!(
            "{name:<32}  {:>9}  {:>8}  {:>5}  {:>8}  {:>11}  {:>6}  {:>11}  {}",
            m.cases_commented,
            m.comments,
            m.cases_owned,
            m.articles_written,
            rating(m),
            percent(m.sla_attainment_percent),
            trips(m.median_round_trips),
            resolutions(m)
        )
    };
    header("ENGINEER");
    for e in &report.engineers {
        row(&e.engineer, &e.measures);
    }
    header("QUEUE");
    for q in &report.queues {
        row(
            if q.queue.is_empty() {
                "(none)"
            } else {
                &q.queue
            },
            &q.measures,
        );
    }
    header("TEAM");
    row("all", &report.team);
    println!(
        "\nRound trips: median customer mails up to the first engineer reply (the aim: 3 or fewer)."
    );
}

/// RFC 4180 CSV: a header, then one row per engineer, per queue and for the team.
fn csv(report: &PeriodReport) -> String {
    let mut out = String::from(
        "scope,name,cases_commented,comments,cases_owned,articles_written,ratings,average_rating,sla_met,sla_missed,sla_attainment_percent,median_round_trips",
    );
    for r in Resolution::ALL {
        out.push(',');
        out.push_str(r.as_str());
    }
    out.push_str("\r\n");
    let num = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let mut row = |scope: &str, name: &str, m: &Measures| {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        out.push_str(&format!(
            "{scope},{quoted},{},{},{},{},{},{},{},{},{},{}",
            m.cases_commented,
            m.comments,
            m.cases_owned,
            m.articles_written,
            m.ratings,
            num(m.average_rating),
            m.sla_met,
            m.sla_missed,
            num(m.sla_attainment_percent),
            num(m.median_round_trips)
        ));
        for r in Resolution::ALL {
            out.push_str(&format!(
                ",{}",
                m.resolutions.get(r.as_str()).copied().unwrap_or(0)
            ));
        }
        out.push_str("\r\n");
    };
    for e in &report.engineers {
        row("engineer", &e.engineer, &e.measures);
    }
    for q in &report.queues {
        row("queue", &q.queue, &q.measures);
    }
    row("team", "", &report.team);
    out
}
