//! The write side in one process: the six command processors, the
//! order-fulfillment saga (with the checkout policy), optionally a simulated
//! courier fleet, and the command API — started and stopped together.
//!
//! `quickstore dev`, the end-to-end tests (`spawn_app`) and the benchmark
//! all start it through here, so they run the same code. In production each
//! part runs in its own process (`quickstore serve --role …`, one
//! Deployment per role): [`WriteRoles`] picks the parts, and the parts only
//! meet through the event log, so any split gives the same behaviour.

use platform::auth::revocations::RevocationPublisher;
use platform::pii::KeyStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use command_api::aggregate::Aggregate;
use command_api::bus::CommandBus;
use command_api::domain::catalog::Product;
use command_api::domain::customers::Customer;
use command_api::domain::deliveries::Shipment;
use command_api::domain::inventory::StockItem;
use command_api::domain::orders::OrdersAggregate;
use command_api::domain::payments::Payment;
use command_api::gateway::webhook::ReplayGuard;
use command_api::gateway::PaymentGateway;
use command_api::gateway::{PaymentConsultant, SimulatedGateway};
use command_api::http::idempotency::IdempotencyStore;
use command_api::http::state::{ApiConfig, AppState, SharedState};
use command_api::pricebook::PriceBook;
use command_api::processor::{CommandProcessor, Consultant, ProcessorConfig, ProcessorStats};
use platform::auth::{
    CredentialStore, EmbeddedCredentialStore, MemoryCredentialStore, PasswordHasher, SigningKeys,
    TokenIssuer,
};
use platform::config::Secret;
use platform::eventlog::{Cleanup, TopicSpec};
use sagas::courier::CourierFleet;
use sagas::fulfillment::{FulfillmentTimeouts, FulfillmentWorker, WorkerConfig, WorkerStats};
use schemas::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::system::System;

/// Infrastructure clock, ms since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    command_api::processor::system_clock()
}

/// Where logins live.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A redb file in the data directory (survives restarts).
    Embedded,
    /// In memory (tests).
    Memory,
}

/// How to start the write side.
/// Which parts of the write side this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRoles {
    /// The HTTP command API (produces commands, waits for outcomes).
    pub command_api: bool,
    /// The six command processors (the single writers of the aggregates).
    pub command_processors: bool,
    /// The order-fulfillment saga worker (and a simulated courier fleet,
    /// when one is configured).
    pub sagas: bool,
}

impl WriteRoles {
    pub const ALL: Self = Self {
        command_api: true,
        command_processors: true,
        sagas: true,
    };

    pub fn any(&self) -> bool {
        self.command_api || self.command_processors || self.sagas
    }
}

impl Default for WriteRoles {
    fn default() -> Self {
        Self::ALL
    }
}

#[derive(Clone)]
pub struct WriteSideOptions {
    /// The parts to run (all by default).
    pub roles: WriteRoles,
    /// `host:port` for the command API (port 0 = any free port).
    pub listen: String,
    pub clock: Clock,
    /// Distinguishes transactional ids of processes sharing a broker.
    pub instance: String,
    /// Couriers of a simulated fleet that assigns, picks up and delivers
    /// every shipment; empty = no fleet (couriers use the API).
    pub simulated_couriers: Vec<String>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub credentials: Credentials,
    pub api: ApiConfig,
    pub timeouts: FulfillmentTimeouts,
    /// Commands per transaction at most.
    pub max_batch: usize,
    /// Argon2 parameters: production-strength unless a test asks for speed.
    pub fast_password_hashing: bool,
    /// The per-customer data keys (ADR 0014), on the read store. `serve`
    /// and `dev` always pass the read store's; `None` keeps them in memory
    /// for this process only (tests of the write side alone).
    pub keys: Option<Arc<KeyStore>>,
}

impl std::fmt::Debug for WriteSideOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSideOptions")
            .field("roles", &self.roles)
            .field("listen", &self.listen)
            .field("instance", &self.instance)
            .field("simulated_couriers", &self.simulated_couriers)
            .finish_non_exhaustive()
    }
}

impl WriteSideOptions {
    pub fn from_settings(system: &System) -> Self {
        let s = &system.settings;
        Self {
            roles: WriteRoles::ALL,
            listen: s.command_api_listen.clone(),
            clock: system_clock(),
            instance: "0".into(),
            simulated_couriers: Vec::new(),
            gateway: Arc::new(SimulatedGateway::new()),
            credentials: Credentials::Embedded,
            api: ApiConfig {
                rate_limits: command_api::http::limits::RateLimits::from_settings(s),
                ..ApiConfig::default()
            },
            timeouts: FulfillmentTimeouts {
                payment_authorization_ms: s.payment_authorization_timeout_ms,
                courier_assignment_ms: s.courier_assignment_timeout_ms,
            },
            max_batch: 500,
            fast_password_hashing: false,
            keys: None,
        }
    }
}

/// A running write side.
pub struct WriteSide {
    /// The command API's address (`None` without the command-API role).
    pub addr: Option<SocketAddr>,
    /// The command API's state (`None` without the command-API role).
    pub state: Option<SharedState>,
    stop: watch::Sender<bool>,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    workers: Vec<(String, JoinHandle<Result<()>>)>,
    pub saga_progress: watch::Receiver<WorkerStats>,
    pub processor_progress: Vec<(String, watch::Receiver<ProcessorStats>)>,
}

impl std::fmt::Debug for WriteSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSide")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The saga's topics, co-partitioned with the contexts'.
pub fn saga_topics(system: &System) -> Vec<TopicSpec> {
    let mut events = TopicSpec::new(
        system.topics.saga_events(schemas::ORDER_FULFILLMENT),
        system.settings.partitions,
        Cleanup::KeepForever,
    );
    events.replication_factor = system.settings.replication_factor;
    let mut replies = TopicSpec::new(
        system.topics.saga_replies(schemas::ORDER_FULFILLMENT),
        system.settings.partitions,
        Cleanup::Delete {
            retention: Duration::from_secs(7 * 24 * 3600),
        },
    );
    replies.replication_factor = system.settings.replication_factor;
    events.min_insync_replicas = Some(system.settings.min_insync_replicas);
    replies.min_insync_replicas = Some(system.settings.min_insync_replicas);
    vec![events, replies]
}

impl WriteSide {
    pub async fn start(system: &System, options: WriteSideOptions) -> Result<Self> {
        system.ensure_contract().await?;
        system.log.create_topics(&saga_topics(system)).await?;
        let (stop, stopped) = watch::channel(false);
        let mut workers = Vec::new();
        let mut processor_progress = Vec::new();
        let consultant: Arc<dyn Consultant<Payment>> =
            Arc::new(PaymentConsultant::new(Arc::clone(&options.gateway)));
        macro_rules! processor {
            ($a:ty, $ctx:expr, $consultant:expr) => {{
                let (name, handle, progress) =
                    spawn_processor::<$a>(system, $ctx, &options, $consultant, stopped.clone());
                processor_progress.push((name.clone(), progress));
                workers.push((name, handle));
            }};
        }
        if options.roles.command_processors {
            processor!(Product, Context::Catalog, None);
            processor!(StockItem, Context::Inventory, None);
            processor!(OrdersAggregate, Context::Orders, None);
            processor!(Payment, Context::Payments, Some(consultant));
            processor!(Shipment, Context::Deliveries, None);
            processor!(Customer, Context::Customers, None);
        }

        // Consumer lag (`quickstore_consumer_lag`) of the groups this
        // process's roles consume, sampled until the stop.
        let saga_group = WorkerConfig::new(&system.topics, &options.instance).group_id;
        let watched: Vec<_> = crate::probes::write_side_groups(system, &saga_group)
            .into_iter()
            .filter(|g| {
                if g.group == saga_group {
                    options.roles.sagas
                } else {
                    options.roles.command_processors
                }
            })
            .collect();
        if !watched.is_empty() {
            let sampler = tokio::spawn(platform::telemetry::lag::sample_lag(
                Arc::clone(&system.log),
                watched,
                crate::probes::LAG_SAMPLE_EVERY,
                stopped.clone(),
            ));
            workers.push((
                "consumer lag sampler".into(),
                tokio::spawn(async move {
                    let _ = sampler.await;
                    Ok(())
                }),
            ));
        }
        // Without the saga role nothing moves the saga's progress; the
        // receiver then reports the defaults.
        let (saga_tx, saga_progress) = watch::channel(WorkerStats::default());
        if options.roles.sagas {
            let mut saga_config = WorkerConfig::new(&system.topics, &options.instance);
            saga_config.timeouts = options.timeouts;
            let saga = FulfillmentWorker::new(
                Arc::clone(&system.log),
                Arc::clone(&system.codec),
                &system.topics,
                saga_config,
                Arc::clone(&options.clock),
            )
            .with_progress(saga_tx);
            let saga_stop = stopped.clone();
            workers.push((
                "order-fulfillment saga".into(),
                tokio::spawn(async move {
                    saga.run(saga_stop).await?;
                    Ok(())
                }),
            ));
        }
        if options.roles.sagas && !options.simulated_couriers.is_empty() {
            let mut fleet = CourierFleet::new(&system.topics, options.simulated_couriers.clone());
            fleet.transactional_id = format!("{}.{}", fleet.transactional_id, options.instance);
            let (log, codec, topics, clock) = (
                Arc::clone(&system.log),
                Arc::clone(&system.codec),
                system.topics.clone(),
                Arc::clone(&options.clock),
            );
            let fleet_stop = stopped.clone();
            workers.push((
                "simulated couriers".into(),
                tokio::spawn(async move {
                    fleet.run(log, codec, topics, clock, fleet_stop).await?;
                    Ok(())
                }),
            ));
        }

        let (mut addr, mut state, mut http_stop, mut http) = (None, None, None, None);
        if options.roles.command_api {
            let app = Arc::new(app_state(system, &options).await?);
            let listener = tokio::net::TcpListener::bind(&options.listen)
                .await
                .with_context(|| {
                    format!(
                        "binding the command API to {} (QS_COMMAND_API_LISTEN)",
                        options.listen
                    )
                })?;
            addr = Some(listener.local_addr()?);
            // Ready once the broker and registry answer and, where this
            // process runs them, the processors have restored their state.
            let readiness = crate::probes::processors_restored(
                crate::probes::base(system),
                processor_progress.clone(),
            );
            let router = command_api::http::router_with(Arc::clone(&app), readiness);
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            http = Some(tokio::spawn(command_api::http::serve(
                listener,
                router,
                async move {
                    let _ = stop_rx.await;
                },
            )));
            http_stop = Some(stop_tx);
            state = Some(app);
        }
        Ok(Self {
            addr,
            state,
            stop,
            http_stop,
            http,
            workers,
            saga_progress,
            processor_progress,
        })
    }

    /// The command API's base URL (`None` without the command-API role).
    pub fn url(&self) -> Option<String> {
        self.addr.map(|a| format!("http://{a}"))
    }

    /// The command API's base URL, or an error saying the role is off.
    pub fn api_url(&self) -> Result<String> {
        self.url()
            .context("this process does not run the command API (role command-api)")
    }

    /// The command API's state, or an error saying the role is off.
    pub fn api_state(&self) -> Result<&SharedState> {
        self.state
            .as_ref()
            .context("this process does not run the command API (role command-api)")
    }

    /// Whether a worker stopped on its own (it failed).
    pub fn failed_worker(&self) -> Option<&str> {
        self.workers
            .iter()
            .find(|(_, h)| h.is_finished())
            .map(|(name, _)| name.as_str())
    }

    /// Resolves when a worker ends before a stop was asked — an error it
    /// could not recover from (a poisoned transactional producer, say):
    /// its name and why. `serve` then exits non-zero, so the supervisor
    /// restarts the process instead of leaving it up with one context's
    /// commands never decided (found by `quickstore chaos`, ADR 0016).
    /// Never resolves without workers.
    pub async fn worker_exit(&mut self) -> (String, String) {
        if self.workers.is_empty() {
            return std::future::pending().await;
        }
        let (result, index, _) =
            futures::future::select_all(self.workers.iter_mut().map(|(_, h)| h)).await;
        let why = match result {
            Ok(Ok(())) => "it returned".to_owned(),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) => format!("it panicked: {e}"),
        };
        (self.workers[index].0.clone(), why)
    }

    /// Graceful stop: the API stops taking requests and drains, then every
    /// worker finishes its batch and leaves its group.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.http_stop.take() {
            let _ = tx.send(());
        }
        if let Some(http) = self.http.take() {
            let _ = http.await;
        }
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (name, handle) in self.workers {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(worker = %name, error = %e, "worker failed");
                    first_error.get_or_insert(e.context(name));
                }
                Err(e) => {
                    first_error.get_or_insert(anyhow::anyhow!("{name} panicked: {e}"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn spawn_processor<A: Aggregate>(
    system: &System,
    context: Context,
    options: &WriteSideOptions,
    consultant: Option<Arc<dyn Consultant<A>>>,
    stopped: watch::Receiver<bool>,
) -> (
    String,
    JoinHandle<Result<()>>,
    watch::Receiver<ProcessorStats>,
) {
    let topology = system.topology(context.as_str());
    let prefix = &system.topics.prefix;
    let mut config = ProcessorConfig::new(
        format!("{prefix}{context}.command-processor"),
        format!("{prefix}{context}.command-processor.{}", options.instance),
    );
    config.max_batch = options.max_batch;
    config.state_dir = Some(system.settings.processor_state_dir());
    config.cache_aggregates = system.settings.processor_cache_aggregates;
    let (tx, rx) = watch::channel(ProcessorStats::default());
    let mut processor = CommandProcessor::<A>::new(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        topology,
        config,
        Arc::clone(&options.clock),
    )
    .with_progress(tx);
    if let Some(c) = consultant {
        processor = processor.with_consultant(c);
    }
    let name = format!("{context} command processor");
    let handle = tokio::spawn(async move {
        processor.run(stopped).await?;
        Ok(())
    });
    (name, handle, rx)
}

async fn app_state(system: &System, options: &WriteSideOptions) -> Result<AppState> {
    let settings = &system.settings;
    let keys = match &settings.auth_signing_key {
        Some(pem) => SigningKeys::from_pem(pem)?,
        None => match options.credentials {
            Credentials::Embedded => {
                let dir = settings.data_dir.join("auth");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                SigningKeys::load_or_create(&dir.join("signing-key.pem"))?
            }
            Credentials::Memory => SigningKeys::generate()?,
        },
    };
    let store: Arc<dyn CredentialStore> = match options.credentials {
        Credentials::Embedded => {
            let dir = settings.data_dir.join("auth");
            std::fs::create_dir_all(&dir)?;
            Arc::new(EmbeddedCredentialStore::open(
                &dir.join("credentials.redb"),
            )?)
        }
        Credentials::Memory => Arc::new(MemoryCredentialStore::new()),
    };
    let issuer = TokenIssuer::new(
        Arc::new(keys),
        store,
        settings.auth_issuer.clone(),
        settings.auth_audience.clone(),
    );
    let verifier = issuer.verifier()?;
    let webhook_secret = settings
        .payment_webhook_secret
        .clone()
        .unwrap_or_else(|| Secret::new(format!("whsec_{}", uuid::Uuid::new_v4().simple())));
    let bus = CommandBus::start(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        system.topics.clone(),
        &format!("{}command-api.{}", system.topics.prefix, options.instance),
    )
    .await?;
    let prices = PriceBook::start(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        &system.topics,
    )
    .await?;
    // Revocations go on the log so the query API and the other replicas
    // refuse a logged-out token too (ADR 0022).
    let revocations = RevocationPublisher::start(
        system.log.as_ref(),
        system.revocation_topic(),
        &format!(
            "{}command-api.{}.revocations",
            system.topics.prefix, options.instance
        ),
    )
    .await
    .context("starting the revocation publisher")?;
    let (revocation_view, revocation_follower) = system
        .follow_revocations()
        .await
        .context("following the revocation topic")?;
    Ok(AppState {
        bus,
        prices,
        issuer,
        verifier,
        revocations,
        revocation_view,
        revocation_follower,
        hasher: if options.fast_password_hashing {
            PasswordHasher::fast_params()
        } else {
            PasswordHasher::default()
        },
        gateway: Arc::clone(&options.gateway),
        webhook_secret,
        webhook_replays: ReplayGuard::new(options.api.webhook_tolerance_s.max(1) * 2, 100_000),
        idempotency: IdempotencyStore::default(),
        keys: match &options.keys {
            Some(keys) => Arc::clone(keys),
            None => {
                tracing::info!("customer data keys kept in memory (no read store given)");
                let store: Arc<dyn platform::readstore::ReadStore> =
                    Arc::new(platform::readstore::EmbeddedStore::in_memory()?);
                let keys = Arc::new(KeyStore::new(store, platform::pii::keystore::DEFAULT_TTL));
                keys.ensure().await?;
                keys
            }
        },
        config: options.api.clone(),
        limiters: command_api::http::limits::Limiters::new(options.api.rate_limits),
        clock: Arc::clone(&options.clock),
    })
}
