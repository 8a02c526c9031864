//! The report's plots, as SVG (plotters' SVG backend: no fonts or system
//! libraries needed): completed orders/s against offered load (the knee
//! is where a line leaves the diagonal), and place-order latency
//! percentiles against offered load, per target.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::order_steps::LoadStep;
use super::report::TargetReport;

const SIZE: (u32, u32) = (900, 560);
/// One colour per series, readable on white.
const COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Writes every plot into `dir`; their file names.
pub fn write_all(dir: &Path, targets: &[TargetReport]) -> Result<Vec<String>> {
    let mut names = vec!["throughput-vs-offered-load.svg".to_owned()];
    throughput(&dir.join(&names[0]), targets)?;
    for t in targets {
        let name = format!("latency-vs-offered-load-{}.svg", t.target);
        latency(&dir.join(&name), t)?;
        names.push(name);
    }
    Ok(names)
}

fn throughput(path: &Path, targets: &[TargetReport]) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let max = targets
        .iter()
        .flat_map(|t| t.orders.steps.iter())
        .map(|s| s.offered_per_sec.max(s.achieved_per_sec))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Orders completed vs offered load", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..max, 0f64..max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("offered orders/s (open loop)")
        .y_desc("completed orders/s")
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (max, max)],
            BLACK.mix(0.3).stroke_width(1),
        ))
        .map_err(plot_error)?
        .label("completed = offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    for (k, t) in targets.iter().enumerate() {
        let points = t
            .orders
            .steps
            .iter()
            .map(|s| (s.offered_per_sec, s.achieved_per_sec))
            .collect();
        line_with_points(&mut chart, &t.target, points, COLOURS[k % COLOURS.len()], 4)?;
    }
    legend(&mut chart)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn latency(path: &Path, t: &TargetReport) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let steps = &t.orders.steps;
    let x_max = steps.iter().map(|s| s.offered_per_sec).fold(1.0, f64::max) * 1.1;
    let at_each_step = |value: fn(&LoadStep) -> f64| -> Vec<(f64, f64)> {
        steps
            .iter()
            .map(|s| (s.offered_per_sec, value(s)))
            .collect()
    };
    let series: [(&str, Vec<(f64, f64)>); 5] = [
        ("ack p50", at_each_step(|s| s.ack.p50_ms)),
        ("ack p95", at_each_step(|s| s.ack.p95_ms)),
        ("ack p99", at_each_step(|s| s.ack.p99_ms)),
        ("ack p99.9", at_each_step(|s| s.ack.p999_ms)),
        ("end-to-end p99", at_each_step(|s| s.e2e_p99_ms)),
    ];
    // Log scale: latencies span from sub-millisecond to seconds.
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
    let y_max = ys.clone().fold(1.0, f64::max) * 2.0;
    let y_min = ys.filter(|y| *y > 0.0).fold(y_max, f64::min).max(0.01) / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Place-order latency vs offered load ({})", t.target),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("offered orders/s (open loop)")
        .y_desc("latency, ms (log scale)")
        .draw()
        .map_err(plot_error)?;
    for (k, (name, points)) in series.into_iter().enumerate() {
        // Zero means "not measured at this step"; a log axis cannot show it.
        let points = points.into_iter().filter(|(_, y)| *y > 0.0).collect();
        line_with_points(&mut chart, name, points, COLOURS[k % COLOURS.len()], 3)?;
    }
    legend(&mut chart)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

/// One named series: a line through its points, each point a dot.
fn line_with_points<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    name: &str,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    dot_radius: u32,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    chart
        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
        .map_err(plot_error)?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, dot_radius, colour.filled())),
        )
        .map_err(plot_error)?;
    Ok(())
}

/// The series' names in a box, top left.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> Result<()>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}
