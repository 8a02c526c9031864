//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// QuickStore: an event-sourced commerce backend on Kafka.
///
/// Settings come from defaults, then `--config FILE` (TOML), then `QS_*`
/// environment variables (e.g. QS_EVENT_LOG=kafka QS_KAFKA_BOOTSTRAP=host:port).
#[derive(Debug, Parser)]
#[command(name = "quickstore", version)]
pub struct Cli {
    /// A TOML file with settings (overridden by QS_* variables).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs QuickStore in one process on the embedded log (data in QS_DATA_DIR).
    Dev(DevArgs),
    /// Lists the topics of the configured event log with their end offsets.
    Topics,
    /// The embedded schema registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Benchmarks, each against a raw baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Demo commands to run through the command processor on first start.
    #[arg(long, default_value_t = 100)]
    pub demo_commands: u32,
    /// Exit after the demo instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serves the embedded registry over the Confluent Schema Registry REST API.
    Serve(RegistryServeArgs),
}

#[derive(Debug, Args)]
pub struct RegistryServeArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Write the base URL here once listening (for scripts).
    #[arg(long)]
    pub url_file: Option<PathBuf>,
    /// Keep schemas in memory only (default: persisted under QS_DATA_DIR).
    #[arg(long)]
    pub in_memory: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Command append throughput vs a raw rdkafka transactional produce loop.
    Log(BenchLogArgs),
}

#[derive(Debug, Args)]
pub struct BenchLogArgs {
    /// Seconds, not minutes: checks the report is complete and sane.
    #[arg(long)]
    pub quick: bool,
    /// Commands (and baseline records) per measurement.
    #[arg(long)]
    pub records: Option<u64>,
    /// Records per transaction, for both the baseline and the processor.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Distinct aggregates the commands are spread over.
    #[arg(long, default_value_t = 1000)]
    pub aggregates: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}
