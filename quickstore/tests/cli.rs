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
    // Any free port for the query API: tests run in parallel, and `dev`
    // would otherwise take the default 8090 in each of them.
    command
        .env("QS_DATA_DIR", data_dir)
        .env("QS_QUERY_API_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null());
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
    let (ok, _, err) = run(quickstore(dir.path()).args(["bench", "log", "--backend", "redis"]));
    assert!(!ok);
    assert!(err.contains("expected kafka or embedded"), "{err}");
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

#[test]
fn schema_apply_on_the_real_cql_node_is_idempotent() {
    let cql = std::env::var("QS_CQL_CONTACT_POINTS").unwrap_or_default();
    assert!(
        !cql.is_empty(),
        "QS_CQL_CONTACT_POINTS is not set: this test needs a real CQL node (run deploy/test.sh)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let keyspace = format!("qs_schema_{}", std::process::id());
    let apply = || {
        run(quickstore(dir.path())
            .args(["schema", "apply"])
            .env("QS_READ_STORE", "cql")
            .env("QS_CQL_CONTACT_POINTS", &cql)
            .env("QS_CQL_KEYSPACE", &keyspace))
    };
    let (ok, out, err) = apply();
    assert!(ok, "schema apply failed: {err}");
    assert!(
        out.contains("applied   V001__read_models.cql")
            && out.contains("applied   V002__customer_keys.cql"),
        "first run:\n{out}"
    );
    let (ok, out, err) = apply();
    assert!(ok, "schema apply again failed: {err}");
    assert!(
        out.contains("up to date V001__read_models.cql")
            && out.contains("up to date V002__customer_keys.cql"),
        "second run:\n{out}"
    );
    // The tables are there: the read side starts on them without creating any.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        use platform::readstore::{CqlConfig, CqlStore, ReadStore, Row, Value};
        let store = CqlStore::connect(CqlConfig::new(vec![cql.clone()], keyspace.clone()))
            .await
            .expect("connect");
        let key: Row = [("order_id".to_owned(), Value::Text("none".into()))].into();
        let found = store
            .get(&projectors::projections::orders::ORDERS_BY_ID, 1, &key)
            .await
            .expect("orders_by_id_g1 exists");
        assert!(found.is_none());
        store.drop_keyspace().await.expect("drop the test keyspace");
    });
}

#[test]
fn schema_apply_refuses_a_cql_store_it_cannot_reach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = run(quickstore(dir.path())
        .args(["schema", "apply"])
        .env("QS_READ_STORE", "cql")
        .env("QS_CQL_CONTACT_POINTS", "127.0.0.1:1"));
    assert!(!ok, "applied to nothing");
    assert!(err.contains("QS_CQL_CONTACT_POINTS"), "{err}");
}

#[test]
fn query_api_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url_file = dir.path().join("query.url");
    let mut child = quickstore(dir.path())
        .args([
            "query-api",
            "--with-projectors",
            "--listen",
            "127.0.0.1:0",
            "--url-file",
        ])
        .arg(&url_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn query-api");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !url_file.exists() {
        assert!(Instant::now() < deadline, "query-api did not start");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("query-api exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = std::fs::read_to_string(&url_file).expect("url");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let ready = http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status(), 200);
        let spec: serde_json::Value = http
            .get(format!("{url}/openapi.json"))
            .send()
            .await
            .expect("openapi")
            .json()
            .await
            .expect("json");
        assert!(spec["paths"]["/orders/{order_id}"].is_object(), "{spec}");
        let denied = http
            .get(format!("{url}/orders/x"))
            .send()
            .await
            .expect("orders");
        assert_eq!(denied.status(), 401);
    });
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "query-api did not stop cleanly: {status}");
}
