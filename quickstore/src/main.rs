//! `quickstore` — a thin `main` over the library: parse, set up telemetry,
//! run, and turn an error into a message and an exit code.

use clap::Parser;

/// mimalloc: per-record encode/decode makes many short-lived allocations;
/// glibc malloc was a third of the processor's profile (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let huge_pages = no_transparent_huge_pages();
    exit_quietly_when_stdout_closes();
    let cli = quickstore::cli::Cli::parse();
    let _telemetry = quickstore::telemetry::init(cli.verbose, cli.config.as_deref());
    if let Err(e) = huge_pages {
        tracing::debug!(error = %e, "transparent huge pages stay as the kernel has them");
    }
    match quickstore::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `quickstore audit` and `check` have exit codes of their own (1 findings, 2
            // could not run); its report may already have said everything.
            if let Some(exit) = e.downcast_ref::<quickstore::audit::AuditExit>() {
                if !exit.message.is_empty() {
                    eprintln!("error: {}", exit.message);
                }
                return std::process::ExitCode::from(exit.code);
            }
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// No transparent huge pages for this process (ADR 0025). mimalloc asks
/// the kernel for huge pages on its arenas (`madvise(MADV_HUGEPAGE)`), so
/// the first touch of each fresh 2 MiB region faults in a whole zeroed huge
/// page, although mimalloc spreads its size classes thinly over it: the
/// kernel's page zeroing was 30 % of the embedded projector's CPU, and
/// without it orders completed 1.2–1.7× faster on the same machine. The
/// flag belongs to the whole process (every thread, already and later
/// spawned) and its children (`bench` measures in child processes).
#[cfg(target_os = "linux")]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn no_transparent_huge_pages() -> std::io::Result<()> {
    Ok(())
}

/// `quickstore status | head`: once the reader has gone, `println!` fails
/// with EPIPE and panics. Rust ignores SIGPIPE (and the crate forbids the
/// `unsafe` to restore it), so end the way a Unix tool killed by SIGPIPE
/// does — silently, status 141 — instead of printing a panic.
fn exit_quietly_when_stdout_closes() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
