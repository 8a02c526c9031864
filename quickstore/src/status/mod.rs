//! `quickstore status [--json]`: every QuickStore consumer group with its
//! state, members and lag per partition (the names and columns
//! `kafka-consumer-groups.sh --describe` shows), the projectors' dead
//! letters, and the saga backlog.
//!
//! Read-only: offsets are read through a group-less client that never
//! joins a group, so running it beside the services disturbs nothing.

mod sagas;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use futures::StreamExt;
use platform::config::Settings;
use platform::eventlog::{EventLog, TopicPartition};
use platform::readstore::ReadStore;
use projectors::{dlq, generations, projections, runtime};
use schemas::{Context, ORDER_FULFILLMENT};
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::system::{connect_read_store, System};
use crate::topics::print_table;

pub use sagas::SagaBacklog;

/// The whole report (`--json` prints it as is).
#[derive(Debug, Serialize)]
pub struct Status {
    pub groups: Vec<GroupStatus>,
    pub dead_letters: Vec<DeadLetterStatus>,
    pub sagas: SagaBacklog,
    /// What could not be shown, and where to look instead.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GroupStatus {
    /// Exactly as `kafka-consumer-groups.sh --list` prints it.
    pub group: String,
    /// Who consumes with it.
    pub role: String,
    pub state: String,
    pub members: Vec<MemberStatus>,
    pub partitions: Vec<PartitionLag>,
    /// Sum of the partitions' lag.
    pub lag: i64,
    /// Sum of the partitions' pending records: the work really left.
    pub pending: i64,
}

#[derive(Debug, Serialize)]
pub struct MemberStatus {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
}

/// One row of `kafka-consumer-groups.sh --describe`.
#[derive(Debug, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (`None`: nothing committed, shown `-`).
    pub current_offset: Option<i64>,
    /// The read_committed end (last stable offset).
    pub log_end_offset: i64,
    /// End minus committed; with nothing committed, everything stored.
    pub lag: i64,
    /// The records a read_committed member of the group still has to
    /// read: the lag less transaction markers and aborted records, which
    /// take offsets but are never delivered (a quiet transactional
    /// partition shows lag 1 and pending 0). Counted by reading the range
    /// when the lag is at most [`PENDING_SCAN_LIMIT`], else the lag.
    pub pending: i64,
}

/// Above this lag `pending` is not counted record by record (it is the lag).
pub const PENDING_SCAN_LIMIT: i64 = 10_000;

#[derive(Debug, Serialize)]
pub struct DeadLetterStatus {
    pub projection: String,
    pub topic: String,
    /// Records in the dead-letter topic (retried ones included).
    pub records: i64,
    /// Not yet retried, for the serving generation (needs the read store).
    pub pending: Option<usize>,
}

pub async fn run(settings: Settings, args: StatusArgs) -> Result<()> {
    // The projectors' serving generations and pending dead letters live in
    // the read store; without it the rest of the report still stands.
    let store = match connect_read_store(&settings).await {
        Ok(store) => match generations::ensure(store.as_ref()).await {
            Ok(()) => Ok(store),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    let system = System::connect(settings).await?;
    let status = collect(&system, store.as_ref().ok()).await?;
    let mut status = status;
    if let Err(e) = store {
        status.notes.insert(
            0,
            format!(
                "read store unavailable ({e}): projector groups are shown for generation 1 only and \
                 pending dead letters are not counted; `kafka-consumer-groups.sh --list` shows every projector.<name>.g<N>"
            ),
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print(&status);
    }
    Ok(())
}

/// Every QuickStore group with the topics it consumes and what it is.
pub async fn groups(
    system: &System,
    store: Option<&Arc<dyn ReadStore>>,
) -> Result<Vec<(String, String, Vec<String>)>> {
    let t = &system.topics;
    let mut out = Vec::new();
    for context in Context::ALL {
        out.push((
            format!("{}{}.command-processor", t.prefix, context.as_str()),
            format!("command processor ({})", context.as_str()),
            vec![t.commands(context)],
        ));
    }
    out.push((
        format!("{}sagas.{ORDER_FULFILLMENT}", t.prefix),
        "order-fulfillment saga".to_owned(),
        sagas::saga_inputs(t),
    ));
    out.push((
        format!("{}simulated-couriers", t.prefix),
        "simulated couriers (demos, benchmarks)".to_owned(),
        vec![t.events(Context::Deliveries)],
    ));
    for projection in projections::all() {
        let name = projection.name();
        let generation = match store {
            Some(store) => generations::serving(store.as_ref(), name).await?,
            None => generations::FIRST_GENERATION,
        };
        out.push((
            runtime::group_id(t, name, generation),
            format!("projector {name} (serving generation {generation})"),
            projection.topics(t),
        ));
    }
    Ok(out)
}

/// Gathers the report.
pub async fn collect(system: &System, store: Option<&Arc<dyn ReadStore>>) -> Result<Status> {
    let log = system.log.as_ref();
    let existing = log.list_topics().await?;
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for (group, role, inputs) in groups(system, store).await? {
        let described = log.describe_group(&group).await?;
        let mut tps = Vec::new();
        for topic in inputs.iter().filter(|t| existing.contains(t)) {
            for p in 0..log.partition_count(topic).await? {
                tps.push(TopicPartition::new(topic.clone(), p));
            }
        }
        let committed = log.committed_offsets(&group, &tps).await?;
        // The couriers are optional: an unused group is noise, not lag.
        if group.ends_with("simulated-couriers")
            && described.state == "Dead"
            && committed.is_empty()
        {
            continue;
        }
        let partitions = lags(log, &tps, &committed).await?;
        out.push(GroupStatus {
            lag: partitions.iter().map(|p| p.lag).sum(),
            pending: partitions.iter().map(|p| p.pending).sum(),
            group,
            role,
            state: described.state,
            members: described
                .members
                .into_iter()
                .map(|m| MemberStatus {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    host: m.host,
                })
                .collect(),
            partitions,
        });
    }

    let mut dead_letters = Vec::new();
    for projection in projections::all() {
        let name = projection.name();
        let topic = runtime::dead_letter_topic(&system.topics, name);
        let records = if existing.contains(&topic) {
            let tp = TopicPartition::new(topic.clone(), 0);
            log.end_offset(&tp).await? - log.start_offset(&tp).await?
        } else {
            0
        };
        let pending = match store {
            Some(store) if records > 0 => {
                let serving = generations::serving(store.as_ref(), name).await?;
                Some(
                    dlq::list(log, None, store.as_ref(), &system.topics, name)
                        .await?
                        .iter()
                        .filter(|d| d.pending(serving))
                        .count(),
                )
            }
            Some(_) => Some(0),
            None => None,
        };
        dead_letters.push(DeadLetterStatus {
            projection: name.to_owned(),
            topic,
            records,
            pending,
        });
    }

    let sagas = sagas::backlog(system, &existing, &mut notes).await?;
    Ok(Status {
        groups: out,
        dead_letters,
        sagas,
        notes,
    })
}

async fn lags(
    log: &dyn EventLog,
    tps: &[TopicPartition],
    committed: &HashMap<TopicPartition, platform::eventlog::CommittedOffset>,
) -> Result<Vec<PartitionLag>> {
    let mut out = Vec::new();
    for tp in tps {
        let end = log.end_offset(tp).await?;
        let current = committed.get(tp).map(|c| c.next_offset);
        let from = match current {
            Some(c) => c,
            None => log.start_offset(tp).await?,
        };
        let lag = (end - from).max(0);
        let pending = if lag == 0 || lag > PENDING_SCAN_LIMIT {
            lag
        } else {
            let mut records = log.read_range(tp.clone(), from, end);
            let mut n = 0;
            while let Some(record) = records.next().await {
                record?;
                n += 1;
            }
            n
        };
        out.push(PartitionLag {
            topic: tp.topic.clone(),
            partition: tp.partition,
            current_offset: current,
            log_end_offset: end,
            lag,
            pending,
        });
    }
    Ok(out)
}

fn print(status: &Status) {
    println!("Consumer groups");
    let mut rows = vec![[
        "GROUP".to_owned(),
        "STATE".to_owned(),
        "MEMBERS".to_owned(),
        "LAG".to_owned(),
        "PENDING".to_owned(),
        "ROLE".to_owned(),
    ]];
    for g in &status.groups {
        rows.push([
            g.group.clone(),
            g.state.clone(),
            g.members.len().to_string(),
            g.lag.to_string(),
            g.pending.to_string(),
            g.role.clone(),
        ]);
    }
    print_table(&rows);

    println!("\nLag per partition (as kafka-consumer-groups.sh --describe prints it)");
    let mut rows = vec![[
        "GROUP".to_owned(),
        "TOPIC".to_owned(),
        "PARTITION".to_owned(),
        "CURRENT-OFFSET".to_owned(),
        "LOG-END-OFFSET".to_owned(),
        "LAG".to_owned(),
        "PENDING".to_owned(),
    ]];
    for g in &status.groups {
        for p in &g.partitions {
            rows.push([
                g.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                p.current_offset.map_or("-".to_owned(), |c| c.to_string()),
                p.log_end_offset.to_string(),
                p.lag.to_string(),
                p.pending.to_string(),
            ]);
        }
    }
    print_table(&rows);

    println!("\nDead letters");
    let mut rows = vec![[
        "PROJECTION".to_owned(),
        "TOPIC".to_owned(),
        "RECORDS".to_owned(),
        "PENDING".to_owned(),
    ]];
    for d in &status.dead_letters {
        rows.push([
            d.projection.clone(),
            d.topic.clone(),
            d.records.to_string(),
            d.pending.map_or("?".to_owned(), |p| p.to_string()),
        ]);
    }
    print_table(&rows);

    let s = &status.sagas;
    println!(
        "\nSagas ({}): {} open of {} started",
        s.saga, s.open, s.total
    );
    let mut rows = vec![[
        "STAGE".to_owned(),
        "OPEN".to_owned(),
        "OLDEST SINCE".to_owned(),
    ]];
    for stage in &s.by_stage {
        rows.push([
            stage.stage.clone(),
            stage.open.to_string(),
            crate::projections_cmd::utc(stage.oldest_since),
        ]);
    }
    if rows.len() > 1 {
        print_table(&rows);
    }
    for note in &status.notes {
        println!("\nnote: {note}");
    }
}
