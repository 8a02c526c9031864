//! Every read-model row equals the fold of its events.
//!
//! The log is folded through the same pure projections the projectors run
//! (`projectors::projections::all()`) into a scratch in-memory embedded
//! store; then every partition the fold wrote is read from both the
//! scratch store and the live store's serving generation and compared row
//! by row (cells that are null count as absent): `missing-row` (the fold
//! has it, the store does not), `changed-row` (same key, other cells),
//! `extra-row` (the store has a row the events never wrote in that
//! partition). The read-store port lists partitions, not tables, so a row
//! in a partition no event ever wrote is not seen. Run it once the
//! projectors have caught up (`quickstore projections status`: lag 0);
//! rows that differ because the system moved on during the check (a saga
//! deadline firing) are re-compared after the new events are folded
//! ([`Comparison`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use platform::readstore::{EmbeddedStore, MutationKind, ReadStore, Row, TableDef, Value};
use projectors::projection::{Projected, Projection};
use schemas::TopicNames;

use super::report::{counts, n, Finding, Findings, InvariantReport, Position};

pub const NAME: &str = "read-models";

/// The scratch store's generation (any: it holds nothing else).
const SCRATCH: u32 = 1;
/// Rows per page when reading a partition.
const PAGE: usize = 500;
/// Differing rows reported per table (the rest are counted).
const PER_TABLE: usize = 5;

/// The fold of the log into the scratch store.
#[derive(Debug)]
pub struct ReadModelFold {
    scratch: EmbeddedStore,
    projections: Vec<(Arc<dyn Projection>, Vec<String>)>,
    /// Per projection and table: every partition the fold wrote.
    touched: BTreeMap<(&'static str, &'static str), (TableDef, BTreeSet<Row>)>,
    findings: Findings,
    projected: u64,
}

impl ReadModelFold {
    pub async fn new(topics: &TopicNames) -> Result<Self> {
        let scratch = EmbeddedStore::in_memory().context("opening the scratch read store")?;
        let projections: Vec<_> = projectors::projections::all()
            .into_iter()
            .map(|p| {
                let t = p.topics(topics);
                (p, t)
            })
            .collect();
        for (p, _) in &projections {
            scratch
                .ensure_tables(p.tables(), SCRATCH)
                .await
                .context("creating the scratch tables")?;
        }
        Ok(Self {
            scratch,
            projections,
            touched: BTreeMap::new(),
            findings: Findings::default(),
            projected: 0,
        })
    }

    /// Projects one decoded record.
    pub async fn feed(&mut self, input: &Projected) -> Result<()> {
        for (p, topics) in &self.projections {
            if !topics.contains(&input.topic) {
                continue;
            }
            let mut mutations = match p.project(input) {
                Ok(m) => m,
                Err(e) => {
                    // The projector dead-letters it: no row to expect.
                    self.findings.push(
                        Finding::new(
                            "unprojectable",
                            p.name(),
                            format!("the projection refuses this event: {e}"),
                        )
                        .at(&Position {
                            topic: input.topic.clone(),
                            partition: input.partition,
                            offset: input.offset,
                        }),
                    );
                    continue;
                }
            };
            for m in &mut mutations {
                m.generation = SCRATCH;
                let (MutationKind::Upsert(cells) | MutationKind::Delete(cells)) = &m.kind;
                let partition: Row = m
                    .table
                    .partition_key
                    .iter()
                    .filter_map(|c| Some((c.name.to_owned(), cells.get(c.name)?.clone())))
                    .collect();
                self.touched
                    .entry((p.name(), m.table.name))
                    .or_insert_with(|| (m.table, BTreeSet::new()))
                    .1
                    .insert(partition);
            }
            self.projected += 1;
            self.scratch
                .write(&mutations)
                .await
                .context("writing the scratch read store")?;
        }
        Ok(())
    }

    /// Compares the fold with `live`'s serving generations, every
    /// partition the fold wrote.
    pub async fn compare(&mut self, live: &dyn ReadStore) -> Result<Comparison> {
        let mut serving: BTreeMap<&'static str, u32> = BTreeMap::new();
        for (p, _) in &self.projections {
            let g = projectors::generations::serving(live, p.name()).await.context(
                "reading which table generations serve (have the projectors ever run on this read store? \
                 `quickstore projections status`; or pass --skip-read-models)",
            )?;
            serving.insert(p.name(), g);
        }
        let wanted: Vec<PartitionAt> = self
            .touched
            .iter()
            .flat_map(|((projection, name), (table, keys))| {
                let generation = serving.get(projection).copied().unwrap_or(SCRATCH);
                keys.iter().map(move |partition| PartitionAt {
                    table: *table,
                    name,
                    generation,
                    partition: partition.clone(),
                })
            })
            .collect();
        let mut comparison = Comparison::default();
        self.compare_into(live, wanted, &mut comparison).await?;
        Ok(comparison)
    }

    /// Compares again only the partitions that differed in `before` (after
    /// the fold was fed what the log appended meanwhile). A partition the
    /// live store cannot be read for now keeps its earlier difference: an
    /// outage must not pass for a match.
    pub async fn recompare(
        &mut self,
        live: &dyn ReadStore,
        before: &Comparison,
    ) -> Result<Comparison> {
        let mut comparison = Comparison {
            partitions: before.partitions,
            rows: before.rows,
            ..Comparison::default()
        };
        for earlier in &before.differing {
            let at = &earlier.at;
            let want = all_rows(&self.scratch, &at.table, SCRATCH, &at.partition).await?;
            let diffs = match all_rows(live, &at.table, at.generation, &at.partition).await {
                Ok(have) => diff(&at.table, &want, &have),
                Err(_) => earlier.diffs.clone(),
            };
            if !diffs.is_empty() {
                comparison.differing.push(DifferingPartition {
                    at: at.clone(),
                    diffs,
                });
            }
        }
        Ok(comparison)
    }

    async fn compare_into(
        &mut self,
        live: &dyn ReadStore,
        wanted: Vec<PartitionAt>,
        comparison: &mut Comparison,
    ) -> Result<()> {
        let mut unreadable: BTreeSet<&'static str> = BTreeSet::new();
        for at in wanted {
            if unreadable.contains(at.table.name) {
                continue;
            }
            let want = all_rows(&self.scratch, &at.table, SCRATCH, &at.partition).await?;
            let have = match all_rows(live, &at.table, at.generation, &at.partition).await {
                Ok(h) => h,
                Err(e) => {
                    self.findings.push(Finding::new(
                        "unreadable-table",
                        format!("{} generation {}", at.name, at.generation),
                        format!("{e:#}"),
                    ));
                    unreadable.insert(at.table.name);
                    continue;
                }
            };
            comparison.partitions += 1;
            comparison.rows += want.len();
            let diffs = diff(&at.table, &want, &have);
            if !diffs.is_empty() {
                comparison.differing.push(DifferingPartition { at, diffs });
            }
        }
        Ok(())
    }

    /// The verdict: `last` is the final comparison, `first` the first one
    /// (rows that differed there and matched later were written by events
    /// appended during the check, see [`Comparison`]).
    pub fn report(
        self,
        first: &Comparison,
        last: &Comparison,
        followed: std::time::Duration,
    ) -> InvariantReport {
        let mut findings = self.findings;
        let mut per_table: BTreeMap<&'static str, usize> = BTreeMap::new();
        for d in &last.differing {
            for (kind, key, detail) in &d.diffs {
                let shown = per_table.entry(d.at.name).or_default();
                *shown += 1;
                if *shown <= PER_TABLE {
                    findings.push(Finding::new(
                        kind,
                        format!("{}_g{} {key}", d.at.name, d.at.generation),
                        detail.clone(),
                    ));
                }
            }
        }
        let differing = last.differing_rows();
        let caught_up = first.differing_rows().saturating_sub(differing);
        let mut report = InvariantReport::new(
            NAME,
            counts([
                ("tables", n(self.touched.len())),
                (
                    "events_projected",
                    i64::try_from(self.projected).unwrap_or(i64::MAX),
                ),
                ("partitions", n(last.partitions)),
                ("rows", n(last.rows)),
                ("differing_rows", n(differing)),
                ("matched_after_following_the_log", n(caught_up)),
            ]),
            findings,
        );
        // Only the first rows per table are kept as findings; all count.
        if differing > 0 {
            report.ok = false;
            report.findings_total = report.findings_total.max(differing as u64);
        }
        if caught_up > 0 {
            report = report.note(format!(
                "{caught_up} row(s) differed at first and matched after the log's new events were folded \
                 ({:.1} s): the system was still moving (e.g. a saga deadline fired during the check)",
                followed.as_secs_f64()
            ));
        }
        for (name, count) in per_table {
            report = report.note(format!("{name}: {count} differing row(s)"));
        }
        report
    }
}

/// One partition of one table, where the live store serves it.
#[derive(Debug, Clone)]
pub struct PartitionAt {
    table: TableDef,
    name: &'static str,
    generation: u32,
    partition: Row,
}

/// A partition whose rows differ, and how.
#[derive(Debug, Clone)]
pub struct DifferingPartition {
    at: PartitionAt,
    diffs: Vec<(&'static str, String, String)>,
}

/// One comparison of the fold with the live store. On a system still
/// moving (a saga deadline firing, a late courier), a row can differ only
/// because the projector applied an event appended after the scan read
/// its topic; the checker then folds what was appended and compares those
/// partitions again, and only rows that still differ are findings.
#[derive(Debug, Default)]
pub struct Comparison {
    partitions: usize,
    rows: usize,
    differing: Vec<DifferingPartition>,
}

impl Comparison {
    pub fn differing_rows(&self) -> usize {
        self.differing.iter().map(|d| d.diffs.len()).sum()
    }
}

/// Every row of one partition, nulls dropped.
async fn all_rows(
    store: &dyn ReadStore,
    table: &TableDef,
    generation: u32,
    partition: &Row,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    let mut page = None;
    loop {
        let next = store
            .scan(table, generation, partition, page.as_ref(), PAGE)
            .await
            .with_context(|| format!("reading {} generation {generation}", table.name))?;
        out.extend(next.rows.into_iter().map(|r| {
            r.into_iter()
                .filter(|(_, v)| *v != Value::Null)
                .collect::<Row>()
        }));
        match next.next {
            Some(t) => page = Some(t),
            None => return Ok(out),
        }
    }
}

fn key_of(table: &TableDef, row: &Row) -> Row {
    table
        .key_columns()
        .filter_map(|c| Some((c.name.to_owned(), row.get(c.name)?.clone())))
        .collect()
}

/// Cells as `name=value`, at most about 300 characters.
fn show(row: &Row) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|(k, v)| format!("{k}={}", cell(v)))
        .collect();
    let all = cells.join(" ");
    if all.chars().count() > 300 {
        format!("{}…", all.chars().take(300).collect::<String>())
    } else {
        all
    }
}

/// The row without its key cells (the finding names the key).
fn rest(table: &TableDef, row: &Row) -> Row {
    row.iter()
        .filter(|(k, _)| !table.is_key_column(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Text(s) if s.chars().count() > 60 => {
            format!("{:?}…", s.chars().take(60).collect::<String>())
        }
        Value::Text(s) => format!("{s:?}"),
        Value::BigInt(i) | Value::Timestamp(i) => i.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Blob(b) => format!(
            "0x{}",
            hex::encode(b.get(..b.len().min(16)).unwrap_or_default())
        ),
    }
}

/// What differs between the fold's rows and the store's, by key.
fn diff(table: &TableDef, want: &[Row], have: &[Row]) -> Vec<(&'static str, String, String)> {
    let want: BTreeMap<Row, &Row> = want.iter().map(|r| (key_of(table, r), r)).collect();
    let have: BTreeMap<Row, &Row> = have.iter().map(|r| (key_of(table, r), r)).collect();
    let mut out = Vec::new();
    for (key, w) in &want {
        match have.get(key) {
            None => out.push((
                "missing-row",
                show(key),
                format!("the events give {}", show(&rest(table, w))),
            )),
            Some(h) if h != w => {
                let changed: Vec<String> = w
                    .keys()
                    .chain(h.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|c| w.get(*c) != h.get(*c))
                    .map(|c| {
                        format!(
                            "{c}: store {} ≠ events {}",
                            h.get(c).map_or("absent".into(), cell),
                            w.get(c).map_or("absent".into(), cell)
                        )
                    })
                    .collect();
                out.push(("changed-row", show(key), changed.join("; ")));
            }
            Some(_) => {}
        }
    }
    for (key, h) in &have {
        if !want.contains_key(key) {
            out.push((
                "extra-row",
                show(key),
                format!("no event wrote {}", show(&rest(table, h))),
            ));
        }
    }
    out
}
