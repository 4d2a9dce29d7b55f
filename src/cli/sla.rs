use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Args, Subcommand};

/// SLA attainment and clocks.
#[derive(Debug, Subcommand)]
pub enum Sla {
    /// Attainment (met / missed) per queue, tier and severity; cases at risk and
    /// breached at the given time; median and 90th-percentile time to first response.
    Report(Report),
}

#[derive(Debug, Args)]
pub struct Report {
    /// The moment to report at: an RFC 3339 time (2026-12-01T09:30:00Z) or a date
    /// (2026-12-01, taken as midnight UTC); default now.
    #[arg(long, value_parser = parse_at)]
    at: Option<At>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the SLA attainment per week (the last 12 weeks up to the report time)
    /// as an SVG chart to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
}

impl Sla {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let Sla::Report(r) = self;
        let store = super::open_store_only(path).await?;
        let at = r.at.as_ref().map_or_else(Utc::now, |a| a.time);
        let report = store.sla_report(at).await?;
        if let Some(file) = &r.svg {
            let weeks = store.weekly_attainment(at, 12).await?;
            let series =
                crate::charts::attainment(&weeks, "SLA attainment per week", "% of clocks met");
            std::fs::write(file, crate::charts::line_chart(&series, 640, 300)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        }
        if r.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(0);
        }
        match r.at.as_ref().filter(|a| a.from_date) {
            Some(_) => println!(
                "SLA report at {} (a date is taken as midnight UTC)",
                report.at.to_rfc3339()
            ),
            None => println!("SLA report at {}", report.at.to_rfc3339()),
        }
        println!(
            "\n{:<20}  {:<10}  {:>3}  {:>5}  {:>6}  {:>7}",
            "QUEUE", "TIER", "SEV", "MET", "MISSED", "MET %"
        );
        for a in &report.attainment {
            let total = a.met + a.missed;
            let pct = if total > 0 {
                format!("{:.1}", 100.0 * a.met as f64 / total as f64)
            } else {
                "-".into()
            };
            println!(
                "{:<20}  {:<10}  {:>3}  {:>5}  {:>6}  {:>7}",
                a.queue, a.tier, a.severity, a.met, a.missed, pct
            );
        }
        let minutes = |m: Option<f64>| {
            m.map(|v| format!("{v:.0} min"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "\nTime to first response: median {}, 90th percentile {}",
            minutes(report.first_response_median_minutes),
            minutes(report.first_response_p90_minutes)
        );
        for (title, list) in [("At risk", &report.at_risk), ("Breached", &report.breached)] {
            println!("\n{title}: {}", list.len());
            for c in list {
                println!(
                    "  case {}  {:<15} {:<20} due {}",
                    c.case,
                    c.clock,
                    c.queue,
                    c.due.to_rfc3339()
                );
            }
        }
        Ok(0)
    }
}

/// `--at`: a moment, and whether it was given as a plain date.
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    pub(super) time: DateTime<Utc>,
    pub(super) from_date: bool,
}

pub(super) fn parse_at(s: &str) -> Result<At, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(At {
            time: t.with_timezone(&Utc),
            from_date: false,
        });
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(At {
            time: d.and_time(NaiveTime::MIN).and_utc(),
            from_date: true,
        });
    }
    Err(
        "expected an RFC 3339 time such as 2026-12-01T09:30:00Z, or a date such as 2026-12-01 (midnight UTC)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_a_time_or_a_date_at_midnight_utc() {
        let t = parse_at("2026-12-01T09:30:00+09:00").unwrap();
        assert_eq!(t.time.to_rfc3339(), "2026-12-01T00:30:00+00:00");
        assert!(!t.from_date);
        let d = parse_at("2026-12-01").unwrap();
        assert_eq!(d.time.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert!(d.from_date);
        assert!(parse_at("tomorrow").unwrap_err().contains("RFC 3339"));
    }
}
