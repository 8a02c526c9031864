//! `quickstore dev`: QuickStore in one process on the embedded log.
//!
//! For now (the foundation) it sets up the event log and contract, runs
//! the command processor on a demo aggregate so the log has something to
//! show, serves the schema registry, and prints where to go next. The
//! commerce services join it as they are built.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use command_api::processor::{system_clock, CommandProcessor, ProcessorConfig};
use command_api::testkit::counter::{self, Counter, IncrementCounter};
use platform::config::{EventLogBackend, Settings};
use platform::eventlog::{OutgoingRecord, TopicPartition};
use schemas::{CommandEnvelope, CommandOutcome};
use tokio::sync::watch;

use crate::cli::DevArgs;
use crate::system::System;

pub async fn run(mut settings: Settings, args: DevArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    // `dev` is the single-binary mode by definition.
    settings.event_log = EventLogBackend::Embedded;
    settings.schema_registry_url = None;
    let data_dir = settings.data_dir.clone();
    let system = System::connect(settings).await?;
    system.ensure_contract().await?;

    let demo = system.topology(counter::CONTEXT);
    system.log.create_topics(&demo.specs()).await?;
    counter::register_schemas(&system.codec, &demo).await?;

    let (stop, stopped) = watch::channel(false);
    let processor = CommandProcessor::<Counter>::new(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        demo.clone(),
        ProcessorConfig::new(
            format!(
                "{}{}.command-processor",
                system.topics.prefix,
                counter::CONTEXT
            ),
            format!(
                "{}{}.command-processor.dev",
                system.topics.prefix,
                counter::CONTEXT
            ),
        ),
        system_clock(),
    );
    let processor = tokio::spawn(processor.run(stopped));

    let sent = send_demo_commands(&system, &demo, args.demo_commands).await?;
    if !sent.is_empty() {
        wait_for_outcomes(&system, &demo.outcomes, &sent).await?;
    }

    println!(
        "QuickStore dev — embedded event log in {}",
        data_dir.display()
    );
    println!();
    crate::topics::print_topics(system.log.as_ref()).await?;
    println!();
    if sent.is_empty() {
        println!(
            "The demo counters exist from an earlier start ({} topic).",
            demo.events
        );
    } else {
        println!(
            "{} demo commands went through the command processor into {}.",
            sent.len(),
            demo.events
        );
    }
    if args.once {
        let _ = stop.send(true);
        processor.await??;
        println!("Next: `cargo run -p quickstore -- topics` lists them again; `deploy/test.sh` runs every test.");
        return Ok(());
    }
    // The Confluent default port when free, so tools find it without flags.
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:8081").await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let registry_url = format!("http://{}", listener.local_addr()?);
    let registry = Arc::new(schemas::registry::EmbeddedRegistry::open(
        data_dir.join("registry"),
    )?);
    println!("Schema registry (Confluent REST API) at {registry_url}");
    println!();
    println!("Next:");
    println!("  curl {registry_url}/subjects     # the subjects of the Avro contract");
    println!("  cargo run -p quickstore -- topics   # the topics (after Ctrl-C: the log is single-process)");
    println!("  deploy/test.sh                      # every test, real Kafka included");
    println!();
    println!("Serving until Ctrl-C.");
    let served = tokio::spawn(schemas::registry::http::serve(listener, registry));
    shutdown.received().await;
    // Graceful: the processor finishes its batch and leaves its group.
    let _ = stop.send(true);
    processor.await??;
    served.abort();
    eprintln!("stopped");
    Ok(())
}

/// Sends the demo commands unless an earlier start already did.
async fn send_demo_commands(
    system: &System,
    demo: &command_api::topology::CommandTopology,
    count: u32,
) -> Result<HashSet<String>> {
    let mut already = 0;
    for p in 0..demo.partitions {
        already += system
            .log
            .end_offset(&TopicPartition::new(demo.commands.clone(), p))
            .await?;
    }
    let mut sent = HashSet::new();
    if already > 0 || count == 0 {
        return Ok(sent);
    }
    let producer = system.log.producer("quickstore-dev").await?;
    for i in 0..count {
        let id = format!("demo-{i}");
        let envelope = CommandEnvelope {
            command_id: id.clone(),
            aggregate_type: "Counter".to_owned(),
            aggregate_id: format!("demo-counter-{}", i % 10),
            expected_version: None,
            issued_at: 1_767_225_600_000 + i64::from(i),
            correlation_id: id.clone(),
            causation_id: id.clone(),
            actor: "dev".to_owned(),
            reply_to: None,
        };
        let bytes =
            system
                .codec
                .encode_command(&demo.commands, &envelope, &IncrementCounter { by: 1 })?;
        producer
            .send(OutgoingRecord::new(
                demo.commands.clone(),
                envelope.aggregate_id,
                bytes,
            ))
            .await?;
        sent.insert(id);
    }
    Ok(sent)
}

async fn wait_for_outcomes(
    system: &System,
    outcomes_topic: &str,
    sent: &HashSet<String>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = HashSet::new();
        for record in platform::eventlog::read_topic(system.log.as_ref(), outcomes_topic).await? {
            let outcome: CommandOutcome = system
                .codec
                .decode_record(record.value.as_deref().unwrap_or_default())
                .await?;
            seen.insert(outcome.command_id);
        }
        if sent.iter().all(|id| seen.contains(id)) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the demo commands got no outcome within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
