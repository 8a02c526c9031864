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
//! which runs against both adapters.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;

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
            cql.push_str(&format!(
                " WITH CLUSTERING ORDER BY ({})",
                order.join(", ")
            ));
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

/// Read consistency (ignored by the embedded adapter, which has one copy).
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

/// The read-store port.
#[async_trait]
pub trait ReadStore: Send + Sync + Debug + 'static {
    /// Creates the keyspace (if the store has one) and the tables of
    /// `generation` if they do not exist.
    async fn ensure_tables(&self, tables: &[TableDef], generation: u32)
        -> Result<(), ReadStoreError>;

    /// Drops the tables of `generation` (after a rebuild switched away).
    async fn drop_tables(&self, tables: &[TableDef], generation: u32)
        -> Result<(), ReadStoreError>;

    /// Applies `mutations` (not atomically as a whole; each is idempotent).
    async fn write(&self, mutations: &[Mutation]) -> Result<(), ReadStoreError>;

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
