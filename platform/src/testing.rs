//! Test support for every crate's suites (feature `testing`): the adapters
//! to run a case against, a loud failure when the real broker is missing,
//! and unique names so tests can share one broker in parallel.

use std::sync::Arc;

use crate::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use crate::eventlog::kafka::{KafkaConfig, KafkaLog};
use crate::eventlog::{EventLog, LogError};
use crate::readstore::{Consistency, CqlConfig, ReadStoreError};

/// The variable the test command sets to the real broker's address.
pub const KAFKA_ENV: &str = "QS_KAFKA_BOOTSTRAP";

/// The variable the test command sets to the real CQL node(s)
/// (`host:port`, comma-separated) for the read-store suites.
pub const CQL_ENV: &str = "QS_CQL_CONTACT_POINTS";

/// Which adapter a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestAdapter {
    Embedded,
    Kafka,
}

impl TestAdapter {
    pub const ALL: [TestAdapter; 2] = [TestAdapter::Embedded, TestAdapter::Kafka];

    pub fn name(self) -> &'static str {
        match self {
            TestAdapter::Embedded => "embedded",
            TestAdapter::Kafka => "kafka",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The real broker's address, or an error that says how to get one — a
/// test that needs Kafka never passes silently without it.
pub fn kafka_bootstrap() -> Result<String, LogError> {
    match std::env::var(KAFKA_ENV) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(LogError::Invalid(format!(
            "{KAFKA_ENV} is not set: this test needs a real Kafka broker. Run the project's test \
             command `deploy/test.sh` (it fetches and starts one), or start one with \
             `deploy/kafka/start.sh` and export the {KAFKA_ENV}=host:port it prints"
        ))),
    }
}

/// The real CQL node(s) (Cassandra or ScyllaDB), or an error that says how
/// to get one — a test that needs CQL never passes silently without it.
pub fn cql_contact_points() -> Result<Vec<String>, ReadStoreError> {
    let points: Vec<String> = std::env::var(CQL_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if points.is_empty() {
        return Err(ReadStoreError::Invalid(format!(
            "{CQL_ENV} is not set: this test needs a real CQL node (Cassandra or ScyllaDB). Run \
             the project's test command `deploy/test.sh` (it fetches and starts one), or start \
             one with `deploy/test-env.sh up` (or `deploy/cql/start.sh`) and export the \
             {CQL_ENV}=host:port it prints"
        )));
    }
    Ok(points)
}

/// The configuration of a test's own `keyspace` on the real CQL node(s)
/// ([`cql_contact_points`]): one replica, quorum reads and writes, and a
/// timeout that tolerates a node busy with the rest of the suite.
pub fn cql_test_config(keyspace: impl Into<String>) -> Result<CqlConfig, ReadStoreError> {
    let mut config = CqlConfig::new(cql_contact_points()?, keyspace);
    config.replication_factor = 1;
    config.consistency = Consistency::LocalQuorum;
    config.request_timeout = std::time::Duration::from_secs(30);
    Ok(config)
}

/// A fresh, unique name prefix (`t-<12 hex>.`) for topics and groups.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "{tag}-{}.",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Opens `adapter`: an embedded log in `dir`, or the broker at
/// [`KAFKA_ENV`].
pub fn open_log(
    adapter: TestAdapter,
    dir: &std::path::Path,
) -> Result<Arc<dyn EventLog>, LogError> {
    Ok(match adapter {
        TestAdapter::Embedded => Arc::new(EmbeddedLog::open(dir, EmbeddedOptions::default())?),
        TestAdapter::Kafka => Arc::new(KafkaLog::connect(KafkaConfig::new(kafka_bootstrap()?))?),
    })
}

/// Runs one test case on a fresh two-worker runtime (what the custom
/// libtest-mimic harnesses do per trial); the error, with its causes, is
/// the failure message.
pub fn run_case<E: std::fmt::Display>(
    case: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    // A hang must fail the case, not stall the whole suite (and CI).
    let limit = std::time::Duration::from_secs(600);
    match runtime.block_on(async { tokio::time::timeout(limit, case).await }) {
        Ok(result) => result.map_err(|e| format!("{e:#}")),
        Err(_) => Err(format!(
            "the case did not finish within {} s",
            limit.as_secs()
        )),
    }
}

/// In a suite that re-executes its own binary as a child process: if this
/// process is that child (`env` is set), runs `child` with the variable's
/// value and exits.
pub fn run_child_if_asked<E: std::fmt::Display>(
    env: &str,
    child: impl FnOnce(&str) -> Result<(), E>,
) {
    if let Ok(spec) = std::env::var(env) {
        if let Err(e) = child(&spec) {
            eprintln!("child process failed: {e:#}");
            std::process::exit(2);
        }
        std::process::exit(0);
    }
}
