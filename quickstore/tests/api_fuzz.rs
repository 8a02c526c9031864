//! Both HTTP APIs fuzzed from their own OpenAPI documents (issue 6: bad
//! input everywhere it can enter). A real `quickstore dev` (the embedded
//! twin, demo shop seeded) serves them; schemathesis (deploy/python's venv,
//! QS_PYTHON) generates requests from each `/openapi.json` — valid and
//! invalid bodies, parameters and headers — as the demo admin, with no
//! token and with a bad one, and checks every answer: no 5xx, and status
//! code, content type, headers and body as the document says.
//!
//! Deterministic (fixed seed), bounded (each run is killed after
//! `RUN_LIMIT`), and it counts: at least `MIN_REQUESTS` requests per API,
//! read back from schemathesis' HAR reports. A failure prints schemathesis'
//! report, which holds a `curl` line reproducing each failing request.
//! docs/adr/0017-bad-input.md says why and how to run it by hand.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a fuzz run that cannot start must fail loudly"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generated requests each API must have answered.
const MIN_REQUESTS: usize = 1_000;
/// The seed of every run: the same requests each time.
const SEED: &str = "20261206";
/// Upper bound of one schemathesis run.
const RUN_LIMIT: Duration = Duration::from_secs(420);
const DEMO_ADMIN: &str = "admin@quickstore.local";
const DEMO_PASSWORD: &str = "quickstore-demo";
/// What every answer is checked against.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// deploy/python's venv (QS_PYTHON from deploy/test.sh, or made now), with
/// schemathesis in it.
fn python() -> String {
    let python = match std::env::var("QS_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let out = Command::new(root().join("deploy/python/venv.sh"))
                .output()
                .expect("deploy/python/venv.sh runs");
            assert!(
                out.status.success(),
                "deploy/python/venv.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    let ok = Command::new(&python)
        .args(["-c", "import schemathesis"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} has no schemathesis: QS_PYTHON is an older venv; run `export QS_PYTHON=$(deploy/python/venv.sh)` (it installs deploy/python/requirements.txt)"
    );
    python
}

/// `quickstore dev` on free ports; stopped (SIGINT, then kill) on drop.
struct Dev {
    child: Child,
    command_api: String,
    query_api: String,
    _dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_quickstore"));
        for (key, _) in std::env::vars() {
            if key.starts_with("QS_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("QS_DATA_DIR", dir.path())
            .env("QS_QUERY_API_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .args(["dev", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("quickstore dev starts");
        let stdout = child.stdout.take().expect("stdout");
        // Read the URLs it prints; it says "Serving" once ready.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut command_api = None;
            let mut query_api = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let url = || line.split_whitespace().nth(2).map(str::to_owned);
                if line.starts_with("Command API") {
                    command_api = url();
                } else if line.starts_with("Query API") {
                    query_api = url();
                } else if line.starts_with("Serving") {
                    let _ = tx.send((command_api.take(), query_api.take()));
                }
            }
        });
        let (command_api, query_api) = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok((Some(c), Some(q))) => (c, q),
            other => {
                let _ = child.kill();
                panic!("quickstore dev did not come up with both URLs: {other:?}");
            }
        };
        Self {
            child,
            command_api,
            query_api,
            _dir: dir,
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn login(api: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{api}/auth/login"))
            .json(&serde_json::json!({"email": DEMO_ADMIN, "password": DEMO_PASSWORD}))
            .send()
            .await
            .expect("login answers");
        assert!(response.status().is_success(), "demo admin login failed");
        let body: serde_json::Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    })
}

/// One schemathesis run and what it saw.
struct Run {
    label: String,
    passed: bool,
    output: String,
    requests: usize,
    /// `METHOD url → status` of every 5xx answer.
    server_errors: Vec<String>,
    /// How many answers had each status.
    statuses: BTreeMap<u64, usize>,
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Bearer(&'a str),
    None,
    Invalid,
}

fn schemathesis(
    python: &str,
    base: &str,
    label: &str,
    auth: Auth<'_>,
    max_examples: u32,
    exclude: &[&str],
    reports: &Path,
) -> Run {
    // Without a valid token nearly every request is a 401 whatever its
    // shape: the coverage phase's thousands of variants would add time,
    // not answers; random fuzzing is enough there.
    let phases = match auth {
        Auth::Bearer(_) => "examples,coverage,fuzzing",
        Auth::None | Auth::Invalid => "examples,fuzzing",
    };
    let har = reports.join(format!("{label}.har.json"));
    let mut command = Command::new(python);
    command
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args(["--checks", CHECKS])
        .args(["--seed", SEED])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--phases", phases])
        .args(["--workers", "2"])
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none"])
        .args(["--suppress-health-check", "all"])
        .args(["--report", "har"])
        .arg("--report-har-path")
        .arg(&har)
        .arg("--no-color")
        .env("NO_COLOR", "1")
        // Never write into the source tree (.hypothesis, reports).
        .current_dir(reports)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for path in exclude {
        command.args(["--exclude-path-regex", path]);
    }
    match auth {
        Auth::Bearer(token) => {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        Auth::Invalid => {
            command.args(["-H", "Authorization: Bearer not.a.token"]);
        }
        Auth::None => {}
    }
    let mut child = command.spawn().expect("schemathesis starts");
    // Drain the pipes while waiting, so a chatty run cannot block.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = format!(
        "{}\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    let (requests, server_errors, statuses) = read_har(&har);
    Run {
        label: label.to_owned(),
        passed: status.is_some_and(|s| s.success()),
        output: match status {
            Some(_) => output,
            None => format!("killed after {RUN_LIMIT:?}\n{output}"),
        },
        requests,
        server_errors,
        statuses,
    }
}

/// The requests of a HAR report, the 5xx among them, and how many
/// answers had each status.
fn read_har(path: &Path) -> (usize, Vec<String>, BTreeMap<u64, usize>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (0, Vec::new(), BTreeMap::new());
    };
    let har: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let entries = har["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let server_errors = entries
        .iter()
        .filter(|e| e["response"]["status"].as_u64().unwrap_or(0) >= 500)
        .map(|e| {
            format!(
                "{} {} → {}",
                e["request"]["method"].as_str().unwrap_or("?"),
                e["request"]["url"].as_str().unwrap_or("?"),
                e["response"]["status"]
            )
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for e in &entries {
        *statuses
            .entry(e["response"]["status"].as_u64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    (entries.len(), server_errors, statuses)
}

fn assert_clean(api: &str, runs: &[Run]) {
    let total: usize = runs.iter().map(|r| r.requests).sum();
    for run in runs {
        println!(
            "{api} {}: {} requests, {} 5xx, {}; by status {:?}",
            run.label,
            run.requests,
            run.server_errors.len(),
            if run.passed { "conformant" } else { "FAILED" },
            run.statuses
        );
    }
    println!("{api}: {total} generated requests in all");
    let failed: Vec<&Run> = runs
        .iter()
        .filter(|r| !r.passed || !r.server_errors.is_empty())
        .collect();
    if let Some(run) = failed.first() {
        panic!(
            "{api} {}: schemathesis found answers that break the document or 5xx (seed {SEED}); each failure below has a curl line that reproduces it:\n{}\n5xx: {:#?}",
            run.label, run.output, run.server_errors
        );
    }
    // The admin's token must get generated requests past 401 to the handlers.
    let admin_ok: usize = runs
        .iter()
        .filter(|r| r.label == "as-admin")
        .flat_map(|r| r.statuses.range(200..300).map(|(_, n)| n))
        .sum();
    assert!(
        admin_ok > 0,
        "{api}: no generated request as the admin was answered 2xx: is the token accepted?"
    );
    assert!(
        total >= MIN_REQUESTS,
        "{api}: only {total} generated requests, fewer than {MIN_REQUESTS}: raise --max-examples"
    );
}

#[test]
fn both_apis_answer_generated_requests_as_documented_and_never_5xx() {
    let python = python();
    let dev = Dev::start();
    let token = login(&dev.command_api);
    let reports = tempfile::tempdir().expect("reports dir");
    let started = Instant::now();

    // Logging out revokes the token every other request uses: fuzzed only
    // without a valid one.
    let command_runs = vec![
        schemathesis(
            &python,
            &dev.command_api,
            "as-admin",
            Auth::Bearer(&token),
            25,
            &["^/auth/logout$"],
            reports.path(),
        ),
        schemathesis(
            &python,
            &dev.command_api,
            "no-token",
            Auth::None,
            5,
            &[],
            reports.path(),
        ),
        schemathesis(
            &python,
            &dev.command_api,
            "bad-token",
            Auth::Invalid,
            5,
            &[],
            reports.path(),
        ),
    ];
    // The live streams stay open by design (an SSE response never ends):
    // their refusals are in the bad-input matrix (write_side cases).
    let streams = ["/stream$"];
    let query_runs = vec![
        schemathesis(
            &python,
            &dev.query_api,
            "as-admin",
            Auth::Bearer(&token),
            60,
            &streams,
            reports.path(),
        ),
        schemathesis(
            &python,
            &dev.query_api,
            "no-token",
            Auth::None,
            10,
            &streams,
            reports.path(),
        ),
        schemathesis(
            &python,
            &dev.query_api,
            "bad-token",
            Auth::Invalid,
            10,
            &streams,
            reports.path(),
        ),
    ];
    println!("fuzzed both APIs in {:?}", started.elapsed());
    assert_clean("command API", &command_runs);
    assert_clean("query API", &query_runs);
}
