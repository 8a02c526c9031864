//! # quickstore — the one CLI
//!
//! - [`cli`] — the command line (clap): every subcommand and flag.
//! - [`system`] — builds the event log, registry and codec from
//!   [`platform::config::Settings`] (defaults < `--config` file < `QS_*`).
//! - [`dev`] — `quickstore dev`: the embedded system in one process, with
//!   a demo shop.
//! - [`serve`] — `quickstore serve [--role …]`: any mix of the five
//!   roles (command API, command processors, sagas, projectors, query API)
//!   on the configured log and read store.
//! - [`write_side`] — starts and stops the command API, processors, saga.
//! - [`seed`] — demo users, products and stock.
//! - [`registry`] — `quickstore registry serve`: the embedded schema
//!   registry over the Confluent REST API, so standard tools can decode.
//! - [`register`] — `quickstore registry register`: the contract's
//!   schemas into a Confluent registry (a deployment's init job).
//! - [`probe`] — `quickstore probe URL`: a container health check.
//! - [`topics`] — `quickstore topics`: what the log holds; `topics apply`:
//!   every topic with its spec, drift reported.
//! - [`status`] — `quickstore status`: groups, lag, dead letters, sagas.
//! - [`export`] — `quickstore events export`: decoded events for analysts.
//! - [`projections_cmd`] — `quickstore projections run|status|rebuild`:
//!   the read side's projectors.
//! - [`dlq_cmd`] — `quickstore dlq list|retry`: the projectors' dead
//!   letters.
//! - [`customers_cmd`] — `quickstore customers forget|key`: erasing a
//!   customer's personal data by deleting their data key (ADR 0014).
//! - [`audit`] — `quickstore audit verify|stream`: hash chains checked,
//!   an aggregate's history and its state at a past moment.
//! - [`check`] — `quickstore check`: the invariant checker (commands and
//!   outcomes, event ids, chains, sagas, stock, money, read models).
//! - [`bench`] — `quickstore bench …`: throughput against raw baselines
//!   measured in the same run.
//! - [`shutdown`] — SIGINT/SIGTERM, installed before start-up work.
//! - [`telemetry`] — tracing setup: logs, spans, OTLP export.
//! - [`probes`] — what `/readyz` checks per role; the ops listener
//!   (`QS_OPS_LISTEN`).

pub mod audit;
pub mod bench;
pub mod chaos;
pub mod check;
pub mod cli;
pub mod customers_cmd;
pub mod dev;
pub mod dlq_cmd;
pub mod export;
pub mod probe;
pub mod probes;
pub mod projections_cmd;
pub mod query_cmd;
pub mod read_side;
pub mod register;
pub mod registry;
pub mod schema;
pub mod seed;
pub mod serve;
pub mod shutdown;
pub mod status;
pub mod system;
pub mod telemetry;
pub mod topics;
pub mod write_side;

use cli::{
    BenchCommand, Cli, Command, CustomersCommand, DlqCommand, EventsCommand, ProjectionsCommand,
    RegistryCommand, SchemaCommand, TopicsCommand,
};

/// Runs one CLI invocation.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = platform::config::Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Dev(args) => dev::run(settings, args).await,
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Chaos(args) => chaos::run(args).await,
        Command::Topics { command: None } => topics::run(settings).await,
        Command::Topics {
            command: Some(TopicsCommand::Apply(args)),
        } => topics::apply(settings, args).await,
        Command::Status(args) => status::run(settings, args).await,
        Command::Events {
            command: EventsCommand::Export(args),
        } => export::run(settings, args).await,
        Command::Projections { command } => match command {
            ProjectionsCommand::Run(args) => projections_cmd::run(settings, args).await,
            ProjectionsCommand::Status => projections_cmd::status(settings).await,
            ProjectionsCommand::Rebuild(args) => projections_cmd::rebuild(settings, args).await,
        },
        Command::QueryApi(args) => query_cmd::run(settings, args).await,
        Command::Schema { command } => match command {
            SchemaCommand::Apply => schema::apply(&settings).await,
        },
        Command::Dlq { command } => match command {
            DlqCommand::List(args) => dlq_cmd::list(settings, args).await,
            DlqCommand::Retry(args) => dlq_cmd::retry(settings, args).await,
        },
        Command::Registry {
            command: RegistryCommand::Serve(args),
        } => registry::serve(settings, args).await,
        Command::Registry {
            command: RegistryCommand::Register,
        } => register::run(settings).await,
        Command::Customers { command } => match command {
            CustomersCommand::Forget(args) => customers_cmd::forget(settings, args).await,
            CustomersCommand::Key(args) => customers_cmd::key(settings, args).await,
        },
        Command::Probe(args) => probe::run(args).await,
        Command::Audit { command } => audit::run(settings, command).await,
        Command::Check(args) => check::run(settings, args).await,
        Command::Bench { command, all } => match command {
            None => bench::all::run(settings, all).await,
            Some(BenchCommand::All(args)) => bench::all::run(settings, args).await,
            Some(BenchCommand::Log(args)) => bench::log::run(settings, args).await,
            Some(BenchCommand::Orders(args)) => bench::orders::run(settings, args).await,
            Some(BenchCommand::Projections(args)) => bench::projections::run(settings, args).await,
            Some(BenchCommand::Memory(args)) => bench::memory::run(args).await,
            Some(BenchCommand::MemoryChild(args)) => bench::memory::run_child(settings, args).await,
        },
    }
}
