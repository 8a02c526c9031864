//! `report.md`: the report as tables a person reads — per target, every
//! figure beside its baseline, the ratio, CPU per event and the verdict;
//! then the open-loop sweep step by step.

use std::fmt::Write as _;

use super::figure::{Figure, Verdict};
use super::memory::MemoryFigures;
use super::order_steps::LoadStep;
use super::report::Report;

pub fn render(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# QuickStore benchmark report\n");
    let _ = writeln!(
        md,
        "{} mode, {} build, generated {} (report schema {}).\n",
        report.mode, m.build, report.generated_at, report.schema_version
    );
    if report.mode == "quick" || m.build == "debug" {
        let _ = writeln!(
            md,
            "> Quick mode or a debug build: this run checks that the report is complete; its \
             figures mean nothing. Run `quickstore bench` from a release build for numbers.\n"
        );
    }
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
    let _ = writeln!(md, "| machine | |\n| --- | --- |");
    let _ = writeln!(md, "| cores | {} |", m.cores);
    let _ = writeln!(md, "| CPU | {} |", opt(&m.cpu_model));
    let _ = writeln!(md, "| kernel | {} |", opt(&m.kernel));
    let _ = writeln!(
        md,
        "| load average at start | {} |",
        opt(&m.load_average_at_start)
    );
    let _ = writeln!(md, "| rustc | {} |", opt(&m.rustc));
    let _ = writeln!(
        md,
        "| QuickStore | {} ({}) |",
        m.quickstore_version,
        opt(&m.git_commit)
    );
    let _ = writeln!(md, "| Kafka | {} |", opt(&m.kafka_version));
    let _ = writeln!(md, "| CQL node | {} |\n", opt(&m.cql_version));

    for t in &report.targets {
        let _ = writeln!(md, "## {}\n", title(&t.target));
        let _ = writeln!(
            md,
            "| figure | value | baseline | ratio | CPU-µs/event | target | verdict |"
        );
        let _ = writeln!(md, "| --- | ---: | --- | ---: | ---: | --- | --- |");
        for f in &t.figures {
            let _ = writeln!(md, "{}", figure_row(f));
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "Conditions: {}\n",
            t.figures
                .iter()
                .filter(|f| !f.conditions.is_empty())
                .map(|f| format!("{}: {}", f.id, f.conditions))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let _ = writeln!(md, "### Open-loop order sweep ({})\n", t.target);
        let _ = writeln!(
            md,
            "| offered/s | completed/s | ack p50 / p95 / p99 / p99.9 ms | end-to-end p50 / p99 ms \
             | projector lag max | CPU-µs/order | held |"
        );
        let _ = writeln!(md, "| ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        for s in &t.orders.steps {
            let _ = writeln!(
                md,
                "| {:.0} | {:.0} | {:.1} / {:.1} / {:.1} / {:.1} | {:.0} / {:.0} | {} | {} | {} |",
                s.offered_per_sec,
                s.achieved_per_sec,
                s.ack.p50_ms,
                s.ack.p95_ms,
                s.ack.p99_ms,
                s.ack.p999_ms,
                s.e2e_p50_ms,
                s.e2e_p99_ms,
                s.projector_lag_max,
                s.cpu_us_per_order
                    .map(|c| format!("{c:.0}"))
                    .unwrap_or_else(|| "—".into()),
                if s.held { "yes" } else { "**no (knee)**" }
            );
        }
        let r = &t.orders;
        let _ = writeln!(
            md,
            "\nBaselines at {} /s: raw produce-ack p50 / p99 / p99.9 {:.2} / {:.2} / {:.2} ms; \
             HTTP no-op p50 / p99 {:.2} / {:.2} ms.\n",
            r.reference_rate,
            r.raw_produce_ack.p50_ms,
            r.raw_produce_ack.p99_ms,
            r.raw_produce_ack.p999_ms,
            r.http_noop.p50_ms,
            r.http_noop.p99_ms
        );
        if let Some(step) = r.reference_step() {
            stage_table(&mut md, step);
        }
    }
    let _ = writeln!(md, "## Memory (RSS of each role by aggregates)\n");
    let _ = writeln!(md, "{}.\n", report.memory_note);
    if let Some(v) = &report.memory {
        match serde_json::from_value::<MemoryFigures>(v.clone()) {
            Ok(figures) => memory_table(&mut md, &figures),
            Err(_) => {
                let _ = writeln!(md, "```json\n{v:#}\n```\n");
            }
        }
    }
    let _ = writeln!(md, "## Plots\n");
    for p in &report.plots {
        let _ = writeln!(md, "![{p}]({p})\n");
    }
    md
}

/// One table: role × N → peak RSS, then the ratio, the growth per
/// aggregate and the verdict beside what the design expects.
fn memory_table(md: &mut String, f: &MemoryFigures) {
    let _ = writeln!(md, "On `{}`:\n", f.backend);
    let _ = writeln!(
        md,
        "| role | peak RSS by N (MiB) | RSS ratio | bytes per aggregate | verdict | expected | N counts | why |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | --- | --- | --- | --- |");
    for r in &f.roles {
        let rss: Vec<String> = r
            .points
            .iter()
            .map(|p| format!("{}: {:.1}", p.aggregates, p.peak_rss_kib as f64 / 1024.0))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} (for {:.0}× N) | {:.0} | {} | {} | {} | {} |",
            r.role,
            rss.join("; "),
            r.rss_ratio,
            r.aggregates_ratio,
            r.bytes_per_aggregate,
            if r.verdict == r.expected {
                r.verdict.clone()
            } else {
                format!("**{}**", r.verdict)
            },
            r.expected,
            r.aggregates_are,
            r.note
        );
    }
    let _ = writeln!(md);
}

/// Where an order's time went at the reference rate, hop by hop.
fn stage_table(md: &mut String, step: &LoadStep) {
    if step.stages.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Where the time went at {:.0}/s (`wait <consumer>`: from when a record was \
         sent — its producer timestamp, or an event's `sent_at` header — to its \
         consumer taking it up; `submit`: the command API's append and its wait for \
         the outcome; `transaction`: a command processor's transaction, begin to \
         committed):\n",
        step.offered_per_sec
    );
    let _ = writeln!(md, "| stage | count | mean ms | p50 ms | p99 ms |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    for s in &step.stages {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            s.stage, s.count, s.mean_ms, s.p50_ms, s.p99_ms
        );
    }
    let _ = writeln!(md);
}

fn title(target: &str) -> String {
    match target {
        "kafka" => "Real servers (Kafka broker, CQL node)".into(),
        "embedded" => "Embedded twins (embedded log, embedded read store)".into(),
        other => other.into(),
    }
}

fn figure_row(f: &Figure) -> String {
    let num = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    format!(
        "| {} | {} {} | {} | {} | {} | {} | {} |",
        f.name,
        num(f.value),
        f.unit,
        f.baseline
            .as_ref()
            .map(|b| format!("{}: {} {}", b.name, num(b.value), f.unit))
            .unwrap_or_else(|| "—".into()),
        f.ratio
            .map(|r| format!("{r:.2}"))
            .unwrap_or_else(|| "—".into()),
        f.cpu_us_per_event
            .map(|c| format!("{c:.0}"))
            .unwrap_or_else(|| "—".into()),
        f.target_text.clone().unwrap_or_else(|| "—".into()),
        match (f.verdict, f.missed_by) {
            (Verdict::Met, _) => "met".to_owned(),
            (Verdict::Missed, Some(by)) => format!("**missed by {by:.1}×**"),
            (Verdict::Missed, None) => "**missed**".to_owned(),
            (Verdict::NoTarget, _) => "—".to_owned(),
        }
    )
}
