//! The cases. Each runs against one adapter through the port only; together
//! they are the definition of the event log's semantics.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use platform::eventlog::{LogError, OutgoingRecord, TopicPartition};
use platform::partitioner::partition_for_key;

use crate::child;
use crate::harness::{offset_commits, poll_until, produce, records_in_next_poll, values, Harness};

/// Records of one key come back in the order they were appended, all in
/// the partition murmur2 assigns the key (Java-compatible placement).
pub async fn per_key_order(h: &mut Harness) -> Result<()> {
    let topic = h.topic("orders.events", 3).await?;
    let producer = h.log.producer("conformance").await?;
    let keys: Vec<String> = (0..8).map(|k| format!("order-{k}")).collect();
    // Keys are appended concurrently, each key's records in sequence.
    let sends = keys.iter().map(|key| {
        let producer = &producer;
        let topic = topic.clone();
        async move {
            for i in 0..25 {
                let record = OutgoingRecord::new(topic.clone(), key.clone(), format!("{key}:{i}"));
                producer.send(record).await?;
            }
            Ok::<_, LogError>(())
        }
    });
    futures::future::try_join_all(sends).await?;

    let records = h.read_all(&topic).await?;
    ensure!(
        records.len() == 8 * 25,
        "expected 200 records, read {}",
        records.len()
    );
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &records {
        let key = String::from_utf8(r.key.clone())?;
        ensure!(
            r.partition == partition_for_key(key.as_bytes(), 3),
            "key {key} in partition {}, murmur2 says {}",
            r.partition,
            partition_for_key(key.as_bytes(), 3)
        );
        by_key
            .entry(key)
            .or_default()
            .push(values(std::slice::from_ref(r)).concat());
    }
    for (key, got) in by_key {
        let expected: Vec<String> = (0..25).map(|i| format!("{key}:{i}")).collect();
        ensure!(got == expected, "key {key} out of order: {got:?}");
    }

    // A group member sees each partition in offset order, too.
    let mut member = h
        .log
        .join_group(h.group_config(&h.name("g-order"), vec![topic.clone()]))
        .await?;
    let seen = poll_until(member.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 200
    })
    .await?;
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in &seen.records {
        let prev = last.insert(r.partition, r.offset);
        ensure!(
            prev.is_none_or(|p| p < r.offset),
            "partition {} went backwards",
            r.partition
        );
    }
    member.close().await?;
    Ok(())
}

/// An aborted transaction is never visible to read_committed readers; an
/// open one is not visible until it commits.
pub async fn aborted_transaction_invisible(h: &mut Harness) -> Result<()> {
    let input = h.topic("in", 1).await?;
    let output = h.topic("out", 2).await?;
    let config = h
        .group_config(&h.name("g-abort"), vec![input.clone()])
        .transactional(h.name("txn-abort"));
    let mut member = h.log.join_group(config).await?;

    member.begin().await?;
    for i in 0..5 {
        member.send(OutgoingRecord::new(
            output.clone(),
            format!("k{i}"),
            format!("aborted-{i}"),
        ))?;
    }
    member.abort_transaction().await?;

    member.begin().await?;
    for i in 0..3 {
        member.send(OutgoingRecord::new(
            output.clone(),
            format!("k{i}"),
            format!("open-{i}"),
        ))?;
    }
    // Open, not committed: invisible.
    let while_open = h.read_all(&output).await?;
    ensure!(
        while_open.is_empty(),
        "records of an open transaction are visible: {:?}",
        values(&while_open)
    );
    let positions = member.commit_transaction(&[]).await?;
    ensure!(
        positions.len() == 3,
        "expected 3 positions, got {positions:?}"
    );

    let committed = h.read_all(&output).await?;
    let mut got = values(&committed);
    got.sort();
    ensure!(
        got == vec!["open-0", "open-1", "open-2"],
        "read_committed saw {got:?}"
    );

    // A group member reading the output sees the same.
    let mut reader = h
        .log
        .join_group(h.group_config(&h.name("g-abort-r"), vec![output.clone()]))
        .await?;
    let seen = poll_until(reader.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 3
    })
    .await?;
    let extra = records_in_next_poll(reader.as_mut()).await?;
    ensure!(
        seen.records.len() + extra == 3,
        "member saw aborted records"
    );
    reader.close().await?;
    member.close().await?;
    Ok(())
}

/// Consumed offsets commit only together with the transaction's outputs.
pub async fn offsets_commit_only_with_outputs(h: &mut Harness) -> Result<()> {
    let input = h.topic("cmds", 2).await?;
    let output = h.topic("evts", 2).await?;
    let group = h.name("g-eos");
    let producer = h.log.producer("conformance").await?;
    produce(producer.as_ref(), &input, 0..20, |i| {
        (format!("agg-{}", i % 4), format!("c{i}"))
    })
    .await?;
    let config = h
        .group_config(&group, vec![input.clone()])
        .transactional(h.name("txn-eos"));
    let mut member = h.log.join_group(config).await?;
    let seen = poll_until(member.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 20
    })
    .await?;

    // Commit the first half of each partition with outputs.
    let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for r in &seen.records {
        by_partition.entry(r.partition).or_default().push(r.clone());
    }
    let first_half: Vec<_> = by_partition
        .values()
        .flat_map(|rs| rs[..rs.len() / 2].to_vec())
        .collect();
    member.begin().await?;
    for r in &first_half {
        member.send(OutgoingRecord::new(
            output.clone(),
            r.key.clone(),
            r.value.clone().unwrap_or_default(),
        ))?;
    }
    let commits = offset_commits(&first_half, "half");
    member.commit_transaction(&commits).await?;

    // The second half: outputs sent, then aborted — offsets must not move.
    let second_half: Vec<_> = by_partition
        .values()
        .flat_map(|rs| rs[rs.len() / 2..].to_vec())
        .collect();
    member.begin().await?;
    for r in &second_half {
        member.send(OutgoingRecord::new(
            output.clone(),
            r.key.clone(),
            b"must-not-appear".to_vec(),
        ))?;
    }
    member.abort_transaction().await?;

    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(input.clone(), p))
        .collect();
    let committed = h.log.committed_offsets(&group, &tps).await?;
    for c in &commits {
        let got = committed.get(&c.tp).context("offset missing")?;
        ensure!(
            got.next_offset == c.next_offset,
            "{}: committed {} expected {}",
            c.tp,
            got.next_offset,
            c.next_offset
        );
        ensure!(
            got.metadata == "half",
            "metadata not kept: {:?}",
            got.metadata
        );
    }
    let outputs = h.read_all(&output).await?;
    ensure!(
        outputs.len() == first_half.len(),
        "outputs {} != committed inputs {}",
        outputs.len(),
        first_half.len()
    );
    ensure!(
        !values(&outputs).iter().any(|v| v == "must-not-appear"),
        "aborted output visible"
    );
    member.close().await?;

    // A new member resumes exactly after the committed offsets.
    let mut next = h
        .log
        .join_group(h.group_config(&group, vec![input.clone()]))
        .await?;
    let resumed = poll_until(next.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= second_half.len()
    })
    .await?;
    let mut expected = values(&second_half);
    let mut got = values(&resumed.records);
    expected.sort();
    got.sort();
    ensure!(got == expected, "resumed at the wrong place: {got:?}");
    next.close().await?;
    Ok(())
}

/// A member that stops polling loses its partitions; its late transaction
/// is fenced and nothing of it becomes visible.
pub async fn zombie_is_fenced(h: &mut Harness) -> Result<()> {
    let input = h.topic("zin", 2).await?;
    let output = h.topic("zout", 1).await?;
    let group = h.name("g-zombie");
    let producer = h.log.producer("conformance").await?;
    produce(producer.as_ref(), &input, 0..10, |i| {
        (format!("k{i}"), format!("v{i}"))
    })
    .await?;
    let mut zombie = h
        .log
        .join_group(
            h.group_config(&group, vec![input.clone()])
                .transactional(h.name("txn-zombie")),
        )
        .await?;
    let seen = poll_until(zombie.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 10
    })
    .await?;

    // The zombie stalls (a GC pause, a stuck disk) past its poll interval…
    let mut survivor = h
        .log
        .join_group(
            h.group_config(&group, vec![input.clone()])
                .transactional(h.name("txn-survivor")),
        )
        .await?;
    let took_over = poll_until(survivor.as_mut(), Duration::from_secs(60), |s| {
        s.assigned.len() == 2
    })
    .await?;
    ensure!(
        took_over.assigned.len() == 2,
        "survivor did not get every partition"
    );

    // …then wakes up and tries to commit the work it did before.
    zombie.begin().await?;
    zombie.send(OutgoingRecord::new(output.clone(), "z", "zombie-output"))?;
    let commits = offset_commits(&seen.records, "");
    match zombie.commit_transaction(&commits).await {
        Err(LogError::Fenced(reason)) => eprintln!("zombie fenced as expected: {reason}"),
        other => anyhow::bail!("a zombie's commit must be fenced, got {other:?}"),
    }
    let outputs = h.read_all(&output).await?;
    ensure!(
        outputs.is_empty(),
        "zombie output visible: {:?}",
        values(&outputs)
    );
    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(input.clone(), p))
        .collect();
    let committed = h.log.committed_offsets(&group, &tps).await?;
    ensure!(
        committed.values().all(|c| c.next_offset == 0) || committed.is_empty(),
        "zombie offsets committed: {committed:?}"
    );

    // The survivor processes everything from the start and commits.
    let records = poll_until(survivor.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 10
    })
    .await?
    .records;
    survivor.begin().await?;
    survivor.send(OutgoingRecord::new(output.clone(), "s", "survivor-output"))?;
    let commits = offset_commits(&records, "");
    survivor.commit_transaction(&commits).await?;
    // On Kafka the zombie's transaction may stay open until the broker
    // aborts it (transaction timeout); read_committed readers wait for that.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = values(&h.read_all(&output).await?);
        if got == vec!["survivor-output"] {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "survivor output missing: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    survivor.close().await?;
    drop(zombie);
    Ok(())
}

/// A member killed mid-transaction (SIGKILL, not a clean shutdown): the group
/// resumes from its last committed offsets and its open transaction never
/// becomes visible.
pub async fn group_resumes_after_crash(h: &mut Harness) -> Result<()> {
    let input = h.topic("crash-in", 2).await?;
    let output = h.topic("crash-out", 2).await?;
    let group = h.name("g-crash");
    let producer = h.log.producer("conformance").await?;
    produce(producer.as_ref(), &input, 0..40, |i| {
        (format!("k{}", i % 5), format!("v{i}"))
    })
    .await?;
    drop(producer);

    let spec = child::CrashMember {
        adapter: h.adapter,
        data_dir: h.data_dir(),
        group: group.clone(),
        input: input.clone(),
        output: output.clone(),
        transactional_id: h.name("txn-crash"),
    };
    // The embedded log is one process: hand the directory to the child.
    if h.adapter == crate::harness::Adapter::Embedded {
        h.log = std::sync::Arc::new(ClosedLog);
    }
    let committed_by_child = child::run_and_kill(&spec).await?;
    if h.adapter == crate::harness::Adapter::Embedded {
        h.reopen_embedded()?;
    }

    // Exactly the committed batches' outputs are visible.
    let outputs = h.read_all(&output).await?;
    ensure!(
        outputs.len() == committed_by_child,
        "child committed {committed_by_child} outputs, log shows {}",
        outputs.len()
    );
    ensure!(
        !values(&outputs)
            .iter()
            .any(|v| v.starts_with("uncommitted")),
        "open transaction visible"
    );

    // A new member resumes after the committed offsets: it sees exactly the
    // inputs that had no committed output.
    let mut member = h
        .log
        .join_group(h.group_config(&group, vec![input.clone()]))
        .await?;
    let expect_rest = 40 - committed_by_child;
    let seen = poll_until(member.as_mut(), Duration::from_secs(60), |s| {
        s.records.len() >= expect_rest
    })
    .await?;
    let extra = records_in_next_poll(member.as_mut()).await?;
    ensure!(
        seen.records.len() + extra == expect_rest,
        "resumed with {} records, expected {expect_rest}",
        seen.records.len() + extra
    );
    let mut all: Vec<String> = values(&outputs);
    all.extend(values(&seen.records));
    all.sort();
    let mut expected: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    expected.sort();
    ensure!(
        all == expected,
        "inputs lost or duplicated across the crash"
    );
    member.close().await?;
    Ok(())
}

/// Replaying a topic from offset 0 yields the same records every time, and
/// what a group consumed from the start equals the range read.
pub async fn replay_is_identical(h: &mut Harness) -> Result<()> {
    let topic = h.topic("replay", 3).await?;
    let producer = h.log.producer("conformance").await?;
    for i in 0..60 {
        let record = OutgoingRecord::new(topic.clone(), format!("agg-{}", i % 7), format!("e{i}"))
            .with_header("event_type", format!("T{}", i % 3));
        producer.send(record).await?;
    }
    // Some records written transactionally, one transaction aborted.
    let mut member = h
        .log
        .join_group(
            h.group_config(&h.name("g-replay-w"), vec![topic.clone()])
                .transactional(h.name("txn-replay")),
        )
        .await?;
    member.begin().await?;
    member.send(OutgoingRecord::new(topic.clone(), "agg-1", "txn-committed"))?;
    member.commit_transaction(&[]).await?;
    member.begin().await?;
    member.send(OutgoingRecord::new(topic.clone(), "agg-1", "txn-aborted"))?;
    member.abort_transaction().await?;
    member.close().await?;

    let first = h.read_all(&topic).await?;
    let second = h.read_all(&topic).await?;
    ensure!(
        first.len() == 61,
        "expected 61 committed records, got {}",
        first.len()
    );
    ensure!(first == second, "two replays differ");
    ensure!(
        first
            .iter()
            .all(|r| r.header("event_type").is_some()
                || r.value.as_deref() == Some(b"txn-committed")),
        "headers lost"
    );

    let mut reader = h
        .log
        .join_group(h.group_config(&h.name("g-replay-r"), vec![topic.clone()]))
        .await?;
    let seen = poll_until(reader.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 61
    })
    .await?;
    let mut consumed = seen.records;
    consumed.sort_by_key(|r| (r.partition, r.offset));
    let mut ranged = first;
    ranged.sort_by_key(|r| (r.partition, r.offset));
    ensure!(
        consumed == ranged,
        "group consumption differs from the range read"
    );
    reader.close().await?;
    Ok(())
}

/// The log accepts no transaction without a transactional id and no
/// records for unknown topics — typed errors, not panics.
pub async fn bad_requests_are_typed_errors(h: &mut Harness) -> Result<()> {
    let topic = h.topic("bad", 1).await?;
    let mut member = h
        .log
        .join_group(h.group_config(&h.name("g-bad"), vec![topic.clone()]))
        .await?;
    ensure!(
        matches!(member.begin().await, Err(LogError::NotTransactional)),
        "begin without a transactional id"
    );
    member.close().await?;
    let other_count = [platform::eventlog::TopicSpec::new(
        topic.clone(),
        3,
        platform::eventlog::Cleanup::KeepForever,
    )];
    let again = h.log.create_topics(&other_count).await;
    ensure!(
        matches!(again, Err(LogError::TopicMismatch { .. })),
        "re-creating with other partitions: {again:?}"
    );
    ensure!(
        h.log.partition_count(&topic).await? == 1,
        "partition count changed"
    );
    Ok(())
}

/// A live tail starts at the end as of the call: nothing committed before
/// it is delivered; everything committed after it — plain sends,
/// transactions, and a transaction that was open at the call — arrives,
/// each partition in offset order; an aborted transaction never does.
pub async fn follow_delivers_what_commits_after_the_call(h: &mut Harness) -> Result<()> {
    let topic = h.topic("tail", 3).await?;
    let producer = h.log.producer("conformance").await?;
    let mut writer = h
        .log
        .join_group(
            h.group_config(&h.name("g-tail-w"), vec![topic.clone()])
                .transactional(h.name("txn-tail-w")),
        )
        .await?;
    let mut early_config = h
        .group_config(&h.name("g-tail-early"), vec![topic.clone()])
        .transactional(h.name("txn-tail-early"));
    // It stays open across the call and the sends after it: no broker
    // timeout may abort it under a slow, busy test machine.
    early_config.transaction_timeout = Duration::from_secs(60);
    let mut early = h.log.join_group(early_config).await?;

    // Before the call: plain records and a committed transaction…
    produce(producer.as_ref(), &topic, 0..12, |i| {
        (format!("k{i}"), format!("before-{i}"))
    })
    .await?;
    writer.begin().await?;
    for i in 0..3 {
        writer.send(OutgoingRecord::new(
            topic.clone(),
            format!("k{i}"),
            format!("before-txn-{i}"),
        ))?;
    }
    writer.commit_transaction(&[]).await?;
    // …readable before the call (Kafka's commit returns before its markers
    // are written; until then the records are above the stable offset).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while h.read_all(&topic).await?.len() < 15 {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "records committed before the call never became readable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A transaction open at the call, its records already in the log on
    // Kafka (above the last stable offset, below the high watermark).
    early.begin().await?;
    for i in 0..3 {
        early.send(OutgoingRecord::new(
            topic.clone(),
            format!("early-{i}"),
            format!("open-at-call-{i}"),
        ))?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tail = h.log.follow(&topic).await?;

    produce(producer.as_ref(), &topic, 0..12, |i| {
        (format!("k{i}"), format!("after-{i}"))
    })
    .await?;
    writer.begin().await?;
    for i in 0..6 {
        writer.send(OutgoingRecord::new(
            topic.clone(),
            format!("k{i}"),
            format!("after-txn-{i}"),
        ))?;
    }
    writer.commit_transaction(&[]).await?;
    writer.begin().await?;
    for i in 0..6 {
        writer.send(OutgoingRecord::new(
            topic.clone(),
            format!("k{i}"),
            format!("aborted-{i}"),
        ))?;
    }
    writer.abort_transaction().await?;
    early.commit_transaction(&[]).await?;
    // Past the aborted records in every partition they touched.
    produce(producer.as_ref(), &topic, 0..6, |i| {
        (format!("k{i}"), format!("last-{i}"))
    })
    .await?;

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..12 {
        let key = expected.entry(format!("k{i}")).or_default();
        key.push(format!("after-{i}"));
        if i < 6 {
            key.push(format!("after-txn-{i}"));
            key.push(format!("last-{i}"));
        }
    }
    for i in 0..3 {
        expected.insert(format!("early-{i}"), vec![format!("open-at-call-{i}")]);
    }
    let total: usize = expected.values().map(Vec::len).sum();

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < total {
        let next = tokio::time::timeout_at(deadline, tail.next())
            .await
            .with_context(|| {
                format!(
                    "timed out with {} of {total} records: {:?}",
                    got.len(),
                    values(&got)
                )
            })?
            .context("the tail ended")??;
        got.push(next);
    }
    // Anything aborted (or repeated) would come right behind.
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(500), tail.next()).await {
        anyhow::bail!("unexpected record after the expected ones: {extra:?}");
    }
    drop(tail);

    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &got {
        let key = String::from_utf8(r.key.clone())?;
        ensure!(
            r.partition == partition_for_key(key.as_bytes(), 3),
            "key {key} in partition {}",
            r.partition
        );
        let prev = last.insert(r.partition, r.offset);
        ensure!(
            prev.is_none_or(|p| p < r.offset),
            "partition {} out of offset order",
            r.partition
        );
        by_key
            .entry(key)
            .or_default()
            .push(values(std::slice::from_ref(r)).concat());
    }
    ensure!(
        last.len() == 3,
        "records from partitions {:?} only",
        last.keys()
    );
    ensure!(
        by_key == expected,
        "the tail delivered {by_key:?}, expected {expected:?}"
    );
    writer.close().await?;
    early.close().await?;
    Ok(())
}

/// Dropping a tail stops its reader. A runtime that followed a topic, got a
/// record and dropped the stream shuts down promptly: a runtime's shutdown
/// waits for its blocking threads, which is where a reader that ignored
/// the drop would still be polling.
pub async fn follow_ends_when_dropped(h: &mut Harness) -> Result<()> {
    let topic = h.topic("tail-drop", 2).await?;
    let log = Arc::clone(&h.log);
    let thread_topic = topic.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let run = || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut tail = log.follow(&thread_topic).await?;
                let producer = log.producer("conformance").await?;
                producer
                    .send(OutgoingRecord::new(thread_topic.clone(), "k", "live"))
                    .await?;
                let first = tokio::time::timeout(Duration::from_secs(30), tail.next())
                    .await
                    .context("the tail delivered nothing")?
                    .context("the tail ended")??;
                ensure!(
                    first.value.as_deref() == Some(b"live".as_slice()),
                    "unexpected record {first:?}"
                );
                drop(tail);
                Ok(())
            })?;
            drop(runtime);
            Ok(())
        };
        let _ = done_tx.send(run());
    });
    tokio::time::timeout(Duration::from_secs(10), done_rx)
        .await
        .context("the runtime did not shut down within 10 s of dropping the tail")?
        .context("the following thread died")??;

    // The log itself is unaffected.
    let records = h.read_all(&topic).await?;
    ensure!(
        values(&records) == vec!["live"],
        "read {:?}",
        values(&records)
    );
    Ok(())
}

/// Stands in for the embedded log while a child process owns its directory.
#[derive(Debug)]
struct ClosedLog;

#[async_trait::async_trait]
impl platform::eventlog::EventLog for ClosedLog {
    async fn create_topics(&self, _: &[platform::eventlog::TopicSpec]) -> Result<(), LogError> {
        Err(LogError::Closed)
    }
    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        Err(LogError::Closed)
    }
    async fn partition_count(&self, _: &str) -> Result<i32, LogError> {
        Err(LogError::Closed)
    }
    async fn end_offset(&self, _: &TopicPartition) -> Result<i64, LogError> {
        Err(LogError::Closed)
    }
    async fn describe_topic(
        &self,
        _: &str,
    ) -> Result<platform::eventlog::TopicDescription, LogError> {
        Err(LogError::Closed)
    }
    async fn describe_group(
        &self,
        _: &str,
    ) -> Result<platform::eventlog::GroupDescription, LogError> {
        Err(LogError::Closed)
    }
    async fn offset_for_time(&self, _: &TopicPartition, _: i64) -> Result<i64, LogError> {
        Err(LogError::Closed)
    }
    async fn start_offset(&self, _: &TopicPartition) -> Result<i64, LogError> {
        Err(LogError::Closed)
    }
    async fn follow(
        &self,
        _: &str,
    ) -> Result<
        futures::stream::BoxStream<'static, Result<platform::eventlog::LogRecord, LogError>>,
        LogError,
    > {
        Err(LogError::Closed)
    }
    fn read_range(
        &self,
        _: TopicPartition,
        _: i64,
        _: i64,
    ) -> futures::stream::BoxStream<'static, Result<platform::eventlog::LogRecord, LogError>> {
        Box::pin(futures::stream::once(async { Err(LogError::Closed) }))
    }
    async fn committed_offsets(
        &self,
        _: &str,
        _: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, platform::eventlog::CommittedOffset>, LogError> {
        Err(LogError::Closed)
    }
    async fn producer(&self, _: &str) -> Result<Box<dyn platform::eventlog::Producer>, LogError> {
        Err(LogError::Closed)
    }
    async fn join_group(
        &self,
        _: platform::eventlog::GroupConfig,
    ) -> Result<Box<dyn platform::eventlog::GroupMember>, LogError> {
        Err(LogError::Closed)
    }
}

/// A member's positions reach the partitions' ends once it has consumed
/// everything — also behind transactions, whose commit markers take
/// offsets on Kafka (so "last record + 1" never reaches the end there) —
/// and committing them makes the group's committed offsets reach the ends
/// too: how a consumer reports a lag of exactly 0.
pub async fn positions_reach_the_end(h: &mut Harness) -> Result<()> {
    let input = h.topic("pos", 2).await?;
    let unused = h.topic("pos-unused", 1).await?;
    let mut writer = h
        .log
        .join_group(
            h.group_config(&h.name("g-pos-w"), vec![unused])
                .transactional(h.name("txn-pos")),
        )
        .await?;
    // Three transactions (each ends in a marker), then plain sends.
    for t in 0..3 {
        writer.begin().await?;
        for i in 0..4 {
            writer.send(OutgoingRecord::new(
                input.clone(),
                format!("k{i}"),
                format!("t{t}-{i}"),
            ))?;
        }
        writer.commit_transaction(&[]).await?;
    }
    let producer = h.log.producer("conformance").await?;
    produce(producer.as_ref(), &input, 0..4, |i| {
        (format!("k{i}"), format!("plain-{i}"))
    })
    .await?;
    writer.close().await?;

    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(input.clone(), p))
        .collect();
    let mut ends = HashMap::new();
    for tp in &tps {
        ends.insert(tp.clone(), h.log.end_offset(tp).await?);
    }
    let group = h.name("g-pos");
    let mut member = h
        .log
        .join_group(h.group_config(&group, vec![input.clone()]))
        .await?;
    let seen = poll_until(member.as_mut(), Duration::from_secs(30), |s| {
        s.records.len() >= 16
    })
    .await?;
    ensure!(seen.records.len() == 16, "saw {}", seen.records.len());
    // Keep polling (nothing more arrives) until every position is at its
    // end: librdkafka moves past a trailing marker as the app polls.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let positions = loop {
        let positions: HashMap<TopicPartition, Option<i64>> =
            member.positions().into_iter().collect();
        if tps
            .iter()
            .all(|tp| positions.get(tp).copied().flatten() == ends.get(tp).copied())
        {
            break positions;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "positions {positions:?} never reached the ends {ends:?}"
        );
        ensure!(
            records_in_next_poll(member.as_mut()).await? == 0,
            "records after everything was consumed"
        );
    };
    ensure!(
        positions.len() == 2,
        "positions of unowned partitions: {positions:?}"
    );
    let commits: Vec<_> = positions
        .iter()
        .filter_map(|(tp, p)| {
            p.map(|next_offset| platform::eventlog::OffsetCommit {
                tp: tp.clone(),
                next_offset,
                metadata: String::new(),
            })
        })
        .collect();
    member.commit_offsets(&commits).await?;
    let committed = h.log.committed_offsets(&group, &tps).await?;
    for tp in &tps {
        ensure!(
            committed.get(tp).map(|c| c.next_offset) == ends.get(tp).copied(),
            "{tp}: committed {:?}, end {:?}",
            committed.get(tp),
            ends.get(tp)
        );
    }
    member.close().await?;
    Ok(())
}

/// `describe_topic` reports a topic's partitions, replication factor and
/// the configs its spec asked for (in Kafka's names, on both adapters);
/// `describe_group` names a live member and `Empty`/`Dead` otherwise;
/// `offset_for_time` finds the first record at or after a timestamp and
/// the end past the last one.
pub async fn topic_and_group_descriptions(h: &mut Harness) -> Result<()> {
    use platform::eventlog::{Cleanup, TopicSpec};
    let mut specs = Vec::new();
    for (base, cleanup) in [
        ("describe.events", Cleanup::KeepForever),
        ("describe.snapshots", Cleanup::Compact),
        (
            "describe.commands",
            Cleanup::Delete {
                retention: Duration::from_secs(3600),
            },
        ),
    ] {
        let mut spec = TopicSpec::new(h.name(base), 2, cleanup);
        spec.min_insync_replicas = Some(1);
        specs.push(spec);
    }
    h.log.create_topics(&specs).await?;
    for spec in &specs {
        let described = h.log.describe_topic(&spec.name).await?;
        ensure!(described.name == spec.name, "name {}", described.name);
        ensure!(
            described.partitions == 2,
            "partitions {}",
            described.partitions
        );
        ensure!(
            described.replication_factor == 1,
            "replication factor {}",
            described.replication_factor
        );
        for (key, value) in spec.configs() {
            ensure!(
                described.configs.get(key) == Some(&value),
                "{}: {key} = {:?}, spec says {value}",
                spec.name,
                described.configs.get(key)
            );
        }
    }
    match h.log.describe_topic(&h.name("no-such-topic")).await {
        Err(LogError::UnknownTopic(_)) => {}
        other => anyhow::bail!("describing a missing topic gave {other:?}"),
    }

    let topic = specs[0].name.clone();
    let group = h.name("g-describe");
    let unknown = h.log.describe_group(&group).await?;
    ensure!(
        unknown.state == "Dead" && unknown.members.is_empty(),
        "unknown group: {unknown:?}"
    );
    let mut member = h
        .log
        .join_group(h.group_config(&group, vec![topic.clone()]))
        .await?;
    poll_until(member.as_mut(), Duration::from_secs(30), |s| {
        !s.assigned.is_empty()
    })
    .await?;
    let live = h.log.describe_group(&group).await?;
    ensure!(
        live.state == "Stable" && live.members.len() == 1,
        "group with one member: {live:?}"
    );
    member.close().await?;

    let producer = h.log.producer("conformance").await?;
    let tp = TopicPartition::new(topic.clone(), 0);
    let mut times = Vec::new();
    // Hours in the past: brokers refuse timestamps far in the future.
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let hour = 3_600_000;
    for (i, ts) in [now - 3 * hour, now - 2 * hour, now - hour]
        .into_iter()
        .enumerate()
    {
        let mut record = OutgoingRecord::new(topic.clone(), format!("k{i}"), format!("v{i}"));
        record.partition = Some(0);
        record.timestamp_ms = Some(ts);
        let position = producer.send(record).await?;
        times.push((ts, position.offset));
    }
    for (ts, offset) in &times {
        let found = h.log.offset_for_time(&tp, *ts).await?;
        ensure!(
            found == *offset,
            "at {ts}: offset {found}, expected {offset}"
        );
        let between = h.log.offset_for_time(&tp, ts - 1).await?;
        ensure!(
            between == *offset,
            "just before {ts}: {between}, expected {offset}"
        );
    }
    let end = h.log.end_offset(&tp).await?;
    let after = h.log.offset_for_time(&tp, now + hour).await?;
    ensure!(after == end, "after the last record: {after}, end {end}");
    Ok(())
}
