//! Everything a request handler may use: the read store, the generation
//! cache, the token verifier, the tunables and the clock. Cheap to clone
//! (a handful of `Arc`s), as axum clones it per request.

use std::sync::Arc;
use std::time::Duration;

use platform::pii::KeyStore;
use platform::readstore::ReadStore;

use crate::generations::GenerationCache;
use crate::jwks::VerifierSource;
use crate::stream::StreamSlots;

/// Infrastructure time in ms since the epoch (token expiry checks, and
/// ending a live stream when its token expires). Tests
/// swap it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Tunables of the query API.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// How long a request carrying a position token waits for the read
    /// model to reach it before answering 503 not-yet-consistent.
    pub read_your_writes_timeout: Duration,
    /// How often a live stream re-reads what it watches.
    pub stream_poll_interval: Duration,
    /// How often a live stream sends a keep-alive comment (proxies close
    /// idle connections).
    pub stream_keep_alive: Duration,
    /// Largest `limit` of a page.
    pub max_page: usize,
    /// `limit` when none is given.
    pub default_page: usize,
    /// How stale the cached serving generation of a projection may get: a
    /// rebuild's switch is seen within this.
    pub generation_refresh: Duration,
    /// Most live streams one user (token subject) may have open at once;
    /// beyond it a new one is 429.
    pub max_streams_per_subject: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            read_your_writes_timeout: Duration::from_secs(2),
            stream_poll_interval: Duration::from_millis(250),
            stream_keep_alive: Duration::from_secs(15),
            max_page: 100,
            default_page: 20,
            generation_refresh: Duration::from_secs(1),
            max_streams_per_subject: 8,
        }
    }
}

/// The query API's shared state.
#[derive(Clone)]
pub struct QueryState {
    pub store: Arc<dyn ReadStore>,
    pub generations: Arc<GenerationCache>,
    pub verifier: Arc<VerifierSource>,
    pub config: QueryConfig,
    pub clock: Clock,
    /// The live streams open per subject.
    pub streams: Arc<StreamSlots>,
    /// Checks `/readyz` runs besides the read store's.
    pub readiness: platform::telemetry::Readiness,
    /// Customers' data keys: sealed personal fields are opened (or shown
    /// `[erased]`) as answers are built (ADR 0014).
    pub keys: Arc<KeyStore>,
    /// Audit reads from the event log (optional: without it the audit
    /// routes that need the log answer 503 `audit-log-unavailable`).
    pub audit_log: Option<Arc<dyn crate::audit_log::AuditLog>>,
    /// Revoked tokens and sessions, followed from the log (ADR 0022).
    /// Without it (unit tests) no token is checked for revocation.
    pub revocations: Option<Arc<platform::auth::revocations::RevocationView>>,
}

impl std::fmt::Debug for QueryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryState")
            .field("store", &self.store)
            .field("verifier", &self.verifier)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl QueryState {
    pub fn new(store: Arc<dyn ReadStore>, verifier: VerifierSource, config: QueryConfig) -> Self {
        // A page of 0 would be refused by the store; keep the limits sane
        // whatever the configuration says.
        let mut config = config;
        config.max_page = config.max_page.max(1);
        config.default_page = config.default_page.clamp(1, config.max_page);
        let keys = Arc::new(KeyStore::new(
            Arc::clone(&store),
            platform::pii::keystore::DEFAULT_TTL,
        ));
        Self {
            store,
            keys,
            generations: Arc::new(GenerationCache::new(config.generation_refresh)),
            verifier: Arc::new(verifier),
            config,
            clock: Arc::new(system_clock),
            streams: Arc::new(StreamSlots::default()),
            readiness: platform::telemetry::Readiness::default(),
            audit_log: None,
            revocations: None,
        }
    }

    /// `/readyz` also runs `readiness` (the event log and registry of a
    /// process that runs the projectors beside the API).
    pub fn with_readiness(mut self, readiness: platform::telemetry::Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Shares `keys` (its cache) instead of a key store of its own over
    /// the same read store.
    pub fn with_keys(mut self, keys: Arc<KeyStore>) -> Self {
        self.keys = keys;
        self
    }

    /// Gives the audit routes the event log (see [`crate::audit_log`]).
    pub fn with_audit_log(mut self, audit_log: Arc<dyn crate::audit_log::AuditLog>) -> Self {
        self.audit_log = Some(audit_log);
        self
    }

    /// Refuses revoked tokens and sessions, and every token while `view`
    /// is staler than its bound (503: fail closed).
    pub fn with_revocations(
        mut self,
        view: Arc<platform::auth::revocations::RevocationView>,
    ) -> Self {
        self.revocations = Some(view);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// A state over an empty in-memory read store with every projection's
/// tables, for unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
pub(crate) async fn memory_state() -> (QueryState, Arc<platform::readstore::EmbeddedStore>) {
    use platform::auth::{MemoryCredentialStore, SigningKeys, TokenIssuer};
    use platform::readstore::EmbeddedStore;

    let store = Arc::new(EmbeddedStore::in_memory().unwrap());
    projectors::generations::ensure(store.as_ref())
        .await
        .unwrap();
    for p in projectors::projections::all() {
        store.ensure_tables(p.tables(), 1).await.unwrap();
    }
    let issuer = TokenIssuer::new(
        Arc::new(SigningKeys::generate().unwrap()),
        Arc::new(MemoryCredentialStore::new()),
        "quickstore",
        "quickstore",
    );
    let verifier = VerifierSource::fixed(issuer.verifier().unwrap());
    let state = QueryState::new(store.clone(), verifier, QueryConfig::default());
    (state, store)
}
