//! `quickstore` — a thin `main` over the library: parse, set up telemetry,
//! run, and turn an error into a message and an exit code.

use clap::Parser;

/// mimalloc: per-record encode/decode makes many short-lived allocations;
/// glibc malloc was a third of the processor's profile (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit_quietly_when_stdout_closes();
    let cli = quickstore::cli::Cli::parse();
    let _telemetry = quickstore::telemetry::init(cli.verbose, cli.config.as_deref());
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
