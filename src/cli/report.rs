use std::path::Path;

use clap::Args;

/// How the team is doing: per engineer, cases owned, replies sent and average customer
/// rating; per queue, the backlog and the round trips before the first engineer reply.
#[derive(Debug, Args)]
pub struct Report {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the backlog per day (open cases at the end of each of the last 30
    /// days) as an SVG chart to FILE.
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
        let report = store.team_report_for(&engineers).await?;
        if let Some(file) = &self.svg {
            let days = store.daily_backlog(chrono::Utc::now(), 30).await?;
            let series = crate::charts::backlog(&days, "Open cases per day", "open cases");
            std::fs::write(file, crate::charts::line_chart(&series, 640, 300)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(0);
        }
        let rating = |r: Option<f64>| r.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "{:<32}  {:>11}  {:>7}  {:>10}",
            "ENGINEER", "CASES OWNED", "REPLIES", "AVG RATING"
        );
        for e in &report.engineers {
            println!(
                "{:<32}  {:>11}  {:>7}  {:>10}",
                e.engineer,
                e.cases_owned,
                e.replies,
                rating(e.average_rating)
            );
        }
        println!(
            "\n{:<24}  {:>7}  {:>24}",
            "QUEUE", "BACKLOG", "ROUND TRIPS TO 1ST REPLY"
        );
        for q in &report.queues {
            let trips = q
                .round_trips_to_first_reply
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into());
            println!("{:<24}  {:>7}  {:>24}", q.queue, q.backlog, trips);
        }
        println!(
            "\nAverage customer rating: {}",
            rating(report.average_rating)
        );
        Ok(0)
    }
}
