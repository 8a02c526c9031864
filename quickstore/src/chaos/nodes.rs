//! The harness's own servers: a Kafka broker and a CQL node started through
//! `deploy/{kafka,cql}/start.sh` (so the harness can stop and resume them
//! under load), and a schema registry child. Everything binds loopback.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use tokio::process::{Child, Command};

/// Where `deploy/` is: `--deploy-dir`/`QS_DEPLOY_DIR`, else found upwards
/// from the binary (target/debug/quickstore) or the working directory.
pub fn find_deploy_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        ensure!(
            dir.join("kafka/start.sh").is_file(),
            "{} has no kafka/start.sh: pass the repository's deploy/ directory to --deploy-dir",
            dir.display()
        );
        return Ok(dir.to_path_buf());
    }
    let mut starts = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    for start in starts {
        for dir in start.ancestors() {
            let deploy = dir.join("deploy");
            if deploy.join("kafka/start.sh").is_file() && deploy.join("cql/start.sh").is_file() {
                return Ok(deploy);
            }
        }
    }
    bail!(
        "could not find the repository's deploy/ directory (with kafka/start.sh and cql/start.sh): \
         run from the repository or pass --deploy-dir DIR (or QS_DEPLOY_DIR)"
    )
}

/// Refuses anything but loopback: the harness kills processes and stops
/// servers, so it must never be pointed at a shared or production system.
pub fn ensure_loopback(what: &str, addresses: &str) -> Result<()> {
    for address in addresses.split(',').map(str::trim) {
        let host = address
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let host = host.split('/').next().unwrap_or_default();
        let host = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        ensure!(
            loopback,
            "{what} {address:?} is not a loopback address: quickstore chaos only runs against \
             servers on this machine (127.0.0.1)"
        );
    }
    Ok(())
}

pub fn run_root() -> PathBuf {
    std::env::var_os("QS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/quickstore-run"))
}

/// `kafka` or `cql`: which deploy scripts, and what their env file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Kafka,
    Cql,
}

impl ServerKind {
    /// Its folder under `deploy/` (and the prefix of its run dirs).
    pub fn dir(self) -> &'static str {
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
    fn pid_file(self) -> &'static str {
        match self {
            Self::Kafka => "kafka.pid",
            Self::Cql => "cassandra.pid",
        }
    }
}

/// A broker or CQL node of this run.
#[derive(Debug)]
pub struct Server {
    kind: ServerKind,
    deploy: PathBuf,
    run_dir: PathBuf,
    pub address: String,
    /// Started here (so removed at the end), not found running.
    owned: bool,
}

impl Server {
    /// The server named `name`: the running one if its run dir has a live
    /// pid, else a new one.
    pub async fn start_or_reuse(deploy: &Path, kind: ServerKind, name: &str) -> Result<Self> {
        let run_dir = run_root().join(format!("{}-{name}", kind.dir()));
        if let Some(address) = running_address(kind, &run_dir).await {
            ensure_loopback(kind.dir(), &address)?;
            return Ok(Self {
                kind,
                deploy: deploy.to_path_buf(),
                run_dir,
                address,
                owned: false,
            });
        }
        let script = deploy.join(kind.dir()).join("start.sh");
        let out = Command::new(&script)
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| {
                format!(
                    "running {} (needs Java 17+ and the cached jars: see deploy/README.md)",
                    script.display()
                )
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "{} {name} failed:\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let address = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(kind.address_var()))
            .with_context(|| format!("{} printed no {}", script.display(), kind.address_var()))?
            .to_owned();
        ensure_loopback(kind.dir(), &address)?;
        Ok(Self {
            kind,
            deploy: deploy.to_path_buf(),
            run_dir,
            address,
            owned: true,
        })
    }

    /// Whether this run started it (and so may stop it).
    pub fn owned(&self) -> bool {
        self.owned
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Stops it, keeping its data and ports for [`Server::resume`].
    pub async fn stop_keeping_data(&self) -> Result<()> {
        let status = Command::new(self.deploy.join(self.kind.dir()).join("stop.sh"))
            .arg(&self.run_dir)
            .env("KEEP", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await?;
        ensure!(status.success(), "{}/stop.sh failed", self.kind.dir());
        Ok(())
    }

    /// Starts it again on the same ports and data.
    pub async fn resume(&self) -> Result<()> {
        let out = Command::new(self.deploy.join(self.kind.dir()).join("start.sh"))
            .arg("--resume")
            .arg(&self.run_dir)
            .stdin(Stdio::null())
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "{}/start.sh --resume failed:\n{}\n{}",
            self.kind.dir(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Stops and removes it if this run started it; a server that was
    /// found running is left running.
    pub async fn finish(&self) {
        if !self.owned {
            return;
        }
        let _ = Command::new(self.deploy.join(self.kind.dir()).join("stop.sh"))
            .arg(&self.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .await;
    }
}

async fn running_address(kind: ServerKind, run_dir: &Path) -> Option<String> {
    let pid = std::fs::read_to_string(run_dir.join(kind.pid_file())).ok()?;
    let alive = Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(Stdio::null())
        .status()
        .await
        .ok()?
        .success();
    if !alive {
        return None;
    }
    let env = std::fs::read_to_string(run_dir.join("env")).ok()?;
    env.lines()
        .find_map(|l| l.strip_prefix(kind.address_var()))
        .map(str::to_owned)
}

/// `quickstore registry serve --in-memory` on a free loopback port.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    pub url: String,
}

impl Registry {
    pub async fn start(exe: &Path, dir: &Path) -> Result<Self> {
        let url_file = dir.join("registry.url");
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut command = Command::new(exe);
        clear_qs_env(&mut command);
        let mut child = command
            .args([
                "registry",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--in-memory",
            ])
            .arg("--url-file")
            .arg(&url_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawning quickstore registry serve")?;
        for _ in 0..600 {
            if let Ok(url) = std::fs::read_to_string(&url_file) {
                let url = url.trim().to_owned();
                ensure_loopback("schema registry", &url)?;
                return Ok(Self { child, url });
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the schema registry exited ({status}); see {}",
                    dir.join("registry.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the schema registry did not start within 60 s")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Children must not inherit the caller's servers (a shell with the shared
/// test broker's QS_KAFKA_BOOTSTRAP, say): only what the harness sets.
pub fn clear_qs_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("QS_") {
            command.env_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ensure_loopback;

    #[test]
    fn only_loopback_addresses_pass() {
        for ok in [
            "127.0.0.1:9092",
            "localhost:9042",
            "127.0.0.1:1,127.0.0.2:2",
            "http://127.0.0.1:8081",
            "[::1]:9092",
        ] {
            assert!(ensure_loopback("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1:9092",
            "kafka:9092",
            "127.0.0.1:9092,broker.prod:9092",
            "http://example.com",
        ] {
            assert!(ensure_loopback("x", bad).is_err(), "{bad}");
        }
    }
}
