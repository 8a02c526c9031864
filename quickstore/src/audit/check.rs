//! The chain checker: a pure state machine fed one decoded record at a
//! time, in each partition's offset order. It knows nothing of the log;
//! [`super::scan`] feeds it.
//!
//! Per aggregate it keeps only the head of the chain (last version, last
//! hash); across the scan, every event id as 16 bytes (see
//! [`EventIds`]). What it finds, per record:
//! - `hash-mismatch`: the stored `hash` is not SHA-256(prev_hash ‖
//!   canonical bytes) — the record was changed after it was sealed;
//! - `broken-link`: `prev_hash` is not the previous event's `hash`;
//! - `version-gap`: versions missing before this one (an event removed);
//! - `version-out-of-order`: a version at or below one already seen
//!   (events reordered, or a second event claiming a taken version);
//! - `duplicate-event-id`: an event id seen earlier in the scan;
//! - `key-mismatch`: the record key is not the aggregate id;
//! - `wrong-partition`: the record is not in the partition murmur2 of its
//!   key names (where every reader and writer looks for it);
//! - `undecodable`: the record is not an event at all.

use std::collections::{HashMap, HashSet};

use query_api::audit_log::ChainFinding;
use schemas::codec::ChainLink;
use sha2::{Digest, Sha256};

pub const HASH_MISMATCH: &str = "hash-mismatch";
pub const BROKEN_LINK: &str = "broken-link";
pub const VERSION_GAP: &str = "version-gap";
pub const VERSION_OUT_OF_ORDER: &str = "version-out-of-order";
pub const DUPLICATE_EVENT_ID: &str = "duplicate-event-id";
pub const KEY_MISMATCH: &str = "key-mismatch";
pub const WRONG_PARTITION: &str = "wrong-partition";
pub const UNDECODABLE: &str = "undecodable";

/// Findings kept in memory for the report; beyond this they are counted
/// only (a log damaged everywhere must not exhaust memory in the report).
pub const MAX_KEPT_FINDINGS: usize = 10_000;

/// Where a record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// The head of one aggregate's chain.
#[derive(Debug, Clone)]
struct Head {
    version: i64,
    hash: Vec<u8>,
}

/// Every event id seen, as 16 bytes: a UUID's own bytes (every id the
/// system writes is one), else the first 16 bytes of its SHA-256. About
/// 16 bytes plus the hash table's overhead (~35 bytes in all) per event.
#[derive(Debug, Default)]
pub struct EventIds(HashSet<u128>);

impl EventIds {
    fn fingerprint(id: &str) -> u128 {
        match uuid::Uuid::parse_str(id) {
            Ok(u) => u.as_u128(),
            Err(_) => {
                let digest = Sha256::digest(id.as_bytes());
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
                // A non-UUID id cannot collide with a UUID's bytes by
                // accident any more than two UUIDs can.
                u128::from_be_bytes(bytes)
            }
        }
    }

    /// Records `id`; false when it was seen before.
    pub fn insert(&mut self, id: &str) -> bool {
        self.0.insert(Self::fingerprint(id))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Duplicated event ids, for naming the record that used each first: the
/// set only says "seen", so the scan reads the log a second time — only
/// when there are duplicates — and calls [`ChainChecker::first_use`].
#[derive(Debug, Default)]
struct Duplicates {
    /// Fingerprint → the first record that used it (once found).
    first: HashMap<u128, Option<Location>>,
    /// Kept findings to complete: (index in `findings`, fingerprint).
    pending: Vec<(usize, u128)>,
}

/// What a record holds that the checker looks at.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub at: &'a Location,
    pub key: &'a [u8],
    /// The topic's partition count (to check placement); `None` skips it.
    pub partitions: Option<i32>,
    pub link: &'a ChainLink,
    pub event_id: &'a str,
}

/// The checker (see the module docs).
#[derive(Debug, Default)]
pub struct ChainChecker {
    heads: HashMap<String, Head>,
    ids: EventIds,
    duplicates: Duplicates,
    findings: Vec<ChainFinding>,
    findings_total: u64,
    events: u64,
}

fn head_key(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}\u{0}{aggregate_id}")
}

impl ChainChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records checked (decodable or not).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Distinct aggregates seen.
    pub fn aggregates(&self) -> usize {
        self.heads.len()
    }

    /// Findings in scan order (at most [`MAX_KEPT_FINDINGS`]).
    pub fn findings(&self) -> &[ChainFinding] {
        &self.findings
    }

    /// Every finding, kept or only counted.
    pub fn findings_total(&self) -> u64 {
        self.findings_total
    }

    /// The head of one aggregate: (last version in order, its hash).
    pub fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(i64, &[u8])> {
        self.heads
            .get(&head_key(aggregate_type, aggregate_id))
            .map(|h| (h.version, h.hash.as_slice()))
    }

    fn report(&mut self, finding: ChainFinding) {
        self.findings_total += 1;
        if self.findings.len() < MAX_KEPT_FINDINGS {
            self.findings.push(finding);
        }
    }

    /// Whether some event id was used twice (then a second pass calls
    /// [`Self::first_use`] for every record, in the same order, and
    /// [`Self::name_first_uses`]).
    pub fn has_duplicates(&self) -> bool {
        !self.duplicates.first.is_empty()
    }

    /// Second pass: `event_id` is used by the record at `at`.
    pub fn first_use(&mut self, event_id: &str, at: &Location) {
        if let Some(slot @ None) = self
            .duplicates
            .first
            .get_mut(&EventIds::fingerprint(event_id))
        {
            *slot = Some(at.clone());
        }
    }

    /// Completes the duplicate findings with where the id was first used.
    pub fn name_first_uses(&mut self) {
        for (index, fingerprint) in std::mem::take(&mut self.duplicates.pending) {
            let first = self.duplicates.first.get(&fingerprint).cloned().flatten();
            if let (Some(first), Some(f)) = (first, self.findings.get_mut(index)) {
                f.detail = format!(
                    "this event id was first used by the record at {}/{}@{}",
                    first.topic, first.partition, first.offset
                );
            }
        }
    }

    /// A record that is not an event (no value, unknown schema id, not an
    /// enveloped record, a body that does not decode).
    pub fn undecodable(&mut self, at: &Location, reason: &str) {
        self.events += 1;
        self.report(ChainFinding {
            topic: at.topic.clone(),
            partition: at.partition,
            offset: at.offset,
            aggregate_type: None,
            aggregate_id: None,
            version: None,
            event_id: None,
            kind: UNDECODABLE.into(),
            detail: format!("the record does not decode as an event: {reason}"),
        });
    }

    /// Checks one decoded event against its aggregate's chain so far.
    pub fn check(&mut self, seen: Seen<'_>) {
        self.events += 1;
        let link = seen.link;
        let finding = |kind: &str, detail: String| ChainFinding {
            topic: seen.at.topic.clone(),
            partition: seen.at.partition,
            offset: seen.at.offset,
            aggregate_type: Some(link.aggregate_type.clone()),
            aggregate_id: Some(link.aggregate_id.clone()),
            version: Some(link.version),
            event_id: Some(seen.event_id.to_owned()),
            kind: kind.into(),
            detail,
        };
        if seen.key != link.aggregate_id.as_bytes() {
            self.report(finding(
                KEY_MISMATCH,
                format!(
                    "record key {:?} is not the aggregate id",
                    String::from_utf8_lossy(seen.key)
                ),
            ));
        } else if let Some(n) = seen.partitions.filter(|n| *n > 0) {
            let expected = platform::partitioner::partition_for_key(seen.key, n);
            if expected != seen.at.partition {
                self.report(finding(
                    WRONG_PARTITION,
                    format!("the key belongs in partition {expected} (murmur2), not here"),
                ));
            }
        }
        if !self.ids.insert(seen.event_id) {
            let fingerprint = EventIds::fingerprint(seen.event_id);
            self.duplicates.first.entry(fingerprint).or_insert(None);
            if self.findings.len() < MAX_KEPT_FINDINGS {
                self.duplicates
                    .pending
                    .push((self.findings.len(), fingerprint));
            }
            self.report(finding(
                DUPLICATE_EVENT_ID,
                "this event id was already used by an earlier record of the scan".into(),
            ));
        }
        if !link.is_intact() {
            self.report(finding(
                HASH_MISMATCH,
                "the stored hash is not SHA-256(prev_hash ‖ canonical bytes): the record was changed after it was sealed".into(),
            ));
        }
        let key = head_key(&link.aggregate_type, &link.aggregate_id);
        let (last_version, last_hash) = match self.heads.get(&key) {
            Some(h) => (h.version, h.hash.as_slice()),
            None => (0, &[][..]),
        };
        let expected = last_version.saturating_add(1);
        if link.version < expected {
            // Not the chain's next link: leave the head where it is, so
            // the events after a reordered pair still check against it.
            let detail = if last_version == 0 {
                format!(
                    "version {} where the aggregate's first event (version 1) belongs",
                    link.version
                )
            } else {
                format!(
                    "version {} after version {last_version}: events out of order, or a second event claiming a version already taken",
                    link.version
                )
            };
            self.report(finding(VERSION_OUT_OF_ORDER, detail));
            return;
        }
        if link.version > expected {
            let missing = if link.version - expected == 1 {
                format!("version {expected} is missing")
            } else {
                format!("versions {expected} to {} are missing", link.version - 1)
            };
            self.report(finding(
                VERSION_GAP,
                format!(
                    "{missing} (expected {expected}, found {}): events were removed",
                    link.version
                ),
            ));
        } else if link.prev_hash != last_hash {
            let detail = if last_version == 0 {
                "the first event of an aggregate must have an empty prev_hash".to_owned()
            } else {
                format!(
                    "prev_hash {} is not the hash {} of version {last_version}",
                    short_hex(&link.prev_hash),
                    short_hex(last_hash)
                )
            };
            self.report(finding(BROKEN_LINK, detail));
        }
        self.heads.insert(
            key,
            Head {
                version: link.version,
                hash: link.hash.clone(),
            },
        );
    }
}

/// The first 12 hex digits of a hash (`-` when empty).
pub fn short_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    let mut text = hex::encode(bytes.get(..6).unwrap_or(bytes));
    if bytes.len() > 6 {
        text.push('…');
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use schemas::hash_chain::event_hash;

    fn link(id: &str, version: i64, prev: &[u8], body: &[u8]) -> ChainLink {
        ChainLink {
            record_name: "com.quickstore.catalog.ProductRepriced".into(),
            aggregate_type: "Product".into(),
            aggregate_id: id.into(),
            version,
            prev_hash: prev.to_vec(),
            hash: event_hash(prev, body).to_vec(),
            canonical: body.to_vec(),
        }
    }

    fn at(offset: i64) -> Location {
        Location {
            topic: "catalog.events".into(),
            partition: 0,
            offset,
        }
    }

    fn feed(checker: &mut ChainChecker, offset: i64, l: &ChainLink, event_id: &str) {
        checker.check(Seen {
            at: &at(offset),
            key: l.aggregate_id.as_bytes(),
            partitions: None,
            link: l,
            event_id,
        });
    }

    fn kinds(checker: &ChainChecker) -> Vec<(i64, String)> {
        checker
            .findings()
            .iter()
            .map(|f| (f.offset, f.kind.clone()))
            .collect()
    }

    fn chain(n: i64) -> Vec<ChainLink> {
        let mut out: Vec<ChainLink> = Vec::new();
        for v in 1..=n {
            let prev = out.last().map(|l| l.hash.clone()).unwrap_or_default();
            out.push(link("p-1", v, &prev, format!("body {v}").as_bytes()));
        }
        out
    }

    #[test]
    fn an_intact_chain_has_no_findings() {
        let mut c = ChainChecker::new();
        for (i, l) in chain(4).iter().enumerate() {
            feed(&mut c, i as i64, l, &format!("e{i}"));
        }
        assert!(c.findings().is_empty(), "{:?}", c.findings());
        assert_eq!((c.events(), c.aggregates()), (4, 1));
        assert_eq!(c.head("Product", "p-1").unwrap().0, 4);
    }

    #[test]
    fn a_changed_body_a_removed_and_swapped_event_and_a_reused_id_are_found() {
        let links = chain(4);
        // Changed: same stored hash, other canonical bytes.
        let mut c = ChainChecker::new();
        let mut changed = links[1].clone();
        changed.canonical[0] ^= 1;
        feed(&mut c, 0, &links[0], "a");
        feed(&mut c, 1, &changed, "b");
        feed(&mut c, 2, &links[2], "c");
        assert_eq!(kinds(&c), vec![(1, HASH_MISMATCH.into())]);

        // Removed: 1, 2, 4.
        let mut c = ChainChecker::new();
        for (o, i) in [(0, 0), (1, 1), (2, 3)] {
            feed(&mut c, o, &links[i], &format!("e{i}"));
        }
        assert_eq!(kinds(&c), vec![(2, VERSION_GAP.into())]);
        assert!(c.findings()[0].detail.contains("version 3 is missing"));

        // Swapped: 1, 3, 2, 4.
        let mut c = ChainChecker::new();
        for (o, i) in [(0, 0), (1, 2), (2, 1), (3, 3)] {
            feed(&mut c, o, &links[i], &format!("e{i}"));
        }
        assert_eq!(
            kinds(&c),
            vec![(1, VERSION_GAP.into()), (2, VERSION_OUT_OF_ORDER.into())]
        );

        // Reused id, and a link that does not follow.
        let mut c = ChainChecker::new();
        feed(&mut c, 0, &links[0], "same");
        let stray = link("p-1", 2, b"not the hash", b"x");
        feed(&mut c, 1, &stray, "same");
        assert_eq!(
            kinds(&c),
            vec![(1, DUPLICATE_EVENT_ID.into()), (1, BROKEN_LINK.into())]
        );
        assert!(c.has_duplicates());
        c.first_use("other", &at(7));
        c.first_use("same", &at(0));
        c.first_use("same", &at(1));
        c.name_first_uses();
        assert_eq!(
            c.findings()[0].detail,
            "this event id was first used by the record at catalog.events/0@0"
        );
    }

    #[test]
    fn keys_partitions_and_undecodable_records_are_findings() {
        let links = chain(1);
        let mut c = ChainChecker::new();
        c.check(Seen {
            at: &at(0),
            key: b"someone-else",
            partitions: Some(3),
            link: &links[0],
            event_id: "x",
        });
        let wrong = (0..3)
            .find(|p| *p != platform::partitioner::partition_for_key(b"p-2", 3))
            .unwrap();
        let other = link("p-2", 1, &[], b"y");
        c.check(Seen {
            at: &Location {
                partition: wrong,
                ..at(1)
            },
            key: b"p-2",
            partitions: Some(3),
            link: &other,
            event_id: "y",
        });
        c.undecodable(&at(2), "unknown magic byte");
        assert_eq!(
            kinds(&c),
            vec![
                (0, KEY_MISMATCH.into()),
                (1, WRONG_PARTITION.into()),
                (2, UNDECODABLE.into())
            ]
        );
        assert_eq!(c.events(), 3);
    }
}
