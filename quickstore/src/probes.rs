//! What `/readyz` checks in each role, and the ops listener
//! (`QS_OPS_LISTEN`) of processes without an HTTP API of their own
//! (docs/observability.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use command_api::processor::ProcessorStats;
use platform::readstore::ReadStore;
use platform::telemetry::lag::WatchedGroup;
use platform::telemetry::Readiness;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::system::System;

/// How often the write side's consumer lag is sampled.
pub const LAG_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// `event-log` (the broker answers metadata) and `schema-registry` (it
/// lists its subjects): what every role needs.
pub fn base(system: &System) -> Readiness {
    let registry = Arc::clone(&system.registry);
    Readiness::new()
        .with_event_log(Arc::clone(&system.log))
        .with_check("schema-registry", move || {
            let registry = Arc::clone(&registry);
            async move {
                registry
                    .subjects()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
}

/// `read-store`: the CQL node (or the embedded store) answers a read of
/// the projection generations (read-side roles).
pub fn read_store(readiness: Readiness, store: Arc<dyn ReadStore>) -> Readiness {
    readiness.with_check("read-store", move || {
        let store = Arc::clone(&store);
        async move {
            projectors::generations::serving(store.as_ref(), "orders")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
}

/// `command-processors`: every processor has restored the partitions it
/// was assigned (false before its first assignment and while rejoining).
pub fn processors_restored(
    readiness: Readiness,
    progress: Vec<(String, watch::Receiver<ProcessorStats>)>,
) -> Readiness {
    readiness.with_check("command-processors", move || {
        let waiting: Vec<String> = progress
            .iter()
            .filter(|(_, rx)| !rx.borrow().restored)
            .map(|(name, _)| name.clone())
            .collect();
        async move {
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(format!("restoring: {}", waiting.join(", ")))
            }
        }
    })
}

/// The write side's consumer groups: each context's command processor and
/// the order-fulfillment saga.
pub fn write_side_groups(system: &System, saga_group: &str) -> Vec<WatchedGroup> {
    let prefix = &system.topics.prefix;
    let mut groups: Vec<WatchedGroup> = schemas::Context::ALL
        .iter()
        .map(|context| WatchedGroup {
            group: format!("{prefix}{context}.command-processor"),
            topics: vec![system.topics.commands(*context)],
        })
        .collect();
    groups.push(WatchedGroup {
        group: saga_group.to_owned(),
        topics: sagas::fulfillment::inputs::InputTopics::new(&system.topics).all(),
    });
    groups
}

/// A running ops listener: `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug)]
pub struct OpsServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl OpsServer {
    /// Binds `listen` (`QS_OPS_LISTEN`) and serves until [`Self::stop`].
    pub async fn start(listen: &str, readiness: Readiness) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the ops listener to {listen} (QS_OPS_LISTEN)"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(platform::telemetry::health::serve_ops(
            listener,
            readiness,
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops taking connections and drains the ones in flight.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await??;
        Ok(())
    }
}
