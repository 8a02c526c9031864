//! The raw consume baseline: how fast the log hands back the projector's
//! input when nothing decodes, projects or writes it.
//!
//! - Kafka: an rdkafka `BaseConsumer`, read_committed like every QuickStore
//!   reader, assigned every partition from offset 0, with the same fetch
//!   settings as the log adapter's client config; it counts records.
//! - Embedded: a member of a fresh group on the log port, polling batches
//!   of the projector's size; it counts records.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use platform::config::Settings;
use platform::eventlog::{EventLog, GroupConfig, GroupEvent};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::load::{cpu_delta, process_cpu};

#[derive(Debug, Clone, Serialize)]
pub struct ConsumeReport {
    pub records: u64,
    pub records_per_sec: f64,
    pub cpu_us_per_record: Option<f64>,
}

/// Reads `records` committed records of `topic` from offset 0.
pub async fn raw_consume(
    settings: &Settings,
    log: &dyn EventLog,
    kafka: bool,
    topic: &str,
    records: u64,
    batch: usize,
) -> Result<ConsumeReport> {
    let (cpu0, started) = (process_cpu(), Instant::now());
    let counted = if kafka {
        let partitions = log.partition_count(topic).await?;
        let mut config = settings.kafka();
        config.bootstrap_servers = std::env::var("QS_KAFKA_BOOTSTRAP")
            .unwrap_or_else(|_| settings.kafka_bootstrap.clone());
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || kafka_consume(config, &topic, partitions, records))
            .await??
    } else {
        port_consume(log, topic, records, batch).await?
    };
    let elapsed = started.elapsed();
    Ok(ConsumeReport {
        records: counted,
        records_per_sec: counted as f64 / elapsed.as_secs_f64().max(1e-9),
        cpu_us_per_record: cpu_delta(cpu0, process_cpu())
            .map(|c| c.as_secs_f64() * 1e6 / counted.max(1) as f64),
    })
}

fn kafka_consume(
    config: platform::eventlog::kafka::KafkaConfig,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<u64> {
    let consumer: BaseConsumer = config
        .client_config()
        .set(
            "group.id",
            format!("bench-raw-consume-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut counted = 0;
    while counted < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => counted += 1,
            Some(Err(e)) => bail!("raw consume: {e}"),
            None if Instant::now() > deadline => {
                bail!("raw consume: {counted} of {records} records within 10 minutes")
            }
            None => {}
        }
    }
    Ok(counted)
}

async fn port_consume(log: &dyn EventLog, topic: &str, records: u64, batch: usize) -> Result<u64> {
    let group = format!("bench-raw-consume-{}", uuid::Uuid::new_v4().simple());
    let mut member = log
        .join_group(GroupConfig::new(group, vec![topic.to_owned()]))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut counted = 0;
    while counted < records {
        for event in member.poll(batch, Duration::from_millis(100)).await? {
            if let GroupEvent::Records(r) = event {
                counted += r.len() as u64;
            }
        }
        if Instant::now() > deadline {
            bail!("raw consume: {counted} of {records} records within 10 minutes");
        }
    }
    member.close().await?;
    Ok(counted)
}
