//! docs/audit.md is true to the code: every `quickstore …` line of its
//! `sh` blocks runs against a real `quickstore dev` shop (the binary, an
//! embedded data directory) and succeeds, its output starts the way the
//! page's example does; and the page's recipe for checking a record with
//! standard tools (the bytes, a SHA-256) holds for every real event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use platform::eventlog::embedded::{EmbeddedLog, EmbeddedOptions};
use schemas::registry::EmbeddedRegistry;
use schemas::{AnyEvent, AvroCodec, Context, TopicNames};
use sha2::{Digest, Sha256};

fn quickstore(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
    for (key, _) in std::env::vars() {
        if key.starts_with("QS_") {
            command.env_remove(key);
        }
    }
    command.env("QS_DATA_DIR", data_dir).stdin(Stdio::null());
    command
}

/// (command line, first line of the example output right after it — a
/// `text` block with no prose between — if any).
fn documented_commands(page: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut block: Option<String> = None;
    let mut first_in_block = false;
    let mut after_sh = false;
    for line in page.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            block = match block.take() {
                Some(closed) => {
                    after_sh = closed == "sh";
                    None
                }
                None => {
                    first_in_block = after_sh;
                    Some(lang.to_owned())
                }
            };
            continue;
        }
        if block.is_none() && !trimmed.is_empty() {
            after_sh = false;
        }
        match block.as_deref() {
            Some("sh") if trimmed.starts_with("quickstore ") => {
                out.push((trimmed.to_owned(), None));
            }
            Some("text") if first_in_block => {
                first_in_block = false;
                if let Some(last) = out.last_mut() {
                    if last.1.is_none() {
                        last.1 = Some(trimmed.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_command_of_docs_audit_md_runs_and_the_recipe_holds() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/audit.md"))
            .expect("docs/audit.md");
    let commands = documented_commands(&page);
    assert!(commands.len() >= 5, "too few commands found: {commands:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = quickstore(dir.path())
        .args(["dev", "--once", "--listen", "127.0.0.1:0"])
        // Any free port: other suites on this machine may hold 8090.
        .env("QS_QUERY_API_LISTEN", "127.0.0.1:0")
        .output()
        .expect("dev runs");
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );

    for (line, example) in &commands {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = quickstore(dir.path()).args(&args).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`{line}` failed ({:?}):\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.trim().is_empty(), "`{line}` printed nothing");
        if let Some(example) = example {
            let want = example.split_whitespace().next().unwrap_or_default();
            let got = stdout.split_whitespace().next().unwrap_or_default();
            assert_eq!(
                got, want,
                "`{line}`: the page's example starts otherwise:\n{stdout}"
            );
        }
    }

    // The standard-tools recipe, on every real event of the shop.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = EmbeddedLog::open(&dir.path().join("log"), EmbeddedOptions::default()).unwrap();
        let registry = Arc::new(EmbeddedRegistry::open(dir.path().join("registry")).unwrap());
        let codec = AvroCodec::new(registry);
        let topics = TopicNames::default();
        let mut checked = 0;
        for context in Context::ALL {
            let records = platform::eventlog::read_topic(&log, &topics.events(context))
                .await
                .unwrap();
            for record in records {
                let value = record.value.unwrap();
                // Step 2: any Avro reader gives prev_hash and hash.
                let (envelope, _) = codec.decode_event::<AnyEvent>(&value).await.unwrap();
                // Step 3: the body with the hash made empty.
                let body = &value[5..];
                let mut field = vec![0x40];
                field.extend_from_slice(&envelope.hash);
                let at = body
                    .windows(field.len())
                    .position(|w| w == field.as_slice())
                    .expect("the hash field is in the body");
                let mut canonical = body[..at].to_vec();
                canonical.push(0x00);
                canonical.extend_from_slice(&body[at + field.len()..]);
                // Step 4.
                let mut sha = Sha256::new();
                sha.update(&envelope.prev_hash);
                sha.update(&canonical);
                assert_eq!(sha.finalize().as_slice(), envelope.hash.as_slice());
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} events checked");
    });
}
