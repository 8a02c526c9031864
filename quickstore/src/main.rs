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
    quickstore::telemetry::init(cli.verbose);
    match quickstore::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `quickstore audit` has exit codes of its own (1 findings, 2
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
