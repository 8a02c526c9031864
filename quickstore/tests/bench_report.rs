//! `quickstore bench --quick` as the test suite runs it: the real binary,
//! one invocation, on the real Kafka broker and CQL node AND on the
//! embedded twins. It asserts that the report is complete and sane — every
//! section present, every figure a positive finite number beside its
//! baseline with the ratio computed, the plots written as SVG — never the
//! numbers themselves (docs/performance.md, ADR 0019).
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot even start the binary should fail loudly"
)]

use std::process::{Command, Stdio};

use serde_json::Value;

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test measures the real Kafka broker and CQL node \
             (run deploy/test.sh, or `deploy/test-env.sh up && source /tmp/quickstore-run/test-env`)"
        )
    })
}

#[test]
fn one_quick_run_reports_every_figure_on_both_targets() {
    let kafka = required("QS_KAFKA_BOOTSTRAP");
    let cql = required("QS_CQL_CONTACT_POINTS");
    let data = tempfile::tempdir().expect("tempdir");
    let out = data.path().join("report");
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") && key != "QS_SCHEMA_REGISTRY_URL" {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .env("QS_DATA_DIR", data.path())
        .env("QS_KAFKA_BOOTSTRAP", &kafka)
        .env("QS_CQL_CONTACT_POINTS", &cql)
        .stdin(Stdio::null())
        .output()
        .expect("the quickstore binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench --quick failed:\n{stderr}");

    let json = std::fs::read(out.join("report.json")).expect("report.json written");
    let report: Value = serde_json::from_slice(&json).expect("report.json is JSON");
    assert_eq!(report["schema_version"], 1, "{report:#}");
    assert_eq!(report["mode"], "quick");
    let machine = &report["machine"];
    assert!(
        machine["cores"].as_u64().is_some_and(|c| c >= 1),
        "{machine}"
    );
    assert!(machine["quickstore_version"].is_string(), "{machine}");
    // The command processor's memory at two numbers of aggregates (the
    // top-level fields, as before the other roles were measured).
    let memory = &report["memory"];
    let points = memory["points"].as_array().expect("memory points");
    assert!(points.len() >= 2, "{memory:#}");
    assert!(
        memory["rss_ratio"]
            .as_f64()
            .is_some_and(|r| r.is_finite() && r > 0.0),
        "{memory:#}"
    );
    assert!(report["memory_note"]
        .as_str()
        .is_some_and(|n| n.contains("bench memory")));
    // Every role's memory: two points each, a positive peak RSS, a ratio,
    // a verdict.
    let roles = memory["roles"].as_array().expect("memory roles");
    let names: Vec<&str> = roles.iter().filter_map(|r| r["role"].as_str()).collect();
    assert_eq!(
        names,
        [
            "command-processor",
            "projectors",
            "sagas",
            "command-api",
            "query-api"
        ],
        "{memory:#}"
    );
    for role in roles {
        let points = role["points"].as_array().expect("role points");
        assert_eq!(points.len(), 2, "{role:#}");
        for p in points {
            assert!(
                p["peak_rss_kib"].as_u64().is_some_and(|k| k > 0)
                    && p["aggregates"].as_u64().is_some_and(|n| n > 0),
                "{role:#}"
            );
        }
        assert!(
            role["rss_ratio"]
                .as_f64()
                .is_some_and(|r| r.is_finite() && r > 0.0),
            "{role:#}"
        );
        assert!(
            matches!(role["verdict"].as_str(), Some("flat" | "linear")),
            "{role:#}"
        );
    }

    let targets = report["targets"].as_array().expect("targets");
    let names: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["target"].as_str())
        .collect();
    assert_eq!(names, ["kafka", "embedded"], "both targets, in order");
    for target in targets {
        let name = target["target"].as_str().unwrap_or_default();
        let figures = target["figures"].as_array().expect("figures");
        let ids: Vec<&str> = figures.iter().filter_map(|f| f["id"].as_str()).collect();
        for expected in [
            "command_append",
            "orders_completed",
            "place_order_p50",
            "place_order_p95",
            "place_order_p99",
            "place_order_p999",
            "place_order_vs_http_noop_p99",
            "end_to_end_p50",
            "end_to_end_p99",
            "projector_lag_max",
            "projector_write",
            "rebuild",
            "query_by_id_p99",
            "orders_by_customer_p99",
        ] {
            assert!(
                ids.contains(&expected),
                "{name}: no figure {expected} in {ids:?}"
            );
        }
        for f in figures {
            let id = f["id"].as_str().unwrap_or_default();
            let value = f["value"].as_f64().expect("value");
            let zero_ok = id == "projector_lag_max";
            assert!(
                value.is_finite() && (value > 0.0 || (zero_ok && value == 0.0)),
                "{name}/{id}: {f}"
            );
            if let Some(baseline) = f["baseline"].as_object() {
                let b = baseline["value"].as_f64().expect("baseline value");
                let ratio = f["ratio"].as_f64().expect("a ratio beside every baseline");
                assert!(b.is_finite() && b > 0.0, "{name}/{id}: {f}");
                assert!(
                    ratio.is_finite() && (ratio - value / b).abs() <= 1e-9 * ratio.abs().max(1.0),
                    "{name}/{id}: ratio {ratio} is not {value} / {b}"
                );
            }
            if f["target"].is_object() {
                assert!(
                    matches!(f["verdict"].as_str(), Some("met" | "missed")),
                    "{name}/{id}: a target without a verdict: {f}"
                );
            }
        }
        let steps = target["orders"]["steps"].as_array().expect("load steps");
        assert!(!steps.is_empty(), "{name}: no load step");
        for step in steps {
            assert_eq!(step["ack"]["errors"], 0, "{name}: {step}");
            assert!(
                step["completed"].as_u64().is_some_and(|c| c > 0),
                "{name}: {step}"
            );
            assert!(
                step["achieved_per_sec"].as_f64().is_some_and(|a| a > 0.0),
                "{name}: {step}"
            );
        }
        assert!(target["command_append"]["ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.0));
        assert!(target["read_side"]["write_ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.0));
    }

    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md written");
    for heading in [
        "# QuickStore benchmark report",
        "## Real servers",
        "## Embedded twins",
        "### Open-loop order sweep",
        "## Memory",
        "| role | peak RSS by N (MiB) | RSS ratio |",
        "| figure | value | baseline | ratio |",
    ] {
        assert!(md.contains(heading), "report.md lacks {heading:?}:\n{md}");
    }
    let plots = report["plots"].as_array().expect("plots");
    assert_eq!(
        plots.len(),
        3,
        "throughput + a latency plot per target: {plots:?}"
    );
    for plot in plots {
        let file = out.join(plot.as_str().expect("plot name"));
        let svg = std::fs::read_to_string(&file).expect("plot written");
        assert!(
            svg.contains("<svg") && svg.contains("</svg>") && svg.contains("<polyline"),
            "{} is not an SVG with a line: {} bytes",
            file.display(),
            svg.len()
        );
        assert!(
            md.contains(plot.as_str().unwrap_or_default()),
            "report.md links {plot}"
        );
    }
}

#[test]
fn without_servers_it_says_how_to_get_them() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["bench", "--quick", "--out"])
        .arg(data.path().join("r"))
        .env("QS_DATA_DIR", data.path())
        .stdin(Stdio::null())
        .output()
        .expect("the quickstore binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("QS_KAFKA_BOOTSTRAP")
            && stderr.contains("deploy/test-env.sh up")
            && stderr.contains("--target embedded"),
        "{stderr}"
    );
}
