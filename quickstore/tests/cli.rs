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
