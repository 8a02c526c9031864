//! `quickstore serve`: QuickStore's services on whatever event log and read
//! store the settings name, until SIGTERM or Ctrl-C (then: stop taking
//! requests, drain, finish every worker's batch, leave the groups, exit 0).
//!
//! `--role` picks the parts (default: the write side). Every role talks to
//! the others only through the event log and the read store, so one
//! process with all roles and five processes with one role each behave the
//! same — the second is how docker-compose.yml and the Helm chart run it.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use platform::config::Settings;
use projectors::service::{ProjectorService, RunningService};

use crate::cli::{ServeArgs, ServiceRole};
use crate::read_side::{ReadSide, ReadSideOptions};
use crate::system::{connect_read_store, System};
use crate::write_side::{WriteRoles, WriteSide, WriteSideOptions};

pub async fn run(settings: Settings, args: ServeArgs) -> Result<()> {
    let mut shutdown = crate::shutdown::ShutdownSignal::install()?;
    let roles = if args.roles.is_empty() {
        ServiceRole::DEFAULT.to_vec()
    } else {
        args.roles.clone()
    };
    let has = |r: ServiceRole| roles.contains(&r);
    let write_roles = WriteRoles {
        command_api: has(ServiceRole::CommandApi),
        command_processors: has(ServiceRole::CommandProcessor),
        sagas: has(ServiceRole::Sagas),
    };
    if args.seed_demo && !write_roles.command_api {
        anyhow::bail!("--seed-demo needs the command-api role (add --role command-api)");
    }
    let jwks_url = args.jwks_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}/.well-known/jwks.json",
            settings.command_api_listen
        )
    });
    // The command API needs the read store too: the customers' data keys live there (ADR 0014).
    let read_store = if has(ServiceRole::Projectors)
        || has(ServiceRole::QueryApi)
        || has(ServiceRole::CommandApi)
    {
        Some(connect_read_store(&settings).await?)
    } else {
        None
    };
    let service_config = crate::projections_cmd::service_config(&settings);
    let system = System::connect(settings).await?;

    let mut write = if write_roles.any() {
        let mut options = WriteSideOptions::from_settings(&system);
        options.roles = write_roles;
        if let Some(listen) = &args.listen {
            options.listen.clone_from(listen);
        }
        options.instance.clone_from(&args.instance);
        if write_roles.command_api {
            if let Some(store) = &read_store {
                options.keys = Some(crate::customers_cmd::key_store(store).await?);
            }
        }
        options.simulated_couriers = (1..=args.simulated_couriers)
            .map(|i| format!("simulated-courier-{i}"))
            .collect();
        let side = WriteSide::start(&system, options).await?;
        if args.seed_demo {
            crate::seed::demo_shop(side.api_state()?).await?;
        }
        if let Some(url) = side.url() {
            if let Some(path) = &args.url_file {
                write_url_file(path, &url)?;
            }
            println!("QuickStore command API at {url} (OpenAPI at {url}/openapi.json)");
        }
        Some(side)
    } else {
        None
    };

    let mut read = None;
    let mut projectors_only: Option<RunningService> = None;
    // Readiness checks the read store wherever a role uses it.
    let ops_store = read_store.clone();
    let read_store =
        read_store.filter(|_| has(ServiceRole::Projectors) || has(ServiceRole::QueryApi));
    if let Some(store) = read_store {
        crate::projections_cmd::ensure_inputs(&system).await?;
        if has(ServiceRole::QueryApi) {
            let mut options = ReadSideOptions::from_settings(&system.settings, jwks_url.clone());
            if let Some(listen) = &args.query_listen {
                options.listen.clone_from(listen);
            }
            options.service = service_config;
            if !has(ServiceRole::Projectors) {
                options.projections = Some(Vec::new());
            }
            let side = ReadSide::start(&system, store, options).await?;
            let url = side.url();
            if !write_roles.command_api {
                if let Some(path) = &args.url_file {
                    write_url_file(path, &url)?;
                }
            }
            println!(
                "QuickStore query API at {url} (OpenAPI at {url}/openapi.json; tokens verified with {jwks_url})"
            );
            read = Some(side);
        } else {
            projectors_only = Some(
                ProjectorService::new(
                    Arc::clone(&system.log),
                    Arc::clone(&system.codec),
                    store,
                    system.topics.clone(),
                    projectors::projections::all(),
                    service_config,
                )
                .spawn(),
            );
        }
        if has(ServiceRole::Projectors) {
            println!("QuickStore projectors running (every projection)");
        }
    }
    if write.as_ref().is_some_and(|w| w.url().is_none()) {
        println!("QuickStore workers running: {}", role_names(&roles));
    }
    // `/metrics`, `/healthz`, `/readyz` for every role, also the ones
    // without an HTTP API of their own (QS_OPS_LISTEN; the Helm chart and
    // docker-compose.yml probe and scrape it).
    let ops = match &system.settings.ops_listen {
        Some(listen) => {
            let mut readiness = crate::probes::base(&system);
            if let Some(store) = &ops_store {
                readiness = crate::probes::read_store(readiness, Arc::clone(store));
            }
            if let Some(side) = write.as_ref().filter(|_| write_roles.command_processors) {
                readiness =
                    crate::probes::processors_restored(readiness, side.processor_progress.clone());
            }
            let ops = crate::probes::OpsServer::start(listen, readiness).await?;
            println!(
                "ops listener at {} (/metrics, /healthz, /readyz)",
                ops.url()
            );
            Some(ops)
        }
        None => None,
    };

    // A worker that gave up (an unrecoverable error) ends the process with
    // an error instead of leaving it serving with that worker gone: the
    // supervisor (Kubernetes, compose, `quickstore chaos`) restarts it.
    let worker_exit = async {
        match write.as_mut() {
            Some(side) => side.worker_exit().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = shutdown.received() => {}
        (worker, why) = worker_exit => {
            // A worker that stalled may have left a librdkafka call running
            // on the blocking pool, which the runtime would wait for at
            // exit: give the orderly exit a moment, then end regardless.
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_secs(15));
                eprintln!("error: the orderly exit did not finish in 15 s; exiting now");
                std::process::exit(1);
            });
            anyhow::bail!("the {worker} stopped on its own: {why}; exiting so it is restarted");
        }
    }
    // Stop taking requests first (the APIs drain), then the workers finish
    // their batches and leave their groups; the ops listener goes last so
    // probes see the drain.
    if let Some(side) = read {
        side.stop().await.context("stopping the read side")?;
    }
    if let Some(service) = projectors_only {
        service.stop().await.context("stopping the projectors")?;
    }
    if let Some(side) = write {
        side.stop().await?;
    }
    if let Some(ops) = ops {
        ops.stop().await?;
    }
    eprintln!("stopped");
    Ok(())
}

/// Written last and atomically: a reader that sees it can connect.
fn write_url_file(path: &std::path::Path, url: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, url).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn role_names(roles: &[ServiceRole]) -> String {
    use clap::ValueEnum as _;
    roles
        .iter()
        .filter_map(|r| r.to_possible_value().map(|v| v.get_name().to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}
