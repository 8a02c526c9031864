//! QuickStore's roles as child processes of this binary (`quickstore serve
//! --role …`), as docker-compose.yml and the Helm chart run them: killed
//! with SIGKILL, paused with SIGSTOP, restarted like a supervisor would.
//! Each role keeps its data directory and its listen port across restarts
//! (a pod with its volume and its service address).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

/// The five kinds of QuickStore process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleKind {
    CommandApi,
    CommandProcessor,
    Sagas,
    Projectors,
    QueryApi,
}

impl RoleKind {
    pub const ALL: [RoleKind; 5] = [
        Self::CommandProcessor,
        Self::Sagas,
        Self::Projectors,
        Self::CommandApi,
        Self::QueryApi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CommandApi => "command-api",
            Self::CommandProcessor => "command-processor",
            Self::Sagas => "sagas",
            Self::Projectors => "projectors",
            Self::QueryApi => "query-api",
        }
    }

    /// What the process prints once it serves.
    fn ready_line(self) -> &'static str {
        match self {
            Self::CommandApi => "QuickStore command API at",
            Self::QueryApi => "QuickStore query API at",
            Self::Projectors => "QuickStore projectors running",
            Self::CommandProcessor | Self::Sagas => "QuickStore workers running",
        }
    }
}

/// One role instance and its current incarnation.
#[derive(Debug)]
struct Instance {
    kind: RoleKind,
    name: String,
    args: Vec<String>,
    child: Option<Child>,
    incarnation: u32,
    log: PathBuf,
    /// SIGSTOPped by the harness: not dead, not to be restarted.
    paused: bool,
    /// Killed by the harness, to be restarted by it.
    killed: bool,
    last_start: Instant,
}

/// Every role process of the run.
#[derive(Debug)]
pub struct Cluster {
    exe: PathBuf,
    dir: PathBuf,
    env: Vec<(String, String)>,
    instances: Vec<Instance>,
    /// Exits the harness did not cause (restarted like a supervisor would).
    pub unexpected_exits: Vec<String>,
}

impl Cluster {
    pub fn new(exe: &Path, dir: &Path, env: Vec<(String, String)>) -> Self {
        Self {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            env,
            instances: Vec::new(),
            unexpected_exits: Vec::new(),
        }
    }

    /// A child of this binary with the run's settings and nothing else.
    pub fn command(&self, data_dir: &Path) -> Command {
        let mut command = Command::new(&self.exe);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("QS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.env("QS_DATA_DIR", data_dir).stdin(Stdio::null());
        command
    }

    /// Adds and starts an instance; returns its index.
    pub fn add(&mut self, kind: RoleKind, name: &str, args: Vec<String>) -> Result<usize> {
        self.instances.push(Instance {
            kind,
            name: name.to_owned(),
            args,
            child: None,
            incarnation: 0,
            log: PathBuf::new(),
            paused: false,
            killed: false,
            last_start: Instant::now(),
        });
        let index = self.instances.len() - 1;
        self.spawn(index)?;
        Ok(index)
    }

    fn spawn(&mut self, index: usize) -> Result<()> {
        let data = self.dir.join(&self.instances[index].name);
        std::fs::create_dir_all(&data)?;
        let instance = &self.instances[index];
        let log = self.dir.join(format!(
            "{}.{}.log",
            instance.name,
            instance.incarnation + 1
        ));
        let out = std::fs::File::create(&log)?;
        let child = self
            .command(&data)
            .args(["serve", "--role", instance.kind.name()])
            .args(&instance.args)
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("spawning {}", instance.name))?;
        let instance = &mut self.instances[index];
        instance.child = Some(child);
        instance.incarnation += 1;
        instance.log = log;
        instance.killed = false;
        instance.paused = false;
        instance.last_start = Instant::now();
        Ok(())
    }

    /// The instances of `kind`.
    pub fn of_kind(&self, kind: RoleKind) -> Vec<usize> {
        (0..self.instances.len())
            .filter(|&i| self.instances[i].kind == kind)
            .collect()
    }

    /// The arguments of the next incarnations.
    pub fn set_args(&mut self, index: usize, args: Vec<String>) {
        self.instances[index].args = args;
    }

    pub fn name(&self, index: usize) -> &str {
        &self.instances[index].name
    }

    pub fn log(&self, index: usize) -> &Path {
        &self.instances[index].log
    }

    /// `kill -9`; the harness restarts it with [`Cluster::restart`].
    pub fn kill9(&mut self, index: usize) -> Result<()> {
        let instance = &mut self.instances[index];
        instance.killed = true;
        if let Some(mut child) = instance.child.take() {
            // std's Child::kill is SIGKILL.
            child.kill().context("SIGKILL")?;
            let _ = child.wait();
        }
        Ok(())
    }

    pub fn restart(&mut self, index: usize) -> Result<()> {
        self.spawn(index)
    }

    /// SIGSTOP (`stop = true`) or SIGCONT: a process that is alive but
    /// silent, as a long GC pause or a frozen VM makes it.
    pub fn signal_pause(&mut self, index: usize, stop: bool) -> Result<()> {
        let instance = &mut self.instances[index];
        let Some(child) = &instance.child else {
            bail!("{} is not running", instance.name)
        };
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", instance.name);
        }
        instance.paused = stop;
        Ok(())
    }

    /// Restarts whatever exited without the harness asking (a role that
    /// gave up while the broker was away, say), at most every 2 s each.
    pub fn supervise(&mut self) -> Result<()> {
        for index in 0..self.instances.len() {
            let instance = &mut self.instances[index];
            if instance.killed || instance.paused {
                continue;
            }
            let exited = match &mut instance.child {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                if instance.last_start.elapsed() < Duration::from_secs(2) {
                    continue;
                }
                let tail: String = tail(&instance.log, 3).chars().take(400).collect();
                self.unexpected_exits.push(format!(
                    "{} incarnation {} exited ({status}): {tail}",
                    instance.name, instance.incarnation
                ));
                self.spawn(index)?;
            }
        }
        Ok(())
    }

    /// The log and incarnation to wait on for readiness.
    pub fn ready_probe(&self, index: usize) -> (PathBuf, &'static str) {
        let instance = &self.instances[index];
        (instance.log.clone(), instance.kind.ready_line())
    }

    /// SIGCONT to anything paused.
    pub fn resume_paused(&mut self) {
        for index in 0..self.instances.len() {
            if self.instances[index].paused {
                let _ = self.signal_pause(index, false);
            }
        }
    }

    /// SIGCONT to anything paused, SIGTERM to all, SIGKILL after 30 s.
    pub fn stop_all(&mut self) {
        self.resume_paused();
        for instance in &mut self.instances {
            if let Some(child) = &instance.child {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            if let Some(child) = &mut instance.child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The last `lines` lines of a log, on one line.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Waits until the instance's current incarnation says it serves
/// (bounded); follows a restart by the supervisor.
pub async fn wait_ready(
    cluster: &std::sync::Mutex<Cluster>,
    index: usize,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let (log, line) = match cluster.lock() {
            Ok(c) => c.ready_probe(index),
            Err(_) => bail!("the cluster lock is poisoned"),
        };
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains(line)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not print {line:?} within {} s: {}",
                log.display(),
                timeout.as_secs(),
                tail(&log, 10)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free loopback port, kept by the role across its restarts.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
