//! The production shape: each role in its own `quickstore serve --role …`
//! process (as docker-compose.yml and the Helm chart run them), on the real
//! Kafka broker and the real CQL node. An order placed through the command
//! API of one process must be decided by a second, driven by the saga in a
//! third, projected by a fourth and read through the query API of a fifth;
//! every process must stop cleanly on SIGTERM.
//!
//! Kafka only: the embedded log belongs to one process (its data directory
//! is locked), so roles cannot be split over processes on it.
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a test that cannot even start the binary should fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Env {
    bootstrap: String,
    registry: String,
    cql: String,
    prefix: String,
    keyspace: String,
}

impl Env {
    fn from_test_env() -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let (bootstrap, registry, cql) = (
            var("QS_KAFKA_BOOTSTRAP"),
            var("QS_SCHEMA_REGISTRY_URL"),
            var("QS_CQL_CONTACT_POINTS"),
        );
        assert!(
            !bootstrap.is_empty() && !registry.is_empty() && !cql.is_empty(),
            "QS_KAFKA_BOOTSTRAP, QS_SCHEMA_REGISTRY_URL and QS_CQL_CONTACT_POINTS must be set: \
             this test needs a real broker, registry and CQL node (run deploy/test.sh)"
        );
        let run = format!("{}{}", std::process::id(), rand_suffix());
        Self {
            bootstrap,
            registry,
            cql,
            prefix: format!("roles{run}."),
            keyspace: format!("qs_roles_{run}"),
        }
    }

    fn command(&self, data_dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
        for (key, _) in std::env::vars() {
            if key.starts_with("QS_") {
                command.env_remove(key);
            }
        }
        command
            .env("QS_DATA_DIR", data_dir)
            .env("QS_EVENT_LOG", "kafka")
            .env("QS_KAFKA_BOOTSTRAP", &self.bootstrap)
            .env("QS_SCHEMA_REGISTRY_URL", &self.registry)
            .env("QS_TOPIC_PREFIX", &self.prefix)
            .env("QS_READ_STORE", "cql")
            .env("QS_CQL_CONTACT_POINTS", &self.cql)
            .env("QS_CQL_KEYSPACE", &self.keyspace)
            .stdin(Stdio::null());
        command
    }
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{nanos:x}")
}

/// A role's process; killed (SIGKILL) if the test fails before it stops it.
struct Role {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Role {
    fn start(env: &Env, dir: &Path, name: &'static str, extra: &[&str]) -> Self {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).expect("data dir");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = env
            .command(&data)
            // Every role gets an ops listener (/metrics, /healthz, /readyz).
            .env("QS_OPS_LISTEN", "127.0.0.1:0")
            .args(["serve", "--role", name])
            .args(extra)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn quickstore serve");
        Self { name, child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The ops listener's URL, from the line the role prints.
    fn ops_url(&self) -> String {
        let out = self.output();
        let line = out
            .lines()
            .find_map(|l| l.split("ops listener at ").nth(1))
            .unwrap_or_else(|| panic!("role {} printed no ops listener:\n{out}", self.name));
        line.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "role {} exited early ({status}):\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// SIGTERM, then the exit status within 60 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "role {} did not stop cleanly ({status}):\n{}",
                    self.name,
                    self.output()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "role {} ignored SIGTERM for 60 s:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_file(path: &Path, role: &mut Role) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(url) = std::fs::read_to_string(path) {
            return url;
        }
        role.assert_running();
        assert!(
            Instant::now() < deadline,
            "role {} did not serve within 120 s:\n{}",
            role.name,
            role.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn five_roles_in_five_processes_complete_an_order() {
    let env = Env::from_test_env();
    let dir = tempfile::tempdir().expect("tempdir");

    // What the compose file's init services do: the keyspace and tables.
    let schema = env
        .command(dir.path())
        .args(["schema", "apply"])
        .output()
        .expect("schema apply runs");
    assert!(
        schema.status.success(),
        "schema apply failed:\n{}",
        String::from_utf8_lossy(&schema.stderr)
    );

    // Workers first: seeding the demo shop waits for the processors.
    let processor = Role::start(&env, dir.path(), "command-processor", &["--instance", "p1"]);
    let sagas = Role::start(
        &env,
        dir.path(),
        "sagas",
        &["--instance", "s1", "--simulated-couriers", "2"],
    );
    let projectors = Role::start(&env, dir.path(), "projectors", &[]);
    let command_url_file = dir.path().join("command.url");
    let mut command_api = Role::start(
        &env,
        dir.path(),
        "command-api",
        &[
            "--listen",
            "127.0.0.1:0",
            "--seed-demo",
            "--url-file",
            command_url_file.to_str().expect("utf-8 path"),
        ],
    );
    let command = wait_for_file(&command_url_file, &mut command_api);
    let query_url_file = dir.path().join("query.url");
    let jwks = format!("{command}/.well-known/jwks.json");
    let mut query_api = Role::start(
        &env,
        dir.path(),
        "query-api",
        &[
            "--query-listen",
            "127.0.0.1:0",
            "--jwks-url",
            &jwks,
            "--url-file",
            query_url_file.to_str().expect("utf-8 path"),
        ],
    );
    let query = wait_for_file(&query_url_file, &mut query_api);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{command}/auth/login"))
            .json(&json!({"email": quickstore::seed::DEMO_CUSTOMER, "password": quickstore::seed::DEMO_PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login json");
        let token = login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {login}"))
            .to_owned();
        let placed = http
            .post(format!("{command}/orders"))
            .bearer_auth(&token)
            .header("idempotency-key", "roles-order-1")
            .json(&json!({
                "lines": [{"sku": "MUG-1", "quantity": 2}],
                "payment": {"card_number": "4242 4242 4242 4242"},
                "shipping_address": {"recipient": "Carl", "line1": "1 Main St", "city": "Berlin",
                                     "postal_code": "10115", "country": "DE"}
            }))
            .send()
            .await
            .expect("place order");
        assert!(
            placed.status().is_success(),
            "place order: {}",
            placed.status()
        );
        let placed: Value = placed.json().await.expect("order json");
        let order_id = placed["order_id"]
            .as_str()
            .or_else(|| placed["id"].as_str())
            .unwrap_or_else(|| panic!("no order id in {placed}"))
            .to_owned();
        let position = placed["position"].as_str().unwrap_or_default().to_owned();

        // Read-your-writes across processes: never a 404 with the token.
        let first = http
            .get(format!("{query}/orders/{order_id}"))
            .bearer_auth(&token)
            .header("x-position-token", &position)
            .send()
            .await
            .expect("read order");
        assert_eq!(first.status(), 200, "{:?}", first.text().await);

        // The saga (process 3) with its couriers drives it to the end; the
        // projectors (process 4) show it in the query API (process 5).
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let order: Value = http
                .get(format!("{query}/orders/{order_id}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("read order")
                .json()
                .await
                .expect("order json");
            let status = order["status"].as_str().unwrap_or_default().to_owned();
            if status == "COMPLETED" || Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    assert_eq!(
        status,
        "COMPLETED",
        "the order did not complete across five processes; sagas log:\n{}",
        sagas.output()
    );
    // Every role is ready and exposes its metrics on its ops listener.
    let roles = [query_api, command_api, projectors, sagas, processor];
    runtime.block_on(async {
        let http = reqwest::Client::new();
        for role in &roles {
            let ops = role.ops_url();
            let ready = http
                .get(format!("{ops}/readyz"))
                .send()
                .await
                .expect("readyz");
            assert_eq!(
                ready.status(),
                200,
                "{} not ready: {:?}",
                role.name,
                ready.text().await
            );
            let metrics = http
                .get(format!("{ops}/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            assert!(
                metrics.contains("quickstore_"),
                "{} exposes no quickstore_ series",
                role.name
            );
        }
    });
    for role in roles {
        role.stop();
    }
}
