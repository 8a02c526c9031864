//! Reads of the read models at their serving generation, with store errors
//! turned into answers: unavailable → 503, refused → 500 (our bug), and a
//! page token the store does not accept → 400 naming `cursor`.

use std::ops::ControlFlow;

use futures::stream::{self, StreamExt, TryStreamExt};
use platform::readstore::{Page, PageToken, ReadStoreError, Row, TableDef, Value};

use crate::problem::AppError;
use crate::state::QueryState;

/// Rows per store page when a whole partition is read (sales sums, a
/// timeline for a live stream).
pub const BULK_PAGE: usize = 500;

/// How many point reads of a join run at once.
pub const JOIN_PARALLELISM: usize = 8;

/// A key or partition of one text column.
pub fn key(column: &str, value: &str) -> Row {
    Row::from([(column.to_owned(), Value::Text(value.to_owned()))])
}

impl QueryState {
    /// The row of `table` with `key`, from the serving generation.
    pub async fn get(&self, table: &TableDef, key: &Row) -> Result<Option<Row>, AppError> {
        let generation = self.generation(table).await?;
        self.store
            .get(table, generation, key)
            .await
            .map_err(|e| AppError::store(&e))
    }

    /// One page of a partition, continuing after a client's `cursor`.
    pub async fn scan(
        &self,
        table: &TableDef,
        partition: &Row,
        cursor: Option<&PageToken>,
        limit: usize,
    ) -> Result<Page, AppError> {
        let generation = self.generation(table).await?;
        self.store
            .scan(table, generation, partition, cursor, limit)
            .await
            .map_err(|e| match e {
                ReadStoreError::BadPageToken => AppError::bad_request(
                    "invalid-cursor",
                    "cursor",
                    "the cursor does not continue this listing (it may belong to another one, or the listing was rebuilt): start again without it",
                ),
                e => AppError::store(&e),
            })
    }

    /// Every row of a partition (following pages), at most `max_rows`.
    /// The generation is fixed for the whole walk, so a switch half-way
    /// cannot mix two generations or invalidate the page token.
    pub async fn scan_all(
        &self,
        table: &TableDef,
        partition: &Row,
        max_rows: usize,
    ) -> Result<Vec<Row>, AppError> {
        self.scan_until(table, partition, max_rows, |_| false).await
    }

    /// The rows of a partition in clustering order up to (not including)
    /// the first for which `stop` holds, at most `max_rows`.
    pub async fn scan_until(
        &self,
        table: &TableDef,
        partition: &Row,
        max_rows: usize,
        stop: impl Fn(&Row) -> bool,
    ) -> Result<Vec<Row>, AppError> {
        let mut rows = Vec::new();
        self.visit(table, partition, |row| {
            if stop(&row) || rows.len() >= max_rows {
                return Ok(ControlFlow::Break(()));
            }
            rows.push(row);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(rows)
    }

    /// Hands each row of a partition, in clustering order, to `visit`, a
    /// store page at a time (only one page is held), until `visit` breaks
    /// or fails or the partition ends. The generation is fixed for the
    /// whole walk, so a switch half-way cannot mix two generations or
    /// invalidate the page token.
    pub async fn visit(
        &self,
        table: &TableDef,
        partition: &Row,
        mut visit: impl FnMut(Row) -> Result<ControlFlow<()>, AppError>,
    ) -> Result<(), AppError> {
        let generation = self.generation(table).await?;
        let mut token: Option<PageToken> = None;
        loop {
            let page = self
                .store
                .scan(table, generation, partition, token.as_ref(), BULK_PAGE)
                .await
                .map_err(|e| AppError::store(&e))?;
            for row in page.rows {
                if visit(row)?.is_break() {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Point reads of `table` for each key, in order, a few at a time.
    pub async fn get_many(
        &self,
        table: &TableDef,
        keys: Vec<Row>,
    ) -> Result<Vec<Option<Row>>, AppError> {
        stream::iter(keys)
            .map(|k| async move { self.get(table, &k).await })
            .buffered(JOIN_PARALLELISM)
            .try_collect()
            .await
    }

    async fn generation(&self, table: &TableDef) -> Result<u32, AppError> {
        self.generations
            .of_table(self.store.as_ref(), table)
            .await
            .map_err(|e| AppError::store(&e))
    }
}
