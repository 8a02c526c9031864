//! Behaviour of the embedded adapter through the port. (The cross-adapter
//! conformance suite lives in `platform/tests`; these pin down the
//! embedded-specific parts and run in milliseconds.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use super::{EmbeddedLog, EmbeddedOptions};
use crate::eventlog::{
    Cleanup, EventLog, GroupConfig, GroupEvent, GroupMember, LogError, LogRecord, OffsetCommit,
    OutgoingRecord, TopicPartition, TopicSpec,
};
use crate::partitioner::partition_for_key;

fn options() -> EmbeddedOptions {
    EmbeddedOptions {
        poll_tick: Duration::from_millis(10),
        ..EmbeddedOptions::default()
    }
}

async fn log_with(dir: &std::path::Path, topics: &[(&str, i32)]) -> EmbeddedLog {
    let log = EmbeddedLog::open(dir, options()).unwrap();
    let specs: Vec<TopicSpec> = topics
        .iter()
        .map(|(n, p)| TopicSpec::new(*n, *p, Cleanup::KeepForever))
        .collect();
    log.create_topics(&specs).await.unwrap();
    log
}

fn rec(topic: &str, partition: i32, value: &str) -> OutgoingRecord {
    let mut r = OutgoingRecord::new(topic, format!("key-{value}"), value);
    r.partition = Some(partition);
    r
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

async fn read_all(log: &EmbeddedLog, tp: TopicPartition) -> Vec<LogRecord> {
    log.read_range(tp, 0, i64::MAX).try_collect().await.unwrap()
}

fn group(group_id: &str, topics: &[&str], timeout: Duration) -> GroupConfig {
    let mut config = GroupConfig::new(group_id, topics.iter().map(|t| (*t).to_owned()).collect());
    config.session_timeout = timeout;
    config.max_poll_interval = Duration::from_secs(60);
    config
}

/// Polls until the member has seen a rebalance; returns (revoked, assigned,
/// records seen on the way).
async fn next_assignment(
    member: &mut Box<dyn GroupMember>,
) -> (Vec<TopicPartition>, Vec<TopicPartition>, Vec<LogRecord>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut revoked, mut records) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        let mut assigned = None;
        for event in member.poll(100, Duration::from_millis(50)).await.unwrap() {
            match event {
                GroupEvent::Revoked(tps) => revoked = tps,
                GroupEvent::Assigned(tps) => assigned = Some(tps),
                GroupEvent::Records(r) => records.extend(r),
            }
        }
        if let Some(mut tps) = assigned {
            tps.sort();
            return (revoked, tps, records);
        }
    }
    panic!("no rebalance within 2s");
}

async fn poll_records(member: &mut Box<dyn GroupMember>, want: usize) -> Vec<LogRecord> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        for event in member
            .poll(want - out.len(), Duration::from_millis(50))
            .await
            .unwrap()
        {
            if let GroupEvent::Records(r) = event {
                out.extend(r);
            }
        }
    }
    out
}

#[tokio::test]
async fn appends_get_contiguous_offsets_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("orders", 2)]).await;
    let producer = log.producer("test").await.unwrap();
    for i in 0..5 {
        let r = rec("orders", 1, &format!("v{i}")).with_header("type", "Placed");
        let pos = producer.send(r).await.unwrap();
        assert_eq!(
            (pos.topic.as_str(), pos.partition, pos.offset),
            ("orders", 1, i)
        );
    }
    assert_eq!(log.end_offset(&tp("orders", 1)).await.unwrap(), 5);
    assert_eq!(log.end_offset(&tp("orders", 0)).await.unwrap(), 0);
    assert_eq!(log.start_offset(&tp("orders", 1)).await.unwrap(), 0);

    let records = read_all(&log, tp("orders", 1)).await;
    assert_eq!(records.len(), 5);
    assert_eq!(records[3].offset, 3);
    assert_eq!(records[3].key, b"key-v3");
    assert_eq!(records[3].value.as_deref(), Some(&b"v3"[..]));
    assert_eq!(records[3].header("type"), Some(&b"Placed"[..]));
    assert!(records[3].timestamp_ms > 0);

    // Bounded ranges.
    let mid: Vec<LogRecord> = log
        .read_range(tp("orders", 1), 1, 3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(mid.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
    let none: Vec<LogRecord> = log
        .read_range(tp("orders", 1), 5, 10)
        .try_collect()
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn read_range_streams_in_chunks_up_to_the_end_at_call_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        EmbeddedOptions {
            read_chunk: 3,
            ..options()
        },
    )
    .unwrap();
    log.create_topics(&[TopicSpec::new("t", 1, Cleanup::KeepForever)])
        .await
        .unwrap();
    let producer = log.producer("p").await.unwrap();
    for i in 0..10 {
        producer.send(rec("t", 0, &i.to_string())).await.unwrap();
    }
    let stream = log.read_range(tp("t", 0), 2, i64::MAX);
    // Appended after the call: not part of this read.
    producer.send(rec("t", 0, "late")).await.unwrap();
    let records: Vec<LogRecord> = stream.try_collect().await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (2..10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn keys_are_placed_by_murmur2_and_bad_targets_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 6)]).await;
    let producer = log.producer("p").await.unwrap();
    for key in ["a", "order-17", "customer-9", ""] {
        let pos = producer
            .send(OutgoingRecord::new("t", key, "v"))
            .await
            .unwrap();
        assert_eq!(
            pos.partition,
            partition_for_key(key.as_bytes(), 6),
            "key {key:?}"
        );
    }
    let unknown = producer.send(OutgoingRecord::new("nope", "k", "v")).await;
    assert!(matches!(unknown, Err(LogError::UnknownTopic(t)) if t == "nope"));
    for bad in [6, -1] {
        let r = producer.send(rec("t", bad, "v")).await;
        assert!(
            matches!(r, Err(LogError::Invalid(_))),
            "partition {bad}: {r:?}"
        );
    }
    assert!(matches!(
        log.end_offset(&tp("t", 6)).await,
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        log.partition_count("nope").await,
        Err(LogError::UnknownTopic(_))
    ));
    let err: Result<Vec<LogRecord>, _> = log.read_range(tp("nope", 0), 0, 10).try_collect().await;
    assert!(matches!(err, Err(LogError::UnknownTopic(_))));
}

#[tokio::test]
async fn create_topics_is_idempotent_and_checks_partition_counts() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("a", 3), ("b", 1)]).await;
    log.create_topics(&[TopicSpec::new("a", 3, Cleanup::Compact)])
        .await
        .unwrap();
    let mismatch = log
        .create_topics(&[
            TopicSpec::new("c", 2, Cleanup::KeepForever),
            TopicSpec::new("a", 4, Cleanup::KeepForever),
        ])
        .await;
    assert!(matches!(
        mismatch,
        Err(LogError::TopicMismatch { ref topic, expected: 4, actual: 3 }) if topic == "a"
    ));
    let mut topics = log.list_topics().await.unwrap();
    topics.sort();
    assert_eq!(
        topics,
        vec!["a", "b"],
        "all-or-nothing: `c` was not created"
    );
    assert_eq!(log.partition_count("a").await.unwrap(), 3);
    let zero = log
        .create_topics(&[TopicSpec::new("z", 0, Cleanup::KeepForever)])
        .await;
    assert!(matches!(zero, Err(LogError::Invalid(_))));
}

#[tokio::test]
async fn concurrent_sends_are_group_committed_with_distinct_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 2)]).await;
    let producer = std::sync::Arc::new(log.producer("p").await.unwrap());
    let sends = (0..300).map(|i| {
        let producer = std::sync::Arc::clone(&producer);
        async move {
            producer
                .send(rec("t", i % 2, &i.to_string()))
                .await
                .unwrap()
        }
    });
    let positions = futures::future::join_all(sends).await;
    let distinct: HashSet<(i32, i64)> = positions.iter().map(|p| (p.partition, p.offset)).collect();
    assert_eq!(distinct.len(), 300);
    assert_eq!(log.end_offset(&tp("t", 0)).await.unwrap(), 150);
    assert_eq!(read_all(&log, tp("t", 1)).await.len(), 150);
}

#[tokio::test]
async fn transactions_are_invisible_until_committed_and_aborts_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 1), ("out", 2)]).await;
    log.producer("p")
        .await
        .unwrap()
        .send(rec("in", 0, "cmd"))
        .await
        .unwrap();
    let mut m = log
        .join_group(group("g", &["in"], Duration::from_secs(10)).transactional("tx-1"))
        .await
        .unwrap();
    let (_, assigned, records) = next_assignment(&mut m).await;
    assert_eq!(assigned, vec![tp("in", 0)]);
    assert!(
        records.is_empty(),
        "records follow the assignment, in a later poll"
    );
    assert_eq!(poll_records(&mut m, 1).await.len(), 1);

    // Aborted: never visible.
    m.begin().await.unwrap();
    m.send(rec("out", 0, "aborted")).unwrap();
    m.abort_transaction().await.unwrap();

    // Open: not visible yet, to range reads or to the log's ends.
    m.begin().await.unwrap();
    m.send(rec("out", 1, "e1")).unwrap();
    m.send(rec("out", 0, "e2")).unwrap();
    m.send(rec("out", 1, "e3")).unwrap();
    assert!(matches!(
        m.send(rec("nope", 0, "x")),
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        m.send(rec("out", 9, "x")),
        Err(LogError::Invalid(_))
    ));
    assert_eq!(log.end_offset(&tp("out", 1)).await.unwrap(), 0);
    assert!(read_all(&log, tp("out", 0)).await.is_empty());

    let commit = OffsetCommit {
        tp: tp("in", 0),
        next_offset: 1,
        metadata: "ckpt".into(),
    };
    let positions = m.commit_transaction(&[commit]).await.unwrap();
    let got: Vec<(i32, i64)> = positions.iter().map(|p| (p.partition, p.offset)).collect();
    assert_eq!(got, vec![(1, 0), (0, 0), (1, 1)], "positions in send order");
    assert_eq!(
        read_all(&log, tp("out", 0)).await[0].value.as_deref(),
        Some(&b"e2"[..])
    );
    assert_eq!(read_all(&log, tp("out", 1)).await.len(), 2);
    let committed = log
        .committed_offsets("g", &[tp("in", 0), tp("out", 0)])
        .await
        .unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[&tp("in", 0)].next_offset, 1);
    assert_eq!(committed[&tp("in", 0)].metadata, "ckpt");

    // Misuse.
    assert!(matches!(
        m.commit_transaction(&[]).await,
        Err(LogError::NoTransaction)
    ));
    assert!(matches!(
        m.send(rec("out", 0, "x")),
        Err(LogError::NoTransaction)
    ));
    let mut plain = log
        .join_group(group("g2", &["in"], Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(matches!(
        plain.begin().await,
        Err(LogError::NotTransactional)
    ));
    assert!(matches!(
        plain.seek(&tp("in", 0), 0).await,
        Err(LogError::NotAssigned(_))
    ));
}

#[tokio::test]
async fn two_members_share_partitions_and_resume_from_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 4)]).await;
    let producer = log.producer("p").await.unwrap();
    for p in 0..4 {
        for i in 0..3 {
            producer
                .send(rec("t", p, &format!("{p}-{i}")))
                .await
                .unwrap();
        }
    }
    let timeout = Duration::from_secs(10);
    let mut a = log.join_group(group("g", &["t"], timeout)).await.unwrap();
    let (revoked, assigned, mut first) = next_assignment(&mut a).await;
    assert!(revoked.is_empty());
    assert_eq!(assigned.len(), 4);
    first.extend(poll_records(&mut a, 12 - first.len()).await);
    assert_eq!(first.len(), 12);
    // Commit 2 of 3 records of every partition.
    let commits: Vec<OffsetCommit> = (0..4)
        .map(|p| OffsetCommit {
            tp: tp("t", p),
            next_offset: 2,
            metadata: String::new(),
        })
        .collect();
    a.commit_offsets(&commits).await.unwrap();

    let mut b = log.join_group(group("g", &["t"], timeout)).await.unwrap();
    // A's old generation can no longer commit until it polls.
    assert!(matches!(
        a.commit_offsets(&commits[..1]).await,
        Err(LogError::Fenced(_))
    ));
    let (revoked, a_set, a_records) = next_assignment(&mut a).await;
    assert_eq!(revoked.len(), 4, "eager: A revokes everything");
    let (_, b_set, b_records) = next_assignment(&mut b).await;
    assert_eq!(a_set.len() + b_set.len(), 4);
    assert_eq!(a_set.len(), 2);
    assert!(a_set.iter().all(|tp| !b_set.contains(tp)));
    assert_eq!(a.assignment().len(), 2);

    // Both resume after the committed offsets: one record per partition.
    let mut rest = a_records;
    rest.extend(poll_records(&mut a, 2 - rest.len().min(2)).await);
    let mut b_rest = b_records;
    b_rest.extend(poll_records(&mut b, 2 - b_rest.len().min(2)).await);
    for r in rest.iter().chain(&b_rest) {
        assert_eq!(r.offset, 2);
    }
    assert_eq!(rest.len() + b_rest.len(), 4);
    for r in &b_rest {
        assert!(b_set.contains(&r.topic_partition()));
    }

    // A member cannot commit for a partition it does not own.
    let foreign = OffsetCommit {
        tp: b_set[0].clone(),
        next_offset: 3,
        metadata: String::new(),
    };
    assert!(matches!(
        a.commit_offsets(&[foreign]).await,
        Err(LogError::Fenced(_))
    ));

    // Closing moves partitions at once.
    a.close().await.unwrap();
    let (_, b_all, _) = next_assignment(&mut b).await;
    assert_eq!(b_all.len(), 4);
}

#[tokio::test]
async fn members_must_subscribe_the_same_topics() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("a", 1), ("b", 1)]).await;
    let t = Duration::from_secs(10);
    let _m = log.join_group(group("g", &["a", "b"], t)).await.unwrap();
    let same = log.join_group(group("g", &["b", "a", "b"], t)).await;
    assert!(same.is_ok());
    assert!(matches!(
        log.join_group(group("g", &["a"], t)).await,
        Err(LogError::Invalid(_))
    ));
    assert!(matches!(
        log.join_group(group("h", &["missing"], t)).await,
        Err(LogError::UnknownTopic(_))
    ));
}

#[tokio::test]
async fn poll_waits_for_appends_and_wakes_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 1)]).await;
    let mut m = log
        .join_group(group("g", &["t"], Duration::from_secs(10)))
        .await
        .unwrap();
    next_assignment(&mut m).await;
    let writer = log.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer
            .producer("p")
            .await
            .unwrap()
            .send(rec("t", 0, "hello"))
            .await
            .unwrap();
    });
    let started = Instant::now();
    let events = m.poll(10, Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(&events[..], [GroupEvent::Records(r)] if r.len() == 1));
    // Nothing more: an empty poll returns after its timeout.
    let started = Instant::now();
    assert!(m
        .poll(10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn poll_is_fair_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 2)]).await;
    let producer = log.producer("p").await.unwrap();
    for i in 0..50 {
        producer.send(rec("t", 0, &i.to_string())).await.unwrap();
        producer.send(rec("t", 1, &i.to_string())).await.unwrap();
    }
    let mut m = log
        .join_group(group("g", &["t"], Duration::from_secs(10)))
        .await
        .unwrap();
    next_assignment(&mut m).await;
    // The first poll may already have consumed some; start over.
    for p in 0..2 {
        m.seek(&tp("t", p), 0).await.unwrap();
    }
    let records = poll_records(&mut m, 10).await;
    let on_zero = records.iter().filter(|r| r.partition == 0).count();
    assert_eq!((records.len(), on_zero), (10, 5));
    // Offset order within each partition.
    for p in 0..2 {
        let offsets: Vec<i64> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..5).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn zombie_that_stopped_polling_is_fenced_and_its_transaction_never_appears() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 2), ("out", 1)]).await;
    let producer = log.producer("p").await.unwrap();
    producer.send(rec("in", 0, "c0")).await.unwrap();
    producer.send(rec("in", 1, "c1")).await.unwrap();
    let timeout = Duration::from_millis(200);
    let mut a = log
        .join_group(group("g", &["in"], timeout).transactional("tx-a"))
        .await
        .unwrap();
    let mut b = log
        .join_group(group("g", &["in"], timeout).transactional("tx-b"))
        .await
        .unwrap();
    let (_, a_set, _) = next_assignment(&mut a).await;
    let (_, b_set, _) = next_assignment(&mut b).await;
    assert_eq!((a_set.len(), b_set.len()), (1, 1));

    // A starts work on its partition, then stalls past its session timeout.
    a.begin().await.unwrap();
    a.send(rec("out", 0, "zombie-event")).unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        // B keeps polling; it notices A's silence and takes everything.
        let events = b.poll(10, Duration::from_millis(20)).await.unwrap();
        if events
            .iter()
            .any(|e| matches!(e, GroupEvent::Assigned(tps) if tps.len() == 2))
        {
            break;
        }
    }
    assert_eq!(
        b.assignment().len(),
        2,
        "B owns A's partition after A's timeout"
    );

    let commit = OffsetCommit {
        tp: a_set[0].clone(),
        next_offset: 1,
        metadata: String::new(),
    };
    let result = a.commit_transaction(&[commit]).await;
    assert!(matches!(result, Err(LogError::Fenced(_))), "{result:?}");
    assert!(
        read_all(&log, tp("out", 0)).await.is_empty(),
        "zombie records invisible"
    );
    assert_eq!(log.end_offset(&tp("out", 0)).await.unwrap(), 0);
    assert!(log.committed_offsets("g", &a_set).await.unwrap().is_empty());

    // When the zombie polls again it rejoins: everything revoked first.
    let (revoked, _, _) = next_assignment(&mut a).await;
    assert_eq!(revoked, a_set);
}

#[tokio::test]
async fn a_silent_member_is_fenced_even_if_nobody_else_polls() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 1)]).await;
    let mut a = log
        .join_group(group("g", &["in"], Duration::from_millis(100)).transactional("tx"))
        .await
        .unwrap();
    next_assignment(&mut a).await;
    a.begin().await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let commit = OffsetCommit {
        tp: tp("in", 0),
        next_offset: 0,
        metadata: String::new(),
    };
    assert!(matches!(
        a.commit_transaction(&[commit]).await,
        Err(LogError::Fenced(_))
    ));
}

#[tokio::test]
async fn a_dropped_member_keeps_its_partitions_until_its_session_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("t", 2)]).await;
    let timeout = Duration::from_millis(300);
    let mut a = log.join_group(group("g", &["t"], timeout)).await.unwrap();
    next_assignment(&mut a).await;
    drop(a); // a crash: no close()
    let started = Instant::now();
    let mut b = log.join_group(group("g", &["t"], timeout)).await.unwrap();
    let (_, first, _) = next_assignment(&mut b).await;
    assert_eq!(first.len(), 1, "the crashed member still holds a partition");
    let (_, all, _) = next_assignment(&mut b).await;
    assert_eq!(all.len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_newer_member_with_the_same_transactional_id_fences_the_older() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 2), ("out", 1)]).await;
    let t = Duration::from_secs(10);
    let mut old = log
        .join_group(group("g", &["in"], t).transactional("proc-0"))
        .await
        .unwrap();
    next_assignment(&mut old).await;
    old.begin().await.unwrap();
    old.send(rec("out", 0, "old")).unwrap();

    let mut new = log
        .join_group(group("g", &["in"], t).transactional("proc-0"))
        .await
        .unwrap();
    // The old incarnation polls (so its generation is current) and still
    // owns a partition, yet its transactional id belongs to `new` now.
    let (_, old_set, _) = next_assignment(&mut old).await;
    let (_, new_set, _) = next_assignment(&mut new).await;
    assert_eq!((old_set.len(), new_set.len()), (1, 1));
    // Its open transaction is doomed, and it cannot start another.
    assert!(matches!(
        old.commit_transaction(&[]).await,
        Err(LogError::ProducerFenced(_))
    ));
    assert!(matches!(
        old.begin().await,
        Err(LogError::ProducerFenced(_))
    ));

    new.begin().await.unwrap();
    new.send(rec("out", 0, "new")).unwrap();
    let commit = OffsetCommit {
        tp: new_set[0].clone(),
        next_offset: 0,
        metadata: String::new(),
    };
    new.commit_transaction(&[commit]).await.unwrap();
    let out = read_all(&log, tp("out", 0)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].value.as_deref(), Some(&b"new"[..]));
}

#[tokio::test]
async fn transaction_spanning_a_rebalance_or_fenced_by_txn_id_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 2), ("out", 1)]).await;
    let t = Duration::from_secs(10);
    let mut old = log
        .join_group(group("g", &["in"], t).transactional("p"))
        .await
        .unwrap();
    next_assignment(&mut old).await;
    old.begin().await.unwrap();
    old.send(rec("out", 0, "old")).unwrap();
    // Fenced by id while its transaction is open (and before any poll).
    let _new = log
        .join_group(group("g", &["in"], t).transactional("p"))
        .await
        .unwrap();
    assert!(matches!(
        old.commit_transaction(&[]).await,
        Err(LogError::ProducerFenced(_))
    ));
    assert!(read_all(&log, tp("out", 0)).await.is_empty());
}

#[tokio::test]
async fn a_transaction_without_offsets_does_not_involve_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("in", 1), ("out", 1)]).await;
    // Never polled, so it has no generation and no partitions: a
    // producer-only transaction is still fine (as with Kafka).
    let mut m = log
        .join_group(group("g", &["in"], Duration::from_secs(10)).transactional("solo"))
        .await
        .unwrap();
    m.begin().await.unwrap();
    m.send(rec("out", 0, "v")).unwrap();
    assert_eq!(m.commit_transaction(&[]).await.unwrap().len(), 1);
    // With offsets it is a group commit and must own what it commits.
    m.begin().await.unwrap();
    let c = OffsetCommit {
        tp: tp("in", 0),
        next_offset: 0,
        metadata: String::new(),
    };
    assert!(matches!(
        m.commit_transaction(&[c]).await,
        Err(LogError::Fenced(_))
    ));
}

#[tokio::test]
async fn everything_committed_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = log_with(dir.path(), &[("t", 3), ("snap", 3)]).await;
        let producer = log.producer("p").await.unwrap();
        for i in 0..4 {
            producer.send(rec("t", 2, &i.to_string())).await.unwrap();
        }
        let mut m = log
            .join_group(group("g", &["t"], Duration::from_secs(10)).transactional("x"))
            .await
            .unwrap();
        next_assignment(&mut m).await;
        m.begin().await.unwrap();
        m.send(rec("snap", 2, "s")).unwrap();
        let c = OffsetCommit {
            tp: tp("t", 2),
            next_offset: 4,
            metadata: "m".into(),
        };
        m.commit_transaction(&[c]).await.unwrap();
        // An open transaction at "crash" time is lost.
        m.begin().await.unwrap();
        m.send(rec("snap", 2, "lost")).unwrap();
        drop(m);
        drop(producer);
    }
    let log = EmbeddedLog::open(dir.path(), options()).unwrap();
    let mut topics = log.list_topics().await.unwrap();
    topics.sort();
    assert_eq!(topics, vec!["snap", "t"]);
    assert_eq!(log.partition_count("t").await.unwrap(), 3);
    assert_eq!(log.end_offset(&tp("t", 2)).await.unwrap(), 4);
    assert_eq!(read_all(&log, tp("snap", 2)).await.len(), 1);
    let committed = log.committed_offsets("g", &[tp("t", 2)]).await.unwrap();
    assert_eq!(committed[&tp("t", 2)].next_offset, 4);
    assert_eq!(committed[&tp("t", 2)].metadata, "m");
    // Offsets continue where they were.
    let pos = log
        .producer("p")
        .await
        .unwrap()
        .send(rec("t", 2, "next"))
        .await
        .unwrap();
    assert_eq!(pos.offset, 4);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _log = EmbeddedLog::open(dir.path(), options()).unwrap();
    let quick = EmbeddedOptions {
        lock_wait: Duration::from_millis(50),
        ..options()
    };
    match EmbeddedLog::open(dir.path(), quick) {
        Err(LogError::Storage(msg)) => assert!(msg.contains("in use"), "{msg}"),
        other => panic!("expected a storage error, got {other:?}"),
    }
}

/// Set in the child process of [`survives_kill_9_mid_write`].
const KILL_CHILD_DIR: &str = "QUICKSTORE_EMBEDDED_KILL_CHILD_DIR";

/// The child of [`survives_kill_9_mid_write`]: commits transactions (two
/// records on two topics + the consumed offset) as fast as it can, printing
/// each acknowledged one, until it is killed. A no-op unless run by it.
#[test]
#[ignore = "child process of survives_kill_9_mid_write"]
fn kill9_child() {
    let Some(dir) = std::env::var_os(KILL_CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let log = log_with(std::path::Path::new(&dir), &[("in", 1), ("a", 2), ("b", 2)]).await;
        let mut m = log
            .join_group(group("g", &["in"], Duration::from_secs(10)).transactional("crash"))
            .await
            .unwrap();
        next_assignment(&mut m).await;
        let producer = log.producer("p").await.unwrap();
        for i in 0i64.. {
            m.begin().await.unwrap();
            let p = i32::try_from(i % 2).unwrap();
            m.send(rec("a", p, &i.to_string())).unwrap();
            m.send(rec("b", 1 - p, &i.to_string())).unwrap();
            let c = OffsetCommit {
                tp: tp("in", 0),
                next_offset: i + 1,
                metadata: i.to_string(),
            };
            m.commit_transaction(&[c]).await.unwrap();
            // A plain append racing with the next transaction.
            let send = producer.send(rec("in", 0, &i.to_string()));
            println!("committed {i}");
            send.await.unwrap();
        }
    });
}

#[test]
fn survives_kill_9_mid_write() {
    use std::io::BufRead;

    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "eventlog::embedded::tests::kill9_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = -1i64;
    for line in std::io::BufReader::new(stdout).lines() {
        if let Some(n) = line.unwrap().strip_prefix("committed ") {
            acked = n.parse().unwrap();
            if acked >= 60 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no clean close
    child.wait().unwrap();
    assert!(acked >= 60, "the child never got going");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let log = EmbeddedLog::open(dir.path(), options()).unwrap();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for p in 0..2 {
            a.extend(read_all(&log, tp("a", p)).await);
            b.extend(read_all(&log, tp("b", p)).await);
        }
        // Every acknowledged transaction is there, and each one entirely.
        let txns = i64::try_from(a.len()).unwrap();
        assert!(
            txns > acked,
            "lost acknowledged transactions: {txns} <= {acked}"
        );
        assert_eq!(a.len(), b.len(), "a transaction was half-applied");
        let committed = log.committed_offsets("g", &[tp("in", 0)]).await.unwrap();
        assert_eq!(committed[&tp("in", 0)].next_offset, txns);
        assert_eq!(committed[&tp("in", 0)].metadata, (txns - 1).to_string());
        // Offsets stay contiguous and appends continue after the last one.
        let ins = read_all(&log, tp("in", 0)).await;
        assert!(ins
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i64::try_from(i).unwrap()));
        let next = log
            .producer("p")
            .await
            .unwrap()
            .send(rec("in", 0, "after"))
            .await
            .unwrap();
        assert_eq!(next.offset, i64::try_from(ins.len()).unwrap());
    });
}

/// A compacted topic keeps only the latest record per key, durably, and
/// readers (range and group) step over the holes that leaves.
#[tokio::test]
async fn compacted_topics_keep_the_latest_record_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), options()).unwrap();
    log.create_topics(&[TopicSpec::new("snapshots", 1, Cleanup::Compact)])
        .await
        .unwrap();
    let producer = log.producer("t").await.unwrap();
    // a@0 a@1 b@2 a@3 c@4 b@5: the latest are a@3, c@4, b@5.
    for (key, value) in [
        ("a", "a1"),
        ("a", "a2"),
        ("b", "b1"),
        ("a", "a3"),
        ("c", "c1"),
        ("b", "b2"),
    ] {
        producer
            .send(OutgoingRecord::new("snapshots", key, value))
            .await
            .unwrap();
    }
    let latest = |records: &[LogRecord]| -> Vec<(i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap()).unwrap(),
                )
            })
            .collect()
    };
    let expected = vec![
        (3, "a3".to_owned()),
        (4, "c1".to_owned()),
        (5, "b2".to_owned()),
    ];
    assert_eq!(latest(&read_all(&log, tp("snapshots", 0)).await), expected);
    // A range that falls entirely into a hole is empty, not stuck.
    let hole: Vec<LogRecord> = log
        .read_range(tp("snapshots", 0), 0, 3)
        .try_collect()
        .await
        .unwrap();
    assert!(hole.is_empty());
    assert_eq!(log.end_offset(&tp("snapshots", 0)).await.unwrap(), 6);

    // A group member reads past the holes and then waits, without spinning
    // on offsets that no longer exist.
    let mut member = log
        .join_group(group("g", &["snapshots"], Duration::from_secs(5)))
        .await
        .unwrap();
    let seen = poll_records(&mut member, 3).await;
    assert_eq!(latest(&seen), expected);
    let more = member.poll(10, Duration::from_millis(100)).await.unwrap();
    assert!(
        more.iter().all(|e| !matches!(e, GroupEvent::Records(_))),
        "{more:?}"
    );
    member.close().await.unwrap();

    // The index survives a restart: the next write of `a` still deletes a@3.
    drop(producer);
    drop(log);
    let log = EmbeddedLog::open(dir.path(), options()).unwrap();
    assert_eq!(log.end_offset(&tp("snapshots", 0)).await.unwrap(), 6);
    log.producer("t")
        .await
        .unwrap()
        .send(OutgoingRecord::new("snapshots", "a", "a4"))
        .await
        .unwrap();
    assert_eq!(
        latest(&read_all(&log, tp("snapshots", 0)).await),
        vec![
            (4, "c1".to_owned()),
            (5, "b2".to_owned()),
            (6, "a4".to_owned())
        ]
    );
}

/// Topics that are not compacted keep every record.
#[tokio::test]
async fn kept_topics_are_never_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), &[("events", 1)]).await;
    let producer = log.producer("t").await.unwrap();
    for value in ["1", "2", "3"] {
        producer
            .send(OutgoingRecord::new("events", "same-key", value))
            .await
            .unwrap();
    }
    assert_eq!(read_all(&log, tp("events", 0)).await.len(), 3);
}
