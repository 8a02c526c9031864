//! The event-log conformance suite: every case runs against BOTH adapters
//! (embedded and a real Kafka broker). This suite — not the docs — defines
//! the semantics of the port.
//!
//! A custom harness (libtest-mimic) so that one binary can also play the
//! child process the crash case kills with SIGKILL.

mod cases;
mod child;
mod cross;
mod harness;

use std::future::Future;
use std::pin::Pin;

use harness::{Adapter, Harness};
use libtest_mimic::{Arguments, Failed, Trial};

type Case = fn(&mut Harness) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>;

macro_rules! case {
    ($name:ident) => {
        (stringify!($name), (|h| Box::pin(cases::$name(h))) as Case)
    };
}

fn main() {
    if let Ok(spec) = std::env::var(child::CHILD_ENV) {
        if let Err(e) = child::child_main(&spec) {
            eprintln!("crash child failed: {e:#}");
            std::process::exit(2);
        }
        return;
    }
    let args = Arguments::from_args();
    let cases = [
        case!(per_key_order),
        case!(aborted_transaction_invisible),
        case!(offsets_commit_only_with_outputs),
        case!(zombie_is_fenced),
        case!(group_resumes_after_crash),
        case!(replay_is_identical),
        case!(bad_requests_are_typed_errors),
    ];
    let mut trials = Vec::new();
    for adapter in [Adapter::Embedded, Adapter::Kafka] {
        for (name, case) in cases {
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || run(adapter, case),
            ));
        }
    }
    trials.push(Trial::test("cross::records_decode_across_adapters", || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failed::from(format!("runtime: {e}")))?;
        runtime
            .block_on(cross::records_decode_across_adapters())
            .map_err(|e| Failed::from(format!("{e:#}")))
    }));
    libtest_mimic::run(&args, trials).exit();
}

fn run(adapter: Adapter, case: Case) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("runtime: {e}")))?;
    runtime.block_on(async move {
        let mut harness = Harness::new(adapter)
            .await
            .map_err(|e| Failed::from(format!("{e:#}")))?;
        case(&mut harness)
            .await
            .map_err(|e| Failed::from(format!("{e:#}")))
    })
}
