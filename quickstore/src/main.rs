//! `quickstore` — a thin `main` over the library: parse, set up telemetry,
//! run, and turn an error into a message and an exit code.

use clap::Parser;

/// mimalloc: per-record encode/decode makes many short-lived allocations;
/// glibc malloc was a third of the processor's profile (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = quickstore::cli::Cli::parse();
    let _telemetry = quickstore::telemetry::init(cli.verbose, cli.config.as_deref());
    match quickstore::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
