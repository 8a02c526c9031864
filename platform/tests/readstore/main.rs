//! The read-store conformance suite: every case runs against BOTH adapters
//! (embedded redb and a real CQL node). This suite — not the docs — defines
//! the semantics of the read-store port.
//!
//! The `cql::` cases need `QS_CQL_CONTACT_POINTS` (`deploy/test.sh` or
//! `deploy/test-env.sh up` starts a node): without it they fail, saying so.
//! Each CQL case gets a fresh keyspace `qs_test_<12 hex>`, dropped at the
//! end. `cql::no_node_is_unavailable` needs no server (it connects where
//! nothing listens).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed assumption should fail the case loudly"
)]

mod cases;
mod harness;

use std::future::Future;
use std::pin::Pin;

use harness::{Adapter, Harness};
use libtest_mimic::{Arguments, Failed, Trial};

type Case = fn(&Harness) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>;

macro_rules! case {
    ($name:ident) => {
        (stringify!($name), (|h| Box::pin(cases::$name(h))) as Case)
    };
}

fn main() {
    let args = Arguments::from_args();
    let cases = [
        case!(round_trip_every_type),
        case!(partial_upserts_merge),
        case!(last_write_wins_per_cell),
        case!(equal_timestamps_resolve_alike),
        case!(null_unsets_a_cell),
        case!(row_delete_is_a_tombstone),
        case!(scan_order_asc),
        case!(scan_order_desc),
        case!(scan_order_mixed_clustering),
        case!(scan_order_of_every_type),
        case!(scan_is_one_partition),
        case!(paging_returns_every_row_once),
        case!(bad_page_token_is_refused),
        case!(bad_requests_are_invalid),
        case!(dropped_tables_are_invalid),
        case!(generations_are_separate),
        case!(replay_is_identical),
    ];
    let mut trials = Vec::new();
    for adapter in Adapter::ALL {
        for (name, case) in cases {
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || run(adapter, case),
            ));
        }
    }
    trials.push(Trial::test("cql::no_node_is_unavailable", || {
        platform::testing::run_case(cases::no_node_is_unavailable()).map_err(Failed::from)
    }));
    libtest_mimic::run(&args, trials).exit();
}

fn run(adapter: Adapter, case: Case) -> Result<(), Failed> {
    platform::testing::run_case(async move {
        let harness = Harness::new(adapter).await?;
        let result = case(&harness).await;
        harness.finish().await;
        result
    })
    .map_err(Failed::from)
}
