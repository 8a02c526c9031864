//! Graceful shutdown on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends).
//!
//! The handlers are installed when [`ShutdownSignal::install`] is called —
//! at the start of a command, not when it starts waiting — so a signal that
//! arrives during start-up is not lost (and does not kill the process
//! before it could leave its consumer group cleanly).

use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Debug)]
pub struct ShutdownSignal {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignal {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves at the first SIGINT or SIGTERM (also one received earlier).
    pub async fn received(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
