//! The cases. Each runs against one adapter through the port only; together
//! they are the definition of the read store's semantics.

use std::cmp::Ordering;

use anyhow::{bail, ensure, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use platform::readstore::{
    column, Column, ColumnType, Order, PageToken, ReadStoreError, Row, TableDef, Value,
};

use crate::harness::{delete, full, no_duplicate_keys, row, text, upsert, Harness};

const ALL_TYPES: TableDef = TableDef {
    name: "all_types",
    partition_key: &[column("id", ColumnType::Text)],
    clustering: &[],
    columns: &[
        column("t", ColumnType::Text),
        column("b", ColumnType::BigInt),
        column("i", ColumnType::Int),
        column("f", ColumnType::Boolean),
        column("ts", ColumnType::Timestamp),
        column("bl", ColumnType::Blob),
    ],
};

const SEQ: Column = column("seq", ColumnType::BigInt);

const EVENTS_ASC: TableDef = TableDef {
    name: "events_asc",
    partition_key: &[column("p", ColumnType::Text)],
    clustering: &[(SEQ, Order::Asc)],
    columns: &[column("v", ColumnType::Text)],
};

const EVENTS_DESC: TableDef = TableDef {
    name: "events_desc",
    partition_key: &[column("p", ColumnType::Text)],
    clustering: &[(SEQ, Order::Desc)],
    columns: &[column("v", ColumnType::Text)],
};

/// Composite partition key, two clustering columns in opposite orders.
const MIXED: TableDef = TableDef {
    name: "mixed",
    partition_key: &[
        column("tenant", ColumnType::Text),
        column("day", ColumnType::Int),
    ],
    clustering: &[
        (column("a", ColumnType::Text), Order::Asc),
        (column("b", ColumnType::BigInt), Order::Desc),
    ],
    columns: &[column("v", ColumnType::Int)],
};

/// Every type as a clustering column.
const EVERY_CK: TableDef = TableDef {
    name: "every_ck",
    partition_key: &[column("p", ColumnType::Int)],
    clustering: &[
        (column("f", ColumnType::Boolean), Order::Desc),
        (column("i", ColumnType::Int), Order::Asc),
        (column("ts", ColumnType::Timestamp), Order::Desc),
        (column("t", ColumnType::Text), Order::Asc),
        (column("bl", ColumnType::Blob), Order::Desc),
        (column("b", ColumnType::BigInt), Order::Asc),
    ],
    columns: &[column("v", ColumnType::Int)],
};

fn id(s: &str) -> Row {
    row([("id", text(s))])
}

fn ev(p: &str, seq: i64) -> Row {
    row([("p", text(p)), ("seq", Value::BigInt(seq))])
}

fn with(mut base: Row, more: Row) -> Row {
    base.extend(more);
    base
}

/// Expects `result` to be `ReadStoreError::Invalid`.
fn expect_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, ReadStoreError>) -> Result<()> {
    match result {
        Err(ReadStoreError::Invalid(_)) => Ok(()),
        other => bail!("{what}: expected Invalid, got {other:?}"),
    }
}

/// Every value of every type reads back as written; unset columns read as
/// `Null`; a row whose non-key cells are all null still exists (an upsert
/// makes the row exist, as CQL's INSERT does); a missing key is `None`.
pub async fn round_trip_every_type(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    let rows = [
        row([
            ("id", text("a")),
            ("t", text("ünïcödé \u{1F600} with a \0 inside")),
            ("b", Value::BigInt(i64::MAX)),
            ("i", Value::Int(i32::MAX)),
            ("f", Value::Boolean(true)),
            ("ts", Value::Timestamp(1_767_225_600_123)),
            ("bl", Value::Blob(vec![0, 1, 0xFE, 0xFF, 0])),
        ]),
        row([
            ("id", text("b")),
            ("t", text("")),
            ("b", Value::BigInt(i64::MIN)),
            ("i", Value::Int(i32::MIN)),
            ("f", Value::Boolean(false)),
            ("ts", Value::Timestamp(-86_400_000)),
            ("bl", Value::Blob(Vec::new())),
        ]),
        row([
            ("id", text("c")),
            ("t", Value::Null),
            ("b", Value::Null),
            ("i", Value::Null),
            ("f", Value::Null),
            ("ts", Value::Null),
            ("bl", Value::Null),
        ]),
        // Only the key: the row exists, every other column null.
        row([("id", text("d"))]),
        row([
            ("id", text("e")),
            ("b", Value::BigInt(0)),
            ("i", Value::Int(-1)),
        ]),
    ];
    for r in &rows {
        h.upsert(ALL_TYPES, 1, r.clone()).await?;
    }
    for r in &rows {
        let key = id(match &r["id"] {
            Value::Text(s) => s,
            other => bail!("id {other:?}"),
        });
        let got = h.get(&ALL_TYPES, key).await?;
        ensure!(
            got.as_ref() == Some(&full(&ALL_TYPES, r.clone())),
            "wrote {r:?}, read {got:?}"
        );
    }
    let missing = h.get(&ALL_TYPES, id("nobody")).await?;
    ensure!(missing.is_none(), "a missing key read as {missing:?}");
    Ok(())
}

/// Upserts of different columns of one row merge; columns an upsert does not
/// name keep their values.
pub async fn partial_upserts_merge(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    h.upsert(ALL_TYPES, 1, with(id("x"), row([("t", text("first"))])))
        .await?;
    h.upsert(ALL_TYPES, 2, with(id("x"), row([("b", Value::BigInt(2))])))
        .await?;
    // An older timestamp, but a column nobody else wrote: it is kept.
    h.upsert(ALL_TYPES, 1, with(id("x"), row([("i", Value::Int(1))])))
        .await?;
    let got = h.get(&ALL_TYPES, id("x")).await?;
    let expected = full(
        &ALL_TYPES,
        row([
            ("id", text("x")),
            ("t", text("first")),
            ("b", Value::BigInt(2)),
            ("i", Value::Int(1)),
        ]),
    );
    ensure!(
        got == Some(expected.clone()),
        "merged row {got:?}, expected {expected:?}"
    );
    Ok(())
}

/// Per cell, the highest write timestamp wins, whatever the arrival order;
/// repeating a write with the same timestamp changes nothing.
pub async fn last_write_wins_per_cell(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    let key = || id("lww");
    h.upsert(ALL_TYPES, 5, with(key(), row([("t", text("five"))])))
        .await?;
    // Arrives later, written earlier: loses `t`, but sets `b`.
    h.upsert(
        ALL_TYPES,
        3,
        with(key(), row([("t", text("three")), ("b", Value::BigInt(3))])),
    )
    .await?;
    let expect = |t: &str, b: i64| {
        full(
            &ALL_TYPES,
            row([("id", text("lww")), ("t", text(t)), ("b", Value::BigInt(b))]),
        )
    };
    let got = h.get(&ALL_TYPES, key()).await?;
    ensure!(
        got == Some(expect("five", 3)),
        "after ts 5 then ts 3: {got:?}"
    );

    h.upsert(ALL_TYPES, 6, with(key(), row([("t", text("six"))])))
        .await?;
    h.upsert(ALL_TYPES, 5, with(key(), row([("t", text("five again"))])))
        .await?;
    let got = h.get(&ALL_TYPES, key()).await?;
    ensure!(
        got == Some(expect("six", 3)),
        "after ts 6 then ts 5: {got:?}"
    );

    // The same write again, twice: idempotent.
    for _ in 0..2 {
        h.upsert(
            ALL_TYPES,
            6,
            with(key(), row([("t", text("six")), ("b", Value::BigInt(3))])),
        )
        .await?;
        let again = h.get(&ALL_TYPES, key()).await?;
        ensure!(
            again == Some(expect("six", 3)),
            "after a repeated write: {again:?}"
        );
    }
    Ok(())
}

/// Two different writes of one cell with the same timestamp resolve the same
/// way whatever their order (Cassandra's rule): a null beats a value, and of
/// two values the greater CQL encoding (unsigned bytes) wins.
pub async fn equal_timestamps_resolve_alike(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    let pairs: [(&str, Value, Value, Value); 4] = [
        ("t", text("a"), text("b"), text("b")),
        (
            "bl",
            Value::Blob(vec![0x01]),
            Value::Blob(vec![0xFF]),
            Value::Blob(vec![0xFF]),
        ),
        // Two's complement bytes: -1 (FF…) is the greater encoding.
        ("b", Value::BigInt(1), Value::BigInt(-1), Value::BigInt(-1)),
        ("i", Value::Int(7), Value::Null, Value::Null),
    ];
    for (n, (col, x, y, winner)) in pairs.into_iter().enumerate() {
        for (order, (first, second)) in [(&x, &y), (&y, &x)].into_iter().enumerate() {
            let name = format!("tie-{n}-{order}");
            h.upsert(ALL_TYPES, 7, with(id(&name), row([(col, first.clone())])))
                .await?;
            h.upsert(ALL_TYPES, 7, with(id(&name), row([(col, second.clone())])))
                .await?;
            let got = h.get(&ALL_TYPES, id(&name)).await?;
            let value = got.as_ref().and_then(|r| r.get(col));
            ensure!(
                value == Some(&winner),
                "{col}: {first:?} then {second:?} at one timestamp read {value:?}, expected \
                 {winner:?}"
            );
        }
    }
    Ok(())
}

/// `Null` in an upsert unsets the cell at that timestamp: older values
/// arriving later stay unset, newer ones set it again.
pub async fn null_unsets_a_cell(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    let key = || id("n");
    h.upsert(
        ALL_TYPES,
        5,
        with(key(), row([("t", text("x")), ("b", Value::BigInt(1))])),
    )
    .await?;
    h.upsert(ALL_TYPES, 6, with(key(), row([("t", Value::Null)])))
        .await?;
    let expect = |t: Value| {
        full(
            &ALL_TYPES,
            row([("id", text("n")), ("t", t), ("b", Value::BigInt(1))]),
        )
    };
    let got = h.get(&ALL_TYPES, key()).await?;
    ensure!(
        got == Some(expect(Value::Null)),
        "after a null at ts 6: {got:?}"
    );
    h.upsert(ALL_TYPES, 4, with(key(), row([("t", text("late"))])))
        .await?;
    let got = h.get(&ALL_TYPES, key()).await?;
    ensure!(
        got == Some(expect(Value::Null)),
        "an older value resurrected the cell: {got:?}"
    );
    h.upsert(ALL_TYPES, 7, with(key(), row([("t", text("new"))])))
        .await?;
    let got = h.get(&ALL_TYPES, key()).await?;
    ensure!(got == Some(expect(text("new"))), "a newer value: {got:?}");
    Ok(())
}

/// A row delete is a tombstone at its timestamp: it hides writes at or
/// before it (a tie goes to the delete) whatever the arrival order; a newer
/// upsert brings the row back with only what that upsert set.
pub async fn row_delete_is_a_tombstone(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    h.upsert(
        ALL_TYPES,
        5,
        with(id("r"), row([("t", text("x")), ("b", Value::BigInt(1))])),
    )
    .await?;
    h.delete(ALL_TYPES, 7, id("r")).await?;
    let got = h.get(&ALL_TYPES, id("r")).await?;
    ensure!(got.is_none(), "deleted row read as {got:?}");
    h.upsert(ALL_TYPES, 6, with(id("r"), row([("t", text("older"))])))
        .await?;
    h.upsert(ALL_TYPES, 7, with(id("r"), row([("b", Value::BigInt(7))])))
        .await?;
    let got = h.get(&ALL_TYPES, id("r")).await?;
    ensure!(
        got.is_none(),
        "writes at or before the delete resurrected it: {got:?}"
    );
    h.upsert(ALL_TYPES, 8, with(id("r"), row([("b", Value::BigInt(8))])))
        .await?;
    let got = h.get(&ALL_TYPES, id("r")).await?;
    let expected = full(
        &ALL_TYPES,
        row([("id", text("r")), ("b", Value::BigInt(8))]),
    );
    ensure!(got == Some(expected), "after a newer upsert: {got:?}");

    // The delete arrives first.
    h.delete(ALL_TYPES, 10, id("d")).await?;
    h.upsert(ALL_TYPES, 9, with(id("d"), row([("t", text("before"))])))
        .await?;
    let got = h.get(&ALL_TYPES, id("d")).await?;
    ensure!(got.is_none(), "an older upsert after the delete: {got:?}");
    h.upsert(ALL_TYPES, 11, id("d")).await?;
    let got = h.get(&ALL_TYPES, id("d")).await?;
    ensure!(
        got == Some(full(&ALL_TYPES, id("d"))),
        "a newer key-only upsert: {got:?}"
    );

    // Deleting what never existed is fine.
    h.delete(ALL_TYPES, 1, id("never")).await?;
    ensure!(h.get(&ALL_TYPES, id("never")).await?.is_none());
    Ok(())
}

/// Compares two rows by `table`'s clustering columns and orders.
fn clustering_cmp(table: &TableDef, a: &Row, b: &Row) -> Ordering {
    for (c, order) in table.clustering {
        let o = a[c.name].cmp(&b[c.name]);
        let o = if *order == Order::Desc {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Writes `rows` (full rows of `table`, one partition) in a scrambled order,
/// then checks a scan returns them in clustering order.
async fn check_scan_order(
    h: &Harness,
    table: TableDef,
    partition: Row,
    rows: Vec<Row>,
) -> Result<()> {
    h.ensure(&[table], 1).await?;
    // Scrambled: every other row, then the rest backwards.
    let mut scrambled: Vec<&Row> = rows.iter().step_by(2).collect();
    scrambled.extend(rows.iter().skip(1).step_by(2).rev());
    let mutations: Vec<_> = scrambled
        .iter()
        .enumerate()
        .map(|(n, r)| upsert(table, 1, n as i64 + 1, (*r).clone()))
        .collect();
    h.write(&mutations).await?;
    let mut expected: Vec<Row> = rows.iter().map(|r| full(&table, r.clone())).collect();
    expected.sort_by(|a, b| clustering_cmp(&table, a, b));
    let got = h.scan_all(&table, 1, &partition, 1000).await?;
    if got != expected {
        let keys = |rows: &[Row]| -> Vec<String> {
            rows.iter()
                .map(|r| {
                    let k: Vec<&Value> = table.clustering.iter().map(|(c, _)| &r[c.name]).collect();
                    format!("{k:?}")
                })
                .collect()
        };
        bail!(
            "scan order of {}:\n got      {:?}\n expected {:?}",
            table.name,
            keys(&got),
            keys(&expected)
        );
    }
    Ok(())
}

fn seqs() -> Vec<i64> {
    vec![
        0,
        -1,
        1,
        i64::MIN,
        i64::MAX,
        255,
        256,
        -256,
        1 << 40,
        -(1 << 40),
    ]
}

/// ASC clustering: rows come back in ascending order (signed for bigint).
pub async fn scan_order_asc(h: &Harness) -> Result<()> {
    let rows = seqs()
        .into_iter()
        .map(|s| with(ev("p", s), row([("v", text(&s.to_string()))])))
        .collect();
    check_scan_order(h, EVENTS_ASC, row([("p", text("p"))]), rows).await
}

/// DESC clustering: rows come back in descending order.
pub async fn scan_order_desc(h: &Harness) -> Result<()> {
    let rows = seqs()
        .into_iter()
        .map(|s| with(ev("p", s), row([("v", text(&s.to_string()))])))
        .collect();
    check_scan_order(h, EVENTS_DESC, row([("p", text("p"))]), rows).await
}

/// Two clustering columns, ASC then DESC; text sorts by UTF-8 bytes,
/// a prefix first.
pub async fn scan_order_mixed_clustering(h: &Harness) -> Result<()> {
    let partition = row([("tenant", text("t1")), ("day", Value::Int(20260101))]);
    let mut rows = Vec::new();
    let mut v = 0;
    for a in ["b", "a", "ab", "a\0", "é", "Z", "aa", "a\u{1}"] {
        for b in [3i64, -2, 10, 0] {
            v += 1;
            rows.push(with(
                partition.clone(),
                row([
                    ("a", text(a)),
                    ("b", Value::BigInt(b)),
                    ("v", Value::Int(v)),
                ]),
            ));
        }
    }
    check_scan_order(h, MIXED, partition, rows).await
}

/// Every column type as a clustering column, in both orders.
pub async fn scan_order_of_every_type(h: &Harness) -> Result<()> {
    let partition = row([("p", Value::Int(1))]);
    let mut rows = Vec::new();
    let blobs: [&[u8]; 5] = [&[], &[0], &[0, 0], &[1], &[0xFF, 0]];
    let texts = ["", "x", "x\0", "xy", "y"];
    let mut v = 0;
    for f in [false, true] {
        for i in [i32::MIN, -1, 0, 1, i32::MAX] {
            for ts in [-1i64, 0, 1_700_000_000_000] {
                v += 1;
                let n = usize::try_from(v).unwrap_or(0);
                rows.push(with(
                    partition.clone(),
                    row([
                        ("f", Value::Boolean(f)),
                        ("i", Value::Int(i)),
                        ("ts", Value::Timestamp(ts)),
                        ("t", text(texts[n % texts.len()])),
                        ("bl", Value::Blob(blobs[n % blobs.len()].to_vec())),
                        ("b", Value::BigInt(i64::from(v) - 15)),
                        ("v", Value::Int(v)),
                    ]),
                ));
            }
        }
    }
    // Rows equal in all leading columns, to order by the later ones.
    for (n, (t, bl)) in texts.iter().zip(blobs).enumerate() {
        for b in [-1i64, 1] {
            rows.push(with(
                partition.clone(),
                row([
                    ("f", Value::Boolean(true)),
                    ("i", Value::Int(5)),
                    ("ts", Value::Timestamp(5)),
                    ("t", text(t)),
                    ("bl", Value::Blob(bl.to_vec())),
                    ("b", Value::BigInt(b)),
                    ("v", Value::Int(1000 + n as i32)),
                ]),
            ));
        }
    }
    check_scan_order(h, EVERY_CK, partition, rows).await
}

/// A scan returns exactly its own partition, even when another partition's
/// key starts with the same bytes; an empty partition is one empty page.
pub async fn scan_is_one_partition(h: &Harness) -> Result<()> {
    h.ensure(&[EVENTS_ASC, MIXED], 1).await?;
    let mut mutations = Vec::new();
    for p in ["p1", "p10", "p", "p1\0"] {
        for s in 0..3 {
            mutations.push(upsert(
                EVENTS_ASC,
                1,
                1,
                with(ev(p, s), row([("v", text(p))])),
            ));
        }
    }
    for (tenant, day) in [("a", 1), ("a", 2), ("ab", 1), ("a\0", 1)] {
        mutations.push(upsert(
            MIXED,
            1,
            1,
            row([
                ("tenant", text(tenant)),
                ("day", Value::Int(day)),
                ("a", text("k")),
                ("b", Value::BigInt(1)),
                ("v", Value::Int(day)),
            ]),
        ));
    }
    h.write(&mutations).await?;
    for p in ["p1", "p10", "p", "p1\0"] {
        let rows = h
            .scan_all(&EVENTS_ASC, 1, &row([("p", text(p))]), 10)
            .await?;
        ensure!(
            rows.len() == 3 && rows.iter().all(|r| r["p"] == text(p)),
            "scan of {p:?} returned {rows:?}"
        );
    }
    for (tenant, day) in [("a", 1), ("a", 2), ("ab", 1), ("a\0", 1)] {
        let partition = row([("tenant", text(tenant)), ("day", Value::Int(day))]);
        let rows = h.scan_all(&MIXED, 1, &partition, 10).await?;
        ensure!(
            rows.len() == 1
                && rows[0]["tenant"] == text(tenant)
                && rows[0]["day"] == Value::Int(day),
            "scan of {partition:?} returned {rows:?}"
        );
    }
    let empty = h
        .store
        .scan(&EVENTS_ASC, 1, &row([("p", text("nobody"))]), None, 10)
        .await?;
    ensure!(
        empty.rows.is_empty() && empty.next.is_none(),
        "an empty partition: {empty:?}"
    );
    Ok(())
}

/// Following tokens until `None` returns every live row exactly once, in
/// order, whatever the page size, with deleted rows skipped.
pub async fn paging_returns_every_row_once(h: &Harness) -> Result<()> {
    h.ensure(&[EVENTS_ASC, EVENTS_DESC], 1).await?;
    for table in [EVENTS_ASC, EVENTS_DESC] {
        let mut mutations = Vec::new();
        for s in 0..7 {
            mutations.push(upsert(
                table,
                1,
                1,
                with(ev("five", s), row([("v", text("x"))])),
            ));
        }
        // Two of the seven are deleted: five live rows, holes included.
        mutations.push(delete(table, 1, 2, ev("five", 2)));
        mutations.push(delete(table, 1, 2, ev("five", 6)));
        h.write(&mutations).await?;
        let partition = row([("p", text("five"))]);
        let mut expected: Vec<Row> = [0, 1, 3, 4, 5]
            .into_iter()
            .map(|s| full(&table, with(ev("five", s), row([("v", text("x"))]))))
            .collect();
        if table.clustering[0].1 == Order::Desc {
            expected.reverse();
        }
        for limit in [2, 1, 3, 4, 5, 6, 100] {
            let got = h.scan_all(&table, 1, &partition, limit).await?;
            no_duplicate_keys(&table, &got)?;
            ensure!(
                got == expected,
                "{} with limit {limit}: got {got:?}, expected {expected:?}",
                table.name
            );
        }
        // The first page of limit 2 holds the first two rows and a token.
        let first = h.store.scan(&table, 1, &partition, None, 2).await?;
        ensure!(first.rows == expected[..2], "first page {first:?}");
        ensure!(
            first.next.is_some(),
            "no token after the first of three pages"
        );
    }
    Ok(())
}

/// A token that is not one, or was made by another scan (another partition,
/// table or generation), is `BadPageToken`.
pub async fn bad_page_token_is_refused(h: &Harness) -> Result<()> {
    h.ensure(&[EVENTS_ASC, EVENTS_DESC], 1).await?;
    h.ensure(&[EVENTS_ASC], 2).await?;
    let mut mutations = Vec::new();
    for g in [1, 2] {
        for p in ["one", "two"] {
            for s in 0..5 {
                mutations.push(upsert(
                    EVENTS_ASC,
                    g,
                    1,
                    with(ev(p, s), row([("v", text("x"))])),
                ));
            }
        }
    }
    h.write(&mutations).await?;
    let one = row([("p", text("one"))]);
    let two = row([("p", text("two"))]);
    let first = h.store.scan(&EVENTS_ASC, 1, &one, None, 2).await?;
    let Some(token) = first.next.clone() else {
        bail!("no token after the first page: {first:?}");
    };
    // The real token works.
    let second = h.store.scan(&EVENTS_ASC, 1, &one, Some(&token), 2).await?;
    ensure!(second.rows.len() == 2, "second page {second:?}");

    let mut truncated = URL_SAFE_NO_PAD.decode(&token.0)?;
    truncated.truncate(truncated.len() - 3);
    let bad: Vec<(&str, PageToken, &TableDef, u32, &Row)> = vec![
        ("empty", PageToken(String::new()), &EVENTS_ASC, 1, &one),
        (
            "not base64",
            PageToken("not base64 !!".into()),
            &EVENTS_ASC,
            1,
            &one,
        ),
        (
            "random bytes",
            PageToken(URL_SAFE_NO_PAD.encode(b"hello, world, hello")),
            &EVENTS_ASC,
            1,
            &one,
        ),
        (
            "truncated",
            PageToken(URL_SAFE_NO_PAD.encode(&truncated)),
            &EVENTS_ASC,
            1,
            &one,
        ),
        ("another partition", token.clone(), &EVENTS_ASC, 1, &two),
        ("another generation", token.clone(), &EVENTS_ASC, 2, &one),
        ("another table", token.clone(), &EVENTS_DESC, 1, &one),
    ];
    for (what, token, table, generation, partition) in bad {
        match h
            .store
            .scan(table, generation, partition, Some(&token), 2)
            .await
        {
            Err(ReadStoreError::BadPageToken) => {}
            other => bail!("{what} token {token:?}: expected BadPageToken, got {other:?}"),
        }
    }
    Ok(())
}

/// Requests the port refuses, alike on every adapter, before anything is
/// written: a batch with one bad mutation writes nothing.
pub async fn bad_requests_are_invalid(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES, EVENTS_ASC], 1).await?;
    let s = &h.store;
    let bad_upserts = [
        ("missing key", row([("t", text("x"))])),
        ("null key", row([("id", Value::Null), ("t", text("x"))])),
        ("key of the wrong type", row([("id", Value::Int(1))])),
        ("empty partition key", row([("id", text(""))])),
        (
            "value of the wrong type",
            with(id("k"), row([("b", text("1"))])),
        ),
        ("unknown column", with(id("k"), row([("nope", text("1"))]))),
    ];
    for (what, r) in bad_upserts {
        expect_invalid(what, s.write(&[upsert(ALL_TYPES, 1, 1, r)]).await)?;
    }
    expect_invalid(
        "timestamp i64::MIN",
        s.write(&[upsert(ALL_TYPES, 1, i64::MIN, id("k"))]).await,
    )?;
    expect_invalid(
        "delete naming a non-key column",
        s.write(&[delete(
            ALL_TYPES,
            1,
            1,
            with(id("k"), row([("t", text("x"))])),
        )])
        .await,
    )?;
    expect_invalid(
        "delete without the clustering column",
        s.write(&[delete(EVENTS_ASC, 1, 1, row([("p", text("p"))]))])
            .await,
    )?;
    // One bad mutation: the good one before it is not written either.
    expect_invalid(
        "a batch with one bad mutation",
        s.write(&[
            upsert(ALL_TYPES, 1, 1, id("good")),
            upsert(ALL_TYPES, 1, 1, row([("t", text("no key"))])),
        ])
        .await,
    )?;
    ensure!(
        s.get(&ALL_TYPES, 1, &id("good")).await?.is_none(),
        "a batch that was refused wrote its good mutation"
    );
    expect_invalid(
        "get without the clustering column",
        s.get(&EVENTS_ASC, 1, &row([("p", text("p"))])).await,
    )?;
    expect_invalid(
        "get naming a non-key column",
        s.get(&ALL_TYPES, 1, &with(id("k"), row([("t", text("x"))])))
            .await,
    )?;
    expect_invalid(
        "scan naming a clustering column",
        s.scan(&EVENTS_ASC, 1, &ev("p", 1), None, 10).await,
    )?;
    expect_invalid(
        "scan with limit 0",
        s.scan(&EVENTS_ASC, 1, &row([("p", text("p"))]), None, 0)
            .await,
    )?;
    // A generation that was never ensured.
    expect_invalid(
        "get of a missing table",
        s.get(&ALL_TYPES, 9, &id("k")).await,
    )?;
    expect_invalid(
        "write to a missing table",
        s.write(&[upsert(ALL_TYPES, 9, 1, id("k"))]).await,
    )?;
    expect_invalid(
        "scan of a missing table",
        s.scan(&EVENTS_ASC, 9, &row([("p", text("p"))]), None, 10)
            .await,
    )?;
    Ok(())
}

/// After `drop_tables`, the generation is gone: reads and writes are
/// `Invalid` (not empty answers); dropping again is fine; ensuring it again
/// gives an empty table.
pub async fn dropped_tables_are_invalid(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES, EVENTS_ASC], 1).await?;
    h.upsert(ALL_TYPES, 1, with(id("k"), row([("t", text("x"))])))
        .await?;
    h.write(&[upsert(EVENTS_ASC, 1, 1, ev("p", 1))]).await?;
    // Read once, so the CQL adapter has the statements prepared and cached.
    ensure!(h.get(&ALL_TYPES, id("k")).await?.is_some());
    h.store.drop_tables(&[ALL_TYPES, EVENTS_ASC], 1).await?;
    let s = &h.store;
    expect_invalid("get after drop", s.get(&ALL_TYPES, 1, &id("k")).await)?;
    expect_invalid(
        "scan after drop",
        s.scan(&EVENTS_ASC, 1, &row([("p", text("p"))]), None, 10)
            .await,
    )?;
    expect_invalid(
        "write after drop",
        s.write(&[upsert(ALL_TYPES, 1, 2, id("k"))]).await,
    )?;
    s.drop_tables(&[ALL_TYPES, EVENTS_ASC], 1).await?;
    h.ensure(&[ALL_TYPES, EVENTS_ASC], 1).await?;
    let got = h.get(&ALL_TYPES, id("k")).await?;
    ensure!(got.is_none(), "a re-created table still holds {got:?}");
    let rows = h
        .scan_all(&EVENTS_ASC, 1, &row([("p", text("p"))]), 10)
        .await?;
    ensure!(rows.is_empty(), "a re-created table still holds {rows:?}");
    Ok(())
}

/// Each generation is its own table; dropping one leaves the other.
pub async fn generations_are_separate(h: &Harness) -> Result<()> {
    h.ensure(&[ALL_TYPES], 1).await?;
    h.ensure(&[ALL_TYPES], 2).await?;
    h.write(&[
        upsert(ALL_TYPES, 1, 1, with(id("k"), row([("t", text("g1"))]))),
        upsert(ALL_TYPES, 2, 1, with(id("k"), row([("t", text("g2"))]))),
        upsert(ALL_TYPES, 2, 1, with(id("only2"), row([("t", text("g2"))]))),
    ])
    .await?;
    let s = &h.store;
    let t = |g: Option<Row>| g.and_then(|r| r.get("t").cloned());
    ensure!(t(s.get(&ALL_TYPES, 1, &id("k")).await?) == Some(text("g1")));
    ensure!(t(s.get(&ALL_TYPES, 2, &id("k")).await?) == Some(text("g2")));
    ensure!(s.get(&ALL_TYPES, 1, &id("only2")).await?.is_none());
    s.drop_tables(&[ALL_TYPES], 1).await?;
    expect_invalid(
        "generation 1 after its drop",
        s.get(&ALL_TYPES, 1, &id("k")).await,
    )?;
    ensure!(t(s.get(&ALL_TYPES, 2, &id("k")).await?) == Some(text("g2")));
    Ok(())
}

/// Everything readable in generation `g` of the replay tables, as bytes.
async fn snapshot(h: &Harness, g: u32) -> Result<Vec<u8>> {
    let mut out = String::new();
    for p in ["a", "b"] {
        let rows = h
            .scan_all(&EVENTS_DESC, g, &row([("p", text(p))]), 3)
            .await?;
        out.push_str(&format!("{p}: {rows:?}\n"));
    }
    for k in 0..4 {
        let got = h.store.get(&ALL_TYPES, g, &id(&format!("k{k}"))).await?;
        out.push_str(&format!("k{k}: {got:?}\n"));
    }
    Ok(out.into_bytes())
}

/// The mutations a projector might write for a stream of events: upserts,
/// nulls, deletes and resurrections, timestamps = event positions.
fn replay_batch(g: u32) -> Vec<platform::readstore::Mutation> {
    let mut out = Vec::new();
    for pos in 1..=40i64 {
        let p = if pos % 3 == 0 { "a" } else { "b" };
        let seq = pos % 7;
        match pos % 5 {
            0 => out.push(delete(EVENTS_DESC, g, pos, ev(p, seq))),
            1 => out.push(upsert(
                EVENTS_DESC,
                g,
                pos,
                with(ev(p, seq), row([("v", Value::Null)])),
            )),
            _ => out.push(upsert(
                EVENTS_DESC,
                g,
                pos,
                with(ev(p, seq), row([("v", text(&format!("pos {pos}")))])),
            )),
        }
        let k = format!("k{}", pos % 4);
        match pos % 6 {
            0 => out.push(delete(ALL_TYPES, g, pos, id(&k))),
            1 => out.push(upsert(
                ALL_TYPES,
                g,
                pos,
                with(id(&k), row([("b", Value::BigInt(pos)), ("t", Value::Null)])),
            )),
            _ => out.push(upsert(
                ALL_TYPES,
                g,
                pos,
                with(
                    id(&k),
                    row([
                        ("t", text(&format!("pos {pos}"))),
                        ("ts", Value::Timestamp(pos * 1000)),
                    ]),
                ),
            )),
        }
    }
    out
}

/// Applying the same batch again changes nothing, and applying it in another
/// order (reversed, or one mutation per write) gives the same bytes.
pub async fn replay_is_identical(h: &Harness) -> Result<()> {
    for g in 1..=3 {
        h.ensure(&[ALL_TYPES, EVENTS_DESC], g).await?;
    }
    h.write(&replay_batch(1)).await?;
    let once = snapshot(h, 1).await?;
    h.write(&replay_batch(1)).await?;
    let twice = snapshot(h, 1).await?;
    ensure!(
        once == twice,
        "a replay changed the tables:\n{}\nvs\n{}",
        String::from_utf8_lossy(&once),
        String::from_utf8_lossy(&twice)
    );
    let mut reversed = replay_batch(2);
    reversed.reverse();
    h.write(&reversed).await?;
    let mut one_by_one = replay_batch(3);
    one_by_one.rotate_left(17);
    for m in &one_by_one {
        h.write(std::slice::from_ref(m)).await?;
    }
    for g in [2, 3] {
        let other = snapshot(h, g).await?;
        ensure!(
            other == once,
            "generation {g} (another arrival order) differs:\n{}\nvs\n{}",
            String::from_utf8_lossy(&other),
            String::from_utf8_lossy(&once)
        );
    }
    ensure!(once.len() > 100, "the snapshot is suspiciously small");
    Ok(())
}

/// Connecting where no node listens is `Unavailable` (retriable), not
/// `Invalid`. Needs no server.
pub async fn no_node_is_unavailable() -> Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut config =
        platform::readstore::CqlConfig::new(vec![format!("127.0.0.1:{port}")], "qs_test_nobody");
    config.request_timeout = std::time::Duration::from_secs(2);
    match platform::readstore::CqlStore::connect(config).await {
        Err(e @ ReadStoreError::Unavailable(_)) => {
            ensure!(e.is_retriable());
            Ok(())
        }
        other => bail!("expected Unavailable, got {other:?}"),
    }
}
