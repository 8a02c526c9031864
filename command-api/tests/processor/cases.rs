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
    let checkpoints = f.checkpoints(&config.group_id).await?;
    ensure!(
        checkpoints
            .iter()
            .any(|c| c.contains("\"events_from\":") && !c.contains("\"events_from\":0,")),
        "no partition committed a checkpoint past offset 0: {checkpoints:?}"
    );

    config.transactional_id.push_str("-restarted");
    let (stop, handle) = f.spawn_processor(config);
    for i in 0..25 {
        let id = format!("second-{i}");
        f.send(&id, &format!("r{}", i % 5), 1, Some(5 + i64::from(i / 5)))
            .await?;
        ids.insert(id);
    }
    let outcomes = f.wait_for_outcomes(&ids, WAIT).await?;
    let bad: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status != CommandStatus::Accepted)
        .collect();
    ensure!(
        bad.is_empty(),
        "restored state is wrong (expected versions refused): {bad:?}"
    );
    let totals = f.check_log().await?;
    ensure!(totals.values().all(|t| *t == 10), "totals: {totals:?}");
    stop.send(true)?;
    handle.await??;
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
