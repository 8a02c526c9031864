//! `quickstore dlq list|retry`: the projectors' dead letters.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use platform::config::{EventLogBackend, ReadStoreBackend, Settings};
use projectors::dlq::{self, DeadLetter};
use projectors::generations;
use projectors::runtime::ProjectorError;
use projectors::service::ProjectorService;

use crate::cli::{DlqListArgs, DlqRetryArgs};
use crate::projections_cmd::{ensure_inputs, print_table, resolve, service_config, utc};
use crate::system::{connect_read_store, System};

fn source(d: &DeadLetter) -> String {
    match (&d.source, d.source_offset) {
        (Some(tp), Some(offset)) => format!("{tp}@{offset}"),
        (Some(tp), None) => tp.to_string(),
        _ => "?".to_owned(),
    }
}

fn rows(letters: &[DeadLetter]) -> Vec<[String; 8]> {
    let mut rows = vec![[
        "projection".to_owned(),
        "dlq offset".to_owned(),
        "key".to_owned(),
        "event".to_owned(),
        "source".to_owned(),
        "parked".to_owned(),
        "at".to_owned(),
        "reason".to_owned(),
    ]];
    for d in letters {
        rows.push([
            d.projection.clone(),
            d.dlq_offset.to_string(),
            d.key_text(),
            d.event_type.clone().unwrap_or_else(|| "?".to_owned()),
            source(d),
            if d.parked { "yes" } else { "no" }.to_owned(),
            utc(d.at_ms),
            d.reason.clone(),
        ]);
    }
    rows
}

pub async fn list(settings: Settings, args: DlqListArgs) -> Result<()> {
    let selected = resolve(args.name.as_slice())?;
    let store = connect_read_store(&settings).await?;
    let system = System::connect(settings).await?;
    let mut pending = Vec::new();
    for projection in &selected {
        let name = projection.name();
        let serving = generations::serving(store.as_ref(), name).await?;
        let letters = dlq::list(
            system.log.as_ref(),
            Some(&system.codec),
            store.as_ref(),
            &system.topics,
            name,
        )
        .await?;
        pending.extend(letters.into_iter().filter(|d| d.pending(serving)));
    }
    if pending.is_empty() {
        println!("no pending dead letters");
        return Ok(());
    }
    print_table(&rows(&pending));
    Ok(())
}

pub async fn retry(settings: Settings, args: DlqRetryArgs) -> Result<()> {
    let projection = resolve(std::slice::from_ref(&args.name))?
        .into_iter()
        .next()
        .context("no projection")?;
    let name = projection.name();
    let timeout = Duration::from_secs(args.timeout);
    let embedded = settings.event_log == EventLogBackend::Embedded
        && settings.read_store == ReadStoreBackend::Embedded;
    let store = connect_read_store(&settings).await?;
    let config = service_config(&settings);
    let system = System::connect(settings).await?;
    let seq = dlq::request_retry(store.as_ref(), name).await?;
    eprintln!("{name}: retry requested (#{seq}); waiting for the projector");
    let done = if embedded {
        // Nobody else can hold the data directory: project here meanwhile.
        ensure_inputs(&system).await?;
        let service = ProjectorService::new(
            Arc::clone(&system.log),
            Arc::clone(&system.codec),
            Arc::clone(&store),
            system.topics.clone(),
            vec![Arc::clone(&projection)],
            config,
        )
        .spawn();
        let done = dlq::await_retry(store.as_ref(), name, seq, timeout).await;
        service.stop().await.context("stopping the projector")?;
        done
    } else {
        dlq::await_retry(store.as_ref(), name, seq, timeout).await
    };
    let done = match done {
        Ok(done) => done,
        Err(ProjectorError::Timeout(_)) => bail!(
            "no projector acknowledged retry request #{seq} of `{name}` within {} s; is \
             `quickstore projections run` running?",
            args.timeout
        ),
        Err(e) => return Err(e.into()),
    };
    println!(
        "{name}: retried dead letters {}..{}: {} came back, {} dead-lettered again",
        done.from, done.upto, done.succeeded, done.failed
    );
    let serving = generations::serving(store.as_ref(), name).await?;
    let letters = dlq::list(
        system.log.as_ref(),
        Some(&system.codec),
        store.as_ref(),
        &system.topics,
        name,
    )
    .await?;
    // Written again by this retry: after its range, pointing into it.
    let again: Vec<DeadLetter> = letters
        .iter()
        .filter(|d| {
            d.dlq_offset >= done.upto && d.retry_of.is_some_and(|o| o >= done.from && o < done.upto)
        })
        .cloned()
        .collect();
    let failed: HashSet<i64> = again.iter().filter_map(|d| d.retry_of).collect();
    let back: Vec<&DeadLetter> = letters
        .iter()
        .filter(|d| {
            d.dlq_offset >= done.from && d.dlq_offset < done.upto && !failed.contains(&d.dlq_offset)
        })
        // Only the serving generation's: the retry skips older ones.
        .filter(|d| d.generation.is_none_or(|g| g == serving))
        .collect();
    if !back.is_empty() {
        println!("came back:");
        for d in back {
            println!(
                "  {} {} ({})",
                d.key_text(),
                d.event_type.as_deref().unwrap_or("?"),
                source(d)
            );
        }
    }
    if !again.is_empty() {
        println!("dead-lettered again (their keys stay parked):");
        print_table(&rows(&again));
    }
    Ok(())
}
