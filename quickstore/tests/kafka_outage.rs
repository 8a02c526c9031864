//! The Kafka broker restarts under a live follower (a broker of this
//! test's own, so stopping it disturbs no other test; a test binary of its
//! own, so cargo runs it alone).
//!
//! A follower is how the command API hears its commands' outcomes, the
//! price book its catalog and every process its token revocations. One that
//! ended on the restart's "all brokers down" and followed again from the
//! then current end missed whatever was committed in between: the chaos
//! run's acknowledged courier commands that were never answered (ADR 0028).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

#[path = "support/own_server.rs"]
mod own_server;

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use futures::StreamExt;
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{Cleanup, EventLog, OutgoingRecord, TopicSpec};

use own_server::{Kind, OwnServer};

/// Sends `values` and waits until each is durable.
async fn produce(log: &KafkaLog, topic: &str, values: &[String]) -> Result<()> {
    let producer = log.producer("kafka-outage").await?;
    for (i, value) in values.iter().enumerate() {
        producer
            .send(OutgoingRecord::new(
                topic.to_owned(),
                format!("k{i}"),
                value.clone(),
            ))
            .await?;
    }
    Ok(())
}

async fn follower_keeps_its_place() -> Result<()> {
    let broker = OwnServer::start(Kind::Kafka, "outage").await?;
    let log = KafkaLog::connect(KafkaConfig::new(broker.address.clone()))?;
    let topic = format!("outage.{}", uuid::Uuid::new_v4().simple());
    log.create_topics(&[TopicSpec::new(topic.clone(), 3, Cleanup::KeepForever)])
        .await?;
    let mut tail = log.follow(&topic).await?;
    // Read on a task of its own, as the command API does, so the tail sees
    // the restart while it happens.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(item) = tail.next().await {
            let item = item.map(|r| {
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
            });
            let ended = item.is_err();
            if seen_tx.send(item).is_err() || ended {
                break;
            }
        }
    });
    let before: Vec<String> = (0..30).map(|i| format!("before-{i}")).collect();
    let after: Vec<String> = (0..30).map(|i| format!("after-{i}")).collect();
    produce(&log, &topic, &before).await?;
    let mut got = Vec::new();
    receive(&mut seen, &mut got, before.len()).await?;

    broker.stop().await?;
    // Long enough for every client to notice: librdkafka reports the
    // broker gone within a second of the connection dropping.
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.resume().await?;
    produce(&log, &topic, &after).await?;
    receive(&mut seen, &mut got, before.len() + after.len()).await?;

    let mut expected: Vec<String> = before.into_iter().chain(after).collect();
    expected.sort();
    got.sort();
    if got != expected {
        bail!("the tail delivered {got:?}, not every record once");
    }
    reader.abort();
    Ok(())
}

/// Collects values until `want` arrived; an error item is the tail ending.
async fn receive(
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<Result<String, platform::eventlog::LogError>>,
    got: &mut Vec<String>,
    want: usize,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while got.len() < want {
        let item = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .with_context(|| format!("the tail delivered {} of {want} records in 90 s", got.len()))?
            .context("the tail ended without an error")?;
        match item {
            Ok(value) => got.push(value),
            Err(e) => bail!("the tail ended on the broker restart: {e}"),
        }
    }
    Ok(())
}

#[test]
fn a_follower_keeps_its_place_across_a_broker_restart() {
    if let Err(e) = platform::testing::run_case(follower_keeps_its_place()) {
        panic!("{e:#}");
    }
}
