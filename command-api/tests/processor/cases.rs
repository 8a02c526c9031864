//! The processor's cases, each run on both adapters.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use platform::testing::TestAdapter;
use schemas::CommandStatus;

use crate::fixture::Fixture;
use crate::victim;

const WAIT: Duration = Duration::from_secs(90);

/// Many commands, many aggregates, one processor: every command gets one
/// outcome and one event, versions 1..n, totals add up.
pub async fn processes_every_command_once(adapter: TestAdapter) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    let (stop, handle) = f.spawn_processor(f.processor_config("a"));
    let mut ids = HashSet::new();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..200i64 {
        let counter = format!("counter-{}", i % 10);
        let id = format!("cmd-{i}");
        f.send(&id, &counter, i + 1, None).await?;
        *expected.entry(counter).or_default() += i + 1;
        ids.insert(id);
    }
    let outcomes = f.wait_for_outcomes(&ids, WAIT).await?;
    ensure!(
        outcomes.iter().all(|o| o.status == CommandStatus::Accepted),
        "a command was not accepted"
    );
    ensure!(
        outcomes.len() == 200,
        "{} outcomes for 200 commands",
        outcomes.len()
    );
    ensure!(f.check_log().await? == expected, "totals differ");
    stop.send(true)?;
    let stats = handle.await??;
    ensure!(
        stats.commands == 200 && stats.events == 200,
        "stats: {stats:?}"
    );
    Ok(())
}

/// `expected_version` mismatches are conflicts, refusals carry their code,
/// and neither appends an event.
pub async fn refusals_and_conflicts_append_nothing(adapter: TestAdapter) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    let (stop, handle) = f.spawn_processor(f.processor_config("a"));
    f.send("ok-1", "c", 5, None).await?;
    f.send("zero", "c", 0, None).await?;
    f.send("stale", "c", 1, Some(0)).await?;
    f.send("ok-2", "c", 2, Some(1)).await?;
    // Keyed by another id than its aggregate's: deciding it would give
    // aggregate `c` a second writer.
    let mut misrouted = f.command("misrouted", "c", 1, None)?;
    misrouted.key = b"not-c".to_vec();
    f.send_record(misrouted).await?;
    let ids: HashSet<String> = ["ok-1", "zero", "stale", "ok-2", "misrouted"]
        .into_iter()
        .map(String::from)
        .collect();
    let outcomes = f.wait_for_outcomes(&ids, WAIT).await?;
    let by_id = |id: &str| {
        outcomes
            .iter()
            .find(|o| o.command_id == id)
            .context("outcome missing")
    };
    ensure!(
        by_id("ok-1")?.status == CommandStatus::Accepted && by_id("ok-1")?.version == 1,
        "ok-1"
    );
    let zero = by_id("zero")?;
    ensure!(
        zero.status == CommandStatus::Rejected
            && zero.error_code.as_deref() == Some("not-positive"),
        "zero: {zero:?}"
    );
    let stale = by_id("stale")?;
    ensure!(
        stale.status == CommandStatus::Conflict && stale.version == 1,
        "stale must report current version 1: {stale:?}"
    );
    ensure!(
        by_id("ok-2")?.status == CommandStatus::Accepted && by_id("ok-2")?.version == 2,
        "ok-2"
    );
    let misrouted = by_id("misrouted")?;
    ensure!(
        misrouted.status == CommandStatus::Rejected
            && misrouted.error_code.as_deref() == Some("misrouted-command"),
        "misrouted: {misrouted:?}"
    );
    ensure!(
        f.events().await?.len() == 2,
        "refused commands appended events"
    );
    f.check_log().await?;
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// A command id seen before is answered with its first outcome and
/// appends nothing — also after a restart, from the restored window.
pub async fn duplicates_get_the_first_outcome(adapter: TestAdapter) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    // Both copies are in the log before the processor starts, so they
    // arrive in one batch: the in-batch duplicate path.
    f.send("dup", "d", 3, None).await?;
    f.send("dup", "d", 3, None).await?;
    let (stop, handle) = f.spawn_processor(f.processor_config("a"));
    let once: HashSet<String> = ["dup".to_owned()].into();
    f.wait_for_outcomes(&once, WAIT).await?;
    stop.send(true)?;
    handle.await??;

    let (stop, handle) = f.spawn_processor(f.processor_config("b"));
    f.send("dup", "d", 99, None).await?; // even with another body
    f.send("after", "d", 1, None).await?;
    let after: HashSet<String> = ["after".to_owned()].into();
    f.wait_for_outcomes(&after, WAIT).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let dups = loop {
        let dups: Vec<_> = f
            .outcomes()
            .await?
            .into_iter()
            .filter(|o| o.command_id == "dup")
            .collect();
        if dups.len() >= 3 || tokio::time::Instant::now() > deadline {
            break dups;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        dups.len() == 3,
        "expected 3 answers to `dup`, got {}",
        dups.len()
    );
    ensure!(
        dups.iter()
            .all(|o| o.status == CommandStatus::Accepted && o.version == 1),
        "answers differ: {dups:?}"
    );
    ensure!(
        dups.iter().all(|o| o.decided_at == dups[0].decided_at),
        "not the FIRST outcome: {dups:?}"
    );
    let totals = f.check_log().await?;
    ensure!(totals.get("d") == Some(&4), "duplicate applied: {totals:?}");
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// A new instance restores from snapshots plus the events after the
/// checkpoint (snapshots every 3 versions, so both paths are used) and
/// continues the versions without a gap.
pub async fn restores_from_snapshots_and_events(adapter: TestAdapter) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    let mut config = f.processor_config("a");
    config.snapshot_every = 3;
    // Small batches, so several checkpoints are committed and the restore
    // really starts from one (asserted below), not from offset 0.
    config.max_batch = 4;
    let (stop, handle) = f.spawn_processor(config.clone());
    let mut ids = HashSet::new();
    for i in 0..25 {
        let id = format!("first-{i}");
        f.send(&id, &format!("r{}", i % 5), 1, None).await?;
        ids.insert(id);
    }
    f.wait_for_outcomes(&ids, WAIT).await?;
    stop.send(true)?;
    handle.await??;
    expect_a_checkpoint_past_zero(&f, &config.group_id, "no partition committed one").await?;

    config.transactional_id.push_str("-restarted");
    let (stop, handle) = f.spawn_processor(config);
    for i in 0..25 {
        let id = format!("second-{i}");
        f.send(&id, &format!("r{}", i % 5), 1, Some(5 + i64::from(i / 5)))
            .await?;
        ids.insert(id);
    }
    expect_all_accepted(&f, &ids, "expected versions refused").await?;
    let totals = f.check_log().await?;
    ensure!(totals.values().all(|t| *t == 10), "totals: {totals:?}");
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// Aggregates that change too rarely to reach `snapshot_every` (an order,
/// a payment) are snapshotted once their first unsnapshotted event lags the
/// partition end by `max_unsnapshotted_lag`: the restore checkpoint moves
/// on instead of staying at offset 0, and a new instance restores them.
pub async fn lagging_aggregates_are_snapshotted_so_restores_stay_bounded(
    adapter: TestAdapter,
) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    let mut config = f.processor_config("a");
    config.snapshot_every = 1_000;
    config.max_unsnapshotted_lag = 3;
    config.max_batch = 4;
    let (stop, handle) = f.spawn_processor(config.clone());
    let mut ids = HashSet::new();
    // One version each of 60 aggregates, in waves so batches commit in turn.
    for wave in 0..6 {
        let mut sent = HashSet::new();
        for i in 0..10 {
            let id = format!("once-{wave}-{i}");
            f.send(&id, &format!("c{wave}-{i}"), 1, None).await?;
            sent.insert(id);
        }
        f.wait_for_outcomes(&sent, WAIT).await?;
        ids.extend(sent);
    }
    stop.send(true)?;
    handle.await??;
    expect_a_checkpoint_past_zero(
        &f,
        &config.group_id,
        "no aggregate reached snapshot_every, and no laggard was snapshotted either",
    )
    .await?;

    config.transactional_id.push_str("-restarted");
    let (stop, handle) = f.spawn_processor(config);
    for wave in 0..6 {
        for i in 0..10 {
            let id = format!("again-{wave}-{i}");
            f.send(&id, &format!("c{wave}-{i}"), 1, Some(1)).await?;
            ids.insert(id);
        }
    }
    expect_all_accepted(&f, &ids, "expected version 1 refused").await?;
    let totals = f.check_log().await?;
    ensure!(
        totals.len() == 60 && totals.values().all(|t| *t == 2),
        "totals: {totals:?}"
    );
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// Some partition's committed restore checkpoint starts past offset 0, so
/// a restore would really start from it.
async fn expect_a_checkpoint_past_zero(f: &Fixture, group: &str, otherwise: &str) -> Result<()> {
    let checkpoints = f.checkpoints(group).await?;
    ensure!(
        checkpoints
            .iter()
            .any(|c| c.contains("\"events_from\":") && !c.contains("\"events_from\":0,")),
        "no checkpoint past offset 0 ({otherwise}): {checkpoints:?}"
    );
    Ok(())
}

/// After a restart: every command of `ids` was accepted, so the restored
/// versions were the ones the commands expected.
async fn expect_all_accepted(f: &Fixture, ids: &HashSet<String>, refused: &str) -> Result<()> {
    let outcomes = f.wait_for_outcomes(ids, WAIT).await?;
    let bad: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status != CommandStatus::Accepted)
        .collect();
    ensure!(
        bad.is_empty(),
        "restored state is wrong ({refused}): {bad:?}"
    );
    Ok(())
}

/// Two instances share the group; one is killed mid-stream (SIGKILL on
/// Kafka; a dropped task on the single-process embedded log). The survivor
/// takes over: no lost command, no duplicated event, no version gap.
pub async fn survivor_takes_over_from_a_killed_instance(adapter: TestAdapter) -> Result<()> {
    let f = Fixture::new(adapter).await?;
    let mut victim = Some(victim::start(&f, adapter).await?);
    let (stop, handle) = f.spawn_processor(f.processor_config("survivor"));
    let total_commands = 1000i64;
    let mut ids = HashSet::new();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut killed = false;
    for i in 0..total_commands {
        let counter = format!("k{}", i % 40);
        let id = format!("cmd-{i}");
        f.send(&id, &counter, 1, None).await?;
        *expected.entry(counter).or_default() += 1;
        ids.insert(id);
        if i == total_commands / 3 {
            // Let the victim get into its stride, then kill it mid-stream.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Some(v) = victim.take() {
                v.kill().await?;
                killed = true;
            }
        }
    }
    ensure!(killed, "the victim was never killed");
    let outcomes = f.wait_for_outcomes(&ids, Duration::from_secs(120)).await?;
    ensure!(
        outcomes.iter().all(|o| o.status == CommandStatus::Accepted),
        "a command was refused"
    );
    let totals = f.check_log().await?;
    ensure!(
        totals == expected,
        "lost or duplicated increments: {totals:?}"
    );
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// A contract aggregate end to end: `Product` decides generated catalog
/// commands read from `catalog.commands`, and its events decode from
/// `catalog.events` as the contract's `CatalogEvent`s, hash chain intact.
pub async fn catalog_product_runs_on_the_contract(adapter: TestAdapter) -> Result<()> {
    use command_api::domain::catalog::Product;
    use command_api::processor::{system_clock, CommandProcessor};
    use command_api::topology::CommandTopology;
    use schemas::catalog::{CatalogCommand, CatalogEvent, CreateProduct, RepriceProduct};
    use schemas::{CommandEnvelope, CommandOutcome, Context, TopicNames};
    use std::sync::Arc;

    let f = Fixture::new(adapter).await?;
    let topics = TopicNames::new(f.spec.prefix.clone());
    let topology = CommandTopology::new(
        &topics,
        Context::Catalog.as_str(),
        crate::fixture::PARTITIONS,
    );
    f.log.create_topics(&topology.specs()).await?;
    f.codec.register_contract(&topics).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = f.processor_config("catalog");
    let processor = CommandProcessor::<Product>::new(
        Arc::clone(&f.log),
        Arc::clone(&f.codec),
        topology.clone(),
        command_api::processor::ProcessorConfig::new(
            format!("{}catalog.command-processor", f.spec.prefix),
            config.transactional_id.clone(),
        ),
        system_clock(),
    );
    let handle = tokio::spawn(processor.run(stopped));

    let producer = f.log.producer("catalog-test").await?;
    let send = |id: &str, command: CatalogCommand| {
        let envelope = CommandEnvelope {
            command_id: id.to_owned(),
            aggregate_type: "Product".to_owned(),
            aggregate_id: "MUG-1".to_owned(),
            expected_version: None,
            issued_at: 1_767_225_600_000,
            correlation_id: id.to_owned(),
            causation_id: id.to_owned(),
            actor: "admin-1".to_owned(),
            reply_to: None,
        };
        f.codec
            .encode_command(&topology.commands, &envelope, &command)
            .map(|bytes| {
                platform::eventlog::OutgoingRecord::new(topology.commands.clone(), "MUG-1", bytes)
            })
    };
    let create = CatalogCommand::CreateProduct(CreateProduct {
        sku: "MUG-1".into(),
        name: "Mug".into(),
        description: Some("Stoneware, 350 ml".into()),
        category: "kitchen".into(),
        price_minor: 1299,
        currency: "EUR".into(),
    });
    let reprice = |price_minor| {
        CatalogCommand::RepriceProduct(RepriceProduct {
            price_minor,
            currency: "EUR".into(),
        })
    };
    producer.send(send("create", create)?).await?;
    producer.send(send("reprice", reprice(999))?).await?;
    producer.send(send("negative", reprice(-1))?).await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let outcomes: Vec<CommandOutcome> = loop {
        let mut outcomes = Vec::new();
        for r in platform::eventlog::read_topic(f.log.as_ref(), &topology.outcomes).await? {
            let outcome: CommandOutcome = f
                .codec
                .decode_record(r.value.as_deref().unwrap_or_default())
                .await?;
            if outcome.aggregate_type == "Product" {
                outcomes.push(outcome);
            }
        }
        if outcomes.len() >= 3 || tokio::time::Instant::now() > deadline {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let by_id = |id: &str| {
        outcomes
            .iter()
            .find(|o| o.command_id == id)
            .with_context(|| format!("no outcome for {id}"))
    };
    ensure!(
        by_id("create")?.status == CommandStatus::Accepted && by_id("create")?.version == 1,
        "create: {outcomes:?}"
    );
    ensure!(by_id("reprice")?.version == 2, "reprice: {outcomes:?}");
    let negative = by_id("negative")?;
    ensure!(
        negative.status == CommandStatus::Rejected
            && negative.error_code.as_deref() == Some("invalid-field"),
        "negative price: {negative:?}"
    );

    let mut events = Vec::new();
    for r in platform::eventlog::read_topic(f.log.as_ref(), &topology.events).await? {
        events.push(
            f.codec
                .decode_event::<CatalogEvent>(r.value.as_deref().unwrap_or_default())
                .await?,
        );
    }
    events.sort_by_key(|(e, _)| e.version);
    ensure!(events.len() == 2, "expected 2 events, got {}", events.len());
    ensure!(
        matches!(events[0].1, CatalogEvent::ProductCreated(_)),
        "{:?}",
        events[0].1
    );
    ensure!(
        matches!(&events[1].1, CatalogEvent::ProductRepriced(r) if r.previous_price_minor == 1299 && r.price_minor == 999),
        "{:?}",
        events[1].1
    );
    ensure!(
        events[1].0.prev_hash == events[0].0.hash,
        "hash chain broken"
    );
    for (envelope, event) in &events {
        ensure!(
            schemas::hash_chain::verify(envelope, event)?,
            "hash does not verify"
        );
        ensure!(
            envelope.actor == "admin-1" && envelope.occurred_at == 1_767_225_600_000,
            "envelope: {envelope:?}"
        );
    }
    stop.send(true)?;
    handle.await??;
    Ok(())
}

/// Aggregates evicted from the cache decide exactly as if all were in
/// memory: the same command stream over 1,000 counters, once with a cache
/// of 10 and once with a cache holding them all, yields identical outcomes
/// (status, version, code) and identical events (ids, versions, hashes).
/// Each run also restarts on a new instance (restore with evicted
/// aggregates, snapshots every 3 versions so events are replayed too) and
/// then rebalances onto two instances, continuing with the versions the
/// first phase reported as `expected_version`.
pub async fn a_small_cache_decides_as_all_in_memory_would(adapter: TestAdapter) -> Result<()> {
    let small = small_cache_run(adapter, 10).await?;
    let all = small_cache_run(adapter, 100_000).await?;
    ensure!(
        small.0.len() == all.0.len(),
        "{} outcomes with a small cache, {} with all in memory",
        small.0.len(),
        all.0.len()
    );
    for (a, b) in small.0.iter().zip(&all.0) {
        ensure!(
            a == b,
            "outcomes differ: small cache {a:?}, all in memory {b:?}"
        );
    }
    ensure!(small.1.len() == all.1.len(), "event counts differ");
    for (a, b) in small.1.iter().zip(&all.1) {
        ensure!(
            a == b,
            "events differ: small cache {a:?}, all in memory {b:?}"
        );
    }
    Ok(())
}

type OutcomeKey = (String, String, String, i64, Option<String>, i32);
type EventKey = (String, i64, String, Vec<u8>);

async fn small_cache_run(
    adapter: TestAdapter,
    cache: usize,
) -> Result<(Vec<OutcomeKey>, Vec<EventKey>)> {
    const AGGREGATES: i64 = 1_000;
    let f = Fixture::new(adapter).await?;
    let mut config = f.processor_config("a");
    config.cache_aggregates = cache;
    config.snapshot_every = 3;
    let mut ids = HashSet::new();
    let (stop, handle) = f.spawn_processor(config.clone());
    // 2,000 commands, two per counter, visited round-robin so a small
    // cache misses on every one; some refused (by 0), some conflicting.
    for i in 0..2 * AGGREGATES {
        let id = format!("one-{i}");
        let by = if i % 13 == 0 { 0 } else { 1 + i % 5 };
        let expected = (i % 17 == 0).then_some(0);
        f.send(&id, &format!("c{}", i % AGGREGATES), by, expected)
            .await?;
        ids.insert(id);
    }
    let outcomes = f.wait_for_outcomes(&ids, WAIT).await?;
    stop.send(true)?;
    handle.await??;
    let mut versions: BTreeMap<String, i64> = BTreeMap::new();
    for o in &outcomes {
        let v = versions.entry(o.aggregate_id.clone()).or_default();
        *v = (*v).max(o.version);
    }

    // A new instance restores everything, then a second joins halfway.
    let mut restarted = config.clone();
    restarted.transactional_id.push_str("-b1");
    let (stop_b1, handle_b1) = f.spawn_processor(restarted);
    let mut joined = None;
    for i in 0..AGGREGATES {
        let counter = format!("c{i}");
        let id = format!("two-{i}");
        let expected = versions.get(&counter).copied().unwrap_or(0);
        f.send(&id, &counter, 1, Some(expected)).await?;
        ids.insert(id);
        if i == AGGREGATES / 2 {
            let mut second = config.clone();
            second.transactional_id.push_str("-b2");
            joined = Some(f.spawn_processor(second));
        }
    }
    let outcomes = f.wait_for_outcomes(&ids, WAIT).await?;
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|o| o.command_id.starts_with("two-") && o.status != CommandStatus::Accepted)
        .collect();
    ensure!(
        refused.is_empty(),
        "cache {cache}: restored versions are wrong, {} refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
    f.check_log().await?;
    stop_b1.send(true)?;
    handle_b1.await??;
    if let Some((stop, handle)) = joined {
        stop.send(true)?;
        handle.await??;
    }
    let mut outcomes: Vec<OutcomeKey> = outcomes
        .into_iter()
        .map(|o| {
            (
                o.command_id,
                format!("{:?}", o.status),
                o.aggregate_id,
                o.version,
                o.error_code,
                o.event_count,
            )
        })
        .collect();
    outcomes.sort();
    let mut events: Vec<EventKey> = f
        .events()
        .await?
        .into_iter()
        .map(|(e, _)| (e.aggregate_id, e.version, e.event_id, e.hash))
        .collect();
    events.sort();
    Ok((outcomes, events))
}
