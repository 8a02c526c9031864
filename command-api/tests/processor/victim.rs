//! The instance that gets killed. On Kafka it is a real child process
//! (this test binary re-executed) and dies by SIGKILL: no destructor, no
//! group leave, an open transaction left behind. The embedded log lives in
//! one process, so there the victim is a task that is dropped mid-batch —
//! its member is never closed and its transaction never committed.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use platform::testing::TestAdapter;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::fixture::{Fixture, FixtureSpec};

pub const CHILD_ENV: &str = "QS_PROCESSOR_CHILD";

pub enum Victim {
    Process(tokio::process::Child),
    Task {
        /// The processor's own task: aborting it drops the processor mid-await.
        handle: tokio::task::JoinHandle<
            Result<command_api::processor::ProcessorStats, command_api::processor::ProcessorError>,
        >,
        /// Kept so the processor never sees a shutdown request.
        _stop: tokio::sync::watch::Sender<bool>,
    },
}

pub async fn start(f: &Fixture, adapter: TestAdapter) -> Result<Victim> {
    match adapter {
        TestAdapter::Kafka => {
            let mut child = tokio::process::Command::new(std::env::current_exe()?)
                .env(CHILD_ENV, serde_json::to_string(&f.spec)?)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().context("child stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let started = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
            match started {
                Ok(Ok(Some(line))) if line.trim() == "started" => Ok(Victim::Process(child)),
                other => bail!("victim process did not start: {other:?}"),
            }
        }
        TestAdapter::Embedded => {
            let (stop, handle) = f.spawn_processor(f.processor_config("victim"));
            Ok(Victim::Task {
                handle,
                _stop: stop,
            })
        }
    }
}

impl Victim {
    pub async fn kill(self) -> Result<()> {
        match self {
            Victim::Process(mut child) => {
                child.start_kill()?; // SIGKILL
                child.wait().await?;
            }
            Victim::Task { handle, _stop } => {
                // Aborting drops the processor future at its current await:
                // like a crash, nothing after it runs — no commit, no leave.
                handle.abort();
                let aborted = handle.await;
                if !aborted.as_ref().is_err_and(|e| e.is_cancelled()) {
                    bail!("the victim had already stopped before the kill: {aborted:?}");
                }
            }
        }
        Ok(())
    }
}

/// The child process: run a processor until killed.
pub fn child_main(spec_json: &str) -> Result<()> {
    let spec: FixtureSpec = serde_json::from_str(spec_json)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let f = Fixture::open(spec).await?;
        let (_stop, handle) = f.spawn_processor(f.processor_config("victim"));
        println!("started");
        handle.await??;
        Ok(())
    })
}
