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
    /// Runs QuickStore in one process on the embedded log (data in
    /// QS_DATA_DIR) with a demo shop, and prints where to go next.
    Dev(DevArgs),
    /// Runs QuickStore's services on the configured event log and read store
    /// until SIGTERM/Ctrl-C: by default the write side (command API, command
    /// processors, saga); `--role` picks parts, one process per role in
    /// production (docker-compose.yml, deploy/helm).
    Serve(ServeArgs),
    /// Lists the topics of the configured event log with their end offsets;
    /// `topics apply` creates or checks every topic QuickStore uses.
    Topics {
        #[command(subcommand)]
        command: Option<TopicsCommand>,
    },
    /// Every QuickStore consumer group with its state, members and lag per
    /// partition, dead letters per projection, the saga backlog (the names
    /// are the ones kafka-consumer-groups.sh shows).
    Status(StatusArgs),
    /// The event topics for analysts: export decoded events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The read side's projectors: run them, see their lag, rebuild a
    /// projection into a new table generation.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Serves the query API (reads of every read model, live order status,
    /// read-your-writes) from the configured read store (QS_READ_STORE)
    /// until SIGTERM/Ctrl-C. Run the projectors beside it
    /// (`quickstore projections run`).
    QueryApi(QueryApiArgs),
    /// The read store's schema: the versioned CQL files of deploy/cql/schema.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Dead letters of the projectors: list them, retry them.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Customers' personal data: forget a customer (crypto-shredding, see
    /// docs/privacy.md), or see whether they have a data key.
    Customers {
        #[command(subcommand)]
        command: CustomersCommand,
    },
    /// Exits 0 if URL answers 2xx (a container health check without curl).
    Probe(ProbeArgs),
    /// The embedded schema registry.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// The auditor's tools: check every hash chain in the log, read an
    /// aggregate's history and its state at a past moment (docs/audit.md).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Checks the system's invariants over the whole log and the read
    /// models: every command has exactly one outcome, no duplicate event
    /// id, versions 1..n with an intact hash chain, every saga terminal or
    /// within its deadline, stock and money conserved, every read-model row
    /// the fold of its events (docs/operations.md, "Checking invariants").
    /// Run it on a quiet system. Exit code 0: every invariant holds, 1:
    /// findings, 2: could not run.
    Check(CheckArgs),
    /// The fault harness (loopback only): its own broker, CQL node and five
    /// role processes under a mixed load, while it kills (-9) and restarts
    /// each role, restarts the broker, stops the CQL node and pauses a saga
    /// worker past its session timeout; then quiescence and the checker.
    /// Exit code 0: clean, 1: findings, 2: could not run (docs/chaos.md).
    Chaos(crate::chaos::ChaosArgs),
    /// Benchmarks, each against a raw baseline measured in the same run.
    /// Without a subcommand: the whole system in one run (= `bench all`).
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        all: BenchAllArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Scans the event topics from start to end (read_committed) and checks
    /// every aggregate's chain: versions 1..n without gap or repeat, each
    /// prev_hash the previous hash, each hash recomputed, event ids unique,
    /// keys and partitions right, every record decodable. Exit code 0:
    /// clean, 1: findings, 2: could not run.
    Verify(AuditVerifyArgs),
    /// One aggregate's history in order (who, when, why, where in the log),
    /// its chain checked; with --as-of, its state at that moment. Exit
    /// code 0: shown and intact, 1: no such aggregate or chain findings,
    /// 2: could not run.
    Stream(AuditStreamArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also write the report as JSON here ({"ok": bool, "invariants":
    /// [{"name", "ok", "checked", "findings": [...]}]}).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The moment saga deadlines are judged against: RFC 3339 or
    /// milliseconds since the epoch (default: now).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// An open saga with no deadline of its own (in transit) whose last
    /// step is older than this is stuck, e.g. 1h (default: only the sagas'
    /// own deadlines are checked).
    #[arg(long, value_name = "DUR")]
    pub saga_timeout: Option<String>,
    /// First wait until no topic has grown for this long (e.g. 5s).
    #[arg(long, value_name = "DUR")]
    pub settle: Option<String>,
    /// Read-model rows that differ are compared again, with the events
    /// appended since the scan folded in, for up to this long before they
    /// count as findings: on a system still moving (a saga deadline firing
    /// during the check) the projector may have applied events the scan did
    /// not read (default 30s; 0s: no second look).
    #[arg(long, value_name = "DUR")]
    pub follow: Option<String>,
    /// Do not compare the read models (no read store needed).
    #[arg(long)]
    pub skip_read_models: bool,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Only this topic (repeatable; with or without QS_TOPIC_PREFIX).
    /// Default: every chained event topic — `<context>.events` and
    /// `sagas.order-fulfillment.events`.
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Print the report as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditStreamArgs {
    /// Product, StockItem, Cart, Order, Payment, Shipment, Customer or
    /// OrderFulfillment.
    #[arg(value_name = "TYPE")]
    pub aggregate_type: String,
    /// The aggregate id (the record key).
    #[arg(value_name = "ID")]
    pub aggregate_id: String,
    /// Also print the state as of this moment: RFC 3339
    /// (2026-11-22T07:30:00Z) or milliseconds since the epoch.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to find the events: `index` (the audit index read model names
    /// their offsets), `log` (scan the aggregate's partition) or `auto`
    /// (the index when a read store is configured, else the log).
    #[arg(long, default_value = "auto", value_name = "SOURCE")]
    pub source: String,
}

#[derive(Debug, Args)]
pub struct QueryApiArgs {
    /// Where the query API listens (default: QS_QUERY_API_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// Write the query API's URL to this file once it serves.
    #[arg(long)]
    pub url_file: Option<PathBuf>,
    /// The command API's JWKS, whose keys verify access tokens (default:
    /// http://<QS_COMMAND_API_LISTEN>/.well-known/jwks.json).
    #[arg(long)]
    pub jwks_url: Option<String>,
    /// Also run the projectors in this process (one process for the whole
    /// read side).
    #[arg(long)]
    pub with_projectors: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Creates the keyspace and tables (QS_READ_STORE=cql: every file of
    /// deploy/cql/schema not yet applied, recorded with its checksum;
    /// embedded: the same tables). Safe to run again.
    Apply,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Set up, create the demo shop, print where to go, then exit (for
    /// scripts and tests) instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// Where the command API listens (default: QS_COMMAND_API_LISTEN,
    /// 127.0.0.1:8080; a busy port falls back to a free one).
    #[arg(long)]
    pub listen: Option<String>,
    /// Run a simulated courier fleet that assigns, picks up and delivers
    /// every shipment, so orders complete on their own.
    #[arg(long)]
    pub auto_deliver: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A part of QuickStore to run in this process; repeat for several.
    /// Default: command-api, command-processor and sagas (the write side).
    #[arg(long = "role", value_enum, value_name = "ROLE")]
    pub roles: Vec<ServiceRole>,
    /// Where the command API listens (default: QS_COMMAND_API_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// Where the query API listens (default: QS_QUERY_API_LISTEN).
    #[arg(long)]
    pub query_listen: Option<String>,
    /// The command API's JWKS, whose keys the query API verifies tokens
    /// with (default: http://<QS_COMMAND_API_LISTEN>/.well-known/jwks.json).
    #[arg(long)]
    pub jwks_url: Option<String>,
    /// Write the command API's URL to this file once it serves.
    #[arg(long)]
    pub url_file: Option<PathBuf>,
    /// Run a simulated courier fleet of this many couriers (demos,
    /// benchmarks, fault tests).
    #[arg(long, default_value_t = 0)]
    pub simulated_couriers: u32,
    /// Distinguishes this process's transactional ids from other
    /// instances' on the same broker (e.g. the pod ordinal).
    #[arg(long, default_value = "0")]
    pub instance: String,
    /// Create the demo shop (users, products, stock) if it does not exist.
    #[arg(long)]
    pub seed_demo: bool,
}

/// A part of QuickStore that `serve` can run; each is one Deployment in the
/// Helm chart. They meet only through the event log and the read store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceRole {
    /// The HTTP command API (auth, commands, outcomes).
    CommandApi,
    /// The six command processors (single writers of the aggregates).
    CommandProcessor,
    /// The order-fulfillment saga worker.
    Sagas,
    /// Every projection's projector.
    Projectors,
    /// The HTTP query API.
    QueryApi,
}

impl ServiceRole {
    /// The write side: what `serve` runs without `--role`.
    pub const DEFAULT: [ServiceRole; 3] = [
        ServiceRole::CommandApi,
        ServiceRole::CommandProcessor,
        ServiceRole::Sagas,
    ];
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serves the embedded registry over the Confluent Schema Registry REST API.
    Serve(RegistryServeArgs),
    /// Registers every schema of the contract with QS_SCHEMA_REGISTRY_URL
    /// (a deployment's init job); safe to run again.
    Register,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET, e.g. http://127.0.0.1:8080/readyz.
    pub url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub timeout_ms: u64,
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
    /// The whole system in one run, on the real servers and the embedded
    /// twins: command append, orders at stepped open-loop rates (the
    /// knee), place-order and end-to-end latency, projector, rebuild and
    /// query figures, each beside its raw baseline; writes report.json,
    /// report.md and SVG plots into --out (docs/performance.md).
    All(BenchAllArgs),
    /// Orders driven to completion per second through the HTTP API, with
    /// place-order latency, beside raw produce-ack and HTTP no-op baselines.
    Orders(BenchOrdersArgs),
    /// Command append throughput vs a raw rdkafka transactional produce loop.
    Log(BenchLogArgs),
    /// The read side: the orders projector's rows/s vs a raw insert loop,
    /// and `GET /orders/{id}` latency at a fixed rate vs a raw select by
    /// key, on the same store.
    Projections(BenchProjectionsArgs),
    /// Each role's resident memory (RSS) at 10k and 1M aggregates (command
    /// processor, projectors, saga worker, command API, query API; each
    /// point a child process): flat or linear, and why (ADR 0023).
    Memory(BenchMemoryArgs),
    /// One point of `bench memory`, in a process of its own (internal).
    #[command(hide = true)]
    MemoryChild(BenchMemoryChildArgs),
}

#[derive(Debug, Args)]
pub struct BenchMemoryArgs {
    /// 1,000 and 10,000 aggregates instead of 10,000 and 1,000,000.
    #[arg(long)]
    pub quick: bool,
    /// `kafka` (needs QS_KAFKA_BOOTSTRAP) or `embedded`.
    #[arg(long, default_value = "kafka")]
    pub backend: String,
    /// Comma-separated numbers of aggregates, smallest first (overrides
    /// the defaults), e.g. `10000,100000,1000000`.
    #[arg(long)]
    pub sizes: Option<String>,
    /// The processor's cache (QS_PROCESSOR_CACHE_AGGREGATES; default 10000).
    #[arg(long)]
    pub cache: Option<usize>,
    /// Commands per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Partitions of the topics each child creates.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// `all`, or a comma-separated list of `processor`, `projectors`,
    /// `sagas`, `command-api`, `query-api`.
    #[arg(long, default_value = "all")]
    pub roles: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchMemoryChildArgs {
    /// One of `memory_roles::ROLES`.
    #[arg(long, default_value = "command-processor")]
    pub role: String,
    #[arg(long)]
    pub backend: String,
    #[arg(long)]
    pub aggregates: u64,
    #[arg(long)]
    pub cache: usize,
    #[arg(long)]
    pub batch: usize,
    #[arg(long)]
    pub partitions: i32,
    /// Scratch directory (embedded log, processor state).
    #[arg(long)]
    pub dir: PathBuf,
    /// Where to write the point as JSON.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BenchAllArgs {
    /// Seconds, not minutes: checks the report is complete and sane (what
    /// the test suite runs); its figures mean nothing.
    #[arg(long)]
    pub quick: bool,
    /// `kafka` (the real broker and CQL node: QS_KAFKA_BOOTSTRAP and
    /// QS_CQL_CONTACT_POINTS), `embedded` (the embedded twins, no servers)
    /// or `both` (the default).
    #[arg(long)]
    pub target: Option<String>,
    /// The folder for report.json, report.md and the plots (default
    /// bench-report/<UTC timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Leave out the memory section (minutes at 1M aggregates in full
    /// mode), e.g. to re-measure throughput; `bench memory` measures it
    /// alone.
    #[arg(long)]
    pub skip_memory: bool,
}

#[derive(Debug, Args)]
pub struct BenchProjectionsArgs {
    /// Seconds, not minutes: checks the report is complete and sane.
    #[arg(long)]
    pub quick: bool,
    /// `embedded` (embedded log and read store), `cql` (real Kafka and CQL
    /// node: needs QS_KAFKA_BOOTSTRAP and QS_CQL_CONTACT_POINTS) or `both`.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// OrderPlaced events to project (default 200000; 2000 with --quick).
    #[arg(long)]
    pub events: Option<usize>,
    /// Reads per second of the open-loop query load (default 5000; 200
    /// with --quick).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of query load, for the API and the raw read each (default
    /// 10; 2 with --quick).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
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
    /// `kafka` (the real broker: QS_KAFKA_BOOTSTRAP) or `embedded` (the
    /// embedded log in a temporary directory, no server).
    #[arg(long, default_value = "kafka")]
    pub backend: String,
}

#[derive(Debug, Args)]
pub struct BenchOrdersArgs {
    /// Seconds, not minutes: what the test command runs.
    #[arg(long)]
    pub quick: bool,
    /// `embedded`, `kafka` (needs QS_KAFKA_BOOTSTRAP) or `both`.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// Orders to measure (default 20000; 300 with --quick).
    #[arg(long)]
    pub orders: Option<usize>,
    /// Concurrent clients (default 64; 16 with --quick).
    #[arg(long)]
    pub clients: Option<usize>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Runs the projectors (every projection, or --only some) on their
    /// serving table generations until SIGTERM/Ctrl-C; follows a rebuild's
    /// switch on its own. Logs the status periodically (with -v).
    Run(ProjectionsRunArgs),
    /// Per projection: serving generation, consumer group, lag (from the
    /// group's committed offsets, so it works beside a running service),
    /// parked keys and pending dead letters.
    Status,
    /// Rebuilds a projection from offset 0 into a new table generation
    /// while the current one keeps serving, switches readers to it once it
    /// has caught up, then drops the old generation.
    Rebuild(ProjectionsRebuildArgs),
}

#[derive(Debug, Args)]
pub struct ProjectionsRunArgs {
    /// Run only these projections (repeatable; default: all).
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProjectionsRebuildArgs {
    /// The projection to rebuild (`quickstore projections status` lists them).
    pub name: String,
    /// Keep the old generation's tables after the switch.
    #[arg(long)]
    pub keep_old: bool,
    /// Seconds between the switch and dropping the old tables (longer
    /// than the readers' refresh of the serving generation). At least 5:
    /// smaller values are raised to 5, so readers still on the old
    /// generation are not left without tables.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub drop_after: u64,
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Deletes the customer's data key from the key store on the configured
    /// read store: their personal fields in the log, the read models and
    /// backups read `[erased]` from then on; the log is not rewritten
    /// (every hash still verifies) and new personal data for them is refused.
    Forget(CustomerIdArgs),
    /// Whether the customer has a data key (active, forgotten, or none).
    Key(CustomerIdArgs),
}

#[derive(Debug, Args)]
pub struct CustomerIdArgs {
    /// The customer id (what registration returned as `customer_id`).
    pub customer_id: String,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Pending dead letters (of one projection, or of all).
    List(DlqListArgs),
    /// Asks the projection's projector to retry its dead letters (after the
    /// cause is fixed) and waits for its acknowledgement; prints what came
    /// back and what was dead-lettered again. On Kafka with a CQL store the
    /// running `quickstore projections run` does the retry. With the
    /// embedded log and store (QS_EVENT_LOG=embedded, QS_READ_STORE=embedded)
    /// no other process can hold the data directory, so this command runs
    /// the projection's projector itself while it waits.
    Retry(DlqRetryArgs),
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Only this projection's dead letters.
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct DlqRetryArgs {
    /// The projection whose dead letters to retry.
    pub name: String,
    /// Seconds to wait for the projector's acknowledgement.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Creates every topic QuickStore uses that is missing (partitions,
    /// retention, compaction, replication factor and min.insync.replicas from
    /// the settings) and reports how existing topics differ from their spec,
    /// with the command that fixes each difference. Exit code 1 on drift;
    /// nothing existing is changed.
    Apply(TopicsApplyArgs),
}

#[derive(Debug, Args)]
pub struct TopicsApplyArgs {
    /// Only check: create nothing, report missing topics as drift.
    #[arg(long)]
    pub check: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Decodes the records of a topic through the schema registry and writes
    /// one row per event: envelope fields and payload (read_committed).
    Export(crate::export::ExportArgs),
}
