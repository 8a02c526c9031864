//! A Kafka broker or CQL node of one test's own, started by the `deploy/`
//! scripts, so the test can stop and resume it without disturbing the
//! servers every other test shares. Stopped (and its run dir removed) on
//! drop.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Context as _, Result};

/// Which server: the `deploy/<kind>/` scripts and the variable `start.sh`
/// prints its address in.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Kafka,
    Cql,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Self::Kafka => "kafka",
            Self::Cql => "cql",
        }
    }

    fn address_var(self) -> &'static str {
        match self {
            Self::Kafka => "QS_KAFKA_BOOTSTRAP=",
            Self::Cql => "QS_CQL_CONTACT_POINTS=",
        }
    }
}

#[derive(Debug)]
pub struct OwnServer {
    kind: Kind,
    run_dir: PathBuf,
    /// `host:port` to connect to.
    pub address: String,
}

impl OwnServer {
    /// Starts a new server named `<prefix>-<random>`.
    pub fn start(kind: Kind, prefix: &str) -> Result<Self> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let script = script(kind, "start.sh");
        let out = Command::new(&script).arg(&name).output().with_context(|| {
            format!(
                "running {} (needs Java 17+ and the cached jars: see deploy/README.md)",
                script.display()
            )
        })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "{} failed:\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let address = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(kind.address_var()))
            .with_context(|| format!("{} printed no {}", script.display(), kind.address_var()))?
            .to_owned();
        let root = std::env::var("QS_RUN_DIR").unwrap_or_else(|_| "/tmp/quickstore-run".into());
        Ok(Self {
            kind,
            run_dir: PathBuf::from(root).join(format!("{}-{name}", kind.dir())),
            address,
        })
    }

    /// Stops the server, keeping its data and ports for [`OwnServer::resume`].
    pub fn stop(&self) -> Result<()> {
        let status = Command::new(script(self.kind, "stop.sh"))
            .arg(&self.run_dir)
            .env("KEEP", "1")
            .status()?;
        ensure!(
            status.success(),
            "deploy/{}/stop.sh failed",
            self.kind.dir()
        );
        Ok(())
    }

    /// Starts it again on the same ports and data.
    pub fn resume(&self) -> Result<()> {
        let out = Command::new(script(self.kind, "start.sh"))
            .arg("--resume")
            .arg(&self.run_dir)
            .output()?;
        ensure!(
            out.status.success(),
            "deploy/{}/start.sh --resume failed:\n{}\n{}",
            self.kind.dir(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new(script(self.kind, "stop.sh"))
            .arg(&self.run_dir)
            .status();
    }
}

fn script(kind: Kind, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(kind.dir())
        .join(name)
}
