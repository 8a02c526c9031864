//! The ScyllaDB/Cassandra adapter of the read-store port, on the `scylla`
//! driver (1.x).
//!
//! - **Session**: one per store, built from the contact points with a
//!   default execution profile that carries the configured consistency and
//!   client-side request timeout. The driver's default load-balancing policy
//!   is token-aware: every statement here is prepared with all partition-key
//!   columns bound, so requests go straight to a replica.
//! - **Statements** are prepared once per (physical table, column set, kind)
//!   and cached — the CQL text itself is the cache key, since it names all
//!   three. All are marked idempotent (every write carries its own
//!   timestamp, so a retry or a speculative execution writes the same
//!   cells).
//!   - upsert: `INSERT INTO ks.t (c1, …) VALUES (?, …) USING TIMESTAMP ?`
//!     (only the columns the row names; a `Null` binds a null, which CQL
//!     stores as a cell tombstone at that timestamp);
//!   - delete: `DELETE FROM ks.t USING TIMESTAMP ? WHERE k1 = ? AND …`;
//!   - get: `SELECT <every column> FROM ks.t WHERE <every key column> = ?`;
//!   - scan: `SELECT <every column> FROM ks.t WHERE <partition key> = ?`,
//!     one driver page of `limit` rows (`execute_single_page`).
//! - **Timestamps**: [`Mutation::timestamp`] is the CQL write timestamp
//!   **as is** (bound to `USING TIMESTAMP ?`; CQL calls the unit
//!   microseconds, but only the order matters and nothing else writes these
//!   tables). Nothing is multiplied, so a position-based timestamp can use
//!   the whole `i64` range.
//! - **Values** are converted by the column's declared type
//!   (`Value::Text` ↔ `CqlValue::Text`, `Timestamp` ↔ `CqlTimestamp`
//!   milliseconds, …) and bound as a `Vec<Option<CqlValue>>` (`None` = null),
//!   which the driver type-checks against the prepared metadata.
//! - **Paging**: a [`PageToken`] is base64url of `01` + an 8-byte
//!   fingerprint of (keyspace, physical table, partition) + the driver's raw
//!   paging state. A token that does not decode, or was made for another
//!   scan, is [`ReadStoreError::BadPageToken`] without a round trip; one the
//!   server rejects (a protocol error on a resumed scan) too. `next` is the
//!   server's word: it may be `Some` before an empty last page.
//! - **Errors**: no connection, timeouts, unavailable/overloaded/
//!   bootstrapping replicas, read/write failures → [`ReadStoreError::Unavailable`]
//!   (retry); everything else (syntax, unknown table or keyspace, a value
//!   the server refuses) → [`ReadStoreError::Invalid`].

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::{StreamExt as _, TryStreamExt as _};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{
    DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError,
    SchemaAgreementError,
};
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::Statement;
use scylla::value::{CqlTimestamp, CqlValue};
use sha2::{Digest as _, Sha256};

use crate::readstore::{
    check_exact, check_mutation, check_scan, Column, ColumnType, Consistency, Mutation,
    MutationKind, Page, PageToken, ReadStore, ReadStoreError, Row, TableDef, Value,
};

/// How many mutations of one `write` are in flight at once (public so
/// `quickstore bench projections` runs its raw baseline at the same).
pub const WRITE_CONCURRENCY: usize = 64;

/// A driver session builder with the store's settings: contact points,
/// credentials, consistency and request timeout. Public so a benchmark's
/// raw baseline connects exactly as the store does.
pub fn session_builder(config: &CqlConfig) -> SessionBuilder {
    let profile = ExecutionProfile::builder()
        .consistency(match config.consistency {
            Consistency::One => scylla::statement::Consistency::One,
            Consistency::LocalQuorum => scylla::statement::Consistency::LocalQuorum,
            Consistency::Quorum => scylla::statement::Consistency::Quorum,
        })
        .request_timeout(Some(config.request_timeout))
        .build();
    let mut builder = SessionBuilder::new();
    if let Some((user, password)) = &config.credentials {
        builder = builder.user(user, password.expose());
    }
    if let Some(tls) = &config.tls {
        builder = builder.tls_context(Some(std::sync::Arc::clone(tls.client_config())));
    }
    builder
        .known_nodes(&config.contact_points)
        .connection_timeout(config.request_timeout)
        .default_execution_profile_handle(profile.into_handle())
}

/// The first byte of every page token (its format version).
const TOKEN_VERSION: u8 = 1;

/// Schema changes (keyspace, tables) get at least this long, whatever the
/// request timeout: Cassandra can take seconds to create a table.
const DDL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct CqlConfig {
    /// `host:port` of one or more nodes; the driver discovers the rest.
    pub contact_points: Vec<String>,
    /// The keyspace of every table (`[a-z][a-z0-9_]*`, at most 48 chars).
    pub keyspace: String,
    /// `SimpleStrategy` replication factor used when
    /// [`ReadStore::ensure_tables`] creates the keyspace (an existing
    /// keyspace is left as it is).
    pub replication_factor: u32,
    /// Consistency of every read and write.
    pub consistency: Consistency,
    /// Client-side timeout of one request (connect and DML).
    pub request_timeout: Duration,
    /// User name and password for PasswordAuthenticator (`None`: no auth).
    pub credentials: Option<(String, crate::config::Secret)>,
    /// Client-to-node TLS (`None`: plain TCP), see [`super::tls`].
    pub tls: Option<super::tls::CqlTls>,
}

impl CqlConfig {
    /// Defaults for one local node: replication factor 1 (set 3 on a real
    /// cluster), `LOCAL_QUORUM`, 10 s requests.
    pub fn new(contact_points: Vec<String>, keyspace: impl Into<String>) -> Self {
        Self {
            contact_points,
            keyspace: keyspace.into(),
            replication_factor: 1,
            consistency: Consistency::default(),
            request_timeout: Duration::from_secs(10),
            credentials: None,
            tls: None,
        }
    }
}

/// The CQL adapter of [`ReadStore`].
pub struct CqlStore {
    session: Session,
    config: CqlConfig,
    /// CQL text → (physical table, prepared statement).
    statements: RwLock<HashMap<String, (String, PreparedStatement)>>,
}

impl std::fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn valid_keyspace(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 48
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl CqlStore {
    /// Connects to the cluster (fails with `Unavailable` if no contact point
    /// answers). The keyspace need not exist yet: `ensure_tables` creates
    /// it.
    pub async fn connect(config: CqlConfig) -> Result<Self, ReadStoreError> {
        if !valid_keyspace(&config.keyspace) {
            return Err(ReadStoreError::Invalid(format!(
                "keyspace name {:?}: use [a-z][a-z0-9_]*, at most 48 characters",
                config.keyspace
            )));
        }
        if config.replication_factor == 0 {
            return Err(ReadStoreError::Invalid(
                "replication_factor must be at least 1".into(),
            ));
        }
        let session = session_builder(&config)
            .build()
            .await
            .map_err(|e| session_err(&config, e))?;
        Ok(Self {
            session,
            config,
            statements: RwLock::new(HashMap::new()),
        })
    }

    /// Runs one schema statement (`CREATE KEYSPACE`, `CREATE TABLE`, …) and
    /// waits for schema agreement: what `quickstore schema apply` runs the
    /// versioned CQL files of `deploy/cql/schema/` with.
    pub async fn execute_ddl(&self, cql: &str) -> Result<(), ReadStoreError> {
        self.ddl(cql.to_owned()).await
    }

    /// The keyspace this store writes to.
    pub fn keyspace(&self) -> &str {
        &self.config.keyspace
    }

    /// Drops the whole keyspace, every generation of every table (test
    /// tear-down; operators drop generations with `drop_tables`).
    pub async fn drop_keyspace(&self) -> Result<(), ReadStoreError> {
        self.ddl(format!("DROP KEYSPACE IF EXISTS {}", self.config.keyspace))
            .await?;
        self.forget(|_| true);
        Ok(())
    }

    /// Runs one schema change and waits until every node agrees on it.
    async fn ddl(&self, cql: String) -> Result<(), ReadStoreError> {
        let mut statement = Statement::new(cql);
        statement.set_request_timeout(Some(self.config.request_timeout.max(DDL_TIMEOUT)));
        self.session
            .query_unpaged(statement, ())
            .await
            .map_err(exec_err)?;
        self.session
            .await_schema_agreement()
            .await
            .map_err(agreement_err)?;
        Ok(())
    }

    /// Drops cached statements whose physical table matches.
    fn forget(&self, table: impl Fn(&str) -> bool) {
        let mut cache = self
            .statements
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|_, (physical, _)| !table(physical));
    }

    /// The prepared statement for `cql`, preparing it on first use.
    async fn prepared(
        &self,
        physical: &str,
        cql: String,
    ) -> Result<PreparedStatement, ReadStoreError> {
        {
            let cache = self
                .statements
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, statement)) = cache.get(&cql) {
                return Ok(statement.clone());
            }
        }
        let mut statement = Statement::new(cql.clone());
        statement.set_is_idempotent(true);
        let prepared = self.session.prepare(statement).await.map_err(prepare_err)?;
        self.statements
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cql, (physical.to_owned(), prepared.clone()));
        Ok(prepared)
    }

    fn qualified(&self, table: &TableDef, generation: u32) -> (String, String) {
        let physical = table.physical_name(generation);
        let qualified = format!("{}.{physical}", self.config.keyspace);
        (physical, qualified)
    }

    async fn write_one(&self, m: &Mutation) -> Result<(), ReadStoreError> {
        let (physical, qualified) = self.qualified(&m.table, m.generation);
        let table = &m.table;
        let (cql, values) = match &m.kind {
            MutationKind::Upsert(row) => {
                let names: Vec<&str> = row.keys().map(String::as_str).collect();
                let marks = vec!["?"; names.len()].join(", ");
                let cql = format!(
                    "INSERT INTO {qualified} ({}) VALUES ({marks}) USING TIMESTAMP ?",
                    names.join(", ")
                );
                let mut values: Vec<Option<CqlValue>> = row.values().map(to_cql).collect();
                values.push(Some(CqlValue::BigInt(m.timestamp)));
                (cql, values)
            }
            MutationKind::Delete(key) => {
                let cql = format!(
                    "DELETE FROM {qualified} USING TIMESTAMP ? WHERE {}",
                    where_clause(table.key_columns())
                );
                let mut values = vec![Some(CqlValue::BigInt(m.timestamp))];
                values.extend(bind(table.key_columns(), key));
                (cql, values)
            }
        };
        let statement = self.prepared(&physical, cql).await?;
        self.session
            .execute_unpaged(&statement, values)
            .await
            .map_err(exec_err)?;
        Ok(())
    }

    fn select(&self, table: &TableDef, qualified: &str, by: &[Column]) -> String {
        let columns: Vec<&str> = table.all_columns().map(|c| c.name).collect();
        format!(
            "SELECT {} FROM {qualified} WHERE {}",
            columns.join(", "),
            where_clause(by.iter())
        )
    }

    /// A fingerprint of one scan, so that a token is only accepted by the
    /// scan that made it.
    fn scan_fingerprint(&self, physical: &str, partition: &Row) -> [u8; 8] {
        let mut hash = Sha256::new();
        hash.update(self.config.keyspace.as_bytes());
        hash.update([0]);
        hash.update(physical.as_bytes());
        hash.update([0]);
        hash.update(format!("{partition:?}").as_bytes());
        let digest = hash.finalize();
        let mut out = [0; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }
}

fn where_clause<'a>(columns: impl Iterator<Item = &'a Column>) -> String {
    columns
        .map(|c| format!("{} = ?", c.name))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The values of `columns` in `row`, in order (all present: checked before).
fn bind<'a>(columns: impl Iterator<Item = &'a Column>, row: &Row) -> Vec<Option<CqlValue>> {
    columns.map(|c| row.get(c.name).and_then(to_cql)).collect()
}

fn to_cql(v: &Value) -> Option<CqlValue> {
    Some(match v {
        Value::Null => return None,
        Value::Text(s) => CqlValue::Text(s.clone()),
        Value::BigInt(x) => CqlValue::BigInt(*x),
        Value::Int(x) => CqlValue::Int(*x),
        Value::Boolean(b) => CqlValue::Boolean(*b),
        Value::Timestamp(ms) => CqlValue::Timestamp(CqlTimestamp(*ms)),
        Value::Blob(b) => CqlValue::Blob(b.clone()),
    })
}

/// A value the server returned for `column`, by its declared type.
fn from_cql(
    table: &TableDef,
    column: &Column,
    v: Option<CqlValue>,
) -> Result<Value, ReadStoreError> {
    Ok(match (column.kind, v) {
        (_, None) => Value::Null,
        (ColumnType::Text, Some(CqlValue::Text(s) | CqlValue::Ascii(s))) => Value::Text(s),
        (ColumnType::BigInt, Some(CqlValue::BigInt(x))) => Value::BigInt(x),
        (ColumnType::Int, Some(CqlValue::Int(x))) => Value::Int(x),
        (ColumnType::Boolean, Some(CqlValue::Boolean(b))) => Value::Boolean(b),
        (ColumnType::Timestamp, Some(CqlValue::Timestamp(t))) => Value::Timestamp(t.0),
        (ColumnType::Blob, Some(CqlValue::Blob(b))) => Value::Blob(b),
        // An empty value (legacy Thrift-era writes) of a fixed-size type.
        (_, Some(CqlValue::Empty)) => Value::Null,
        (kind, Some(other)) => {
            return Err(ReadStoreError::Invalid(format!(
                "{}.{} is declared {} but the server returned {other:?}: the table was created \
                 with another definition",
                table.name,
                column.name,
                kind.cql()
            )))
        }
    })
}

/// Decodes the rows of a result, columns in `table.all_columns()` order.
fn rows_of(
    table: &TableDef,
    result: scylla::response::query_result::QueryResult,
) -> Result<Vec<Row>, ReadStoreError> {
    let rows = result
        .into_rows_result()
        .map_err(|e| ReadStoreError::Invalid(format!("reading {}: {e}", table.name)))?;
    let mut out = Vec::with_capacity(rows.rows_num());
    let iter = rows
        .rows::<scylla::value::Row>()
        .map_err(|e| ReadStoreError::Invalid(format!("reading {}: {e}", table.name)))?;
    for row in iter {
        let row =
            row.map_err(|e| ReadStoreError::Invalid(format!("reading {}: {e}", table.name)))?;
        let mut decoded = Row::new();
        for (column, v) in table.all_columns().zip(row.columns) {
            decoded.insert(column.name.to_owned(), from_cql(table, column, v)?);
        }
        out.push(decoded);
    }
    Ok(out)
}

fn is_transient(db: &DbError) -> bool {
    matches!(
        db,
        DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::RateLimitReached { .. }
            | DbError::TruncateError
            | DbError::ServerError
    )
}

fn attempt_err(e: &RequestAttemptError, message: String) -> ReadStoreError {
    match e {
        RequestAttemptError::DbError(db, _) if is_transient(db) => {
            ReadStoreError::Unavailable(message)
        }
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => ReadStoreError::Unavailable(message),
        _ => ReadStoreError::Invalid(message),
    }
}

fn exec_err(e: ExecutionError) -> ReadStoreError {
    let message = e.to_string();
    match &e {
        ExecutionError::EmptyPlan
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::SchemaAgreementError(_)
        | ExecutionError::MetadataError(_) => ReadStoreError::Unavailable(message),
        ExecutionError::PrepareError(p) => prepare_err(p.clone()),
        ExecutionError::LastAttemptError(a) => attempt_err(a, message),
        _ => ReadStoreError::Invalid(message),
    }
}

fn prepare_err(e: PrepareError) -> ReadStoreError {
    let message = e.to_string();
    match &e {
        PrepareError::ConnectionPoolError(_) => ReadStoreError::Unavailable(message),
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_err(first_attempt, message),
        _ => ReadStoreError::Invalid(message),
    }
}

fn agreement_err(e: SchemaAgreementError) -> ReadStoreError {
    ReadStoreError::Unavailable(format!("waiting for schema agreement: {e}"))
}

fn session_err(config: &CqlConfig, e: NewSessionError) -> ReadStoreError {
    let message = format!("connecting to {:?}: {e}", config.contact_points);
    match e {
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => {
            ReadStoreError::Invalid(message)
        }
        _ => ReadStoreError::Unavailable(message),
    }
}

#[async_trait]
impl ReadStore for CqlStore {
    async fn ensure_tables(
        &self,
        tables: &[TableDef],
        generation: u32,
    ) -> Result<(), ReadStoreError> {
        self.ddl(format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
            self.config.keyspace, self.config.replication_factor
        ))
        .await?;
        for table in tables {
            self.ddl(table.create_cql(&self.config.keyspace, generation))
                .await?;
        }
        Ok(())
    }

    async fn drop_tables(
        &self,
        tables: &[TableDef],
        generation: u32,
    ) -> Result<(), ReadStoreError> {
        for table in tables {
            let (physical, qualified) = self.qualified(table, generation);
            self.ddl(format!("DROP TABLE IF EXISTS {qualified}"))
                .await?;
            self.forget(|p| p == physical);
        }
        Ok(())
    }

    async fn write(&self, mutations: &[Mutation]) -> Result<(), ReadStoreError> {
        for m in mutations {
            check_mutation(m)?;
        }
        // Every mutation carries its timestamp, so their order does not
        // matter: run them concurrently (token-aware, each to its replica).
        let writes: Vec<_> = mutations.iter().map(|m| self.write_one(m)).collect();
        futures::stream::iter(writes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    async fn get(
        &self,
        table: &TableDef,
        generation: u32,
        key: &Row,
    ) -> Result<Option<Row>, ReadStoreError> {
        check_exact(table, table.key_columns(), key, "get")?;
        let (physical, qualified) = self.qualified(table, generation);
        let by: Vec<Column> = table.key_columns().copied().collect();
        let statement = self
            .prepared(&physical, self.select(table, &qualified, &by))
            .await?;
        let result = self
            .session
            .execute_unpaged(&statement, bind(by.iter(), key))
            .await
            .map_err(exec_err)?;
        Ok(rows_of(table, result)?.into_iter().next())
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
        let (physical, qualified) = self.qualified(table, generation);
        let fingerprint = self.scan_fingerprint(&physical, partition);
        let paging_state = match page {
            None => PagingState::start(),
            Some(token) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(&token.0)
                    .map_err(|_| ReadStoreError::BadPageToken)?;
                match bytes.split_first() {
                    Some((&TOKEN_VERSION, rest)) if rest.len() > 8 && rest[..8] == fingerprint => {
                        PagingState::new_from_raw_bytes(&rest[8..])
                    }
                    _ => return Err(ReadStoreError::BadPageToken),
                }
            }
        };
        let resumed = page.is_some();
        let by = table.partition_key;
        let mut statement = self
            .prepared(&physical, self.select(table, &qualified, by))
            .await?;
        statement.set_page_size(i32::try_from(limit).unwrap_or(i32::MAX));
        let (result, response) = self
            .session
            .execute_single_page(&statement, bind(by.iter(), partition), paging_state)
            .await
            .map_err(|e| match &e {
                // The server could not parse the paging state we passed on.
                ExecutionError::LastAttemptError(RequestAttemptError::DbError(
                    DbError::ProtocolError,
                    _,
                )) if resumed => ReadStoreError::BadPageToken,
                _ => exec_err(e),
            })?;
        let rows = rows_of(table, result)?;
        let next = match PagingStateResponse::into_paging_control_flow(response) {
            ControlFlow::Break(()) => None,
            ControlFlow::Continue(state) => state.as_bytes_slice().map(|raw| {
                let mut token = vec![TOKEN_VERSION];
                token.extend_from_slice(&fingerprint);
                token.extend_from_slice(raw);
                PageToken(URL_SAFE_NO_PAD.encode(token))
            }),
        };
        Ok(Page { rows, next })
    }
}
