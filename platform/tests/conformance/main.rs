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
    platform::testing::run_child_if_asked(child::CHILD_ENV, child::child_main);
    let args = Arguments::from_args();
    let cases = [
        case!(per_key_order),
        case!(aborted_transaction_invisible),
        case!(offsets_commit_only_with_outputs),
        case!(zombie_is_fenced),
        case!(group_resumes_after_crash),
        case!(replay_is_identical),
        case!(bad_requests_are_typed_errors),
        case!(follow_delivers_what_commits_after_the_call),
        case!(follow_ends_when_dropped),
        case!(positions_reach_the_end),
        case!(topic_and_group_descriptions),
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
        platform::testing::run_case(cross::records_decode_across_adapters()).map_err(Failed::from)
    }));
    libtest_mimic::run(&args, trials).exit();
}

fn run(adapter: Adapter, case: Case) -> Result<(), Failed> {
    platform::testing::run_case(async move {
        let mut harness = Harness::new(adapter).await?;
        case(&mut harness).await
    })
    .map_err(Failed::from)
}
