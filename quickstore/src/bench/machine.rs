//! What the report was measured on: the machine, the build and the
//! servers' versions — so a figure is never read without its context.

use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: Option<String>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// `rustc --version` on this machine (the toolchain that built it, when
    /// run from the source tree).
    pub rustc: Option<String>,
    pub quickstore_version: String,
    /// `git rev-parse HEAD` of the working directory, `+dirty` if changed.
    pub git_commit: Option<String>,
    /// `release` or `debug`: a debug build's figures mean nothing.
    pub build: String,
    pub load_average_at_start: Option<String>,
    /// The broker's version (from its jar on this machine's running broker
    /// process, or QS_KAFKA_VERSION); `None` when unknown.
    pub kafka_version: Option<String>,
    /// `SELECT release_version FROM system.local` on the CQL node.
    pub cql_version: Option<String>,
}

impl Machine {
    pub fn probe() -> Self {
        Self {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            }),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned()),
            rustc: output("rustc", &["--version"]),
            quickstore_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: output("git", &["rev-parse", "HEAD"]).map(|head| {
                let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
                    .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{head}+dirty")
                } else {
                    head
                }
            }),
            build: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            load_average_at_start: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
            kafka_version: std::env::var("QS_KAFKA_VERSION")
                .ok()
                .or_else(kafka_version_of_local_broker),
            cql_version: None,
        }
    }
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The version in `kafka_2.13-<version>.jar` on the class path of a broker
/// process on this machine (the benchmark's broker is local by design).
fn kafka_version_of_local_broker() -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !cmdline.contains("kafka.Kafka") {
            continue;
        }
        // The jar (`kafka_2.13-4.3.1.jar`) or the cached install's folder
        // (`…/kafka-4.3.1/libs/*`) names the version.
        for (marker, end) in [("kafka_2.13-", ".jar"), ("/kafka-", "/")] {
            for (at, _) in cmdline.match_indices(marker) {
                let rest = &cmdline[at + marker.len()..];
                if let Some(stop) = rest.find(end) {
                    let version = &rest[..stop];
                    if version.starts_with(|c: char| c.is_ascii_digit()) {
                        return Some(version.to_owned());
                    }
                }
            }
        }
    }
    None
}
