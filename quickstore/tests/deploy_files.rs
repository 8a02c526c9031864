//! The deployment files (docker-compose.yml, the Helm chart) name settings
//! and topics the code defines elsewhere; a typo there would be silently
//! ignored by the services (an unknown `QS_` variable is not an error), so
//! these tests hold the two together. The files' own validity (Compose
//! Specification, Kubernetes schemas) is checked by
//! deploy/tools/validate-deploy.sh in the README test command.
#![allow(clippy::expect_used, clippy::panic, reason = "test code")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every `QS_NAME` token in `text`.
fn qs_variables(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("QS_") {
        let start = i + at;
        let mut end = start + 3;
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        // `${QS_X:-…}` in compose and `QS_X:` in the chart alike.
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if end > start + 3 && !preceded_by_word {
            found.insert(text[start..end].to_owned());
        }
        i = end;
    }
    found
}

fn deployment_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("docker-compose.yml")];
    let templates = root.join("deploy/helm/quickstore/templates");
    for entry in std::fs::read_dir(&templates).expect("chart templates") {
        files.push(entry.expect("entry").path());
    }
    files.push(root.join("deploy/helm/quickstore/values.yaml"));
    files
}

/// Variables the files may use that are not settings: the image and
/// compose's own knobs, and tool-level ones.
const NOT_SETTINGS: &[&str] = &["QS_IMAGE"];

#[test]
fn every_qs_variable_in_the_deployment_files_is_a_setting() {
    let settings = serde_json::to_value(platform::config::Settings::default()).expect("settings");
    let known: BTreeSet<String> = settings
        .as_object()
        .expect("settings serialize as an object")
        .keys()
        .map(|k| format!("QS_{}", k.to_uppercase()))
        .collect();
    let mut unknown = Vec::new();
    for file in deployment_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        for var in qs_variables(&text) {
            if !known.contains(&var) && !NOT_SETTINGS.contains(&var.as_str()) {
                unknown.push(format!("{var} in {}", file.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "variables that are no setting (see platform/src/config.rs): {unknown:#?}"
    );
}

#[test]
fn the_charts_topic_list_is_the_codes() {
    // The chart's `quickstore.topics` helper lists names by hand (templates
    // cannot call the code); compare with what the system creates.
    let helpers =
        std::fs::read_to_string(repo().join("deploy/helm/quickstore/templates/_helpers.tpl"))
            .expect("helpers");
    let list = |marker: &str| -> Vec<String> {
        let line = helpers
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("no line with {marker} in _helpers.tpl"));
        let inner = &line[line.find("list ").expect("a list") + 5..];
        inner
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s.to_owned())
            .collect()
    };
    let contexts = list("range $ctx := list");
    let code_contexts: Vec<String> = schemas::Context::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(
        contexts, code_contexts,
        "contexts in the chart vs schemas::Context::ALL"
    );
    let projections = list("range $projection := list");
    let code_projections: Vec<String> = projectors::projections::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(
        projections, code_projections,
        "projections in the chart vs the code"
    );
}
