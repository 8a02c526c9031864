//! `quickstore chaos`: the fault harness (docs/chaos.md, ADR 0016).
//!
//! On loopback only, it starts its own Kafka broker and CQL node (through
//! deploy/*/start.sh), a schema registry and the five QuickStore roles as
//! child processes of this binary, drives a mixed load through the HTTP
//! APIs while it kills (-9) and restarts every role kind, restarts the
//! broker, stops the CQL node for a while and makes a saga worker a zombie
//! — then waits for quiescence and runs the checker. Bounded in time
//! (`--duration`) and count (`--orders`).

mod checker;
mod client;
mod faults;
mod load;
pub mod nodes;
mod report;
mod roles;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use reqwest::Method;
use serde_json::json;

pub use checker::run_checker;
use client::Client;
use faults::{FaultSettings, Faults, LOG_LANE, READ_LANE};
use load::Load;
use nodes::{ensure_loopback, find_deploy_dir, Registry, Server, ServerKind};
use report::Report;
use roles::{free_port, wait_ready, Cluster, RoleKind};

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Place at least this many orders (the run goes on until every fault
    /// has also happened). Default 1,000; with --soak none: a soak is
    /// bounded by --duration, and places what it places.
    #[arg(long)]
    pub orders: Option<u64>,
    /// Upper bound of the whole run, e.g. 600s, 20m, 1h (default 20m; with
    /// --soak: how long the load and faults go on, default 30m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Long run: faults repeat in a random order until --duration is up.
    #[arg(long)]
    pub soak: bool,
    /// Seed of every random choice (printed; default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the report as JSON here.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// The Kafka broker's run name (deploy/kafka/start.sh NAME): a running
    /// one is used, else one is started (and removed at the end).
    #[arg(long, value_name = "NAME")]
    pub kafka_run: Option<String>,
    /// The CQL node's run name (deploy/cql/start.sh NAME), likewise.
    #[arg(long, value_name = "NAME")]
    pub cql_run: Option<String>,
    /// The repository's deploy/ directory (default: found from the binary
    /// or the working directory).
    #[arg(long, env = "QS_DEPLOY_DIR", value_name = "DIR")]
    pub deploy_dir: Option<PathBuf>,
    /// Concurrent clients of the load.
    #[arg(long, default_value_t = 12)]
    pub concurrency: u64,
    /// How long the CQL node stays down.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub cql_outage: Duration,
    /// How long the zombie stays paused (past the 10 s group session
    /// timeout of the saga workers).
    #[arg(long, value_parser = parse_duration, default_value = "16s")]
    pub zombie_pause: Duration,
    /// Where the roles' data and logs go (default: a new directory under
    /// $QS_RUN_DIR, kept when the run fails).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// Resolves on the first SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

/// `90`, `90s`, `20m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 90s, 20m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: the unit must be s, m or h (e.g. 20m)")),
    };
    Ok(Duration::from_secs(secs))
}

/// Exit code 0: clean, 1: the run finished and found something (the
/// report says what), 2: it could not run (the message says why).
pub async fn run(args: ChaosArgs) -> Result<()> {
    match run_inner(args).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(crate::audit::AuditExit {
            code: 1,
            message: String::new(),
        }
        .into()),
        Err(e) => Err(crate::audit::AuditExit {
            code: 2,
            message: format!("chaos could not run: {e:#}"),
        }
        .into()),
    }
}

async fn run_inner(mut args: ChaosArgs) -> Result<bool> {
    let started = Instant::now();
    args.orders.get_or_insert(if args.soak { 0 } else { 1000 });
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    let bound = args.duration.unwrap_or(if args.soak {
        Duration::from_secs(30 * 60)
    } else {
        Duration::from_secs(20 * 60)
    });
    let run_id = format!("{:08x}", seed as u32 ^ std::process::id());
    let deploy = find_deploy_dir(args.deploy_dir.as_deref())?;
    let exe = std::env::current_exe().context("finding this binary")?;
    let dir = match &args.work_dir {
        Some(d) => d.clone(),
        None => nodes::run_root().join(format!("chaos-{run_id}")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!(
        "chaos: seed {seed}, at least {} orders, bound {}s, work dir {}",
        args.orders.unwrap_or_default(),
        bound.as_secs(),
        dir.display()
    );

    let kafka_name = args
        .kafka_run
        .clone()
        .unwrap_or_else(|| format!("chaos-{run_id}"));
    let cql_name = args
        .cql_run
        .clone()
        .unwrap_or_else(|| format!("chaos-{run_id}"));
    // Both nodes start at once: each is a JVM that takes a while.
    let (kafka, cql) = tokio::join!(
        Server::start_or_reuse(&deploy, ServerKind::Kafka, &kafka_name),
        Server::start_or_reuse(&deploy, ServerKind::Cql, &cql_name),
    );
    let kafka = Arc::new(kafka?);
    let cql = match cql {
        Ok(c) => Arc::new(c),
        Err(e) => {
            kafka.finish().await;
            return Err(e);
        }
    };
    println!(
        "chaos: Kafka at {}, CQL node at {}",
        kafka.address, cql.address
    );
    let registry = match Registry::start(&exe, &dir).await {
        Ok(r) => r,
        Err(e) => {
            kafka.finish().await;
            cql.finish().await;
            return Err(e);
        }
    };

    // Ctrl-C or SIGTERM ends the run early but never leaves its broker,
    // node or roles behind: dropping `drive` kills the roles (the cluster's
    // Drop), and the servers are stopped below like on any other exit.
    let outcome = tokio::select! {
        outcome = drive(
            &args,
            seed,
            bound,
            &run_id,
            &exe,
            &dir,
            &kafka,
            &cql,
            &registry.url,
            started,
        ) => outcome,
        signal = interrupted() => Err(anyhow!("interrupted by {signal}; roles, broker and CQL node stopped")),
    };
    registry.stop().await;
    // A failed run keeps the broker's and the node's data for the
    // post-mortem (the checker's findings name offsets in them).
    let keep = !matches!(&outcome, Ok(report) if report.ok);
    if keep {
        for server in [&kafka, &cql] {
            if server.owned() && server.stop_keeping_data().await.is_ok() {
                println!("chaos: data kept in {}", server.run_dir().display());
            }
        }
    } else {
        kafka.finish().await;
        cql.finish().await;
    }
    let report = outcome?;
    println!("{}", report.summary());
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if report.ok && args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("chaos: logs kept in {}", dir.display());
    }
    Ok(report.ok)
}

#[allow(clippy::too_many_arguments, reason = "one call, from run")]
async fn drive(
    args: &ChaosArgs,
    seed: u64,
    bound: Duration,
    run_id: &str,
    exe: &Path,
    dir: &Path,
    kafka: &Arc<Server>,
    cql: &Arc<Server>,
    registry: &str,
    started: Instant,
) -> Result<Report> {
    let deadline = started + bound;
    let env: Vec<(String, String)> = [
        ("QS_EVENT_LOG", "kafka".to_owned()),
        ("QS_KAFKA_BOOTSTRAP", kafka.address.clone()),
        ("QS_SCHEMA_REGISTRY_URL", registry.to_owned()),
        ("QS_TOPIC_PREFIX", format!("chaos{run_id}.")),
        ("QS_READ_STORE", "cql".to_owned()),
        ("QS_CQL_CONTACT_POINTS", cql.address.clone()),
        ("QS_CQL_KEYSPACE", format!("qs_chaos_{run_id}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    // Diagnosing a run: librdkafka's debug contexts reach every role.
    .chain(
        std::env::var("QS_KAFKA_DEBUG")
            .ok()
            .map(|v| ("QS_KAFKA_DEBUG".to_owned(), v)),
    )
    .collect();
    for (key, value) in &env {
        if key.ends_with("BOOTSTRAP") || key.ends_with("POINTS") || key.ends_with("URL") {
            ensure_loopback(key, value)?;
        }
    }

    let cluster = Cluster::new(exe, dir, env.clone());
    let schema = cluster
        .command(&dir.join("schema"))
        .args(["schema", "apply"])
        .output()
        .context("running quickstore schema apply")?;
    if !schema.status.success() {
        bail!(
            "quickstore schema apply failed:\n{}",
            String::from_utf8_lossy(&schema.stderr)
        );
    }
    let cluster = Arc::new(Mutex::new(cluster));
    let add = |kind: RoleKind, name: &str, args: Vec<String>| -> Result<usize> {
        cluster
            .lock()
            .map_err(|_| anyhow!("the cluster lock is poisoned"))?
            .add(kind, name, args)
    };
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    // Workers first (seeding the shop waits for the processors); one at a
    // time, so topic creation is not raced.
    let processor = add(
        RoleKind::CommandProcessor,
        "command-processor",
        s(&["--instance", "p1"]),
    )?;
    wait_ready(&cluster, processor, Duration::from_secs(180)).await?;
    let saga1 = add(RoleKind::Sagas, "sagas-1", s(&["--instance", "s1"]))?;
    // The zombie's twin: the same role, its own instance.
    let saga2 = add(RoleKind::Sagas, "sagas-2", s(&["--instance", "s2"]))?;
    let projectors = add(RoleKind::Projectors, "projectors", Vec::new())?;
    for i in [saga1, saga2, projectors] {
        wait_ready(&cluster, i, Duration::from_secs(180)).await?;
    }
    let command_port = free_port()?;
    let command_url = format!("http://127.0.0.1:{command_port}");
    let command_api = add(
        RoleKind::CommandApi,
        "command-api",
        s(&[
            "--listen",
            &format!("127.0.0.1:{command_port}"),
            "--instance",
            "a1",
            "--seed-demo",
        ]),
    )?;
    wait_ready(&cluster, command_api, Duration::from_secs(240)).await?;
    let query_port = free_port()?;
    let query_url = format!("http://127.0.0.1:{query_port}");
    let query_api = add(
        RoleKind::QueryApi,
        "query-api",
        s(&[
            "--query-listen",
            &format!("127.0.0.1:{query_port}"),
            "--jwks-url",
            &format!("{command_url}/.well-known/jwks.json"),
        ]),
    )?;
    wait_ready(&cluster, query_api, Duration::from_secs(180)).await?;
    // A restarted command API must not seed again (it would wait for the
    // processors the harness may be killing): drop the flag for restarts.
    if let Ok(mut c) = cluster.lock() {
        c.set_args(
            command_api,
            s(&[
                "--listen",
                &format!("127.0.0.1:{command_port}"),
                "--instance",
                "a1",
            ]),
        );
    }
    println!(
        "chaos: five roles up after {:.0}s",
        started.elapsed().as_secs_f64()
    );

    // The supervisor: restarts what exits without being asked to.
    let supervising = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let supervisor = {
        let (cluster, supervising) = (Arc::clone(&cluster), Arc::clone(&supervising));
        tokio::spawn(async move {
            while supervising.load(Ordering::Relaxed) {
                if let Ok(mut c) = cluster.lock() {
                    let _ = c.supervise();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let result = load_and_faults(
        args,
        seed,
        deadline,
        run_id,
        exe,
        dir,
        kafka,
        cql,
        &env,
        &cluster,
        command_url,
        query_url,
        started,
    )
    .await;
    supervising.store(false, Ordering::Relaxed);
    let _ = supervisor.await;
    let unexpected = cluster
        .lock()
        .map(|c| c.unexpected_exits.clone())
        .unwrap_or_default();
    let stop_cluster = Arc::clone(&cluster);
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut c) = stop_cluster.lock() {
            c.stop_all();
        }
    })
    .await;
    let mut report = result?;
    report.unexpected_exits = unexpected;
    report.duration_s = started.elapsed().as_secs_f64();
    Ok(report)
}

#[allow(clippy::too_many_arguments, reason = "one call, from drive")]
async fn load_and_faults(
    args: &ChaosArgs,
    seed: u64,
    deadline: Instant,
    run_id: &str,
    exe: &Path,
    dir: &Path,
    kafka: &Arc<Server>,
    cql: &Arc<Server>,
    env: &[(String, String)],
    cluster: &Arc<Mutex<Cluster>>,
    command_url: String,
    query_url: String,
    started: Instant,
) -> Result<Report> {
    let client = Arc::new(Client::new(command_url, query_url)?);
    let password = crate::seed::DEMO_PASSWORD;
    let admin = client.login(crate::seed::DEMO_ADMIN, password).await?;
    let courier = client.login(crate::seed::DEMO_COURIER, password).await?;
    let skus: Vec<String> = crate::seed::DEMO_PRODUCTS
        .iter()
        .map(|p| p.0.to_owned())
        .collect();
    // Enough stock that a refusal is a bug, not an empty shelf.
    for sku in &skus {
        let reply = client
            .command(
                &admin,
                Method::POST,
                &format!("/stock/{sku}/restock"),
                Some(json!({"quantity": 1_000_000, "reference": "chaos"})),
                &format!("chaos-{run_id}-restock-{sku}"),
                "restock",
            )
            .await;
        if !reply.as_ref().is_some_and(client::Reply::ok) {
            bail!("restocking {sku} failed: {reply:?}");
        }
    }
    let mut customers = Vec::new();
    for w in 0..args.concurrency {
        customers.push(
            client
                .register(
                    &format!("chaos-{run_id}-{w}@quickstore.local"),
                    "chaos-password-1",
                    &format!("Chaos Customer {w}"),
                )
                .await?,
        );
    }
    let load = Arc::new(Load {
        client: Arc::clone(&client),
        admin,
        courier,
        skus,
        stats: load::LoadStats::default(),
        orders: Mutex::new(Vec::new()),
        stuck_flows: Mutex::new(Vec::new()),
        stop: std::sync::atomic::AtomicBool::new(false),
        seed,
        run_id: run_id.to_owned(),
    });
    let workers: Vec<_> = customers
        .into_iter()
        .enumerate()
        .map(|(w, c)| tokio::spawn(Arc::clone(&load).worker(w as u64, c)))
        .collect();
    println!("chaos: load running ({} clients)", args.concurrency);

    let faults = Arc::new(Faults {
        cluster: Arc::clone(cluster),
        kafka: Arc::clone(kafka),
        cql: Arc::clone(cql),
        figures: Mutex::new(faults::FaultFigures::default()),
        settings: FaultSettings {
            cql_outage: args.cql_outage,
            zombie_pause: args.zombie_pause,
            gap: if args.soak {
                Duration::from_secs(20)
            } else {
                Duration::from_secs(4)
            },
            // No fault starts in the last 8 min: the last one gets 3 min
            // to finish (a broker or CQL restart under load takes ~1.5)
            // before the load stops, then quiescence has 5.
            soak_until: args.soak.then(|| {
                deadline
                    .checked_sub(Duration::from_secs(480))
                    .unwrap_or(deadline)
            }),
        },
        started,
    });
    let log_lane = tokio::spawn(Arc::clone(&faults).lane(LOG_LANE.to_vec(), seed ^ 1));
    let read_lane = tokio::spawn(Arc::clone(&faults).lane(READ_LANE.to_vec(), seed ^ 2));
    let lanes = async {
        let (a, b) = tokio::join!(log_lane, read_lane);
        a??;
        b??;
        anyhow::Ok(())
    };
    // Quiescence needs time at the end: the load stops with 5 min left.
    let load_deadline = deadline
        .checked_sub(Duration::from_secs(300))
        .unwrap_or(deadline);
    let fault_result = tokio::time::timeout_at(load_deadline.into(), lanes).await;
    let fault_error = match fault_result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => {
            // A lane cut off mid-fault must not leave a zombie paused for
            // good (quiescence would wait on its partitions).
            if let Ok(mut c) = cluster.lock() {
                c.resume_paused();
            }
            Some("the faults did not finish before the deadline".to_owned())
        }
    };
    // Enough orders (or out of time), then the clients finish their flows.
    let mut last_print = Instant::now();
    let orders = args.orders.unwrap_or_default();
    // A soak goes on for its whole duration; the short run until enough
    // orders (or out of time).
    while (args.soak || load.placed() < orders) && Instant::now() < load_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if last_print.elapsed() > Duration::from_secs(15) {
            println!("chaos: {} orders placed", load.placed());
            last_print = Instant::now();
        }
    }
    load.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    println!(
        "chaos: load stopped after {:.0}s with {} orders; waiting for quiescence",
        started.elapsed().as_secs_f64(),
        load.placed()
    );
    // Every role running again (a paused zombie is resumed by its lane).
    let quiescence = report::quiesce(&load, exe, env, dir, deadline).await;
    println!("chaos: running the checker");
    let verdict = run_checker(exe, env, dir).await;
    let figures = faults.figures.lock().map(|f| f.clone()).unwrap_or_default();
    Ok(Report::new(
        seed,
        args.orders.unwrap_or_default(),
        &load,
        figures,
        fault_error,
        quiescence,
        verdict.map_err(|e| format!("{e:#}")),
    ))
}
