//! [`EmbeddedRegistry`]: the schema registry in-process, with Confluent's
//! subject/version/id semantics, optionally persisted to one JSON file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use apache_avro::Schema;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{compat, CompatibilityLevel, RegistryError, SchemaRegistry, SubjectVersion};

/// Name of the file in the data directory.
pub const FILE_NAME: &str = "schema-registry.json";

/// An in-process schema registry. Thread-safe; cheap to share in an `Arc`.
///
/// With [`EmbeddedRegistry::open`] every change is written to
/// `<data_dir>/schema-registry.json` atomically (temp file, fsync, rename)
/// before it becomes visible, so ids survive restarts of `quickstore dev`.
#[derive(Debug)]
pub struct EmbeddedRegistry {
    state: Mutex<State>,
    file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    global_compatibility: CompatibilityLevel,
    #[serde(default)]
    subject_compatibility: BTreeMap<String, CompatibilityLevel>,
    /// Global id -> schema text as first registered.
    #[serde(default)]
    schemas: BTreeMap<u32, String>,
    /// Subject -> the schema id of each version (version n at index n-1).
    #[serde(default)]
    subjects: BTreeMap<String, Vec<u32>>,
    /// Normalized schema -> global id (rebuilt on load).
    #[serde(skip)]
    by_normalized: HashMap<String, u32>,
}

/// The identity of a schema: its parsed form serialized back (whitespace,
/// key order and inlining style do not matter; defaults and docs do).
fn normalize(schema: &Schema) -> Result<String, RegistryError> {
    serde_json::to_string(schema).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

fn parse(schema: &str) -> Result<Schema, RegistryError> {
    Schema::parse_str(schema).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

impl State {
    fn level_for(&self, subject: &str) -> CompatibilityLevel {
        self.subject_compatibility
            .get(subject)
            .copied()
            .unwrap_or(self.global_compatibility)
    }

    fn ids(&self, subject: &str) -> Result<&Vec<u32>, RegistryError> {
        self.subjects
            .get(subject)
            .filter(|ids| !ids.is_empty())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))
    }

    fn schema_text(&self, id: u32) -> Result<&String, RegistryError> {
        self.schemas
            .get(&id)
            .ok_or(RegistryError::SchemaNotFound(id))
    }

    fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion, RegistryError> {
        let ids = self.ids(subject)?;
        let id = version
            .checked_sub(1)
            .and_then(|i| ids.get(i as usize))
            .copied()
            .ok_or_else(|| RegistryError::VersionNotFound {
                subject: subject.to_owned(),
                version,
            })?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version,
            id,
            schema: self.schema_text(id)?.clone(),
        })
    }

    fn previous_schemas(&self, subject: &str) -> Result<Vec<Schema>, RegistryError> {
        match self.subjects.get(subject) {
            None => Ok(Vec::new()),
            Some(ids) => ids
                .iter()
                .map(|id| self.schema_text(*id).and_then(|s| parse(s)))
                .collect(),
        }
    }

    fn rebuild_index(&mut self) -> Result<(), RegistryError> {
        self.by_normalized.clear();
        for (id, text) in &self.schemas {
            let norm = normalize(&parse(text)?)?;
            self.by_normalized.entry(norm).or_insert(*id);
        }
        Ok(())
    }
}

impl Default for EmbeddedRegistry {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl EmbeddedRegistry {
    /// A registry that lives only in memory.
    pub fn in_memory() -> Self {
        Self {
            state: Mutex::new(State::default()),
            file: None,
        }
    }

    /// A registry persisted in `data_dir` (created if missing); loads the
    /// existing file if there is one.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, RegistryError> {
        let dir = data_dir.as_ref();
        fs::create_dir_all(dir)
            .map_err(|e| RegistryError::Storage(format!("create {}: {e}", dir.display())))?;
        let file = dir.join(FILE_NAME);
        let mut state = match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .map_err(|e| RegistryError::Storage(format!("{}: {e}", file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(RegistryError::Storage(format!("{}: {e}", file.display()))),
        };
        state.rebuild_index()?;
        Ok(Self {
            state: Mutex::new(state),
            file: Some(file),
        })
    }

    /// The file the registry is persisted to, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `state` atomically: temp file in the same directory, fsync, rename, fsync dir.
    fn persist(&self, state: &State) -> Result<(), RegistryError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let storage = |what: &str, e: std::io::Error| {
            RegistryError::Storage(format!("{what} {}: {e}", file.display()))
        };
        let json =
            serde_json::to_vec_pretty(state).map_err(|e| RegistryError::Storage(e.to_string()))?;
        let tmp = file.with_extension(format!("json.tmp-{}", std::process::id()));
        let mut out = fs::File::create(&tmp).map_err(|e| storage("create temp file for", e))?;
        out.write_all(&json).map_err(|e| storage("write", e))?;
        out.sync_all().map_err(|e| storage("fsync", e))?;
        drop(out);
        fs::rename(&tmp, file).map_err(|e| storage("rename temp file to", e))?;
        if let Some(dir) = file.parent() {
            // Makes the rename durable; not supported everywhere, so best effort.
            if let Ok(dir) = fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    /// Applies `change` to a copy of the state, persists it, then makes it visible.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut state = self.lock();
        let mut next = state.clone();
        let out = change(&mut next)?;
        self.persist(&next)?;
        *state = next;
        Ok(out)
    }
}

#[async_trait]
impl SchemaRegistry for EmbeddedRegistry {
    async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let parsed = parse(schema)?;
        let norm = normalize(&parsed)?;
        {
            let state = self.lock();
            if let Some(id) = state.by_normalized.get(&norm) {
                if state
                    .subjects
                    .get(subject)
                    .is_some_and(|ids| ids.contains(id))
                {
                    return Ok(*id);
                }
            }
        }
        self.update(|state| {
            // Checked again under the same lock as the change.
            if let Some(id) = state.by_normalized.get(&norm) {
                if state
                    .subjects
                    .get(subject)
                    .is_some_and(|ids| ids.contains(id))
                {
                    return Ok(*id);
                }
            }
            let previous = state.previous_schemas(subject)?;
            compat::check(state.level_for(subject), &parsed, &previous).map_err(|reason| {
                RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    reason,
                }
            })?;
            let id = match state.by_normalized.get(&norm) {
                Some(id) => *id,
                None => {
                    let id = state.schemas.keys().next_back().map_or(1, |max| max + 1);
                    state.schemas.insert(id, schema.to_owned());
                    state.by_normalized.insert(norm.clone(), id);
                    id
                }
            };
            state
                .subjects
                .entry(subject.to_owned())
                .or_default()
                .push(id);
            Ok(id)
        })
    }

    async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        self.lock().schema_text(id).cloned()
    }

    async fn latest(&self, subject: &str) -> Result<SubjectVersion, RegistryError> {
        let state = self.lock();
        let latest = state.ids(subject)?.len() as u32;
        state.version(subject, latest)
    }

    async fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let state = self.lock();
        Ok((1..=state.ids(subject)?.len() as u32).collect())
    }

    async fn version(&self, subject: &str, version: u32) -> Result<SubjectVersion, RegistryError> {
        self.lock().version(subject, version)
    }

    async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self
            .lock()
            .subjects
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(s, _)| s.clone())
            .collect())
    }

    async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        self.update(|state| {
            match subject {
                Some(subject) => {
                    state
                        .subject_compatibility
                        .insert(subject.to_owned(), level);
                }
                None => state.global_compatibility = level,
            }
            Ok(())
        })
    }

    async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> Result<CompatibilityLevel, RegistryError> {
        let state = self.lock();
        Ok(match subject {
            Some(subject) => state.level_for(subject),
            None => state.global_compatibility,
        })
    }

    async fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<bool, RegistryError> {
        let parsed = parse(schema)?;
        let state = self.lock();
        let previous = state.previous_schemas(subject)?;
        let Some(latest) = previous.last() else {
            return Ok(true);
        };
        let level = state.level_for(subject);
        Ok(compat::check(level, &parsed, std::slice::from_ref(latest)).is_ok())
    }
}
