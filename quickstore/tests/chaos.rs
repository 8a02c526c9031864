//! The short chaos run (issue 6), through the binary as the README's test
//! command runs it: its own broker and CQL node, five role processes, at
//! least 1,000 orders while every role kind is killed (-9) and restarted,
//! the broker restarted, the CQL node stopped for a while and a saga
//! worker made a zombie; then the checker must pass with nothing lost,
//! duplicated or out of order.
//!
//! A test binary of its own, so cargo runs it alone (it kills and stops
//! only the servers it started). Needs Java 17+ and the cached Kafka and
//! Cassandra jars (deploy/kafka/fetch.sh, deploy/cql/fetch.sh).
//! `QS_CHAOS_ORDERS` sets the order count (default 1,000, as issue 6
//! asks); with 96 clients a debug build on 2 cores places them in about
//! 12–16 min through the faults (docs/chaos.md, "Measured").
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot even start the binary should fail loudly"
)]

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

#[test]
fn short_chaos_run_loses_and_duplicates_nothing() {
    let orders: u64 = std::env::var("QS_CHAOS_ORDERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("chaos.json");
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    // Its own servers only: nothing of the shared test broker or node.
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") && key != "QS_RUN_DIR" {
            command.env_remove(key);
        }
    }
    let out = command
        .args([
            "chaos",
            "--orders",
            &orders.to_string(),
            "--seed",
            "20261206",
            "--concurrency",
            "96",
        ])
        .args(["--duration", "30m", "--report"])
        .arg(&report_path)
        .arg("--deploy-dir")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
        .stdin(Stdio::null())
        .output()
        .expect("run quickstore chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("chaos run took {:.0}s", started.elapsed().as_secs_f64());
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path)
            .unwrap_or_else(|_| panic!("no report ({}):\n{stdout}\n{stderr}", out.status)),
    )
    .expect("report json");
    let context = format!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "chaos failed ({}):\n{context}",
        out.status
    );
    assert_eq!(report["ok"], true, "{context}");
    assert!(
        report["load"]["orders_placed"].as_u64().unwrap_or_default() >= orders,
        "{context}"
    );
    for kind in [
        "command-api",
        "command-processor",
        "sagas",
        "projectors",
        "query-api",
    ] {
        assert!(
            report["faults"]["kills"][kind].as_u64().unwrap_or_default() >= 1,
            "no kill of {kind}:\n{context}"
        );
    }
    for fault in ["broker_restarts", "cql_outages", "zombies"] {
        assert!(
            report["faults"][fault].as_u64().unwrap_or_default() >= 1,
            "no {fault}:\n{context}"
        );
    }
    assert_eq!(report["checker"]["ok"], true, "{context}");
    assert_eq!(report["invariants"]["lost_commands"], 0, "{context}");
    assert_eq!(report["invariants"]["duplicate_events"], 0, "{context}");
    assert_eq!(report["invariants"]["version_gaps"], 0, "{context}");
    assert_eq!(report["quiescence"]["reached"], true, "{context}");
    assert_eq!(report["quiescence"]["not_terminal"], 0, "{context}");
    // The load really went through the outages: the client had to retry.
    assert!(
        report["client"]["retries"].as_u64().unwrap_or_default() > 0,
        "{context}"
    );
}
