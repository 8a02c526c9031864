//! The read side in one process: the projector service (every projection
//! on its serving generation) and the query API — started and stopped
//! together.
//!
//! `quickstore dev`, `quickstore query-api`, the end-to-end tests and the
//! benchmark start it through here, so they run the same code. The query
//! API verifies tokens with the keys the command API publishes at
//! `/.well-known/jwks.json`, as it would as a separate service.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use platform::readstore::ReadStore;
use projectors::projection::Projection;
use projectors::service::{ProjectorService, RunningService, ServiceConfig, ServiceStatus};
use query_api::{JwksConfig, QueryConfig, QueryState, VerifierSource};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::system::System;

/// How to start the read side.
#[derive(Debug, Clone)]
pub struct ReadSideOptions {
    /// `host:port` of the query API (port 0 = any free port).
    pub listen: String,
    /// The command API's JWKS (`http://…/.well-known/jwks.json`).
    pub jwks_url: String,
    pub query: QueryConfig,
    pub service: ServiceConfig,
    /// The projections to run (`None`: all; `Some(empty)`: serve queries only).
    pub projections: Option<Vec<Arc<dyn Projection>>>,
    /// The customer data keys that reveal personal fields (ADR 0014);
    /// `None`: a key store over this read side's store.
    pub keys: Option<Arc<platform::pii::KeyStore>>,
}

impl ReadSideOptions {
    pub fn new(listen: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            jwks_url: jwks_url.into(),
            query: QueryConfig::default(),
            service: ServiceConfig::default(),
            projections: None,
            keys: None,
        }
    }

    /// The settings' query-API address and read-your-writes bound.
    pub fn from_settings(
        settings: &platform::config::Settings,
        jwks_url: impl Into<String>,
    ) -> Self {
        let mut options = Self::new(settings.query_api_listen.clone(), jwks_url);
        options.query.read_your_writes_timeout =
            std::time::Duration::from_millis(settings.read_your_writes_timeout_ms);
        options
    }
}

/// A running read side.
#[derive(Debug)]
pub struct ReadSide {
    pub addr: SocketAddr,
    pub store: Arc<dyn ReadStore>,
    projectors: Option<RunningService>,
    /// Keeps the query API's revocation view current.
    _revocations: platform::auth::revocations::Following,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl ReadSide {
    pub async fn start(
        system: &System,
        store: Arc<dyn ReadStore>,
        options: ReadSideOptions,
    ) -> Result<Self> {
        let projections = options
            .projections
            .clone()
            .unwrap_or_else(projectors::projections::all);
        // Every read model's serving tables exist before the first query
        // (the query API reads all of them, whichever projectors run here):
        // an early reader then finds an empty table and waits on its
        // position token, instead of a missing table and a 500.
        projectors::generations::prepare_serving_tables(
            store.as_ref(),
            &projectors::projections::all(),
        )
        .await
        .context("creating the read models' tables")?;
        let projectors = (!projections.is_empty()).then(|| {
            ProjectorService::new(
                Arc::clone(&system.log),
                Arc::clone(&system.codec),
                Arc::clone(&store),
                system.topics.clone(),
                projections,
                options.service.clone(),
            )
            .spawn()
        });
        let verifier = VerifierSource::jwks(
            options.jwks_url.clone(),
            system.settings.auth_issuer.clone(),
            system.settings.auth_audience.clone(),
            JwksConfig::default(),
        )
        .context("building the JWKS client")?;
        // The audit routes that read the log itself (state as of a moment,
        // the chain of one aggregate) get the log and the codec.
        let audit = crate::audit::LogAudit {
            log: Arc::clone(&system.log),
            codec: Arc::clone(&system.codec),
            topics: system.topics.clone(),
        };
        let keys = match &options.keys {
            Some(keys) => Arc::clone(keys),
            None => crate::customers_cmd::key_store(&store).await?,
        };
        // Every command-API replica's revocations, from the log (ADR 0022);
        // `/readyz` says when the view is staler than its bound.
        let (revocations, revocation_follower) = system
            .follow_revocations()
            .await
            .context("following the revocation topic")?;
        let mut readiness = platform::telemetry::Readiness::new().with_check("revocations", {
            let view = Arc::clone(&revocations);
            move || {
                let fresh = view.check_fresh().map_err(|e| e.to_string());
                async move { fresh }
            }
        });
        if projectors.is_some() {
            // Projectors in this process: the log and the registry too.
            readiness = readiness.merged(&crate::probes::base(system));
        }
        let state = QueryState::new(Arc::clone(&store), verifier, options.query.clone())
            .with_keys(keys)
            .with_audit_log(Arc::new(audit))
            .with_revocations(revocations)
            .with_readiness(readiness);
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| {
                format!(
                    "binding the query API to {} (QS_QUERY_API_LISTEN)",
                    options.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(query_api::serve(
            listener,
            query_api::router(state),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        Ok(Self {
            addr,
            store,
            projectors,
            _revocations: revocation_follower,
            stop,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The projectors' status (lag per projection); empty when none run.
    pub fn status(&self) -> ServiceStatus {
        self.projectors
            .as_ref()
            .map(RunningService::status)
            .unwrap_or_default()
    }

    /// The projectors' status as it changes.
    pub fn watch(&self) -> Option<watch::Receiver<ServiceStatus>> {
        self.projectors.as_ref().map(RunningService::watch)
    }

    /// Stops the query API (open streams end with their connections), then
    /// the projectors after their batches.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        // Live streams keep a connection open; don't wait for clients.
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await {
            Ok(joined) => joined??,
            Err(_) => tracing::warn!("the query API did not drain in 5 s; stopping anyway"),
        }
        if let Some(p) = self.projectors {
            p.stop().await?;
        }
        Ok(())
    }
}
