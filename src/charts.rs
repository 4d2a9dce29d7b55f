//! SVG charts (plotters, SVG backend only) for the status pages and the report
//! commands' `--svg FILE`: SLA attainment per week and the backlog per day. Pure:
//! points in, an SVG document out.

use plotters::prelude::*;

/// One chart: a title, the y axis' name, and labelled points in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub title: String,
    pub y_label: String,
    /// (x label, value); `None` is a gap (no clock came due that week).
    pub points: Vec<(String, Option<f64>)>,
    /// The y axis' top, e.g. 100 for a percentage; else from the data.
    pub y_max: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart {title:?}: {cause}")]
pub struct ChartError {
    title: String,
    cause: String,
}

/// SLA attainment per week: the share of clocks met, a gap for a week without clocks.
pub fn attainment(weeks: &[crate::store::WeekAttainment], title: &str, y_label: &str) -> Series {
    Series {
        title: title.to_string(),
        y_label: y_label.to_string(),
        points: weeks
            .iter()
            .map(|w| {
                let total = w.met + w.missed;
                let v = (total > 0).then(|| 100.0 * w.met as f64 / total as f64);
                (w.week_start.format("%m-%d").to_string(), v)
            })
            .collect(),
        y_max: Some(100.0),
    }
}

/// Open cases at the end of each day.
pub fn backlog(days: &[crate::store::DayBacklog], title: &str, y_label: &str) -> Series {
    Series {
        title: title.to_string(),
        y_label: y_label.to_string(),
        points: days
            .iter()
            .map(|d| (d.day_end.format("%m-%d").to_string(), Some(d.open as f64)))
            .collect(),
        y_max: None,
    }
}

const BLUE: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);

/// A line chart with a dot on each point, `width` x `height` pixels.
pub fn line_chart(series: &Series, width: u32, height: u32) -> Result<String, ChartError> {
    let err = |e: &dyn std::fmt::Display| ChartError {
        title: series.title.clone(),
        cause: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let n = series.points.len().max(1);
        let top = series.y_max.unwrap_or_else(|| {
            let m = series
                .points
                .iter()
                .filter_map(|p| p.1)
                .fold(0.0_f64, f64::max);
            (m * 1.2).max(5.0).ceil()
        });
        let labels: Vec<String> = series.points.iter().map(|p| p.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(&series.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0..n, 0.0..top)
            .map_err(|e| err(&e))?;
        let every = n.div_ceil(8).max(1);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(series.y_label.as_str())
            .x_labels(n)
            // Whole numbers: counts and percentages; about one tick per unit up to ten.
            .y_labels((top as usize).clamp(1, 10) + 1)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|i| {
                if i % every == 0 {
                    labels.get(*i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| err(&e))?;
        // Consecutive points with values make one line; a gap breaks it.
        let mut run: Vec<(usize, f64)> = Vec::new();
        let mut runs = Vec::new();
        for (i, (_, v)) in series.points.iter().enumerate() {
            match v {
                Some(v) => run.push((i, *v)),
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        for run in runs {
            chart
                .draw_series(LineSeries::new(run.clone(), BLUE.stroke_width(2)))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(run.into_iter().map(|p| Circle::new(p, 3, BLUE.filled())))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_the_title_and_the_labels() {
        let s = Series {
            title: "SLA attainment".into(),
            y_label: "%".into(),
            points: vec![
                ("11-23".into(), Some(50.0)),
                ("11-30".into(), None),
                ("12-07".into(), Some(100.0)),
            ],
            y_max: Some(100.0),
        };
        let svg = line_chart(&s, 640, 320).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("SLA attainment"));
        assert!(svg.contains("12-07"));
        assert!(!svg.contains("<script"));
    }
}
