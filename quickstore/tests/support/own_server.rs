//! A Kafka broker or CQL node of one test's own (the chaos harness's
//! [`Server`], started by the `deploy/` scripts), so the test can stop and
//! resume it without disturbing the servers every other test shares.
//! Stopped, and its run dir removed, on drop — a failing test leaves no
//! JVM behind.

use std::path::PathBuf;

use anyhow::{ensure, Result};
use quickstore::chaos::nodes::Server;
pub use quickstore::chaos::nodes::ServerKind as Kind;

#[derive(Debug)]
pub struct OwnServer {
    server: Server,
    kind: Kind,
    /// `host:port` to connect to.
    pub address: String,
}

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

impl OwnServer {
    /// Starts a new server named `<prefix>-<random>`.
    pub async fn start(kind: Kind, prefix: &str) -> Result<Self> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let server = Server::start_or_reuse(&deploy_dir(), kind, &name).await?;
        ensure!(
            server.owned(),
            "{name}: a server of that name was already running"
        );
        Ok(Self {
            address: server.address.clone(),
            server,
            kind,
        })
    }

    /// Stops the server, keeping its data and ports for [`OwnServer::resume`].
    pub async fn stop(&self) -> Result<()> {
        self.server.stop_keeping_data().await
    }

    /// Starts it again on the same ports and data.
    pub async fn resume(&self) -> Result<()> {
        self.server.resume().await
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // Synchronous: a drop cannot await, and a test's runtime may be
        // gone by now.
        let _ = std::process::Command::new(deploy_dir().join(self.kind.dir()).join("stop.sh"))
            .arg(self.server.run_dir())
            .status();
    }
}
