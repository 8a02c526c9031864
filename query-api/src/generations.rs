//! Which table generation to read, per projection, cached.
//!
//! A rebuild writes a new generation beside the serving one and switches
//! by writing one cell (`projectors::generations`). Reading that cell on
//! every request would double the reads, so the answer is cached per
//! projection and re-read once it is older than `refresh`: a switch is
//! seen within `refresh`. If the re-read fails, the last known generation
//! keeps serving (the old generation is only dropped well after a switch),
//! so a hiccup of the metadata table does not fail every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use platform::readstore::{ReadStore, ReadStoreError, TableDef};

/// The cache. One per [`crate::QueryState`].
#[derive(Debug)]
pub struct GenerationCache {
    refresh: Duration,
    /// Table base name → the projection that writes it (from
    /// `projectors::projections::all()`, so a table a projection adds later
    /// is served without a change here).
    owners: HashMap<&'static str, &'static str>,
    /// Projection → (serving generation, when it was read).
    entries: Mutex<HashMap<&'static str, (u32, Instant)>>,
}

impl GenerationCache {
    pub fn new(refresh: Duration) -> Self {
        let mut owners = HashMap::new();
        for projection in projectors::projections::all() {
            for table in projection.tables() {
                owners.insert(table.name, projection.name());
            }
        }
        Self {
            refresh,
            owners,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The projection that writes `table`, if any does.
    pub fn owner(&self, table: &TableDef) -> Option<&'static str> {
        self.owners.get(table.name).copied()
    }

    /// The generation to read `table` from.
    pub async fn of_table(
        &self,
        store: &dyn ReadStore,
        table: &TableDef,
    ) -> Result<u32, ReadStoreError> {
        let projection = self.owner(table).ok_or_else(|| {
            ReadStoreError::Invalid(format!("no projection writes the table {}", table.name))
        })?;
        self.of_projection(store, projection).await
    }

    /// The generation readers of `projection` use now (within `refresh`).
    pub async fn of_projection(
        &self,
        store: &dyn ReadStore,
        projection: &'static str,
    ) -> Result<u32, ReadStoreError> {
        let cached = self.cached(projection);
        if let Some((generation, at)) = cached {
            if at.elapsed() < self.refresh {
                return Ok(generation);
            }
        }
        match projectors::generations::serving(store, projection).await {
            Ok(generation) => {
                self.lock().insert(projection, (generation, Instant::now()));
                Ok(generation)
            }
            Err(e) => match cached {
                Some((generation, _)) => {
                    tracing::warn!(projection, error = %e, "serving generation not re-read; keeping the last one");
                    Ok(generation)
                }
                None => Err(e),
            },
        }
    }

    fn cached(&self, projection: &str) -> Option<(u32, Instant)> {
        self.lock().get(projection).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (u32, Instant)>> {
        // Poisoned only if a holder panicked between two plain map
        // operations: the map is still whole, so keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
