//! The CLI as a user runs it: the real binary, real data directories, the
//! real broker for the Kafka case. Every failure must say what to fix.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot even start the binary should fail loudly"
)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn quickstore(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    // Start from a clean slate: the test command exports QS_* for the suites.
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    command.env("QS_DATA_DIR", data_dir).stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the quickstore binary runs");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn dev_sets_up_the_shop_and_remembers_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) =
        run(quickstore(dir.path()).args(["dev", "--once", "--listen", "127.0.0.1:0"]));
    assert!(ok, "dev failed: {err}");
    for expected in [
        "catalog.events",
        "orders.commands",
        "sagas.order-fulfillment.events",
        "command-outcomes",
        "Command API",
        "/openapi.json",
        "customer@quickstore.local",
        "curl",
    ] {
        assert!(out.contains(expected), "{expected} missing from:\n{out}");
    }

    let (ok, out, err) = run(quickstore(dir.path()).arg("topics"));
    assert!(ok, "topics failed: {err}");
    let count = |topic: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(topic))
            .unwrap_or_else(|| panic!("{topic} not listed:\n{out}"))
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    // Five products, three users with their roles, stock for each product.
    assert_eq!(count("catalog.events"), "5");
    let customers = count("customers.events");

    // A second start finds the shop and creates nothing again.
    let (ok, _, err) =
        run(quickstore(dir.path()).args(["dev", "--once", "--listen", "127.0.0.1:0"]));
    assert!(ok, "second dev failed: {err}");
    let (_, out, _) = run(quickstore(dir.path()).arg("topics"));
    let again = out
        .lines()
        .find(|l| l.starts_with("customers.events"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(again, customers, "the demo shop was created twice");
}

#[test]
fn bad_settings_are_refused_with_the_variable_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = run(quickstore(dir.path())
        .arg("topics")
        .env("QS_PARTITIONS", "0"));
    assert!(!ok);
    assert!(err.contains("QS_PARTITIONS"), "{err}");

    let (ok, _, err) = run(quickstore(dir.path())
        .arg("topics")
        .env("QS_EVENT_LOG", "rabbitmq"));
    assert!(!ok);
    assert!(
        err.contains("QS_EVENT_LOG") && err.contains("kafka"),
        "{err}"
    );

    let (ok, _, err) =
        run(quickstore(dir.path()).args(["--config", "/nonexistent/quickstore.toml", "topics"]));
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");

    let (ok, _, err) = run(quickstore(dir.path()).args(["bench", "log", "--quick"]));
    assert!(!ok);
    assert!(
        err.contains("QS_KAFKA_BOOTSTRAP"),
        "bench without a broker must say what to set: {err}"
    );
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dev = quickstore(dir.path())
        .args(["dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dev starts");
    // Wait until dev holds the directory (it prints "Serving" once ready).
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let (ok, _, err) = run(quickstore(dir.path()).arg("topics"));
        if !ok && err.contains("in use") {
            break err;
        }
        assert!(
            Instant::now() < deadline,
            "a second process was never refused (last: ok={ok} {err})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        refused.contains(&dir.path().display().to_string()) || refused.contains("in use"),
        "{refused}"
    );
    // Ctrl-C: the processor finishes its batch and leaves; then exit 0.
    let pid = dev.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let status = dev.wait().expect("dev exits");
    assert!(
        status.success(),
        "dev did not shut down gracefully: {status}"
    );
}

#[test]
fn topics_on_the_real_broker() {
    let bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP").unwrap_or_default();
    assert!(
        !bootstrap.is_empty(),
        "QS_KAFKA_BOOTSTRAP is not set: this test needs a real Kafka broker (run deploy/test.sh)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out, err) = run(quickstore(dir.path())
        .arg("topics")
        .env("QS_EVENT_LOG", "kafka")
        .env("QS_KAFKA_BOOTSTRAP", &bootstrap));
    assert!(ok, "topics on Kafka failed: {err}");
    assert!(out.starts_with("topic"), "no table header:\n{out}");
}

#[test]
fn projections_status_rebuild_and_dlq_on_a_dev_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) =
        run(quickstore(dir.path()).args(["dev", "--once", "--listen", "127.0.0.1:0"]));
    assert!(ok, "dev failed: {err}");

    let (ok, out, err) = run(quickstore(dir.path()).args(["projections", "status"]));
    assert!(ok, "status failed: {err}");
    assert!(
        out.starts_with("projection") && out.contains("lag") && out.contains("parked"),
        "no table header:\n{out}"
    );
    let orders = |out: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with("orders "))
            .unwrap_or_else(|| panic!("orders not listed:\n{out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // projection, generation, group, lag, parked, dead letters, switched
    let row = orders(&out);
    assert_eq!(
        &row[..6],
        ["orders", "1", "projector.orders.g1", "0", "0", "0"],
        "{out}"
    );
    for line in out.lines().skip(1) {
        let lag = line.split_whitespace().nth(3).unwrap_or_default();
        assert_eq!(lag, "0", "dev --once left a projection behind:\n{out}");
    }

    let (ok, out, err) =
        run(quickstore(dir.path()).args(["projections", "rebuild", "orders", "--drop-after", "0"]));
    assert!(ok, "rebuild failed: {err}");
    assert!(
        out.contains("orders: generation 1 → 2, switched at"),
        "no switch line:\n{out}"
    );
    assert!(out.contains("orders: dropped generation 1"), "{out}");

    let (ok, out, err) = run(quickstore(dir.path()).args(["projections", "status"]));
    assert!(ok, "status failed: {err}");
    let row = orders(&out);
    assert_eq!(
        &row[..4],
        ["orders", "2", "projector.orders.g2", "0"],
        "{out}"
    );
    assert!(
        row.last().is_some_and(|t| t == "UTC"),
        "no switch time:\n{out}"
    );

    let (ok, out, err) = run(quickstore(dir.path()).args(["dlq", "list"]));
    assert!(ok, "dlq list failed: {err}");
    assert!(out.contains("no pending dead letters"), "{out}");
    let (ok, out, err) = run(quickstore(dir.path()).args(["dlq", "list", "orders"]));
    assert!(ok, "dlq list orders failed: {err}");
    assert!(out.contains("no pending dead letters"), "{out}");

    // Embedded: the command runs the projector itself while it waits.
    let (ok, out, err) =
        run(quickstore(dir.path()).args(["dlq", "retry", "orders", "--timeout", "30"]));
    assert!(ok, "dlq retry failed: {err}");
    assert!(out.contains("orders: retried dead letters"), "{out}");
}

#[test]
fn unknown_projection_names_are_refused_with_the_valid_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [&[&str]; 4] = [
        &["projections", "rebuild", "ordres"],
        &["projections", "run", "--only", "ordres"],
        &["dlq", "list", "ordres"],
        &["dlq", "retry", "ordres"],
    ];
    for args in cases {
        let (ok, _, err) = run(quickstore(dir.path()).args(args));
        assert!(!ok, "{args:?} succeeded");
        assert!(
            err.contains("unknown projection `ordres`")
                && err.contains("orders")
                && err.contains("catalog"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn dlq_retry_without_a_running_projector_says_what_to_start() {
    // Kafka + CQL: the retry is the running service's job; nobody runs it.
    let bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP").unwrap_or_default();
    let cql = std::env::var("QS_CQL_CONTACT_POINTS").unwrap_or_default();
    let registry = std::env::var("QS_SCHEMA_REGISTRY_URL").unwrap_or_default();
    assert!(
        !bootstrap.is_empty() && !cql.is_empty() && !registry.is_empty(),
        "QS_KAFKA_BOOTSTRAP, QS_CQL_CONTACT_POINTS and QS_SCHEMA_REGISTRY_URL must be set: \
         this test needs a real broker, CQL node and registry (run deploy/test.sh)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let keyspace = format!("qs_cli_{}", std::process::id());
    let (ok, _, err) = run(quickstore(dir.path())
        .args(["dlq", "retry", "orders", "--timeout", "2"])
        .env("QS_EVENT_LOG", "kafka")
        .env("QS_KAFKA_BOOTSTRAP", &bootstrap)
        .env("QS_SCHEMA_REGISTRY_URL", &registry)
        .env("QS_TOPIC_PREFIX", format!("{keyspace}."))
        .env("QS_READ_STORE", "cql")
        .env("QS_CQL_CONTACT_POINTS", &cql)
        .env("QS_CQL_KEYSPACE", &keyspace));
    assert!(!ok, "a retry nobody acknowledged succeeded");
    assert!(
        err.contains("no projector acknowledged") && err.contains("quickstore projections run"),
        "{err}"
    );
}
