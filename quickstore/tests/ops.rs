//! Ops and analyst tooling as users run it: the real binary against a real
//! Kafka broker, our schema registry over the Confluent REST API, Kafka's
//! own command-line tools (deploy/kafka/tool.sh: kafka-topics,
//! kafka-configs, kafka-consumer-groups) and Python's confluent-kafka +
//! fastavro + pyarrow as the standard decoders.
//!
//! One system per test (a registry and `quickstore serve` with demo data and
//! simulated couriers, under a random topic prefix) carries orders through
//! every saga path the checks need; the steps then run in order on it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test that cannot even start the binary should fail loudly"
)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment every `quickstore` call of one system gets.
struct System {
    env: Vec<(String, String)>,
    prefix: String,
    bootstrap: String,
    registry: String,
    dir: tempfile::TempDir,
    _processes: Vec<Running>,
    api: String,
}

fn cql() -> String {
    let cql = std::env::var("QS_CQL_CONTACT_POINTS").unwrap_or_default();
    assert!(
        !cql.is_empty(),
        "QS_CQL_CONTACT_POINTS is not set: these tests need a real CQL node (run deploy/test.sh)"
    );
    cql
}

fn bootstrap() -> String {
    let bootstrap = std::env::var("QS_KAFKA_BOOTSTRAP").unwrap_or_default();
    assert!(
        !bootstrap.is_empty(),
        "QS_KAFKA_BOOTSTRAP is not set: these tests need a real Kafka broker (run deploy/test.sh, \
         or `deploy/test-env.sh up` and source the test-env file it prints)"
    );
    bootstrap
}

fn wait_for_file(path: &Path, what: &str, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.trim().is_empty() {
                return text.trim().to_owned();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start in 90 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl System {
    fn quickstore(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
        for (key, _) in std::env::vars() {
            if key.starts_with("QS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null());
        command
    }

    /// Runs `quickstore ARGS` to completion: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        output(self.quickstore().args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "quickstore {args:?} failed:\n{out}\n{err}");
        out
    }

    fn topic(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// Starts a registry and the write side on Kafka.
    fn start() -> Self {
        let bootstrap = bootstrap();
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = format!("ops-{}.", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut processes = Vec::new();
        let cql = cql();
        let keyspace = prefix.replace(['-', '.'], "_");

        let url_file = dir.path().join("registry.url");
        let mut registry = Command::new(env!("CARGO_BIN_EXE_quickstore"))
            .args([
                "registry",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--in-memory",
                "--url-file",
            ])
            .arg(&url_file)
            .env("QS_DATA_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the registry");
        let registry_url = wait_for_file(&url_file, "quickstore registry serve", &mut registry);
        processes.push(Running(registry));

        let env: Vec<(String, String)> = [
            ("QS_EVENT_LOG", "kafka"),
            ("QS_KAFKA_BOOTSTRAP", bootstrap.as_str()),
            ("QS_SCHEMA_REGISTRY_URL", registry_url.as_str()),
            ("QS_TOPIC_PREFIX", prefix.as_str()),
            ("QS_PARTITIONS", "3"),
            ("QS_READ_STORE", "cql"),
            ("QS_CQL_CONTACT_POINTS", cql.as_str()),
            ("QS_CQL_KEYSPACE", keyspace.as_str()),
            ("QS_DATA_DIR", &dir.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut system = Self {
            env,
            prefix,
            bootstrap,
            registry: registry_url,
            dir,
            _processes: processes,
            api: String::new(),
        };
        let api_file = system.dir.path().join("api.url");
        let log = std::fs::File::create(system.dir.path().join("serve.log")).expect("log file");
        let mut serve = system
            .quickstore()
            .args(["serve", "--seed-demo", "--simulated-couriers", "2"])
            .args(["--listen", "127.0.0.1:0", "--url-file"])
            .arg(&api_file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting quickstore serve");
        system.api = wait_for_file(&api_file, "quickstore serve", &mut serve);
        system._processes.push(Running(serve));
        // The read side on the real CQL node: projector groups, serving
        // generations and dead letters for `status`.
        system.ok(&["schema", "apply"]);
        let log = std::fs::File::create(system.dir.path().join("projections.log")).expect("log");
        let projectors = system
            .quickstore()
            .args(["projections", "run"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting quickstore projections run");
        system._processes.push(Running(projectors));
        system
    }

    /// Places orders through the HTTP API (two approved cards, one
    /// declined: the saga's happy and compensating paths) and waits until
    /// every saga has ended.
    fn place_orders(&self) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let http = reqwest::Client::new();
            let login: Value = http
                .post(format!("{}/auth/login", self.api))
                .json(&serde_json::json!({"email": "customer@quickstore.local", "password": "quickstore-demo"}))
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("login body");
            let token = login["access_token"].as_str().expect("access token").to_owned();
            for (i, card) in ["4242 4242 4242 4242", "4000 0000 0000 0002", "4242 4242 4242 4242"]
                .into_iter()
                .enumerate()
            {
                let response = http
                    .post(format!("{}/orders", self.api))
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("ops-{i}"))
                    .json(&serde_json::json!({
                        "lines": [{"sku": "MUG-1", "quantity": 2}],
                        "payment": {"card_number": card},
                        "shipping_address": {"recipient": "Carl", "line1": "1 Main St",
                            "city": "Berlin", "postal_code": "10115", "country": "DE"}
                    }))
                    .send()
                    .await
                    .expect("place order");
                assert!(
                    response.status().is_success(),
                    "placing an order: {}",
                    response.text().await.unwrap_or_default()
                );
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status: Value =
                serde_json::from_str(&self.ok(&["status", "--json"])).expect("status JSON");
            let projected = status["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .filter(|g| {
                    g["group"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(".projector.")
                })
                .all(|g| g["state"] == "Stable");
            if status["sagas"]["total"] == 3 && status["sagas"]["open"] == 0 && projected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sagas did not end in 120 s: {}",
                status["sagas"]
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        // Then until every group's offsets stand still (the projectors catch
        // up), so Kafka's tool and `status` can be compared.
        let partitions = |status: &Value| -> Vec<Value> {
            status["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| g["partitions"].clone())
                .collect()
        };
        let mut last = Vec::new();
        loop {
            let status: Value =
                serde_json::from_str(&self.ok(&["status", "--json"])).expect("status JSON");
            let now = partitions(&status);
            if now == last {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the groups did not settle in 120 s"
            );
            last = now;
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// A Kafka command-line tool from the cached distribution.
    fn kafka_tool(&self, tool: &str, args: &[&str]) -> String {
        let (code, out, err) = output(
            Command::new(root().join("deploy/kafka/tool.sh"))
                .arg(tool)
                .args(["--bootstrap-server", &self.bootstrap])
                .args(args),
        );
        assert_eq!(code, 0, "kafka {tool} {args:?} failed:\n{out}\n{err}");
        out
    }
}

/// Like [`output`], but a command still running after `limit` is killed
/// and fails the test (a doc block that never ends must not hang the suite).
fn output_within(command: &mut Command, limit: Duration) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = command
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("the command starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}, killed:\n--- stdout\n{}\n--- stderr\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn output(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the command runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The Python of deploy/python's venv (QS_PYTHON from deploy/test.sh, or
/// made now by deploy/python/venv.sh, which fails loudly with what to
/// install).
fn python() -> String {
    if let Ok(python) = std::env::var("QS_PYTHON") {
        if !python.is_empty() {
            return python;
        }
    }
    let (code, out, err) = output(&mut Command::new(root().join("deploy/python/venv.sh")));
    assert_eq!(code, 0, "deploy/python/venv.sh failed:\n{err}");
    out.trim().to_owned()
}

#[test]
fn topics_apply_status_and_export_on_real_kafka() {
    let system = System::start();
    system.place_orders();

    // topics apply on an installation without topics (a fresh prefix on the
    // same broker): --check reports every one missing and creates nothing,
    // apply creates them all, then --check finds nothing to report.
    let fresh = format!("{}fresh.", system.prefix);
    let in_fresh = |args: &[&str]| {
        output(
            system
                .quickstore()
                .args(args)
                .env("QS_TOPIC_PREFIX", &fresh),
        )
    };
    let (code, out, err) = in_fresh(&["topics", "apply", "--check"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_end().ends_with("missing"))
            .count(),
        31,
        "{out}"
    );
    assert!(err.contains("31 of 31 topics differ"), "{err}");
    let (code, out, err) = in_fresh(&["topics", "apply"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_end().ends_with("created"))
            .count(),
        31,
        "{out}"
    );
    let (code, out, err) = in_fresh(&["topics", "apply", "--check", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let checks: Value = serde_json::from_str(&out).expect("JSON");
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "ok" && c["drift"].as_array().unwrap().is_empty()),
        "{checks}"
    );

    // The running system: serve and the projectors created their topics;
    // apply finds them as specified.
    system.ok(&["topics", "apply"]);
    let out = system.ok(&["topics", "apply", "--check"]);
    for (topic, kind) in [
        ("orders.events", "events"),
        ("orders.commands", "commands"),
        ("orders.snapshots", "snapshots"),
        ("command-outcomes", "outcomes"),
        ("sagas.order-fulfillment.events", "saga-events"),
        ("sagas.order-fulfillment.replies", "saga-replies"),
        ("projector.saga-state.dlq", "dead-letters"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{} ", system.topic(topic))))
            .unwrap_or_else(|| panic!("{topic} missing from:\n{out}"));
        assert!(
            line.contains(kind) && line.trim_end().ends_with("ok"),
            "{line}"
        );
    }
    // Kafka's own tools see the configs the spec asked for.
    let configs = system.kafka_tool(
        "configs",
        &[
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            &system.topic("orders.events"),
        ],
    );
    for expected in [
        "retention.ms=-1",
        "retention.bytes=-1",
        "cleanup.policy=delete",
        "min.insync.replicas=1",
    ] {
        assert!(configs.contains(expected), "{expected} missing:\n{configs}");
    }
    let described = system.kafka_tool(
        "topics",
        &["--describe", "--topic", &system.topic("orders.snapshots")],
    );
    assert!(
        described.contains("cleanup.policy=compact") && described.contains("PartitionCount: 3"),
        "{described}"
    );

    // Config drift: reported with the fix, exit code 1, nothing changed;
    // the printed fix (run with Kafka's tool) makes it pass again.
    let events = system.topic("orders.events");
    system.kafka_tool(
        "configs",
        &[
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            &events,
            "--add-config",
            "retention.ms=86400000",
        ],
    );
    let (code, out, err) = system.run(&["topics", "apply"]);
    assert_eq!(code, 1, "drift must exit 1:\n{out}\n{err}");
    assert!(
        out.contains(&format!(
            "{events}: retention.ms=86400000, the spec says -1"
        )),
        "{out}"
    );
    let fix = out
        .lines()
        .find(|l| l.contains("fix: kafka-configs.sh") && l.contains(&events))
        .unwrap_or_else(|| panic!("no fix printed:\n{out}"));
    assert!(err.contains("1 of 31 topics differ"), "{err}");
    let fix_args: Vec<&str> = fix
        .split_whitespace()
        .skip(2) // "fix:" and "kafka-configs.sh"
        .skip(2) // --bootstrap-server HOST (kafka_tool adds it)
        .collect();
    system.kafka_tool("configs", &fix_args);
    system.ok(&["topics", "apply", "--check"]);

    // Partition drift: never "fixed"; the report says what to do.
    let (code, out, _) = output(
        system
            .quickstore()
            .args(["topics", "apply"])
            .env("QS_PARTITIONS", "4"),
    );
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{events}: 3 partitions, the spec says 4"))
            && out.contains("set QS_PARTITIONS=3"),
        "{out}"
    );
    assert!(
        system
            .kafka_tool("topics", &["--describe", "--topic", &events])
            .contains("PartitionCount: 3"),
        "the partition count changed"
    );

    check_status(&system);
    check_export(&system);
}

/// `status` names the groups as Kafka's tool lists them and agrees with
/// `kafka-consumer-groups.sh --describe` on every committed offset.
fn check_status(system: &System) {
    let status: Value = serde_json::from_str(&system.ok(&["status", "--json"])).expect("JSON");
    let listed: BTreeSet<String> = system
        .kafka_tool("consumer-groups", &["--list"])
        .lines()
        .map(|l| l.trim().to_owned())
        .collect();
    let groups = status["groups"].as_array().expect("groups");
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    for context in [
        "catalog",
        "inventory",
        "orders",
        "payments",
        "deliveries",
        "customers",
    ] {
        assert!(names.contains(&format!("{}{context}.command-processor", system.prefix).as_str()));
    }
    for group in groups {
        let name = group["group"].as_str().unwrap();
        let committed: Vec<&Value> = group["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["current_offset"].is_null())
            .collect();
        if committed.is_empty() {
            continue;
        }
        assert!(
            listed.contains(name),
            "{name} not in kafka-consumer-groups --list: {listed:?}"
        );
        assert_eq!(group["state"], "Stable", "{name} runs in serve: {group}");
        assert!(!group["members"].as_array().unwrap().is_empty(), "{group}");
        // TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET per row.
        let described = system.kafka_tool("consumer-groups", &["--describe", "--group", name]);
        let rows: HashMap<(String, i64), (String, String)> = described
            .lines()
            .filter(|l| l.starts_with(name))
            .map(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                (
                    (cells[1].to_owned(), cells[2].parse().unwrap()),
                    (cells[3].to_owned(), cells[4].to_owned()),
                )
            })
            .collect();
        for p in committed {
            let key = (
                p["topic"].as_str().unwrap().to_owned(),
                p["partition"].as_i64().unwrap(),
            );
            let (current, end) = rows
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} of {name} missing from:\n{described}"));
            assert_eq!(current, &p["current_offset"].to_string(), "{name} {key:?}");
            assert_eq!(end, &p["log_end_offset"].to_string(), "{name} {key:?}");
        }
    }
    let dlq = status["dead_letters"].as_array().unwrap();
    assert_eq!(dlq.len(), 9, "one per projection: {dlq:?}");
    assert!(
        dlq.iter().all(|d| d["records"] == 0 && d["pending"] == 0),
        "{dlq:?}"
    );
    let projector = format!("{}projector.orders.g1", system.prefix);
    let orders = groups
        .iter()
        .find(|g| g["group"] == projector.as_str())
        .expect("the orders projector's group");
    assert_eq!(orders["state"], "Stable", "{orders}");
    assert_eq!(orders["lag"], 0, "{orders}");
    assert_eq!(orders["pending"], 0, "{orders}");
    // Markers and aborted records take offsets but are never read.
    for g in groups.iter() {
        assert!(g["pending"].as_i64() <= g["lag"].as_i64(), "{g}");
    }
    assert_eq!(status["sagas"]["open"], 0);
    assert_eq!(status["sagas"]["total"], 3);

    let text = system.ok(&["status"]);
    for expected in [
        "GROUP",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "PENDING",
        "Dead letters",
        "Sagas (order-fulfillment): 0 open of 3 started",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Every event topic exported in the three formats and decoded by
/// confluent-kafka's AvroDeserializer; bounds, filters and bad arguments.
fn check_export(system: &System) {
    let dir = system.dir.path().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let mut topics = Vec::new();
    for base in [
        "catalog.events",
        "inventory.events",
        "orders.events",
        "payments.events",
        "deliveries.events",
        "customers.events",
        "sagas.order-fulfillment.events",
    ] {
        let topic = system.topic(base);
        for format in ["jsonl", "csv", "parquet"] {
            let file = dir.join(format!("{topic}.{format}"));
            system.ok(&[
                "events",
                "export",
                "--topic",
                &topic,
                "--format",
                format,
                "--output",
                file.to_str().unwrap(),
                // Compared with what confluent-kafka decodes from the log.
                "--personal-data",
                "sealed",
            ]);
        }
        let rows = std::fs::read_to_string(dir.join(format!("{topic}.jsonl"))).unwrap();
        assert!(!rows.is_empty(), "{topic} has no events");
        topics.push(topic);
    }
    let (code, out, err) = output(
        Command::new(python())
            .arg(root().join("deploy/python/check_exports.py"))
            .args([
                "--bootstrap",
                &system.bootstrap,
                "--registry",
                &system.registry,
                "--dir",
            ])
            .arg(&dir)
            .args(&topics),
    );
    assert_eq!(code, 0, "the Python decoder disagrees:\n{out}\n{err}");
    assert_eq!(out.lines().count(), topics.len(), "{out}");
    // The declined card's compensation is in the decoded data.
    for expected in [
        "OrderCancelled",
        "PaymentDeclined",
        "StockReleased",
        "OrderCompleted",
    ] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }

    // Money stays integer minor units.
    let orders = system.topic("orders.events");
    let placed = jsonl(&system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--type",
        "OrderPlaced",
    ]));
    assert_eq!(placed.len(), 3);
    assert!(placed
        .iter()
        .all(|r| r["event_type"] == "com.quickstore.orders.OrderPlaced"));
    assert_eq!(placed[0]["payload"]["totals"]["subtotal_minor"], 2598);
    assert!(placed[0]["payload"]["totals"]["subtotal_minor"].is_i64());
    let rejected = jsonl(&system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--type",
        "com.quickstore.orders.OrderCancelled",
    ]));
    assert_eq!(rejected.len(), 1);

    // Offset bounds (in every partition), time bounds via offsets-for-times.
    let all = jsonl(&system.ok(&["events", "export", "--topic", &orders, "--format", "jsonl"]));
    let bounded = jsonl(&system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--partition",
        "0",
        "--from",
        "2",
        "--to",
        "5",
    ]));
    let expected: Vec<&Value> = all
        .iter()
        .filter(|r| r["partition"] == 0 && (2..5).contains(&r["offset"].as_i64().unwrap()))
        .collect();
    assert_eq!(bounded.iter().collect::<Vec<_>>(), expected);
    let mut times: Vec<i64> = all
        .iter()
        .map(|r| r["timestamp"].as_i64().unwrap())
        .collect();
    times.sort_unstable();
    let middle = times[times.len() / 2];
    let rfc3339 = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let late = jsonl(&system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--from",
        &rfc3339(middle),
    ]));
    let early = jsonl(&system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--to",
        &rfc3339(middle),
    ]));
    assert_eq!(late.len() + early.len(), all.len());
    assert!(late
        .iter()
        .all(|r| r["timestamp"].as_i64().unwrap() >= middle));
    assert!(early
        .iter()
        .all(|r| r["timestamp"].as_i64().unwrap() < middle));
    let none = system.ok(&[
        "events",
        "export",
        "--topic",
        &orders,
        "--format",
        "jsonl",
        "--from",
        &rfc3339(times[times.len() - 1] + 1),
    ]);
    assert!(none.is_empty(), "{none}");

    // Bad arguments: what is wrong and how to write it.
    for (args, expected) in [
        (
            vec!["--from", "yesterday", "--format", "jsonl"],
            "write an offset like `--from 120` or a time like",
        ),
        (
            vec!["--type", "Nope", "--format", "jsonl"],
            "valid types: CartCheckedOut, CartLineAdded",
        ),
        (vec!["--format", "parquet"], "add --output FILE"),
        (
            vec!["--partition", "7", "--format", "jsonl"],
            "has partitions 0 to 2",
        ),
    ] {
        let mut full = vec!["events", "export", "--topic", &orders];
        full.extend(args.iter().copied());
        let (code, out, err) = system.run(&full);
        assert_eq!(code, 1, "{full:?}: {out}");
        assert!(err.contains(expected), "{full:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = system.run(&[
        "events",
        "export",
        "--topic",
        "nope.events",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not exist; event topics here:") && err.contains(&orders),
        "{err}"
    );
    let (code, _, err) = system.run(&["events", "export", "--topic", &orders, "--format", "xml"]);
    assert_eq!(code, 2, "clap refuses an unknown format");
    assert!(
        err.contains("possible values: jsonl, csv, parquet"),
        "{err}"
    );

    check_docs(system);
}

/// Runs every block of docs/operations.md and docs/analytics.md marked
/// runnable (```sh runnable, ```python runnable) against this system, with
/// `quickstore` and Kafka's `kafka-*.sh` tools on the PATH.
fn check_docs(system: &System) {
    let bin = system.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let quickstore = Path::new(env!("CARGO_BIN_EXE_quickstore"));
    for (script, tool) in [
        ("kafka-consumer-groups.sh", "consumer-groups"),
        ("kafka-topics.sh", "topics"),
        ("kafka-configs.sh", "configs"),
    ] {
        let path = bin.join(script);
        std::fs::write(
            &path,
            format!(
                "#!/usr/bin/env bash\nexec {} {tool} \"$@\"\n",
                root().join("deploy/kafka/tool.sh").display()
            ),
        )
        .unwrap();
        make_executable(&path);
    }
    let path = format!(
        "{}:{}:{}",
        bin.display(),
        quickstore.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let work = system.dir.path().join("docs-run");
    std::fs::create_dir_all(&work).unwrap();
    let python = python();
    let mut ran = 0;
    for doc in ["docs/operations.md", "docs/analytics.md"] {
        let text = std::fs::read_to_string(root().join(doc)).expect("the doc exists");
        for (lang, block) in runnable_blocks(&text) {
            let mut command = match lang.as_str() {
                "sh" => {
                    let mut c = Command::new("bash");
                    c.args(["-euo", "pipefail", "-c", &block]);
                    c
                }
                "python" => {
                    let mut c = Command::new(&python);
                    c.args(["-c", &block]);
                    c
                }
                other => panic!("{doc}: runnable block in unknown language {other}"),
            };
            for (key, _) in std::env::vars() {
                if key.starts_with("QS_") {
                    command.env_remove(key);
                }
            }
            command
                .envs(system.env.iter().map(|(k, v)| (k, v)))
                .env("PATH", &path)
                .current_dir(&work)
                .stdin(Stdio::null());
            let (code, out, err) = output_within(&mut command, Duration::from_secs(180));
            assert_eq!(
                code, 0,
                "{doc}: this block failed:\n{block}\n--- stdout\n{out}\n--- stderr\n{err}"
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} runnable blocks in the docs");
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// (language, body) of every fenced block whose info string is
/// `<lang> runnable`.
fn runnable_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        match &mut current {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    if let (Some(lang), Some("runnable")) = (words.next(), words.next()) {
                        current = Some((lang.to_owned(), String::new()));
                    }
                }
            }
            Some((_, body)) => {
                if line.starts_with("```") {
                    out.extend(current.take());
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    out
}

/// The embedded twin: the same commands on `quickstore dev`'s data dir.
#[test]
fn topics_apply_status_and_export_on_the_embedded_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quickstore = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
        for (key, _) in std::env::vars() {
            if key.starts_with("QS_") {
                command.env_remove(key);
            }
        }
        command.env("QS_DATA_DIR", dir.path()).stdin(Stdio::null());
        command
    };
    let (code, _, err) = output(quickstore().args(["dev", "--once", "--listen", "127.0.0.1:0"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = output(quickstore().args(["topics", "apply"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = output(quickstore().args(["topics", "apply", "--check", "--json"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let checks: Value = serde_json::from_str(&out).expect("JSON");
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 31);
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{checks:?}");
    let (code, out, err) = output(
        quickstore()
            .args(["topics", "apply", "--check"])
            .env("QS_PARTITIONS", "2"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("catalog.events: 6 partitions, the spec says 2"),
        "{out}\n{err}"
    );

    let (code, out, err) = output(quickstore().args(["status", "--json"]));
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).expect("JSON");
    assert!(status["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "orders.command-processor"));

    let (code, out, err) = output(quickstore().args([
        "events",
        "export",
        "--topic",
        "catalog.events",
        "--format",
        "jsonl",
    ]));
    assert_eq!(code, 0, "{err}");
    let rows = jsonl(&out);
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["aggregate_type"] == "Product" && r["hash"].as_str().unwrap().len() == 64));
    assert!(
        err.contains(&format!("exported {} events", rows.len())),
        "{err}"
    );

    // A topic of commands is not an event topic: refused, saying which are.
    let (code, _, err) = output(quickstore().args([
        "events",
        "export",
        "--topic",
        "catalog.commands",
        "--format",
        "jsonl",
    ]));
    assert_eq!(code, 1);
    assert!(
        err.contains("is not an event") && err.contains("export reads event topics"),
        "{err}"
    );
}
