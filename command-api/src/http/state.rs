//! Everything a request handler may use, shared behind one `Arc`.

use std::sync::Arc;
use std::time::Duration;

use platform::auth::{PasswordHasher, TokenIssuer, Verifier};
use platform::config::Secret;
use platform::pii::KeyStore;

use crate::bus::CommandBus;
use crate::gateway::webhook::ReplayGuard;
use crate::gateway::PaymentGateway;
use crate::pricebook::PriceBook;

use super::idempotency::IdempotencyStore;
use super::limits::{Limiters, RateLimits};

/// Infrastructure time in ms since the epoch (envelopes' `issued_at`, token
/// times). Tests swap it; the domain only ever sees it as data.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Tunables of the command API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a request waits for its command's outcome before 202.
    pub outcome_wait: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Webhook signature tolerance (seconds either side of now).
    pub webhook_tolerance_s: i64,
    /// How long an unknown SKU is waited for (a product created a moment ago).
    pub catalog_wait: Duration,
    /// Logins per account and address, commands per subject (0 = off).
    pub rate_limits: RateLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            outcome_wait: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            webhook_tolerance_s: 300,
            catalog_wait: Duration::from_millis(500),
            rate_limits: RateLimits::default(),
        }
    }
}

/// The command API's shared state.
pub struct AppState {
    pub bus: CommandBus,
    pub prices: PriceBook,
    pub issuer: TokenIssuer,
    pub verifier: Verifier,
    /// Where this replica's revocations go, so the query API and the other
    /// replicas refuse the token too (ADR 0022).
    pub revocations: platform::auth::revocations::RevocationPublisher,
    /// Every replica's revocations, followed from the log: a token logged
    /// out on another replica is refused here as well.
    pub revocation_view: Arc<platform::auth::revocations::RevocationView>,
    /// Keeps `revocation_view` current; dropped with the state.
    pub revocation_follower: platform::auth::revocations::Following,
    pub hasher: PasswordHasher,
    pub gateway: Arc<dyn PaymentGateway>,
    pub webhook_secret: Secret,
    pub webhook_replays: ReplayGuard,
    pub idempotency: IdempotencyStore,
    /// Per-customer data keys: personal fields are sealed before a command is produced.
    pub keys: Arc<KeyStore>,
    pub config: ApiConfig,
    /// Built from `config.rate_limits`.
    pub limiters: Limiters,
    pub clock: Clock,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    pub fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

pub type SharedState = Arc<AppState>;
