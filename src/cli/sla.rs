use std::path::Path;

use chrono::{DateTime, Utc};
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
    /// The moment to report at (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Sla {
    pub async fn execute(self, path: &Path) -> anyhow::Result<i32> {
        let Sla::Report(r) = self;
        let store = super::open_store_only(path).await?;
        let report = store.sla_report(r.at.unwrap_or_else(Utc::now)).await?;
        if r.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(0);
        }
        println!("SLA report at {}", report.at.to_rfc3339());
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
