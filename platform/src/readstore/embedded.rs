//! The embedded read store: the port on one [redb] file (or in memory), for
//! `quickstore dev` and fast tests. Same semantics as the CQL adapter, as
//! the conformance suite (`tests/readstore/`) checks.
//!
//! # Layout
//!
//! - `readstore_tables`: physical table name → the table's definition
//!   (a signature string of its columns, key and clustering order).
//!   [`ReadStore::ensure_tables`] writes it and creates the data table;
//!   every read and write checks it, so a table that was never ensured or was
//!   dropped is [`ReadStoreError::Invalid`], like CQL's "unconfigured
//!   table". Ensuring a generation that exists with a *different*
//!   definition is refused too (the key encoding depends on it: change the
//!   definition, bump the generation).
//! - `readstore/<physical table>`: one redb table per physical table, key =
//!   the order-preserving encoding of (partition key, clustering) values
//!   (`key.rs`), value = the row's cells with their write timestamps and its
//!   row tombstone (`cells.rs`). A scan of one partition is a range scan of
//!   the keys that start with the partition's encoding, which comes back in
//!   clustering order (ASC or DESC per column).
//!
//! A `write` is one redb write transaction (all its mutations or none, which
//! the port allows), read-modify-write per row under redb's single writer.
//! Every call runs on `spawn_blocking`.
//!
//! # Paging
//!
//! A [`PageToken`] is base64url of `01` + an 8-byte fingerprint of the
//! physical table + the encoded key of the last row returned; the next page
//! starts after it. A token that does not decode to a key of the scanned
//! table and partition is [`ReadStoreError::BadPageToken`]. `next`
//! is `None` as soon as no live row follows (the CQL adapter may return one
//! more, empty, page: callers loop until `None`).
//!
//! [redb]: https://docs.rs/redb

mod cells;
mod key;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use sha2::{Digest as _, Sha256};

use self::cells::StoredRow;
use crate::readstore::{
    check_exact, check_mutation, check_scan, Mutation, MutationKind, Order, Page, PageToken,
    ReadStore, ReadStoreError, Row, TableDef,
};

/// Physical table name → definition signature.
const TABLES: TableDefinition<'_, &str, &str> = TableDefinition::new("readstore_tables");

/// The database file inside the directory [`EmbeddedStore::open`] takes.
pub const FILE_NAME: &str = "readstore.redb";

/// The first byte of every page token (its format version).
const TOKEN_VERSION: u8 = 1;

fn data_table_name(physical: &str) -> String {
    format!("readstore/{physical}")
}

/// What `readstore_tables` records per table: everything the key encoding
/// and the row layout depend on.
fn signature(table: &TableDef) -> String {
    let mut parts = Vec::new();
    for c in table.partition_key {
        parts.push(format!("p:{}:{}", c.name, c.kind.cql()));
    }
    for (c, order) in table.clustering {
        let order = match order {
            Order::Asc => "asc",
            Order::Desc => "desc",
        };
        parts.push(format!("c:{}:{}:{order}", c.name, c.kind.cql()));
    }
    for c in table.columns {
        parts.push(format!("v:{}:{}", c.name, c.kind.cql()));
    }
    parts.join("|")
}

/// The first 8 bytes of SHA-256 of the physical table name: binds a page
/// token to its table (generations share key encodings).
fn table_fingerprint(physical: &str) -> [u8; 8] {
    let digest = Sha256::digest(physical.as_bytes());
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// redb errors: the storage failed (I/O, a commit that did not happen), so
/// the call may succeed if retried.
fn db_err(e: impl std::fmt::Display) -> ReadStoreError {
    ReadStoreError::Unavailable(format!("embedded read store: {e}"))
}

fn missing_table(physical: &str) -> ReadStoreError {
    ReadStoreError::Invalid(format!(
        "table {physical} does not exist (ensure_tables was not called for this generation, or \
         it was dropped)"
    ))
}

fn corrupt(physical: &str) -> ReadStoreError {
    ReadStoreError::Invalid(format!("embedded read store: a corrupt row in {physical}"))
}

/// Checks that `table`'s generation exists in `tables` with this definition.
fn check_table(
    tables: &impl ReadableTable<&'static str, &'static str>,
    table: &TableDef,
    physical: &str,
) -> Result<(), ReadStoreError> {
    match tables.get(physical).map_err(db_err)? {
        None => Err(missing_table(physical)),
        Some(sig) if sig.value() != signature(table) => Err(ReadStoreError::Invalid(format!(
            "table {physical} exists with another definition ({}); the caller's is ({})",
            sig.value(),
            signature(table)
        ))),
        Some(_) => Ok(()),
    }
}

/// The embedded adapter of [`ReadStore`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Where the file lives (`None`: in memory), for `Debug`.
    path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in directory `dir` (file
    /// [`FILE_NAME`]), repairing it if the last process died mid-commit.
    /// redb locks the file: a second open of the same directory (another
    /// process, or a handle of this one that is still alive after 2 s)
    /// fails.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ReadStoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| ReadStoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let deadline = Instant::now() + Duration::from_secs(2);
        let db = loop {
            match Database::builder().create(&path) {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(ReadStoreError::Unavailable(format!(
                        "{} is in use by another process (or another EmbeddedStore in this one)",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(ReadStoreError::Unavailable(format!(
                        "opening {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        Self::init(db, Some(path))
    }

    /// A store that lives in memory only (redb's `InMemoryBackend`): gone
    /// when the last clone is dropped.
    pub fn in_memory() -> Result<Self, ReadStoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err)?;
        Self::init(db, None)
    }

    fn init(db: Database, path: Option<std::path::PathBuf>) -> Result<Self, ReadStoreError> {
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(TABLES).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, ReadStoreError> + Send + 'static,
    ) -> Result<T, ReadStoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| ReadStoreError::Unavailable(format!("embedded read store task: {e}")))?
    }
}

fn ensure_blocking(
    db: &Database,
    tables: &[TableDef],
    generation: u32,
) -> Result<(), ReadStoreError> {
    let txn = db.begin_write().map_err(db_err)?;
    {
        let mut meta = txn.open_table(TABLES).map_err(db_err)?;
        for table in tables {
            let physical = table.physical_name(generation);
            let sig = signature(table);
            let existing = meta
                .get(physical.as_str())
                .map_err(db_err)?
                .map(|s| s.value().to_owned());
            match existing {
                Some(old) if old == sig => {}
                Some(old) => {
                    return Err(ReadStoreError::Invalid(format!(
                        "table {physical} exists with another definition ({old}); this one is \
                         ({sig}): use a new generation"
                    )))
                }
                None => {
                    meta.insert(physical.as_str(), sig.as_str())
                        .map_err(db_err)?;
                    let name = data_table_name(&physical);
                    txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                        .map_err(db_err)?;
                }
            }
        }
    }
    txn.commit().map_err(db_err)
}

fn drop_blocking(
    db: &Database,
    tables: &[TableDef],
    generation: u32,
) -> Result<(), ReadStoreError> {
    let txn = db.begin_write().map_err(db_err)?;
    {
        let mut meta = txn.open_table(TABLES).map_err(db_err)?;
        for table in tables {
            let physical = table.physical_name(generation);
            meta.remove(physical.as_str()).map_err(db_err)?;
            let name = data_table_name(&physical);
            txn.delete_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                .map_err(db_err)?;
        }
    }
    txn.commit().map_err(db_err)
}

fn write_blocking(db: &Database, mutations: &[Mutation]) -> Result<(), ReadStoreError> {
    // One run per table. A projector's batch interleaves its tables record
    // by record (by id, by customer, timeline, by id, …), and every run
    // pays a definition check and an `open_table`: per row, that was most
    // of a write. Mutations of different tables are independent, and the
    // sort is stable, so each table still sees its own in order.
    let mut by_table: Vec<&Mutation> = mutations.iter().collect();
    by_table.sort_by_key(|m| (m.table.name, m.generation));
    let txn = db.begin_write().map_err(db_err)?;
    {
        let meta = txn.open_table(TABLES).map_err(db_err)?;
        // Consecutive mutations of one table share the open table.
        let mut rest = by_table.as_slice();
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take_while(|m| m.table == first.table && m.generation == first.generation)
                .count();
            let (run, tail) = rest.split_at(same);
            rest = tail;
            let physical = first.table.physical_name(first.generation);
            check_table(&meta, &first.table, &physical)?;
            let name = data_table_name(&physical);
            let mut data = txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
                .map_err(db_err)?;
            for m in run {
                let (MutationKind::Upsert(row) | MutationKind::Delete(row)) = &m.kind;
                let key = key::encode_key(&m.table, row);
                let mut stored = match data.get(key.as_slice()).map_err(db_err)? {
                    Some(bytes) => {
                        StoredRow::decode(bytes.value()).ok_or_else(|| corrupt(&physical))?
                    }
                    None => StoredRow::default(),
                };
                match &m.kind {
                    MutationKind::Upsert(row) => stored.upsert(
                        m.timestamp,
                        row.iter()
                            .filter(|(name, _)| !m.table.is_key_column(name))
                            .map(|(name, v)| (name.as_str(), v)),
                    ),
                    MutationKind::Delete(_) => stored.delete(m.timestamp),
                }
                data.insert(key.as_slice(), stored.encode().as_slice())
                    .map_err(db_err)?;
            }
        }
    }
    txn.commit().map_err(db_err)
}

/// Opens the data table of `physical` in a read transaction, after checking
/// that the generation exists with `table`'s definition.
fn open_read(
    txn: &redb::ReadTransaction,
    table: &TableDef,
    physical: &str,
) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>, ReadStoreError> {
    let meta = txn.open_table(TABLES).map_err(db_err)?;
    check_table(&meta, table, physical)?;
    let name = data_table_name(physical);
    match txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&name)) {
        Ok(t) => Ok(t),
        Err(TableError::TableDoesNotExist(_)) => Err(missing_table(physical)),
        Err(e) => Err(db_err(e)),
    }
}

fn get_blocking(
    db: &Database,
    table: &TableDef,
    generation: u32,
    key: &Row,
) -> Result<Option<Row>, ReadStoreError> {
    let physical = table.physical_name(generation);
    let txn = db.begin_read().map_err(db_err)?;
    let data = open_read(&txn, table, &physical)?;
    let encoded = key::encode_key(table, key);
    let Some(bytes) = data.get(encoded.as_slice()).map_err(db_err)? else {
        return Ok(None);
    };
    let stored = StoredRow::decode(bytes.value()).ok_or_else(|| corrupt(&physical))?;
    Ok(stored.is_live().then(|| stored.to_row(table, key.clone())))
}

fn scan_blocking(
    db: &Database,
    table: &TableDef,
    generation: u32,
    partition: &Row,
    page: Option<&PageToken>,
    limit: usize,
) -> Result<Page, ReadStoreError> {
    let physical = table.physical_name(generation);
    let fingerprint = table_fingerprint(&physical);
    let prefix = key::encode_partition(table, partition);
    let after = match page {
        None => None,
        Some(token) => {
            let bytes = URL_SAFE_NO_PAD
                .decode(&token.0)
                .map_err(|_| ReadStoreError::BadPageToken)?;
            match bytes.split_first() {
                Some((&TOKEN_VERSION, rest))
                    if rest.len() > 8
                        && rest[..8] == fingerprint
                        && rest[8..].starts_with(&prefix)
                        && key::decode_key(table, &rest[8..]).is_some() =>
                {
                    Some(rest[8..].to_vec())
                }
                _ => return Err(ReadStoreError::BadPageToken),
            }
        }
    };
    let txn = db.begin_read().map_err(db_err)?;
    let data = open_read(&txn, table, &physical)?;
    let lower = match &after {
        Some(last) => Bound::Excluded(last.as_slice()),
        None => Bound::Included(prefix.as_slice()),
    };
    let mut rows = Vec::new();
    let mut last_key: Option<Vec<u8>> = None;
    let mut more = false;
    for entry in data
        .range::<&[u8]>((lower, Bound::Unbounded))
        .map_err(db_err)?
    {
        let (k, v) = entry.map_err(db_err)?;
        let k = k.value();
        if !k.starts_with(&prefix) {
            break;
        }
        let stored = StoredRow::decode(v.value()).ok_or_else(|| corrupt(&physical))?;
        if !stored.is_live() {
            continue;
        }
        if rows.len() == limit {
            more = true;
            break;
        }
        let key_row = key::decode_key(table, k).ok_or_else(|| corrupt(&physical))?;
        rows.push(stored.to_row(table, key_row));
        last_key = Some(k.to_vec());
    }
    let next = match last_key {
        Some(last) if more => {
            let mut token = vec![TOKEN_VERSION];
            token.extend_from_slice(&fingerprint);
            token.extend_from_slice(&last);
            Some(PageToken(URL_SAFE_NO_PAD.encode(token)))
        }
        _ => None,
    };
    Ok(Page { rows, next })
}

#[async_trait]
impl ReadStore for EmbeddedStore {
    /// One redb write transaction per call: readers see all of it or none.
    fn writes_atomically(&self) -> bool {
        true
    }

    async fn ensure_tables(
        &self,
        tables: &[TableDef],
        generation: u32,
    ) -> Result<(), ReadStoreError> {
        let tables = tables.to_vec();
        self.blocking(move |db| ensure_blocking(db, &tables, generation))
            .await
    }

    async fn drop_tables(
        &self,
        tables: &[TableDef],
        generation: u32,
    ) -> Result<(), ReadStoreError> {
        let tables = tables.to_vec();
        self.blocking(move |db| drop_blocking(db, &tables, generation))
            .await
    }

    async fn write(&self, mutations: &[Mutation]) -> Result<(), ReadStoreError> {
        // Check everything before writing anything.
        for m in mutations {
            check_mutation(m)?;
        }
        if mutations.is_empty() {
            return Ok(());
        }
        let mutations = mutations.to_vec();
        self.blocking(move |db| write_blocking(db, &mutations))
            .await
    }

    async fn get(
        &self,
        table: &TableDef,
        generation: u32,
        key: &Row,
    ) -> Result<Option<Row>, ReadStoreError> {
        check_exact(table, table.key_columns(), key, "get")?;
        let (table, key) = (*table, key.clone());
        self.blocking(move |db| get_blocking(db, &table, generation, &key))
            .await
    }

    async fn scan(
        &self,
        table: &TableDef,
        generation: u32,
        partition: &Row,
        page: Option<&PageToken>,
        limit: usize,
    ) -> Result<Page, ReadStoreError> {
        check_scan(table, partition, limit)?;
        let (table, partition, page) = (*table, partition.clone(), page.cloned());
        self.blocking(move |db| {
            scan_blocking(db, &table, generation, &partition, page.as_ref(), limit)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::readstore::{column, ColumnType, Value};

    const T: TableDef = TableDef {
        name: "t",
        partition_key: &[column("id", ColumnType::Text)],
        clustering: &[],
        columns: &[column("v", ColumnType::Int)],
    };

    /// Same name, another definition.
    const T2: TableDef = TableDef {
        name: "t",
        partition_key: &[column("id", ColumnType::Text)],
        clustering: &[],
        columns: &[column("v", ColumnType::Text)],
    };

    fn key() -> Row {
        [("id".to_owned(), Value::Text("k".into()))]
            .into_iter()
            .collect()
    }

    fn put(v: i32) -> Mutation {
        let mut row = key();
        row.insert("v".into(), Value::Int(v));
        Mutation {
            table: T,
            generation: 1,
            kind: MutationKind::Upsert(row),
            timestamp: 1,
        }
    }

    #[tokio::test]
    async fn rows_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store.ensure_tables(&[T], 1).await.unwrap();
            store.write(&[put(7)]).await.unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let got = store.get(&T, 1, &key()).await.unwrap().unwrap();
        assert_eq!(got["v"], Value::Int(7));
    }

    #[tokio::test]
    async fn in_memory_works_and_is_private() {
        let a = EmbeddedStore::in_memory().unwrap();
        let b = EmbeddedStore::in_memory().unwrap();
        a.ensure_tables(&[T], 1).await.unwrap();
        a.write(&[put(1)]).await.unwrap();
        assert!(a.get(&T, 1, &key()).await.unwrap().is_some());
        assert!(matches!(
            b.get(&T, 1, &key()).await,
            Err(ReadStoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn another_definition_needs_another_generation() {
        let store = EmbeddedStore::in_memory().unwrap();
        store.ensure_tables(&[T], 1).await.unwrap();
        assert!(matches!(
            store.ensure_tables(&[T2], 1).await,
            Err(ReadStoreError::Invalid(_))
        ));
        assert!(matches!(
            store.get(&T2, 1, &key()).await,
            Err(ReadStoreError::Invalid(_))
        ));
        store.ensure_tables(&[T2], 2).await.unwrap();
    }
}
