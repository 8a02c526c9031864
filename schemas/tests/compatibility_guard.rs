//! The compatibility guard: every published version of every record is kept
//! in `avro/history/<full.Name>/v<N>.avsc` (the fully inlined schema, as
//! registered), and
//!
//! (a) the current schema must be BACKWARD_TRANSITIVE compatible with every
//!     version in history (today's consumers read every event ever written:
//!     event topics keep data forever), and
//! (b) the current schema must equal the latest version in history, so every
//!     change is reviewed and recorded.
//!
//! After checking a change, record it with
//! `QS_SCHEMAS_BLESS=1 cargo test -p schemas --test compatibility_guard`:
//! the current schema is written as the next version (an incompatible one
//! is refused).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use schemas::contract;
use schemas::registry::{compat, CompatibilityLevel};
use serde_json::Value as Json;

fn history_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("avro")
        .join("history")
}

/// `(N, path)` of every `v<N>.avsc` in `dir`, by N.
fn versions(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix('v')?
                .strip_suffix(".avsc")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    out.sort();
    out
}

/// The guard's rule: `current` must read data written with every version.
fn guard(current: &Schema, history: &[Schema]) -> Result<(), String> {
    compat::check(CompatibilityLevel::BackwardTransitive, current, history)
}

#[test]
fn every_schema_is_compatible_with_and_recorded_in_its_history() {
    let bless = std::env::var("QS_SCHEMAS_BLESS").is_ok_and(|v| v == "1");
    let root = history_root();
    let mut failures = Vec::new();
    let mut blessed = Vec::new();

    for def in contract::subject_defs() {
        let current = contract::schema(def.full_name).unwrap();
        let dir = root.join(def.full_name);
        let versions = versions(&dir);
        let history: Vec<Schema> = versions
            .iter()
            .map(|(_, p)| {
                Schema::parse_str(&fs::read_to_string(p).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            })
            .collect();
        if let Err(e) = guard(current, &history) {
            failures.push(format!(
                "{}: the current schema is not BACKWARD_TRANSITIVE compatible with its published versions \
                 (it must read every event ever written): {e}",
                def.full_name
            ));
            continue;
        }
        let current_json: Json = serde_json::from_str(def.schema_json).unwrap();
        let latest_json: Option<Json> = versions
            .last()
            .map(|(_, p)| serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap());
        if latest_json.as_ref() == Some(&current_json) {
            continue;
        }
        let next = versions.last().map_or(1, |(n, _)| n + 1);
        let path = dir.join(format!("v{next}.avsc"));
        if bless {
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                &path,
                serde_json::to_string_pretty(&current_json).unwrap() + "\n",
            )
            .unwrap();
            blessed.push(path.display().to_string());
        } else {
            failures.push(format!(
                "{}: the current schema differs from its latest published version{} — check that the change is \
                 compatible, then run with QS_SCHEMAS_BLESS=1 (`QS_SCHEMAS_BLESS=1 cargo test -p schemas --test \
                 compatibility_guard`) to record it as {}",
                def.full_name,
                versions
                    .last()
                    .map(|(_, p)| format!(" ({})", p.display()))
                    .unwrap_or_else(|| " (none yet)".into()),
                path.display()
            ));
        }
    }

    // A published record never leaves the contract: its events stay in the log forever.
    if let Ok(entries) = fs::read_dir(&root) {
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if contract::def(&name).is_none_or(|d| !d.is_subject()) {
                failures.push(format!(
                    "{name} was published (avro/history/{name}) but is no longer in the contract: \
                     records on the log are kept forever, so their schemas must stay"
                ));
            }
        }
    }

    for path in &blessed {
        eprintln!("recorded {path}");
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

fn current_json(full_name: &str) -> Json {
    serde_json::from_str(contract::def(full_name).unwrap().schema_json).unwrap()
}

fn parse(json: &Json) -> Schema {
    Schema::parse(json).unwrap()
}

fn fields(json: &mut Json) -> &mut Vec<Json> {
    json["fields"].as_array_mut().unwrap()
}

#[test]
fn the_guard_catches_breaking_changes() {
    let name = "com.quickstore.catalog.ProductCreated";
    let published = current_json(name);
    let history = [parse(&published)];
    assert_eq!(guard(&parse(&published), &history), Ok(()));

    // A new field WITHOUT a default: old events lack it -> refused.
    let mut breaking = published.clone();
    fields(&mut breaking).push(serde_json::json!({"name": "weight_grams", "type": "int"}));
    let err = guard(&parse(&breaking), &history).unwrap_err();
    assert!(err.contains("version 1"), "{err}");

    // The same field WITH a default is fine.
    let mut additive = published.clone();
    fields(&mut additive)
        .push(serde_json::json!({"name": "weight_grams", "type": "int", "default": 0}));
    assert_eq!(guard(&parse(&additive), &history), Ok(()));

    // Changing a field's type is refused.
    let mut retyped = published.clone();
    for f in fields(&mut retyped) {
        if f["name"] == "price_minor" {
            f["type"] = serde_json::json!("string");
        }
    }
    assert!(guard(&parse(&retyped), &history).is_err());

    // Making a required field optional (null-first union with default) is fine;
    // the reverse is not (old data may hold null).
    let mut optional = published.clone();
    for f in fields(&mut optional) {
        if f["name"] == "category" {
            f["type"] = serde_json::json!(["null", "string"]);
            f["default"] = Json::Null;
        }
    }
    assert_eq!(guard(&parse(&optional), &history), Ok(()));
    let mut required = published.clone();
    for f in fields(&mut required) {
        if f["name"] == "description" {
            f["type"] = serde_json::json!("string");
            f.as_object_mut().unwrap().remove("default");
        }
    }
    assert!(guard(&parse(&required), &history).is_err());

    // Transitive: a change compatible with the latest version but not with
    // an older one is refused.
    let v2 = parse(&additive);
    let mut v3 = additive.clone();
    for f in fields(&mut v3) {
        if f["name"] == "weight_grams" {
            f.as_object_mut().unwrap().remove("default");
        }
    }
    assert_eq!(
        compat::check(
            CompatibilityLevel::Backward,
            &parse(&v3),
            std::slice::from_ref(&v2)
        ),
        Ok(())
    );
    assert!(guard(&parse(&v3), &[history[0].clone(), v2]).is_err());

    // Removing an enum symbol breaks readers of old events that hold it.
    let roles = "com.quickstore.customers.RoleGranted";
    let published = current_json(roles);
    let mut fewer = published.clone();
    for f in fields(&mut fewer) {
        if f["name"] == "role" {
            let symbols = f["type"]["symbols"].as_array_mut().unwrap();
            symbols.retain(|s| s != "AUDITOR");
        }
    }
    assert!(guard(&parse(&fewer), &[parse(&published)]).is_err());
}

#[test]
fn the_history_covers_every_record() {
    for def in contract::subject_defs() {
        let dir = history_root().join(def.full_name);
        assert!(
            !versions(&dir).is_empty(),
            "{} has no published version in {} (run with QS_SCHEMAS_BLESS=1)",
            def.full_name,
            dir.display()
        );
    }
}
