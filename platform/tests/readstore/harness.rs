//! What every read-store case gets: a fresh store of one adapter (an
//! embedded store in a temporary directory, or a fresh keyspace on the CQL
//! node) and short helpers to write and read through the port.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use platform::readstore::{
    CqlStore, EmbeddedStore, Mutation, MutationKind, PageToken, ReadStore, Row, TableDef, Value,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Embedded,
    Cql,
}

impl Adapter {
    pub const ALL: [Adapter; 2] = [Adapter::Embedded, Adapter::Cql];

    pub fn name(self) -> &'static str {
        match self {
            Adapter::Embedded => "embedded",
            Adapter::Cql => "cql",
        }
    }
}

pub struct Harness {
    pub store: Arc<dyn ReadStore>,
    cql: Option<Arc<CqlStore>>,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    pub async fn new(adapter: Adapter) -> Result<Self> {
        match adapter {
            Adapter::Embedded => {
                let dir = tempfile::tempdir()?;
                let store = EmbeddedStore::open(dir.path())?;
                Ok(Self {
                    store: Arc::new(store),
                    cql: None,
                    _dir: Some(dir),
                })
            }
            Adapter::Cql => {
                let keyspace = format!(
                    "qs_test_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                let config = platform::testing::cql_test_config(keyspace)?;
                let store = Arc::new(
                    CqlStore::connect(config)
                        .await
                        .context("connecting to the CQL node")?,
                );
                Ok(Self {
                    store: store.clone(),
                    cql: Some(store),
                    _dir: None,
                })
            }
        }
    }

    /// Drops the case's keyspace (CQL); the temporary directory goes with
    /// `self`.
    pub async fn finish(self) {
        if let Some(cql) = &self.cql {
            if let Err(e) = cql.drop_keyspace().await {
                eprintln!("dropping keyspace {}: {e}", cql.keyspace());
            }
        }
    }

    pub async fn ensure(&self, tables: &[TableDef], generation: u32) -> Result<()> {
        self.store
            .ensure_tables(tables, generation)
            .await
            .with_context(|| format!("ensure_tables generation {generation}"))
    }

    pub async fn write(&self, mutations: &[Mutation]) -> Result<()> {
        Ok(self.store.write(mutations).await?)
    }

    pub async fn upsert(&self, table: TableDef, ts: i64, row: Row) -> Result<()> {
        self.write(&[upsert(table, 1, ts, row)]).await
    }

    pub async fn delete(&self, table: TableDef, ts: i64, key: Row) -> Result<()> {
        self.write(&[delete(table, 1, ts, key)]).await
    }

    pub async fn get(&self, table: &TableDef, key: Row) -> Result<Option<Row>> {
        Ok(self.store.get(table, 1, &key).await?)
    }

    /// Every row of one partition, following tokens until `next` is `None`;
    /// checks each page holds at most `limit` rows.
    pub async fn scan_all(
        &self,
        table: &TableDef,
        generation: u32,
        partition: &Row,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        let mut token: Option<PageToken> = None;
        for _ in 0..1000 {
            let page = self
                .store
                .scan(table, generation, partition, token.as_ref(), limit)
                .await?;
            ensure!(
                page.rows.len() <= limit,
                "a page of {} rows with limit {limit}",
                page.rows.len()
            );
            rows.extend(page.rows);
            match page.next {
                None => return Ok(rows),
                Some(next) => {
                    ensure!(
                        token.as_ref() != Some(&next),
                        "the same page token twice: {next:?}"
                    );
                    token = Some(next);
                }
            }
        }
        bail!("more than 1000 pages")
    }
}

pub fn upsert(table: TableDef, generation: u32, ts: i64, row: Row) -> Mutation {
    Mutation {
        table,
        generation,
        kind: MutationKind::Upsert(row),
        timestamp: ts,
    }
}

pub fn delete(table: TableDef, generation: u32, ts: i64, key: Row) -> Mutation {
    Mutation {
        table,
        generation,
        kind: MutationKind::Delete(key),
        timestamp: ts,
    }
}

/// A row from (column, value) pairs.
pub fn row<const N: usize>(pairs: [(&str, Value); N]) -> Row {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// `row` plus `Null` for every column of `table` it does not name: what
/// reads return.
pub fn full(table: &TableDef, mut row: Row) -> Row {
    for c in table.all_columns() {
        row.entry(c.name.to_owned()).or_insert(Value::Null);
    }
    row
}

/// Fails if two rows have the same key columns.
pub fn no_duplicate_keys(table: &TableDef, rows: &[Row]) -> Result<()> {
    let mut seen = HashSet::new();
    for r in rows {
        let key: Vec<&Value> = table.key_columns().map(|c| &r[c.name]).collect();
        ensure!(
            seen.insert(format!("{key:?}")),
            "row {key:?} returned twice"
        );
    }
    Ok(())
}
