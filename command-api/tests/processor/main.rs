//! The command processor, proven on both event-log adapters with the
//! counter aggregate. A custom harness (libtest-mimic) so the binary can
//! also be the child process the kill case SIGKILLs.

mod cases;
mod fixture;
mod victim;

use std::future::Future;
use std::pin::Pin;

use libtest_mimic::{Arguments, Failed, Trial};
use platform::testing::TestAdapter;

type Case = fn(TestAdapter) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

macro_rules! case {
    ($name:ident) => {
        (stringify!($name), (|a| Box::pin(cases::$name(a))) as Case)
    };
}

fn main() {
    platform::testing::run_child_if_asked(victim::CHILD_ENV, victim::child_main);
    let cases = [
        case!(processes_every_command_once),
        case!(refusals_and_conflicts_append_nothing),
        case!(duplicates_get_the_first_outcome),
        case!(restores_from_snapshots_and_events),
        case!(lagging_aggregates_are_snapshotted_so_restores_stay_bounded),
        case!(survivor_takes_over_from_a_killed_instance),
        case!(catalog_product_runs_on_the_contract),
        case!(a_small_cache_decides_as_all_in_memory_would),
    ];
    let mut trials = Vec::new();
    for adapter in TestAdapter::ALL {
        for (name, case) in cases {
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || run(adapter, case),
            ));
        }
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

fn run(adapter: TestAdapter, case: Case) -> Result<(), Failed> {
    platform::testing::run_case(case(adapter)).map_err(Failed::from)
}
