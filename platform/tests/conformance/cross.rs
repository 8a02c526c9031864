//! Records written through one adapter with the contract's codec decode
//! after travelling through the other — both directions, one sample of
//! every event of the contract, with a cold codec on the reading side (it
//! must fetch every schema by id from the registry).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{ensure, Context as _, Result};
use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use platform::eventlog::kafka::{KafkaConfig, KafkaLog};
use platform::eventlog::{read_topic, Cleanup, EventLog, LogRecord, OutgoingRecord, TopicSpec};
use platform::partitioner::partition_for_key;
use schemas::contract::{self, DefKind};
use schemas::registry::{
    ConfluentRegistry, ConfluentRegistryConfig, EmbeddedRegistry, SchemaRegistry,
};
use schemas::{AnyEvent, AvroCodec, Context, TopicNames};

const PARTITIONS: i32 = 3;
pub const REGISTRY_ENV: &str = "QS_SCHEMA_REGISTRY_URL";

/// Kafka (Confluent registry over HTTP) → embedded, and embedded (embedded
/// registry) → Kafka.
pub async fn records_decode_across_adapters() -> Result<()> {
    let url = std::env::var(REGISTRY_ENV).map_err(|_| {
        anyhow::anyhow!(
            "{REGISTRY_ENV} is not set: this case needs a schema registry. Run `deploy/test.sh`, \
             which starts one, or export the URL of yours"
        )
    })?;
    let kafka: Arc<dyn EventLog> = Arc::new(KafkaLog::connect(KafkaConfig::new(
        platform::testing::kafka_bootstrap()?,
    ))?);
    let dir = tempfile::tempdir()?;
    let embedded: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(
        &dir.path().join("log"),
        EmbeddedOptions::default(),
    )?);

    let confluent = || -> Result<Arc<dyn SchemaRegistry>> {
        Ok(Arc::new(ConfluentRegistry::new(
            ConfluentRegistryConfig::new(url.clone()),
        )?))
    };
    travel(&kafka, &embedded, confluent()?, &confluent, "x-k2e")
        .await
        .context("kafka -> embedded")?;

    let registry_dir = dir.path().join("registry");
    let writer_registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::open(&registry_dir)?);
    // The reader opens the registry's file afresh (after the writer
    // registered): ids must survive that, as across `quickstore dev` restarts.
    let reopen = || -> Result<Arc<dyn SchemaRegistry>> {
        Ok(Arc::new(EmbeddedRegistry::open(&registry_dir)?))
    };
    travel(&embedded, &kafka, writer_registry, &reopen, "x-e2k")
        .await
        .context("embedded -> kafka")?;
    Ok(())
}

/// Encodes a sample of every event with a codec on `writer_registry`,
/// appends them to `from`, copies what `from` stores byte for byte into
/// `to`, and decodes what `to` returns with a cold codec on
/// `reader_registry`: same events, same bytes, same partitions.
async fn travel(
    from: &Arc<dyn EventLog>,
    to: &Arc<dyn EventLog>,
    writer_registry: Arc<dyn SchemaRegistry>,
    reader_registry: &dyn Fn() -> Result<Arc<dyn SchemaRegistry>>,
    tag: &str,
) -> Result<()> {
    let topics = TopicNames::new(platform::testing::unique_prefix(tag));
    let specs: Vec<TopicSpec> = Context::ALL
        .iter()
        .map(|c| TopicSpec::new(topics.events(*c), PARTITIONS, Cleanup::KeepForever))
        .collect();
    from.create_topics(&specs).await?;
    to.create_topics(&specs).await?;
    let writer = AvroCodec::new(writer_registry);
    writer.register_contract(&topics).await?;

    // One sample of every event, encoded by the writer's codec.
    let mut written: HashMap<Vec<u8>, (String, schemas::EventEnvelope, AnyEvent)> = HashMap::new();
    let producer = from.producer("cross").await?;
    for def in contract::defs().iter().filter(|d| d.kind == DefKind::Event) {
        let context = def.context.context("an event without a context")?;
        let topic = topics.events(context);
        let schema = contract::schema(def.full_name).context("schema missing")?;
        let id = writer
            .schema_id_for(&topic, def.full_name)
            .context("not registered")?;
        let body = schemas::testing::sample_body(schema, true);
        let mut bytes = Vec::new();
        schemas::codec::wire::write_header(id, &mut bytes);
        bytes.extend_from_slice(&body);
        // Decode once so the record is keyed by its aggregate id, as the
        // processor would key it.
        let (envelope, event) = writer.decode_event::<AnyEvent>(&bytes).await?;
        let record = OutgoingRecord::new(topic, envelope.aggregate_id.clone(), bytes.clone())
            .with_header("event_type", def.full_name);
        producer.send(record).await?;
        written.insert(bytes, (def.full_name.to_owned(), envelope, event));
    }
    ensure!(written.len() >= 30, "only {} events sampled", written.len());

    // Copy what `from` stored, partition for partition.
    let copier = to.producer("cross-copy").await?;
    let mut copied = 0;
    for spec in &specs {
        for r in read_topic(from.as_ref(), &spec.name).await? {
            ensure!(
                r.partition == partition_for_key(&r.key, PARTITIONS),
                "{} misplaced in {}",
                key(&r),
                spec.name
            );
            let mut out = OutgoingRecord::new(
                r.topic.clone(),
                r.key.clone(),
                r.value.clone().unwrap_or_default(),
            );
            out.headers = r.headers.clone();
            out.partition = Some(r.partition);
            copier.send(out).await?;
            copied += 1;
        }
    }
    ensure!(
        copied == written.len(),
        "copied {copied} of {} records",
        written.len()
    );

    // A cold codec decodes everything `to` returns.
    let reader = AvroCodec::new(reader_registry()?);
    let mut decoded = 0;
    for spec in &specs {
        for r in read_topic(to.as_ref(), &spec.name).await? {
            let bytes = r.value.clone().unwrap_or_default();
            let (name, sent_envelope, sent_event) = written
                .get(&bytes)
                .with_context(|| format!("{} arrived altered", key(&r)))?;
            let (envelope, event) = reader.decode_event::<AnyEvent>(&bytes).await?;
            ensure!(
                &event == sent_event,
                "{name} decodes differently on the other side"
            );
            ensure!(&envelope == sent_envelope, "{name}: envelope differs");
            ensure!(
                r.partition == partition_for_key(envelope.aggregate_id.as_bytes(), PARTITIONS),
                "moved partition"
            );
            ensure!(
                r.header("event_type") == Some(name.as_bytes()),
                "headers lost"
            );
            decoded += 1;
        }
    }
    ensure!(
        decoded == written.len(),
        "decoded {decoded} of {}",
        written.len()
    );
    Ok(())
}

fn key(r: &LogRecord) -> String {
    String::from_utf8_lossy(&r.key).into_owned()
}
