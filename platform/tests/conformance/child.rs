//! The crash case needs a member that really dies: the suite re-executes its
//! own binary as a child process, which consumes and commits a few
//! transactions, opens one more and reports; the parent then SIGKILLs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{EventLog, GroupEvent, LogRecord, OffsetCommit, OutgoingRecord};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{next_offsets, Adapter};

pub const CHILD_ENV: &str = "QS_CONFORMANCE_CHILD";
const BATCH: usize = 5;
const COMMITTED_BATCHES: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashMember {
    #[serde(with = "adapter_name")]
    pub adapter: Adapter,
    pub data_dir: Option<PathBuf>,
    pub group: String,
    pub input: String,
    pub output: String,
    pub transactional_id: String,
}

mod adapter_name {
    use super::Adapter;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(a: &Adapter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Adapter, D::Error> {
        Ok(if String::deserialize(d)? == "kafka" {
            Adapter::Kafka
        } else {
            Adapter::Embedded
        })
    }
}

/// Spawns the child, waits until it has committed its batches and holds an
/// open transaction, kills it with SIGKILL. Returns how many outputs it
/// committed.
pub async fn run_and_kill(spec: &CrashMember) -> Result<usize> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .env(CHILD_ENV, serde_json::to_string(spec)?)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("spawning the crash child")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut committed = 0usize;
    let outcome = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(n) = line.strip_prefix("committed ") {
                committed = n.trim().parse()?;
            } else if line.trim() == "open" {
                return Ok::<bool, anyhow::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    // SIGKILL: no destructor, no clean leave, no abort of the open transaction.
    child.start_kill()?;
    let status = child.wait().await?;
    match outcome {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => bail!("child exited before opening its last transaction ({status})"),
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("child did not reach its open transaction in time"),
    }
    if committed != BATCH * COMMITTED_BATCHES {
        bail!("child reported {committed} committed outputs");
    }
    Ok(committed)
}

/// Entry point of the child process.
pub fn child_main(spec_json: &str) -> Result<()> {
    let spec: CrashMember = serde_json::from_str(spec_json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let log: Arc<dyn EventLog> = match spec.adapter {
            Adapter::Embedded => {
                let dir = spec
                    .data_dir
                    .clone()
                    .context("embedded child needs a data dir")?;
                Arc::new(EmbeddedLog::open(&dir, EmbeddedOptions::default())?)
            }
            Adapter::Kafka => Arc::new(KafkaLog::connect(KafkaConfig::new(
                crate::harness::kafka_bootstrap()?,
            ))?),
        };
        let mut config =
            platform::eventlog::GroupConfig::new(spec.group.clone(), vec![spec.input.clone()])
                .transactional(spec.transactional_id.clone());
        config.session_timeout = Duration::from_millis(1500);
        config.max_poll_interval = Duration::from_millis(2500);
        config.transaction_timeout = Duration::from_secs(5);
        let mut member = log.join_group(config).await?;

        let mut pending: Vec<LogRecord> = Vec::new();
        let mut processed: Vec<LogRecord> = Vec::new();
        let mut batches = 0usize;
        loop {
            for event in member.poll(100, Duration::from_millis(200)).await? {
                if let GroupEvent::Records(rs) = event {
                    pending.extend(rs);
                }
            }
            while pending.len() >= BATCH {
                let batch: Vec<LogRecord> = pending.drain(..BATCH).collect();
                member.begin().await?;
                if batches == COMMITTED_BATCHES {
                    for r in &batch {
                        member.send(OutgoingRecord::new(
                            spec.output.clone(),
                            r.key.clone(),
                            b"uncommitted".to_vec(),
                        ))?;
                    }
                    println!("open");
                    // Wait to be killed, transaction open.
                    loop {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
                for r in &batch {
                    member.send(OutgoingRecord::new(
                        spec.output.clone(),
                        r.key.clone(),
                        r.value.clone().unwrap_or_default(),
                    ))?;
                }
                processed.extend(batch);
                let offsets: Vec<OffsetCommit> = next_offsets(&processed)
                    .into_iter()
                    .map(|(tp, next_offset)| OffsetCommit {
                        tp,
                        next_offset,
                        metadata: String::new(),
                    })
                    .collect();
                member.commit_transaction(&offsets).await?;
                batches += 1;
                println!("committed {}", processed.len());
            }
        }
    })
}
