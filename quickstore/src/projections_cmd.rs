//! `quickstore projections run|status|rebuild`: the read side's projectors.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use platform::config::{EventLogBackend, Settings};
use platform::eventlog::{EventLog, TopicPartition};
use projectors::projection::Projection;
use projectors::rebuild::{RebuildOptions, RebuildPhase, RebuildProgress};
use projectors::service::{ProjectorService, ServiceConfig, ServiceStatus};
use projectors::{dlq, generations, projections, runtime};
use tokio::sync::watch;

use crate::cli::{ProjectionsRebuildArgs, ProjectionsRunArgs};
use crate::system::{connect_read_store, System};

/// The projections called `names` (all if empty); an unknown name is an
/// error that lists the valid ones.
pub fn resolve(names: &[String]) -> Result<Vec<Arc<dyn Projection>>> {
    let all = projections::all();
    if names.is_empty() {
        return Ok(all);
    }
    let mut out = Vec::new();
    for name in names {
        match all.iter().find(|p| p.name() == name) {
            Some(p) => out.push(Arc::clone(p)),
            None => bail!(
                "unknown projection `{name}`; valid names: {}",
                all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(out)
}

/// The service's settings for this installation.
pub fn service_config(settings: &Settings) -> ServiceConfig {
    ServiceConfig {
        dead_letter_replication: settings.replication_factor,
        dead_letter_min_insync: Some(settings.min_insync_replicas),
        ..ServiceConfig::default()
    }
}

/// Creates the topics the projectors read (a fresh installation may not
/// have them yet).
pub async fn ensure_inputs(system: &System) -> Result<()> {
    system.log.create_topics(&system.contract_topics()).await?;
    system
        .log
        .create_topics(&crate::write_side::saga_topics(system))
        .await?;
    Ok(())
}

/// One line per projection for the periodic log.
pub fn summary(status: &ServiceStatus) -> String {
    status
        .projections
        .values()
        .map(|p| {
            let lag = p.lag.map_or("?".to_owned(), |l| l.to_string());
            let mut line = format!("{} g{} lag {lag} events {}", p.name, p.generation, p.events);
            if p.dead_letters > 0 || p.parked > 0 {
                line.push_str(&format!(
                    " dead-letters {} parked {}",
                    p.dead_letters, p.parked
                ));
            }
            if p.paused {
                line.push_str(" (paused for a hand-off)");
            }
            if !p.running {
                line.push_str(" (restarting)");
            }
            line
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn run(settings: Settings, args: ProjectionsRunArgs) -> Result<()> {
    let mut signal = crate::shutdown::ShutdownSignal::install()?;
    let selected = resolve(&args.only)?;
    let store = connect_read_store(&settings).await?;
    let config = service_config(&settings);
    let system = System::connect(settings).await?;
    ensure_inputs(&system).await?;
    let names: Vec<&str> = selected.iter().map(|p| p.name()).collect();
    eprintln!("projecting {} until SIGTERM/Ctrl-C", names.join(", "));
    let ops = match &system.settings.ops_listen {
        Some(listen) => {
            let readiness =
                crate::probes::read_store(crate::probes::base(&system), Arc::clone(&store));
            let ops = crate::probes::OpsServer::start(listen, readiness).await?;
            eprintln!(
                "ops listener at {} (/metrics, /healthz, /readyz)",
                ops.url()
            );
            Some(ops)
        }
        None => None,
    };
    let service = ProjectorService::new(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        store,
        system.topics.clone(),
        selected,
        config,
    )
    .spawn();
    let mut every = tokio::time::interval(Duration::from_secs(15));
    every.tick().await;
    loop {
        tokio::select! {
            _ = signal.received() => break,
            _ = every.tick() => tracing::info!(status = %summary(&service.status()), "projectors"),
        }
    }
    // Each projector finishes its batch, commits and leaves its group.
    service.stop().await.context("stopping the projectors")?;
    if let Some(ops) = ops {
        ops.stop().await.context("stopping the ops listener")?;
    }
    eprintln!("stopped");
    Ok(())
}

/// The lag of `group` on `tps` from its committed offsets (a group that
/// committed nothing for a partition counts from the partition's start).
async fn committed_lag(log: &dyn EventLog, group: &str, tps: &[TopicPartition]) -> Result<u64> {
    let committed = log.committed_offsets(group, tps).await?;
    let mut lag = 0u64;
    for tp in tps {
        let end = log.end_offset(tp).await?;
        let position = match committed.get(tp) {
            Some(c) => c.next_offset,
            None => log.start_offset(tp).await?,
        };
        lag += u64::try_from(end - position).unwrap_or(0);
    }
    Ok(lag)
}

pub async fn status(settings: Settings) -> Result<()> {
    let store = connect_read_store(&settings).await?;
    let system = System::connect(settings).await?;
    generations::ensure(store.as_ref()).await?;
    let existing = system.log.list_topics().await?;
    let mut rows = vec![[
        "projection".to_owned(),
        "generation".to_owned(),
        "group".to_owned(),
        "lag".to_owned(),
        "parked".to_owned(),
        "dead letters".to_owned(),
        "switched".to_owned(),
    ]];
    for projection in projections::all() {
        let name = projection.name();
        let serving = generations::serving(store.as_ref(), name).await?;
        let group = runtime::group_id(&system.topics, name, serving);
        let inputs = projection.topics(&system.topics);
        let lag = if inputs.iter().all(|t| existing.contains(t)) {
            let mut tps = Vec::new();
            for topic in &inputs {
                for p in 0..system.log.partition_count(topic).await? {
                    tps.push(TopicPartition::new(topic.clone(), p));
                }
            }
            committed_lag(system.log.as_ref(), &group, &tps)
                .await?
                .to_string()
        } else {
            "no topics".to_owned()
        };
        let parked = dlq::parked_keys(store.as_ref(), name, serving).await?.len();
        let pending = dlq::list(
            system.log.as_ref(),
            None,
            store.as_ref(),
            &system.topics,
            name,
        )
        .await?
        .iter()
        .filter(|d| d.pending(serving))
        .count();
        let switched = generations::switched_at(store.as_ref(), name)
            .await?
            .map_or("-".to_owned(), utc);
        rows.push([
            name.to_owned(),
            serving.to_string(),
            group,
            lag,
            parked.to_string(),
            pending.to_string(),
            switched,
        ]);
    }
    print_table(&rows);
    Ok(())
}

/// Prints rows as aligned columns (the first row is the header).
pub fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// `2026-11-22 10:15:03 UTC` from ms since the epoch.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The shortest `--drop-after` (seconds): readers refresh the serving
/// generation about once a second, so the old tables must outlive the
/// switch by more than that. (The library takes any value; its tests use
/// short ones on purpose.)
pub const MIN_DROP_AFTER_SECS: u64 = 5;

pub async fn rebuild(settings: Settings, args: ProjectionsRebuildArgs) -> Result<()> {
    let drop_after = args.drop_after.max(MIN_DROP_AFTER_SECS);
    if drop_after != args.drop_after && !args.keep_old {
        eprintln!(
            "--drop-after {} is below the minimum: dropping the old generation {drop_after} s \
             after the switch",
            args.drop_after
        );
    }
    let projection = resolve(std::slice::from_ref(&args.name))?
        .into_iter()
        .next()
        .context("no projection")?;
    let name = projection.name();
    let embedded = settings.event_log == EventLogBackend::Embedded;
    let store = connect_read_store(&settings).await?;
    let replication = settings.replication_factor;
    let system = System::connect(settings).await?;
    ensure_inputs(&system).await?;
    let options = RebuildOptions {
        keep_old: args.keep_old,
        drop_after: Duration::from_secs(drop_after),
        // On the embedded log no other process can be projecting: there
        // is nobody to wait for at the hand-off.
        handoff_grace: if embedded {
            Duration::ZERO
        } else {
            RebuildOptions::default().handoff_grace
        },
        dead_letter_replication: replication,
        dead_letter_min_insync: Some(system.settings.min_insync_replicas),
        ..RebuildOptions::default()
    };
    let (progress, mut updates) = watch::channel(RebuildProgress::default());
    let task = tokio::spawn(projectors::rebuild::rebuild(
        Arc::clone(&system.log),
        Arc::clone(&system.codec),
        store,
        Arc::clone(&projection),
        system.topics.clone(),
        options,
        progress,
    ));
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} {bar:40} {pos}/{len} events {per_sec} ETA {eta}")
            .context("progress bar template")?,
    );
    let mut printed_switch = false;
    while updates.changed().await.is_ok() {
        let p = updates.borrow_and_update().clone();
        match p.phase {
            RebuildPhase::Preparing => bar.set_message("preparing"),
            RebuildPhase::Building => bar.set_message("building"),
            RebuildPhase::CatchingUp => bar.set_message("catching up"),
            RebuildPhase::HandingOff => bar.set_message("handing off"),
            RebuildPhase::Switched | RebuildPhase::DroppedOld => {}
        }
        bar.set_length(p.total);
        bar.set_position(p.done);
        if p.phase == RebuildPhase::Switched && !printed_switch {
            printed_switch = true;
            bar.finish_and_clear();
            println!(
                "{name}: generation {} → {}, switched at {} ({} events projected)",
                p.old_generation,
                p.new_generation,
                p.switched_at.map_or("?".to_owned(), utc),
                p.events
            );
            if args.keep_old {
                println!(
                    "{name}: kept generation {} (drop its tables when no reader uses them)",
                    p.old_generation
                );
            } else {
                println!(
                    "{name}: dropping generation {} in {drop_after} s (after the readers' refresh)",
                    p.old_generation
                );
            }
        }
    }
    let report = task.await.context("the rebuild task")??;
    bar.finish_and_clear();
    if !printed_switch {
        println!(
            "{name}: generation {} → {}, switched at {}",
            report.old_generation,
            report.new_generation,
            utc(report.switched_at)
        );
    }
    if report.dropped_old {
        println!("{name}: dropped generation {}", report.old_generation);
    }
    if report.dead_letters > 0 {
        println!(
            "{name}: {} events were dead-lettered while rebuilding (quickstore dlq list {name})",
            report.dead_letters
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_the_epoch_and_a_leap_day() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 3_661_000), "2000-02-29 01:01:01 UTC");
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = resolve(&["nope".to_owned()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown projection `nope`") && err.contains("orders"),
            "{err}"
        );
    }
}
