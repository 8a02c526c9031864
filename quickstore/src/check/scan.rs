//! The reader: every partition of the command, outcome, event and saga
//! topics from its first stored offset to its read_committed end as of
//! the start (what is appended meanwhile is left for the next check), each
//! record decoded once per use and fed to the ledgers. One pass per topic;
//! memory is the ledgers' per-aggregate state.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use futures::StreamExt;
use platform::eventlog::{EventLog, LogRecord, TopicPartition};
use platform::readstore::ReadStore;
use projectors::projection::{Input, Projected};
use schemas::{
    AnyCommand, AnyEvent, AvroCodec, CodecError, CommandOutcome, Context, OrderFulfillmentStep,
    TopicNames, ORDER_FULFILLMENT,
};

use super::commands::CommandLedger;
use super::money::MoneyLedger;
use super::read_models::{self, ReadModelFold};
use super::report::{Position, Report};
use super::sagas::SagaLedger;
use super::stock::StockLedger;
use super::{chains, CheckOptions};
use crate::audit::check::{ChainChecker, Location, Seen};
use crate::audit::decode::{decode, DecodeError};

/// The topics a check reads (those that exist).
#[derive(Debug, Clone, Default)]
pub struct CheckTopics {
    /// (context, commands topic).
    pub commands: Vec<(Context, String)>,
    pub outcomes: Option<String>,
    pub events: Vec<String>,
    pub saga_steps: Option<String>,
}

impl CheckTopics {
    pub fn all(&self) -> Vec<String> {
        let mut out: Vec<String> = self.commands.iter().map(|(_, t)| t.clone()).collect();
        out.extend(self.outcomes.clone());
        out.extend(self.events.clone());
        out.extend(self.saga_steps.clone());
        out
    }
}

/// Which of QuickStore's topics the log has; none of the event topics is
/// an error that says where to look.
pub async fn topics(log: &dyn EventLog, names: &TopicNames) -> Result<CheckTopics> {
    let existing = log.list_topics().await.context("listing the log's topics (is the log reachable? QS_EVENT_LOG, QS_KAFKA_BOOTSTRAP, QS_DATA_DIR)")?;
    let has = |t: &String| existing.contains(t);
    let mut out = CheckTopics::default();
    for context in Context::ALL {
        let c = names.commands(context);
        if has(&c) {
            out.commands.push((context, c));
        }
        let e = names.events(context);
        if has(&e) {
            out.events.push(e);
        }
    }
    out.outcomes = Some(names.command_outcomes()).filter(has);
    out.saga_steps = Some(names.saga_events(ORDER_FULFILLMENT)).filter(has);
    if out.events.is_empty() {
        bail!(
            "the log has none of the event topics (e.g. {}): check QS_EVENT_LOG, QS_DATA_DIR or QS_KAFKA_BOOTSTRAP, \
             and QS_TOPIC_PREFIX (`quickstore topics` lists what is there)",
            names.events(Context::Orders)
        );
    }
    Ok(out)
}

/// Every partition's read_committed end (to see whether the log grows).
pub async fn ends(log: &dyn EventLog, topics: &[String]) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for topic in topics {
        for p in 0..log
            .partition_count(topic)
            .await
            .with_context(|| format!("reading {topic}"))?
        {
            out.push(
                log.end_offset(&TopicPartition::new(topic.clone(), p))
                    .await?,
            );
        }
    }
    Ok(out)
}

/// Reads `topic` from its start to its end as of now (or, per partition,
/// to `cut` where given), each record to the ledgers as `kind`.
async fn read_all(
    log: &dyn EventLog,
    topic: &str,
    ledgers: &mut Ledgers<'_>,
    kind: Kind,
    cut: Option<&[i64]>,
) -> Result<()> {
    let partitions = log
        .partition_count(topic)
        .await
        .with_context(|| format!("reading the partitions of {topic}"))?;
    for p in 0..partitions {
        let tp = TopicPartition::new(topic.to_owned(), p);
        let start = log
            .start_offset(&tp)
            .await
            .with_context(|| format!("{tp}"))?;
        let end = match cut.and_then(|c| c.get(p as usize)) {
            Some(&end) => end,
            None => log.end_offset(&tp).await.with_context(|| format!("{tp}"))?,
        };
        if matches!(kind, Kind::Event | Kind::Saga) {
            ledgers.read_to.insert(tp.clone(), (kind, end));
        }
        let mut stream = log.read_range(tp.clone(), start, end);
        while let Some(record) = stream.next().await {
            let record = record.with_context(|| format!("reading {tp}"))?;
            match kind {
                Kind::Event => ledgers.event(record, partitions).await?,
                Kind::Saga => ledgers.saga_step(record, partitions).await?,
                Kind::Command => ledgers.command(record).await?,
                Kind::Outcome => ledgers.outcome(record).await?,
            }
        }
    }
    Ok(())
}

fn position(record: &LogRecord) -> Position {
    Position {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
    }
}

fn registry_down(e: &CodecError, record: &LogRecord) -> Option<anyhow::Error> {
    matches!(e, CodecError::Registry(_)).then(|| {
        anyhow::anyhow!(
            "the schema registry did not answer while decoding {}/{}@{}: {e} (is QS_SCHEMA_REGISTRY_URL right and the registry up?)",
            record.topic, record.partition, record.offset
        )
    })
}

/// The ledgers one scan feeds.
struct Ledgers<'a> {
    codec: &'a AvroCodec,
    chain: ChainChecker,
    commands: CommandLedger,
    stock: StockLedger,
    money: MoneyLedger,
    sagas: SagaLedger,
    fold: Option<ReadModelFold>,
    /// Where the scan stopped reading each event and saga partition (the
    /// read-model comparison follows the log from there).
    read_to: HashMap<TopicPartition, (Kind, i64)>,
}

impl Ledgers<'_> {
    async fn chained(&mut self, record: &LogRecord, partitions: i32) -> Result<bool> {
        let at = Location {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
        };
        match decode(self.codec, record).await {
            Ok(d) => {
                self.chain.check(Seen { at: &at, key: &record.key, partitions: Some(partitions), link: &d.link, event_id: &d.envelope.event_id });
                Ok(true)
            }
            Err(DecodeError::NotAnEvent(reason)) => {
                self.chain.undecodable(&at, &reason);
                Ok(false)
            }
            Err(DecodeError::Registry(e)) => bail!(
                "the schema registry did not answer while decoding {}/{}@{}: {e} (is QS_SCHEMA_REGISTRY_URL right and the registry up?)",
                record.topic, record.partition, record.offset
            ),
        }
    }

    async fn event(&mut self, record: LogRecord, partitions: i32) -> Result<()> {
        if !self.chained(&record, partitions).await? {
            return Ok(());
        }
        let value = record.value.as_deref().unwrap_or_default();
        let (envelope, event) = match self.codec.decode_event::<AnyEvent>(value).await {
            Ok(d) => d,
            Err(e) => match registry_down(&e, &record) {
                Some(down) => return Err(down),
                None => return Ok(()), // the chain checker has no complaint; nothing to fold
            },
        };
        let at = position(&record);
        self.commands.event(&envelope.command_id);
        match &event {
            AnyEvent::Inventory(e) => {
                self.stock
                    .apply(&envelope.aggregate_id, envelope.version, e, &at)
            }
            AnyEvent::Payments(e) => self.money.payment(e, &at),
            AnyEvent::Orders(e) if envelope.aggregate_type == "Order" => {
                self.money.order(&envelope.aggregate_id, e, &at)
            }
            _ => {}
        }
        if let Some(fold) = &mut self.fold {
            fold.feed(&Projected {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                input: Input::Event { envelope, event },
            })
            .await?;
        }
        Ok(())
    }

    async fn saga_step(&mut self, record: LogRecord, partitions: i32) -> Result<()> {
        if !self.chained(&record, partitions).await? {
            return Ok(());
        }
        let value = record.value.as_deref().unwrap_or_default();
        let step = match self.codec.decode_named::<OrderFulfillmentStep>(value).await {
            Ok(s) => s,
            Err(e) => match registry_down(&e, &record) {
                Some(down) => return Err(down),
                None => return Ok(()),
            },
        };
        self.sagas.step(&step, &position(&record));
        if let Some(fold) = &mut self.fold {
            fold.feed(&Projected {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                input: Input::SagaStep(step),
            })
            .await?;
        }
        Ok(())
    }

    async fn command(&mut self, record: LogRecord) -> Result<()> {
        let at = position(&record);
        let decoded = match record.value.as_deref() {
            Some(v) => self
                .codec
                .decode_command::<AnyCommand>(v)
                .await
                .map(|(e, _)| e.command_id),
            None => Err(CodecError::EmptyOrTooShort { len: 0 }),
        };
        let id = match decoded {
            Ok(id) => id,
            Err(e) => match registry_down(&e, &record) {
                Some(down) => return Err(down),
                // The processor answers an unreadable command under this id.
                None => format!("{}-{}-{}", record.topic, record.partition, record.offset),
            },
        };
        self.commands.command(&id, at);
        Ok(())
    }

    async fn outcome(&mut self, record: LogRecord) -> Result<()> {
        let Some(value) = record.value.as_deref() else {
            return Ok(());
        };
        match self.codec.decode_named::<CommandOutcome>(value).await {
            Ok(o) => self.commands.outcome(&o, position(&record)),
            Err(e) => {
                if let Some(down) = registry_down(&e, &record) {
                    return Err(down);
                }
            }
        }
        Ok(())
    }
}

/// How often the read-model comparison looks again while it follows a log
/// that moved on during the check (for `CheckOptions::follow`).
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Folds what the event and saga topics appended since `read_to` (into
/// the read-model fold only: the other ledgers judge the scan's cut).
async fn follow(
    log: &dyn EventLog,
    codec: &AvroCodec,
    fold: &mut ReadModelFold,
    read_to: &mut HashMap<TopicPartition, (Kind, i64)>,
) -> Result<()> {
    for (tp, (kind, from)) in read_to.iter_mut() {
        let end = log.end_offset(tp).await.with_context(|| format!("{tp}"))?;
        if end <= *from {
            continue;
        }
        let mut stream = log.read_range(tp.clone(), *from, end);
        while let Some(record) = stream.next().await {
            let record = record.with_context(|| format!("reading {tp}"))?;
            let value = record.value.as_deref().unwrap_or_default();
            let input = match kind {
                Kind::Event => match codec.decode_event::<AnyEvent>(value).await {
                    Ok((envelope, event)) => Input::Event { envelope, event },
                    Err(e) => match registry_down(&e, &record) {
                        Some(down) => return Err(down),
                        None => continue,
                    },
                },
                Kind::Saga => match codec.decode_named::<OrderFulfillmentStep>(value).await {
                    Ok(step) => Input::SagaStep(step),
                    Err(e) => match registry_down(&e, &record) {
                        Some(down) => return Err(down),
                        None => continue,
                    },
                },
                Kind::Command | Kind::Outcome => continue,
            };
            fold.feed(&Projected {
                topic: record.topic,
                partition: record.partition,
                offset: record.offset,
                input,
            })
            .await?;
        }
        *from = end;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Event,
    Saga,
    Command,
    Outcome,
}

/// Checks every invariant over `topics` (and `store`'s read models when
/// given).
pub async fn check(
    log: &dyn EventLog,
    codec: &AvroCodec,
    names: &TopicNames,
    topics: &CheckTopics,
    store: Option<&dyn ReadStore>,
    options: &CheckOptions,
) -> Result<Report> {
    // The processors' committed offsets first: a command after them is in
    // flight. Read before the scan, so a command consumed during the scan
    // counts as in flight rather than missing.
    let mut consumed: HashMap<TopicPartition, i64> = HashMap::new();
    for (context, topic) in &topics.commands {
        let group = format!("{}{}.command-processor", names.prefix, context.as_str());
        let partitions = log.partition_count(topic).await?;
        let tps: Vec<TopicPartition> = (0..partitions)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let committed = log
            .committed_offsets(&group, &tps)
            .await
            .with_context(|| format!("reading the offsets of group {group}"))?;
        consumed.extend(committed.into_iter().map(|(tp, c)| (tp, c.next_offset)));
    }
    let fold = match store {
        Some(_) => Some(ReadModelFold::new(names).await?),
        None => None,
    };
    let mut ledgers = Ledgers {
        codec,
        chain: ChainChecker::new(),
        commands: CommandLedger::default(),
        stock: StockLedger::default(),
        money: MoneyLedger::default(),
        sagas: SagaLedger::default(),
        fold,
        read_to: HashMap::new(),
    };
    // The outcomes' ends are cut before any event is read: an outcome and
    // its events commit in one transaction, so every outcome up to the cut
    // has its events within the events read after it. (Read the other way
    // round, on a log still moving, an outcome committed during the scan
    // names events beyond the events' end.)
    let outcomes_cut = match &topics.outcomes {
        Some(topic) => Some(ends(log, std::slice::from_ref(topic)).await?),
        None => None,
    };
    let mut chained_topics = 0;
    for topic in &topics.events {
        read_all(log, topic, &mut ledgers, Kind::Event, None).await?;
        chained_topics += 1;
    }
    if let Some(topic) = &topics.saga_steps {
        read_all(log, topic, &mut ledgers, Kind::Saga, None).await?;
        chained_topics += 1;
    }
    // Outcomes before commands: every outcome read has its command record
    // further on (it was appended first), and a command whose outcome
    // comes after the outcomes' end was consumed after the offsets above
    // were read, so it counts as in flight, never as missing.
    if let Some(topic) = &topics.outcomes {
        read_all(
            log,
            topic,
            &mut ledgers,
            Kind::Outcome,
            outcomes_cut.as_deref(),
        )
        .await?;
    }
    for (_, topic) in &topics.commands {
        read_all(log, topic, &mut ledgers, Kind::Command, None).await?;
    }
    let Ledgers {
        chain,
        commands,
        stock,
        money,
        sagas,
        fold,
        mut read_to,
        ..
    } = ledgers;
    let (unique, chains) = chains::reports(&chain, chained_topics);
    let mut invariants = vec![
        commands.report(&consumed),
        unique,
        chains,
        sagas.report(options.now_ms, options.saga_timeout_ms),
        stock.report(),
        money.report(),
    ];
    match (fold, store) {
        (Some(mut fold), Some(store)) => {
            let first = fold.compare(store).await?;
            let started = tokio::time::Instant::now();
            let mut last = None;
            while last.as_ref().unwrap_or(&first).differing_rows() > 0
                && started.elapsed() < options.follow
            {
                tokio::time::sleep(FOLLOW_EVERY.min(options.follow)).await;
                follow(log, codec, &mut fold, &mut read_to).await?;
                let before = last.as_ref().unwrap_or(&first);
                last = Some(fold.recompare(store, before).await?);
            }
            let last = last.as_ref().unwrap_or(&first);
            invariants.push(fold.report(&first, last, started.elapsed()));
        }
        _ => invariants.push(
            super::report::InvariantReport::new(
                read_models::NAME,
                Default::default(),
                Default::default(),
            )
            .note("skipped (--skip-read-models)"),
        ),
    }
    Ok(Report::new(
        query_api::time::rfc3339(options.now_ms),
        invariants,
    ))
}
