//! The read-store port: query-first tables for the projections, with a
//! ScyllaDB/Cassandra adapter (the `scylla` driver) and an embedded adapter
//! for `quickstore dev`. Projections are written once against this port.
//!
//! The model is CQL's, kept small:
//! - a table ([`TableDef`]) has typed columns, a partition key and
//!   clustering columns with an order; rows of one partition come back in
//!   clustering order, pages at a time ([`Page`], an opaque [`PageToken`]);
//! - every write is an upsert or a delete of one row **with a write
//!   timestamp** ([`Mutation::timestamp`]): per column, the value with the
//!   highest timestamp wins, whatever order writes arrive in (CQL's
//!   `USING TIMESTAMP`). Projectors use the event's position as the
//!   timestamp, so a replay or a redelivered batch writes the same cells
//!   with the same timestamps and changes nothing — idempotent without a
//!   read-modify-write, and no counters.
//!
//! Semantics are defined by the conformance suite (`tests/readstore/`),
//! which runs against both adapters. In short:
//! - **Cells**: last write wins per column by [`Mutation::timestamp`]. On a
//!   tie, a null (a cell tombstone) beats a value, and of two values the one
//!   whose CQL encoding is the greater byte string wins (what Cassandra and
//!   ScyllaDB do, so replicas and adapters converge whatever the arrival
//!   order).
//! - **Rows**: an upsert (CQL `INSERT`) also makes the row itself exist at its
//!   timestamp, even if every non-key column is null. A delete is a row
//!   tombstone: it hides every write with a timestamp **≤** its own (a tie
//!   goes to the delete); later writes resurrect the row with only what they
//!   set.
//! - **Reads** return every column of the table; unset cells are
//!   [`Value::Null`].
//! - **Requests are checked alike by both adapters** before they reach the
//!   store: key columns present, not null, of the declared type; no unknown
//!   columns; a `get`/`Delete` names exactly the primary key, a `scan`
//!   exactly the partition key; `limit` ≥ 1. Anything else is
//!   [`ReadStoreError::Invalid`].
//! - **Missing tables**: a read or write of a table generation that was
//!   never ensured, or was dropped, is [`ReadStoreError::Invalid`] (never an
//!   empty answer): a projector pointed at the wrong generation fails loudly.
//!
//! Adapters: [`cql::CqlStore`] (ScyllaDB/Cassandra) and
//! [`embedded::EmbeddedStore`] (redb, one process).

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;

pub mod cql;
pub mod embedded;
pub mod tls;

pub use cql::{CqlConfig, CqlStore};
pub use embedded::EmbeddedStore;

/// A column's CQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    BigInt,
    Int,
    Boolean,
    /// Milliseconds since the Unix epoch (CQL `timestamp`).
    Timestamp,
    Blob,
}

impl ColumnType {
    pub fn cql(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::BigInt => "bigint",
            ColumnType::Int => "int",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Blob => "blob",
        }
    }
}

/// A value of a column. `Null` unsets it (a tombstone for that cell).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    Text(String),
    BigInt(i64),
    Int(i32),
    Boolean(bool),
    Timestamp(i64),
    Blob(Vec<u8>),
}

impl Value {
    /// The column type this value belongs in (`None` for `Null`, which fits
    /// any non-key column).
    pub fn kind(&self) -> Option<ColumnType> {
        Some(match self {
            Value::Null => return None,
            Value::Text(_) => ColumnType::Text,
            Value::BigInt(_) => ColumnType::BigInt,
            Value::Int(_) => ColumnType::Int,
            Value::Boolean(_) => ColumnType::Boolean,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::Blob(_) => ColumnType::Blob,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
}

pub const fn column(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind }
}

/// Clustering order of a clustering column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A query-first table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The base name (`orders_by_id`); generations append `_g<n>`.
    pub name: &'static str,
    pub partition_key: &'static [Column],
    pub clustering: &'static [(Column, Order)],
    /// The other columns.
    pub columns: &'static [Column],
}

impl TableDef {
    /// Every column: partition key, clustering, the rest.
    pub fn all_columns(&self) -> impl Iterator<Item = &Column> {
        self.partition_key
            .iter()
            .chain(self.clustering.iter().map(|(c, _)| c))
            .chain(self.columns.iter())
    }

    /// The primary key: partition key, then clustering columns.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.partition_key
            .iter()
            .chain(self.clustering.iter().map(|(c, _)| c))
    }

    /// The column called `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.all_columns().find(|c| c.name == name)
    }

    /// Whether `name` is a partition-key or clustering column.
    pub fn is_key_column(&self, name: &str) -> bool {
        self.key_columns().any(|c| c.name == name)
    }

    /// The physical table of generation `generation` (1, 2, …).
    pub fn physical_name(&self, generation: u32) -> String {
        format!("{}_g{generation}", self.name)
    }

    /// `CREATE TABLE IF NOT EXISTS` for one generation: what
    /// `deploy/cql/*.cql` holds and what the CQL adapter runs.
    pub fn create_cql(&self, keyspace: &str, generation: u32) -> String {
        let mut cols: Vec<String> = self
            .all_columns()
            .map(|c| format!("    {} {}", c.name, c.kind.cql()))
            .collect();
        let pk: Vec<&str> = self.partition_key.iter().map(|c| c.name).collect();
        let ck: Vec<&str> = self.clustering.iter().map(|(c, _)| c.name).collect();
        let key = if ck.is_empty() {
            format!("({})", pk.join(", "))
        } else {
            format!("({}), {}", pk.join(", "), ck.join(", "))
        };
        cols.push(format!("    PRIMARY KEY ({key})"));
        let mut cql = format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.{} (\n{}\n)",
            self.physical_name(generation),
            cols.join(",\n")
        );
        if !self.clustering.is_empty() {
            let order: Vec<String> = self
                .clustering
                .iter()
                .map(|(c, o)| {
                    format!(
                        "{} {}",
                        c.name,
                        match o {
                            Order::Asc => "ASC",
                            Order::Desc => "DESC",
                        }
                    )
                })
                .collect();
            cql.push_str(&format!(" WITH CLUSTERING ORDER BY ({})", order.join(", ")));
        }
        cql.push(';');
        cql
    }
}

/// A row: column name → value. Key columns must be present and not null.
pub type Row = BTreeMap<String, Value>;

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub table: TableDef,
    pub generation: u32,
    pub kind: MutationKind,
    /// Write time: per cell, the highest wins (ties: the later write with
    /// the same timestamp writes the same value in a replay).
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationKind {
    /// Sets the given columns of the row the key columns name (other
    /// columns keep their values).
    Upsert(Row),
    /// Deletes the row the key columns name (a row tombstone at
    /// `timestamp`: older writes stay deleted, newer ones resurrect it).
    Delete(Row),
}

/// An opaque continuation of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub rows: Vec<Row>,
    /// `Some` when more rows may follow.
    pub next: Option<PageToken>,
}

/// Consistency of every read and write of a store ([`CqlConfig::consistency`];
/// ignored by the embedded adapter, which has one copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    One,
    #[default]
    LocalQuorum,
    Quorum,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadStoreError {
    /// The store did not answer (node down, timeout): retry.
    #[error("read store unavailable: {0}")]
    Unavailable(String),
    /// A request the store refused (bad row, unknown table): a bug or a
    /// poison value — do not retry forever.
    #[error("read store refused the request: {0}")]
    Invalid(String),
    #[error("page token not valid for this scan")]
    BadPageToken,
}

impl ReadStoreError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, ReadStoreError::Unavailable(_))
    }
}

/// Checks `v` against `column`'s declared type (`Null` passes).
fn check_value(table: &TableDef, column: &Column, v: &Value) -> Result<(), ReadStoreError> {
    match v.kind() {
        Some(kind) if kind != column.kind => Err(ReadStoreError::Invalid(format!(
            "{}.{} is a {} column, got {v:?}",
            table.name,
            column.name,
            column.kind.cql()
        ))),
        _ => Ok(()),
    }
}

/// Checks that `row` holds exactly `columns` (what a `get`, a delete or a
/// scan names), each present, not null and of its type. `what` names the
/// request in the error.
pub(crate) fn check_exact<'a>(
    table: &TableDef,
    columns: impl Iterator<Item = &'a Column>,
    row: &Row,
    what: &str,
) -> Result<(), ReadStoreError> {
    let mut names = Vec::new();
    for column in columns {
        check_key_value(table, column, row.get(column.name), what)?;
        names.push(column.name);
    }
    if row.len() != names.len() {
        let extra: Vec<&str> = row
            .keys()
            .map(String::as_str)
            .filter(|name| !names.contains(name))
            .collect();
        return Err(ReadStoreError::Invalid(format!(
            "{what} of {} names columns {extra:?} that are not part of the key it takes",
            table.name
        )));
    }
    Ok(())
}

fn check_key_value(
    table: &TableDef,
    column: &Column,
    v: Option<&Value>,
    what: &str,
) -> Result<(), ReadStoreError> {
    match v {
        None | Some(Value::Null) => Err(ReadStoreError::Invalid(format!(
            "{what} of {}: key column `{}` is missing or null",
            table.name, column.name
        ))),
        Some(v) => {
            check_value(table, column, v)?;
            // Cassandra refuses an empty partition key ("Key may not be empty").
            let empty = matches!(v, Value::Text(s) if s.is_empty())
                || matches!(v, Value::Blob(b) if b.is_empty());
            if empty && table.partition_key.len() == 1 && table.partition_key[0].name == column.name
            {
                return Err(ReadStoreError::Invalid(format!(
                    "{what} of {}: the partition key `{}` may not be empty",
                    table.name, column.name
                )));
            }
            Ok(())
        }
    }
}

/// The checks every adapter runs on a mutation before writing it.
pub(crate) fn check_mutation(m: &Mutation) -> Result<(), ReadStoreError> {
    let table = &m.table;
    if m.timestamp == i64::MIN {
        return Err(ReadStoreError::Invalid(format!(
            "write to {}: the timestamp i64::MIN is reserved",
            table.name
        )));
    }
    match &m.kind {
        MutationKind::Delete(key) => check_exact(table, table.key_columns(), key, "delete"),
        MutationKind::Upsert(row) => {
            for column in table.key_columns() {
                check_key_value(table, column, row.get(column.name), "upsert")?;
            }
            for (name, v) in row {
                let column = table.column(name).ok_or_else(|| {
                    ReadStoreError::Invalid(format!("upsert of {}: no column `{name}`", table.name))
                })?;
                check_value(table, column, v)?;
            }
            Ok(())
        }
    }
}

/// The checks every adapter runs on a scan before reading.
pub(crate) fn check_scan(
    table: &TableDef,
    partition: &Row,
    limit: usize,
) -> Result<(), ReadStoreError> {
    if limit == 0 {
        return Err(ReadStoreError::Invalid(format!(
            "scan of {}: limit must be at least 1",
            table.name
        )));
    }
    check_exact(table, table.partition_key.iter(), partition, "scan")
}

/// The read-store port.
#[async_trait]
pub trait ReadStore: Send + Sync + Debug + 'static {
    /// Creates the keyspace (if the store has one) and the tables of
    /// `generation` if they do not exist.
    async fn ensure_tables(
        &self,
        tables: &[TableDef],
        generation: u32,
    ) -> Result<(), ReadStoreError>;

    /// Drops the tables of `generation` (after a rebuild switched away).
    async fn drop_tables(&self, tables: &[TableDef], generation: u32)
        -> Result<(), ReadStoreError>;

    /// Applies `mutations` (not atomically as a whole unless
    /// [`Self::writes_atomically`]; each is idempotent).
    async fn write(&self, mutations: &[Mutation]) -> Result<(), ReadStoreError>;

    /// Whether one [`Self::write`] becomes visible all at once, so a reader
    /// that sees any of its mutations sees every one. The embedded store's
    /// does (one redb transaction); the CQL adapter's does not (it runs a
    /// write's mutations concurrently), so the projectors write version
    /// cells in a second write there and in the same one here.
    fn writes_atomically(&self) -> bool {
        false
    }

    /// The row with the key columns of `key`, if any.
    async fn get(
        &self,
        table: &TableDef,
        generation: u32,
        key: &Row,
    ) -> Result<Option<Row>, ReadStoreError>;

    /// The rows of one partition (`partition` holds the partition-key
    /// columns), in clustering order, at most `limit`, continuing after
    /// `page`.
    async fn scan(
        &self,
        table: &TableDef,
        generation: u32,
        partition: &Row,
        page: Option<&PageToken>,
        limit: usize,
    ) -> Result<Page, ReadStoreError>;
}
