//! `quickstore projections run` with `QS_OPS_LISTEN`: the real binary
//! serves `/metrics`, `/healthz` and `/readyz`, and stops on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context as _, Result};
use platform::testing::TestAdapter;
use reqwest::StatusCode;

pub async fn projections_run_serves_an_ops_listener(adapter: TestAdapter) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    command
        .args(["projections", "run"])
        .env("QS_DATA_DIR", dir.path())
        .env("QS_OPS_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let keyspace = format!(
        "qs_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    if adapter == TestAdapter::Kafka {
        let registry = std::env::var(crate::app::REGISTRY_ENV)
            .context("QS_SCHEMA_REGISTRY_URL is not set (deploy/test.sh starts a registry)")?;
        command
            .env("QS_EVENT_LOG", "kafka")
            .env("QS_KAFKA_BOOTSTRAP", platform::testing::kafka_bootstrap()?)
            .env("QS_SCHEMA_REGISTRY_URL", registry)
            .env("QS_TOPIC_PREFIX", platform::testing::unique_prefix("ops"))
            .env("QS_PARTITIONS", "3")
            .env("QS_READ_STORE", "cql")
            .env(
                "QS_CQL_CONTACT_POINTS",
                platform::testing::cql_contact_points()?.join(","),
            )
            .env("QS_CQL_KEYSPACE", &keyspace);
    }
    let mut child = command
        .spawn()
        .context("spawning quickstore projections run")?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let result = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let ready = loop {
            ensure!(child.try_wait()?.is_none(), "projections run exited early");
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
                if r.status() == StatusCode::OK {
                    break r.json::<serde_json::Value>().await?;
                }
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "{url}/readyz never answered 200"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        for check in ["event-log", "schema-registry", "read-store"] {
            ensure!(ready["checks"][check] == "ok", "{ready}");
        }
        let healthz = http.get(format!("{url}/healthz")).send().await?;
        ensure!(
            healthz.status() == StatusCode::OK,
            "/healthz: {}",
            healthz.status()
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let text = http
                .get(format!("{url}/metrics"))
                .send()
                .await?
                .text()
                .await?;
            if text.contains("quickstore_projection_lag{projection=\"orders\"} 0")
                && text
                    .contains("quickstore_dlq_size{kind=\"parked_keys\",projection=\"orders\"} 0")
                && text.contains("route=\"/readyz\",service=\"ops\"")
            {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the ops listener's /metrics lacks the projectors' series:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
    .await;
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    result?;
    ensure!(
        status.success(),
        "projections run did not stop cleanly: {status}"
    );
    if adapter == TestAdapter::Kafka {
        // Leave the shared CQL node as it was.
        platform::readstore::CqlStore::connect(platform::readstore::CqlConfig::new(
            platform::testing::cql_contact_points()?,
            keyspace,
        ))
        .await?
        .drop_keyspace()
        .await?;
    }
    Ok(())
}
