//! What the embedded adapter stores per row: CQL's cell model, so that
//! last-write-wins comes out exactly as on Cassandra/ScyllaDB.
//!
//! - every non-key cell keeps `(timestamp, value)`; a null is kept too (a
//!   cell tombstone), so an older write arriving later stays hidden;
//! - `marker` is the row's liveness (CQL's primary-key liveness info, what
//!   `INSERT` writes): the highest timestamp of an upsert of this row;
//! - `tombstone` is the highest timestamp of a delete of this row; it hides
//!   the marker and every cell written at or before it (ties go to the
//!   delete), which are then dropped from the record. A record that holds
//!   only a tombstone is kept, forever (there is no `gc_grace_seconds`
//!   here), so that late older writes stay deleted.
//!
//! A row exists (is returned) if its marker or any cell with a value
//! survives.
//!
//! Record layout (all integers big-endian): `version: u8 = 1`,
//! `tombstone: i64`, `marker: i64` (`i64::MIN` = none: the port refuses
//! that timestamp), `cells: u32`, then per cell `name_len: u16, name,
//! timestamp: i64, value` where a value is a tag byte (0 null, 1 text,
//! 2 bigint, 3 int, 4 boolean, 5 timestamp, 6 blob) and its payload (text
//! and blob: `len: u32` + bytes).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::readstore::{Row, TableDef, Value};

const VERSION: u8 = 1;
const NONE: i64 = i64::MIN;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StoredRow {
    tombstone: Option<i64>,
    marker: Option<i64>,
    cells: BTreeMap<String, (i64, Value)>,
}

impl StoredRow {
    /// An upsert of `cells` (the non-key columns it names) at `ts`.
    pub(super) fn upsert<'a>(
        &mut self,
        ts: i64,
        cells: impl Iterator<Item = (&'a str, &'a Value)>,
    ) {
        if self.tombstone.is_some_and(|t| ts <= t) {
            return;
        }
        self.marker = Some(self.marker.map_or(ts, |m| m.max(ts)));
        for (name, v) in cells {
            match self.cells.get(name) {
                Some((old_ts, old)) if !wins(ts, v, *old_ts, old) => {}
                _ => {
                    self.cells.insert(name.to_owned(), (ts, v.clone()));
                }
            }
        }
    }

    /// A row delete at `ts`.
    pub(super) fn delete(&mut self, ts: i64) {
        let t = self.tombstone.map_or(ts, |t| t.max(ts));
        self.tombstone = Some(t);
        if self.marker.is_some_and(|m| m <= t) {
            self.marker = None;
        }
        self.cells.retain(|_, (cell_ts, _)| *cell_ts > t);
    }

    pub(super) fn is_live(&self) -> bool {
        self.marker.is_some() || self.cells.values().any(|(_, v)| *v != Value::Null)
    }

    /// The row as reads return it: `key` (the key columns) plus every other
    /// column of `table`, `Null` where unset.
    pub(super) fn to_row(&self, table: &TableDef, mut key: Row) -> Row {
        for column in table.columns {
            let v = match self.cells.get(column.name) {
                Some((_, v)) => v.clone(),
                None => Value::Null,
            };
            key.insert(column.name.to_owned(), v);
        }
        key
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.cells.len() * 24);
        out.push(VERSION);
        out.extend_from_slice(&self.tombstone.unwrap_or(NONE).to_be_bytes());
        out.extend_from_slice(&self.marker.unwrap_or(NONE).to_be_bytes());
        out.extend_from_slice(&(self.cells.len() as u32).to_be_bytes());
        for (name, (ts, v)) in &self.cells {
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&ts.to_be_bytes());
            let (tag, payload) = cql_bytes(v);
            out.push(tag);
            if matches!(v, Value::Text(_) | Value::Blob(_)) {
                out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(&payload);
        }
        out
    }

    /// `None` if `bytes` is not a record this version wrote.
    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(1)?[0] != VERSION {
            return None;
        }
        let opt = |x: i64| (x != NONE).then_some(x);
        let tombstone = opt(r.i64()?);
        let marker = opt(r.i64()?);
        let n = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let mut cells = BTreeMap::new();
        for _ in 0..n {
            let len = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
            let name = std::str::from_utf8(r.take(usize::from(len))?)
                .ok()?
                .to_owned();
            let ts = r.i64()?;
            let v = match r.take(1)?[0] {
                0 => Value::Null,
                1 => Value::Text(String::from_utf8(r.sized()?.to_vec()).ok()?),
                2 => Value::BigInt(r.i64()?),
                3 => Value::Int(i32::from_be_bytes(r.take(4)?.try_into().ok()?)),
                4 => Value::Boolean(r.take(1)?[0] != 0),
                5 => Value::Timestamp(r.i64()?),
                6 => Value::Blob(r.sized()?.to_vec()),
                _ => return None,
            };
            cells.insert(name, (ts, v));
        }
        r.0.is_empty().then_some(Self {
            tombstone,
            marker,
            cells,
        })
    }
}

/// Whether a write of `v` at `ts` replaces the cell `(old_ts, old)`: the
/// higher timestamp wins; on a tie a null (tombstone) beats a value, and of
/// two values the greater CQL encoding (unsigned bytes) wins — Cassandra's
/// and ScyllaDB's reconciliation, so the result does not depend on arrival
/// order.
fn wins(ts: i64, v: &Value, old_ts: i64, old: &Value) -> bool {
    match ts.cmp(&old_ts) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => match (v, old) {
            (_, Value::Null) => false,
            (Value::Null, _) => true,
            _ => cql_bytes(v).1 > cql_bytes(old).1,
        },
    }
}

/// A value's tag in the record and its CQL serialisation.
fn cql_bytes(v: &Value) -> (u8, Vec<u8>) {
    match v {
        Value::Null => (0, Vec::new()),
        Value::Text(s) => (1, s.as_bytes().to_vec()),
        Value::BigInt(x) => (2, x.to_be_bytes().to_vec()),
        Value::Int(x) => (3, x.to_be_bytes().to_vec()),
        Value::Boolean(b) => (4, vec![u8::from(*b)]),
        Value::Timestamp(x) => (5, x.to_be_bytes().to_vec()),
        Value::Blob(b) => (6, b.clone()),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn sized(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(len).ok()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn record_round_trips() {
        let mut row = StoredRow::default();
        row.upsert(
            3,
            [
                ("a", &text("x\0y")),
                ("b", &Value::Null),
                ("c", &Value::Blob(vec![0, 1])),
                ("d", &Value::BigInt(-1)),
                ("e", &Value::Int(7)),
                ("f", &Value::Boolean(true)),
                ("g", &Value::Timestamp(-5)),
            ]
            .into_iter(),
        );
        row.delete(1);
        let bytes = row.encode();
        assert_eq!(StoredRow::decode(&bytes), Some(row));
        assert_eq!(StoredRow::decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn ties_do_not_depend_on_arrival_order() {
        let (a, b) = (text("a"), text("b"));
        for (first, second) in [(&a, &b), (&b, &a)] {
            let mut row = StoredRow::default();
            row.upsert(5, [("v", first)].into_iter());
            row.upsert(5, [("v", second)].into_iter());
            assert_eq!(row.cells["v"], (5, text("b")));
            row.upsert(5, [("v", &Value::Null)].into_iter());
            row.upsert(5, [("v", &a)].into_iter());
            assert_eq!(row.cells["v"], (5, Value::Null));
        }
    }

    #[test]
    fn a_delete_wins_a_tie_and_hides_older_writes() {
        let mut row = StoredRow::default();
        row.upsert(5, [("v", &text("x"))].into_iter());
        row.delete(5);
        assert!(!row.is_live());
        row.upsert(4, [("v", &text("y"))].into_iter());
        assert!(!row.is_live());
        row.upsert(6, std::iter::empty());
        assert!(row.is_live());
        assert!(row.cells.is_empty());
    }
}
