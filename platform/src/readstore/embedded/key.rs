//! The order-preserving key encoding: a row's key is the concatenation of
//! its partition-key values, then its clustering values, each encoded so
//! that comparing the encodings byte by byte (redb's order for `&[u8]`)
//! compares the values the way CQL does. Every component is self-delimiting
//! (no encoding is a prefix of another), so:
//! - the rows of one partition are exactly the keys that start with the
//!   partition's encoding, contiguous in the B-tree;
//! - within a partition, keys sort by the first clustering column, then the
//!   second, … in CQL's clustering order.
//!
//! Per type (ascending):
//! - `int`, `bigint`, `timestamp`: big-endian with the sign bit flipped
//!   (signed order, as CQL compares them);
//! - `boolean`: one byte, `0` or `1`;
//! - `text`, `blob`: the bytes with `00` escaped as `00 FF`, then the
//!   terminator `00 00` (unsigned byte order, shorter prefix first — CQL's
//!   order for UTF-8 text and blobs).
//!
//! A `DESC` clustering column is encoded as above with every byte inverted,
//! which reverses the order of self-delimiting encodings.

use crate::readstore::{ColumnType, Order, Row, TableDef, Value};

/// Appends the encoding of `v` (never `Null`: key values are checked first).
fn encode_value(out: &mut Vec<u8>, v: &Value, order: Order) {
    let start = out.len();
    match v {
        Value::Null => {}
        Value::Int(x) => out.extend_from_slice(&((*x as u32) ^ (1 << 31)).to_be_bytes()),
        Value::BigInt(x) | Value::Timestamp(x) => {
            out.extend_from_slice(&((*x as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Text(s) => escape(out, s.as_bytes()),
        Value::Blob(b) => escape(out, b),
    }
    if order == Order::Desc {
        for byte in &mut out[start..] {
            *byte = !*byte;
        }
    }
}

fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == 0 {
            out.extend_from_slice(&[0, 0xFF]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Reads one component of type `kind` from the front of `input`.
fn decode_value(input: &mut &[u8], kind: ColumnType, order: Order) -> Option<Value> {
    let mask = if order == Order::Desc { 0xFF } else { 0 };
    let mut take = |n: usize| -> Option<Vec<u8>> {
        if input.len() < n {
            return None;
        }
        let (head, rest) = input.split_at(n);
        *input = rest;
        Some(head.iter().map(|b| b ^ mask).collect())
    };
    Some(match kind {
        ColumnType::Int => {
            let raw: [u8; 4] = take(4)?.try_into().ok()?;
            Value::Int((u32::from_be_bytes(raw) ^ (1 << 31)) as i32)
        }
        ColumnType::BigInt | ColumnType::Timestamp => {
            let raw: [u8; 8] = take(8)?.try_into().ok()?;
            let x = (u64::from_be_bytes(raw) ^ (1 << 63)) as i64;
            if kind == ColumnType::BigInt {
                Value::BigInt(x)
            } else {
                Value::Timestamp(x)
            }
        }
        ColumnType::Boolean => match take(1)?.as_slice() {
            [0] => Value::Boolean(false),
            [1] => Value::Boolean(true),
            _ => return None,
        },
        ColumnType::Text | ColumnType::Blob => {
            let mut bytes = Vec::new();
            loop {
                let b = take(1)?[0];
                if b != 0 {
                    bytes.push(b);
                    continue;
                }
                match take(1)?[0] {
                    0xFF => bytes.push(0),
                    0 => break,
                    _ => return None,
                }
            }
            if kind == ColumnType::Text {
                Value::Text(String::from_utf8(bytes).ok()?)
            } else {
                Value::Blob(bytes)
            }
        }
    })
}

/// The encoding of the partition `row` names (its partition-key columns).
pub(super) fn encode_partition(table: &TableDef, row: &Row) -> Vec<u8> {
    let mut out = Vec::new();
    for column in table.partition_key {
        if let Some(v) = row.get(column.name) {
            encode_value(&mut out, v, Order::Asc);
        }
    }
    out
}

/// The full key (partition, then clustering) of the row `row` names.
pub(super) fn encode_key(table: &TableDef, row: &Row) -> Vec<u8> {
    let mut out = encode_partition(table, row);
    for (column, order) in table.clustering {
        if let Some(v) = row.get(column.name) {
            encode_value(&mut out, v, *order);
        }
    }
    out
}

/// The key columns of an encoded key; `None` unless `bytes` is exactly one
/// well-formed key of `table`.
pub(super) fn decode_key(table: &TableDef, mut bytes: &[u8]) -> Option<Row> {
    let mut row = Row::new();
    let input = &mut bytes;
    for column in table.partition_key {
        row.insert(
            column.name.to_owned(),
            decode_value(input, column.kind, Order::Asc)?,
        );
    }
    for (column, order) in table.clustering {
        row.insert(
            column.name.to_owned(),
            decode_value(input, column.kind, *order)?,
        );
    }
    input.is_empty().then_some(row)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;

    use super::*;
    use crate::readstore::{column, Column};

    fn value(kind: ColumnType) -> BoxedStrategy<Value> {
        match kind {
            ColumnType::Text => ".{0,6}".prop_map(Value::Text).boxed(),
            ColumnType::Blob => proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(0xFFu8), any::<u8>()],
                0..6,
            )
            .prop_map(Value::Blob)
            .boxed(),
            ColumnType::Int => any::<i32>().prop_map(Value::Int).boxed(),
            ColumnType::BigInt => any::<i64>().prop_map(Value::BigInt).boxed(),
            ColumnType::Timestamp => any::<i64>().prop_map(Value::Timestamp).boxed(),
            ColumnType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        }
    }

    const KINDS: [ColumnType; 6] = [
        ColumnType::Text,
        ColumnType::Blob,
        ColumnType::Int,
        ColumnType::BigInt,
        ColumnType::Timestamp,
        ColumnType::Boolean,
    ];

    /// CQL's order of two values of one type (text by UTF-8 bytes, which
    /// `String`'s order is).
    fn cql_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
        a.cmp(b)
    }

    proptest! {
        #[test]
        fn order_and_round_trip(
            desc in any::<bool>(),
            (k, a, b) in (0..KINDS.len()).prop_flat_map(|k| (Just(k), value(KINDS[k]), value(KINDS[k]))),
        ) {
            let kind = KINDS[k];
            let order = if desc { Order::Desc } else { Order::Asc };
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            encode_value(&mut ea, &a, order);
            encode_value(&mut eb, &b, order);
            let expected = if desc { cql_cmp(&a, &b).reverse() } else { cql_cmp(&a, &b) };
            prop_assert_eq!(ea.cmp(&eb), expected);
            // Self-delimiting: no encoding is a proper prefix of another.
            if ea != eb {
                prop_assert!(!ea.starts_with(&eb) && !eb.starts_with(&ea));
            }
            let mut input = ea.as_slice();
            prop_assert_eq!(decode_value(&mut input, kind, order), Some(a));
            prop_assert!(input.is_empty());
        }
    }

    const PK: [Column; 2] = [
        column("tenant", ColumnType::Text),
        column("day", ColumnType::Int),
    ];
    const CK: [(Column, Order); 2] = [
        (column("a", ColumnType::Blob), Order::Asc),
        (column("b", ColumnType::BigInt), Order::Desc),
    ];
    const TABLE: TableDef = TableDef {
        name: "t",
        partition_key: &PK,
        clustering: &CK,
        columns: &[],
    };

    #[test]
    fn keys_round_trip_and_partitions_are_prefixes() {
        let row: Row = [
            ("tenant".to_owned(), Value::Text("a\0b".into())),
            ("day".to_owned(), Value::Int(-3)),
            ("a".to_owned(), Value::Blob(vec![0, 0xFF, 0])),
            ("b".to_owned(), Value::BigInt(i64::MIN)),
        ]
        .into_iter()
        .collect();
        let key = encode_key(&TABLE, &row);
        assert!(key.starts_with(&encode_partition(&TABLE, &row)));
        assert_eq!(decode_key(&TABLE, &key), Some(row));
        assert_eq!(decode_key(&TABLE, &key[..key.len() - 1]), None);
        assert_eq!(decode_key(&TABLE, b"garbage"), None);
    }
}
