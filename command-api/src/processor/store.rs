//! The processor's local aggregate store: one redb file on disk with a
//! bounded LRU cache in front, so memory does not grow with the number of
//! aggregates (DESIGN.md, ADR 0020).
//!
//! The store is only ever a *cache of the log*: the snapshot changelog and
//! the events are the truth. A partition's table is wiped when the
//! partition is assigned and rebuilt by the restore, written only after a
//! log transaction committed, and dropped when the partition is revoked or
//! the processor recovers. So the file is scratch: each processor run gets
//! a fresh directory (removed when the run ends; one left behind by a
//! crashed run is removed by the next run in the same state directory),
//! never needs fsync for safety, and a lost or stale disk costs a restore,
//! never data.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::partition::AggregateEntry;
use crate::aggregate::Aggregate;

/// Where and how big: from [`super::ProcessorConfig`].
#[derive(Debug, Clone)]
pub(crate) struct StoreSettings {
    /// The state directory; this run's file goes in a fresh subdirectory
    /// `<context>/<instance>-<pid>-<nonce>` of it.
    pub root: PathBuf,
    pub context: String,
    pub instance: String,
    /// Aggregates kept decoded in memory, across every owned partition.
    pub cache_aggregates: usize,
    /// redb's own page cache.
    pub page_cache_bytes: usize,
}

/// The local disk failed us (I/O, a full disk). Not recoverable in place:
/// the processor stops and its restart restores into a fresh directory.
#[derive(Debug, thiserror::Error)]
#[error("local aggregate store in {dir}: {reason}")]
pub struct StoreError {
    dir: String,
    reason: String,
}

/// Non-durable commits are cheap; redb keeps some bookkeeping in memory
/// until a durable one, so one commit in this many is made durable.
const DURABLE_EVERY: u32 = 64;

/// A lock file held for the life of the run: a directory whose lock is
/// free belongs to a run that is gone.
const LOCK_FILE: &str = "lock";

pub(crate) struct AggregateStore<A> {
    settings: StoreSettings,
    /// Opened on first use (opening can fail; constructing cannot).
    open: Option<OpenStore>,
    cache: Lru<A>,
    /// Partitions that have a table, so `forget_all` knows what to drop.
    tables: HashSet<i32>,
    commits: u32,
}

struct OpenStore {
    db: Database,
    dir: PathBuf,
    _lock: File,
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        // Scratch: nothing in it outlives the run. (Unlinking an open file
        // is fine on Unix; the handle goes right after.)
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<A> std::fmt::Debug for AggregateStore<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateStore")
            .field(
                "dir",
                &self.open.as_ref().map(|o| o.dir.display().to_string()),
            )
            .field("cached", &self.cache.len())
            .field("tables", &self.tables)
            .finish()
    }
}

fn table_name(partition: i32) -> String {
    format!("aggregates/p{partition}")
}

impl<A: Aggregate> AggregateStore<A> {
    pub fn new(settings: StoreSettings) -> Self {
        let capacity = settings.cache_aggregates;
        Self {
            settings,
            open: None,
            cache: Lru::new(capacity),
            tables: HashSet::new(),
            commits: 0,
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError {
            dir: self
                .open
                .as_ref()
                .map(|o| o.dir.display().to_string())
                .unwrap_or_else(|| self.settings.root.display().to_string()),
            reason: reason.to_string(),
        }
    }

    fn db(&mut self) -> Result<&Database, StoreError> {
        if self.open.is_none() {
            let open = open_fresh(&self.settings).map_err(|reason| self.error(reason))?;
            self.open = Some(open);
        }
        match &self.open {
            Some(open) => Ok(&open.db),
            None => Err(self.error("not open")),
        }
    }

    /// The aggregate as last committed, or `None` if it has no events.
    pub fn get(
        &mut self,
        partition: i32,
        id: &str,
    ) -> Result<Option<AggregateEntry<A>>, StoreError> {
        let key = (partition, id.to_owned());
        if let Some(entry) = self.cache.get(&key) {
            return Ok(Some(entry.clone()));
        }
        let found = self.load(partition, id)?;
        if let Some(entry) = &found {
            self.cache_entries(partition, vec![(key.1, entry.clone())], false)?;
        }
        Ok(found)
    }

    /// Reads the disk only (restore: no point filling the cache).
    pub fn load(
        &mut self,
        partition: i32,
        id: &str,
    ) -> Result<Option<AggregateEntry<A>>, StoreError> {
        if !self.tables.contains(&partition) {
            return Ok(None);
        }
        let name = table_name(partition);
        let bytes = {
            let db = self.db()?;
            let read = || -> Result<Option<Vec<u8>>, redb::Error> {
                let txn = db.begin_read()?;
                let table = match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                Ok(table.get(id)?.map(|v| v.value().to_vec()))
            };
            read().map_err(|e| e.to_string())
        };
        let bytes = bytes.map_err(|e| self.error(e))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => decode::<A>(&bytes)
                .map(Some)
                .map_err(|e| self.error(format!("entry of {id} does not decode: {e}"))),
        }
    }

    /// Writes what a restore rebuilt: to disk now, and into the cache.
    pub fn put(
        &mut self,
        partition: i32,
        entries: Vec<(String, AggregateEntry<A>)>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write_entries(partition, &entries)?;
        self.cache_entries(partition, entries, false)
    }

    /// Keeps what a committed transaction decided. *Write-back*: it goes
    /// into the cache, and to disk only when the cache evicts it — so an
    /// aggregate that changes several times while it is hot (an order
    /// through its saga, a busy stock item) is written once, and a working
    /// set that fits the cache is never written at all. Safe because the
    /// file is scratch (module docs): what a crash loses the restore
    /// rebuilds, and every read asks the cache first. Without a cache
    /// (`cache_aggregates` 0) it is evicted, so written, at once.
    pub fn put_committed(
        &mut self,
        partition: i32,
        entries: Vec<(String, AggregateEntry<A>)>,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.cache_entries(partition, entries, true)
    }

    /// Caches `entries`, then writes the changed ones the cache evicted.
    fn cache_entries(
        &mut self,
        partition: i32,
        entries: Vec<(String, AggregateEntry<A>)>,
        changed: bool,
    ) -> Result<(), StoreError> {
        let mut evicted: BTreeMap<i32, Vec<(String, AggregateEntry<A>)>> = BTreeMap::new();
        for (id, entry) in entries {
            for ((p, id), entry) in self.cache.put((partition, id), entry, changed) {
                evicted.entry(p).or_default().push((id, entry));
            }
        }
        for (p, entries) in evicted {
            self.write_entries(p, &entries)?;
        }
        Ok(())
    }

    fn write_entries(
        &mut self,
        partition: i32,
        entries: &[(String, AggregateEntry<A>)],
    ) -> Result<(), StoreError> {
        let encoded: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(id, e)| encode(e).map(|bytes| (id.as_str(), bytes)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(format!("state does not serialise: {e}")))?;
        self.write(partition, |table| {
            for (id, bytes) in &encoded {
                table.insert(*id, bytes.as_slice())?;
            }
            Ok(())
        })
    }

    /// Restore step 1: keeps, per aggregate, the highest snapshot version
    /// (the changelog may still hold older snapshots of it).
    pub fn merge_snapshots(
        &mut self,
        partition: i32,
        snapshots: &HashMap<String, (i64, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.write(partition, |table| {
            for (id, (version, bytes)) in snapshots {
                let older = match table.get(id.as_str())? {
                    Some(existing) => version_of(existing.value()) < *version,
                    None => true,
                };
                if older {
                    table.insert(id.as_str(), bytes.as_slice())?;
                }
            }
            Ok(())
        })
    }

    fn write(
        &mut self,
        partition: i32,
        body: impl FnOnce(
            &mut redb::Table<'_, &'static str, &'static [u8]>,
        ) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        self.commits = self.commits.wrapping_add(1);
        let durability = if self.commits.is_multiple_of(DURABLE_EVERY) {
            Durability::Immediate
        } else {
            Durability::None
        };
        let name = table_name(partition);
        let result = {
            let db = self.db()?;
            let run = || -> Result<(), redb::Error> {
                let mut txn = db.begin_write()?;
                txn.set_durability(durability)?;
                {
                    let mut table = txn.open_table(TableDefinition::<&str, &[u8]>::new(&name))?;
                    body(&mut table)?;
                }
                txn.commit()?;
                Ok(())
            };
            run().map_err(|e| e.to_string())
        };
        result.map_err(|e| self.error(e))?;
        self.tables.insert(partition);
        Ok(())
    }

    /// Drops a partition's table and cached aggregates (revoked, or about
    /// to be restored from the log).
    pub fn forget(&mut self, partition: i32) -> Result<(), StoreError> {
        self.cache.retain(|(p, _)| *p != partition);
        if !self.tables.remove(&partition) {
            return Ok(());
        }
        let name = table_name(partition);
        let result = {
            let db = self.db()?;
            let run = || -> Result<(), redb::Error> {
                let mut txn = db.begin_write()?;
                txn.set_durability(Durability::None)?;
                txn.delete_table(TableDefinition::<&str, &[u8]>::new(&name))?;
                txn.commit()?;
                Ok(())
            };
            run().map_err(|e| e.to_string())
        };
        result.map_err(|e| self.error(e))
    }

    /// Drops everything (fenced, rewinding, recovering).
    pub fn forget_all(&mut self) -> Result<(), StoreError> {
        let partitions: Vec<i32> = self.tables.iter().copied().collect();
        for p in partitions {
            self.forget(p)?;
        }
        self.cache.retain(|_| false);
        Ok(())
    }

    /// How many aggregates a partition holds (for the restore's log line).
    pub fn count(&mut self, partition: i32) -> Result<u64, StoreError> {
        if !self.tables.contains(&partition) {
            return Ok(0);
        }
        let name = table_name(partition);
        let result = {
            let db = self.db()?;
            let run = || -> Result<u64, redb::Error> {
                let txn = db.begin_read()?;
                let table = txn.open_table(TableDefinition::<&str, &[u8]>::new(&name))?;
                Ok(table.len()?)
            };
            run().map_err(|e| e.to_string())
        };
        result.map_err(|e| self.error(e))
    }
}

/// A fresh directory for this run, after removing those of runs that are
/// gone (their lock file is free).
fn open_fresh(settings: &StoreSettings) -> Result<OpenStore, String> {
    let parent = settings.root.join(sanitise(&settings.context));
    std::fs::create_dir_all(&parent).map_err(|e| {
        format!(
            "creating {}: {e} (set QS_PROCESSOR_STATE_DIR to a writable directory)",
            parent.display()
        )
    })?;
    remove_abandoned(&parent);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = parent.join(format!(
        "{}-{}-{nonce}",
        sanitise(&settings.instance),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let lock = File::create(dir.join(LOCK_FILE)).map_err(|e| format!("lock file: {e}"))?;
    lock.try_lock()
        .map_err(|e| format!("locking {}: {e}", dir.display()))?;
    let db = Database::builder()
        .set_cache_size(settings.page_cache_bytes)
        .create(dir.join("aggregates.redb"))
        .map_err(|e| format!("creating the redb file: {e}"))?;
    Ok(OpenStore {
        db,
        dir,
        _lock: lock,
    })
}

/// Best effort: a directory we cannot remove now is retried next run.
fn remove_abandoned(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(lock) = File::open(dir.join(LOCK_FILE)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = lock.unlock();
            drop(lock);
            tracing::info!(dir = %dir.display(), "removing the aggregate store of a finished run");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `version (i64 LE) ‖ hash length (u16 LE) ‖ hash ‖ state JSON` — the
/// snapshot record's own fields, so a restored snapshot is stored without
/// re-encoding its state.
pub(crate) fn encode_raw(version: i64, last_hash: &[u8], state_json: &[u8]) -> Vec<u8> {
    let hash_len = u16::try_from(last_hash.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(10 + last_hash.len() + state_json.len());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&hash_len.to_le_bytes());
    out.extend_from_slice(&last_hash[..usize::from(hash_len)]);
    out.extend_from_slice(state_json);
    out
}

fn encode<A: Aggregate>(entry: &AggregateEntry<A>) -> Result<Vec<u8>, serde_json::Error> {
    let state = serde_json::to_vec(&entry.state)?;
    Ok(encode_raw(entry.version, &entry.last_hash, &state))
}

fn version_of(bytes: &[u8]) -> i64 {
    bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_le_bytes)
        .unwrap_or(i64::MIN)
}

fn decode<A: Aggregate>(bytes: &[u8]) -> Result<AggregateEntry<A>, String> {
    if bytes.len() < 10 {
        return Err(format!("{} bytes, too short", bytes.len()));
    }
    let version = version_of(bytes);
    let hash_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let hash = bytes
        .get(10..10 + hash_len)
        .ok_or_else(|| "hash cut short".to_owned())?;
    let state = serde_json::from_slice(&bytes[10 + hash_len..]).map_err(|e| e.to_string())?;
    Ok(AggregateEntry {
        state,
        version,
        last_hash: hash.to_vec(),
    })
}

/// Least-recently-used map: every read and write stamps the key with a new
/// tick; over capacity, the oldest tick goes. O(log n) per access. An entry
/// marked *changed* is not on disk yet: evicting it hands it back to be
/// written.
struct Lru<A> {
    capacity: usize,
    tick: u64,
    entries: HashMap<(i32, String), Cached<A>>,
    by_age: BTreeMap<u64, (i32, String)>,
}

struct Cached<A> {
    entry: AggregateEntry<A>,
    tick: u64,
    changed: bool,
}

impl<A> Lru<A> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&mut self, key: &(i32, String)) -> Option<&AggregateEntry<A>> {
        self.tick += 1;
        let tick = self.tick;
        let cached = self.entries.get_mut(key)?;
        self.by_age.remove(&cached.tick);
        cached.tick = tick;
        self.by_age.insert(tick, key.clone());
        Some(&cached.entry)
    }

    /// Caches `entry` (`changed`: not on disk yet, or newer than what is)
    /// and returns the changed entries evicted to make room.
    fn put(
        &mut self,
        key: (i32, String),
        entry: AggregateEntry<A>,
        changed: bool,
    ) -> Vec<((i32, String), AggregateEntry<A>)> {
        let mut evicted = Vec::new();
        if self.capacity == 0 {
            // Evicted as soon as cached.
            if changed {
                evicted.push((key, entry));
            }
            return evicted;
        }
        self.tick += 1;
        let tick = self.tick;
        let cached = Cached {
            entry,
            tick,
            changed,
        };
        // A replaced value needs no write: the new one supersedes it (a
        // clean new value was just read from or written to disk).
        if let Some(old) = self.entries.insert(key.clone(), cached) {
            self.by_age.remove(&old.tick);
        }
        self.by_age.insert(tick, key);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(gone) = self.entries.remove(&oldest) {
                if gone.changed {
                    evicted.push((oldest, gone.entry));
                }
            }
        }
        evicted
    }

    fn retain(&mut self, keep: impl Fn(&(i32, String)) -> bool) {
        self.entries.retain(|k, _| keep(k));
        self.by_age.retain(|_, k| keep(k));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use crate::testkit::counter::Counter;

    fn store(dir: &Path, cache: usize) -> AggregateStore<Counter> {
        AggregateStore::new(StoreSettings {
            root: dir.to_owned(),
            context: "counters".into(),
            instance: "test/0".into(),
            cache_aggregates: cache,
            page_cache_bytes: 1 << 20,
        })
    }

    fn entry(total: i64, version: i64) -> AggregateEntry<Counter> {
        AggregateEntry {
            state: Counter { total },
            version,
            last_hash: vec![u8::try_from(version).unwrap(); 32],
        }
    }

    #[test]
    fn evicted_aggregates_come_back_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), 3);
        let entries: Vec<_> = (0..10)
            .map(|i| (format!("c{i}"), entry(i, i + 1)))
            .collect();
        s.put(2, entries).unwrap();
        assert_eq!(s.cache.len(), 3);
        for i in 0..10 {
            let got = s.get(2, &format!("c{i}")).unwrap().unwrap();
            assert_eq!((got.state.total, got.version), (i, i + 1));
            assert_eq!(got.last_hash, vec![u8::try_from(i + 1).unwrap(); 32]);
        }
        assert!(s.get(2, "missing").unwrap().is_none());
        assert!(s.get(3, "c1").unwrap().is_none(), "partitions are apart");
        assert_eq!(s.count(2).unwrap(), 10);
    }

    #[test]
    fn committed_aggregates_reach_disk_when_evicted_and_come_back_as_last_put() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), 3);
        s.put_committed(2, vec![("hot".into(), entry(1, 1))])
            .unwrap();
        assert_eq!(s.count(2).unwrap(), 0, "write-back: nothing on disk yet");
        for i in 0..10 {
            s.put_committed(2, vec![(format!("c{i}"), entry(i, i + 1))])
                .unwrap();
            // `hot` changes while it is cached: only its last value counts.
            if i == 0 {
                s.put_committed(2, vec![("hot".into(), entry(7, 2))])
                    .unwrap();
            }
        }
        assert_eq!(s.cache.len(), 3);
        assert_eq!(s.count(2).unwrap(), 8, "evicted: hot and c0..c6");
        for i in 0..10 {
            let got = s.get(2, &format!("c{i}")).unwrap().unwrap();
            assert_eq!((got.state.total, got.version), (i, i + 1));
        }
        let hot = s.get(2, "hot").unwrap().unwrap();
        assert_eq!((hot.state.total, hot.version), (7, 2));
        // Read back from disk (clean) and evicted again: nothing lost.
        for i in 0..10 {
            s.get(2, &format!("c{i}")).unwrap().unwrap();
        }
        assert_eq!(s.get(2, "hot").unwrap().unwrap().version, 2);
    }

    #[test]
    fn without_a_cache_committed_aggregates_are_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), 0);
        s.put_committed(1, vec![("a".into(), entry(4, 4))]).unwrap();
        assert_eq!(s.count(1).unwrap(), 1);
        assert_eq!(s.get(1, "a").unwrap().unwrap().version, 4);
    }

    #[test]
    fn forgetting_a_partition_drops_disk_and_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), 100);
        s.put(0, vec![("a".into(), entry(1, 1))]).unwrap();
        s.put(1, vec![("b".into(), entry(2, 2))]).unwrap();
        s.forget(0).unwrap();
        assert!(s.get(0, "a").unwrap().is_none());
        assert!(s.get(1, "b").unwrap().is_some());
        s.forget_all().unwrap();
        assert!(s.get(1, "b").unwrap().is_none());
    }

    #[test]
    fn the_highest_snapshot_version_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), 0);
        let snap = |total: i64, version: i64| {
            (
                version,
                encode_raw(version, &[1], format!("{{\"total\":{total}}}").as_bytes()),
            )
        };
        s.merge_snapshots(0, &HashMap::from([("a".to_owned(), snap(5, 5))]))
            .unwrap();
        s.merge_snapshots(0, &HashMap::from([("a".to_owned(), snap(3, 3))]))
            .unwrap();
        assert_eq!(s.get(0, "a").unwrap().unwrap().version, 5);
        s.merge_snapshots(0, &HashMap::from([("a".to_owned(), snap(7, 7))]))
            .unwrap();
        let a = s.get(0, "a").unwrap().unwrap();
        assert_eq!((a.version, a.state.total), (7, 7));
    }

    #[test]
    fn a_run_directory_is_removed_at_the_end_and_abandoned_ones_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("counters");
        std::fs::create_dir_all(parent.join("crashed-1-1")).unwrap();
        std::fs::write(parent.join("crashed-1-1").join(LOCK_FILE), b"").unwrap();
        let mut s = store(dir.path(), 1);
        s.put(0, vec![("a".into(), entry(1, 1))]).unwrap();
        let names: Vec<_> = std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "the crashed run's directory is gone: {names:?}"
        );
        // A second live store beside it is not touched by the first.
        let mut other = store(dir.path(), 1);
        other.put(0, vec![("b".into(), entry(1, 1))]).unwrap();
        assert!(s.get(0, "a").unwrap().is_some());
        drop(s);
        drop(other);
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
    }
}
