//! Security suite: every protection of issue 6 as a named case through the
//! real server stack — the command API and the query API over HTTP, the
//! write side behind them — on the embedded twin and on real Kafka (the
//! query API's read store is the embedded one on both: what is under test
//! is who may ask, not where rows live). Each case asserts the refusal
//! *and* that nothing was written (event counts per topic unchanged) or no
//! state changed; removing the protection makes it fail (docs/security.md
//! lists which check each case guards).
//!
//! Every log line of the process (our crates at TRACE, libraries at
//! DEBUG) goes to an in-memory sink, so `secrets::*` can grep it.

mod access;
mod env;
mod limits;
mod secrets;
mod tokens;
mod webhooks;

#[path = "../write_side/app.rs"]
#[allow(
    dead_code,
    reason = "shared with the write_side suite; not every helper is used here"
)]
mod app;

use std::future::Future;
use std::pin::Pin;

use libtest_mimic::{Arguments, Failed, Trial};
use platform::testing::TestAdapter;

type Case = fn(TestAdapter) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

macro_rules! case {
    ($module:ident :: $name:ident) => {
        (stringify!($name), (|a| Box::pin($module::$name(a))) as Case)
    };
}

fn main() {
    secrets::capture_logs();
    // (case, runs on Kafka too: it could write)
    let cases = [
        (case!(tokens::alg_none_is_refused_by_both_apis), true),
        (
            case!(tokens::hs256_signed_with_the_public_key_is_refused_by_both_apis),
            true,
        ),
        (case!(tokens::wrong_issuer_is_refused_by_both_apis), true),
        (case!(tokens::wrong_audience_is_refused_by_both_apis), true),
        (case!(tokens::expired_token_is_refused_by_both_apis), true),
        (
            case!(tokens::not_yet_valid_token_is_refused_by_both_apis),
            true,
        ),
        (
            case!(tokens::tampered_signature_is_refused_by_both_apis),
            true,
        ),
        (
            case!(tokens::tampered_claims_are_refused_by_both_apis),
            true,
        ),
        (case!(tokens::revoked_after_logout_is_refused), true),
        (
            case!(tokens::reused_refresh_token_revokes_the_session),
            true,
        ),
        (
            case!(tokens::logged_out_token_is_refused_by_the_query_api),
            true,
        ),
        (
            case!(tokens::reused_refresh_token_ends_the_session_on_the_query_api),
            true,
        ),
        (
            case!(access::customer_cannot_use_catalog_admin_commands),
            true,
        ),
        (
            case!(access::customer_cannot_use_inventory_admin_commands),
            true,
        ),
        (case!(access::customer_cannot_grant_themself_a_role), true),
        (
            case!(access::customer_cannot_use_payment_admin_commands),
            true,
        ),
        (
            case!(access::courier_cannot_use_delivery_admin_commands),
            true,
        ),
        (case!(access::customer_cannot_use_courier_commands), true),
        (
            case!(access::customer_cannot_use_admin_or_auditor_reads),
            false,
        ),
        (case!(access::customer_cannot_read_anothers_order), true),
        (case!(access::customer_cannot_cancel_anothers_order), true),
        (case!(access::courier_cannot_act_on_anothers_shipment), true),
        (case!(webhooks::replayed_webhook_is_refused), true),
        (case!(webhooks::badly_signed_webhook_is_refused), true),
        (case!(webhooks::stale_webhook_is_refused), true),
        (case!(limits::logins_are_rate_limited_per_account), false),
        (case!(limits::logins_are_rate_limited_per_address), false),
        (case!(limits::commands_are_rate_limited_per_subject), true),
        (case!(limits::command_api_refuses_oversized_requests), true),
        (case!(limits::query_api_refuses_oversized_requests), false),
        (case!(secrets::secrets_never_reach_the_logs), true),
    ];
    let mut trials = Vec::new();
    for adapter in TestAdapter::ALL {
        for ((name, case), on_kafka) in cases {
            if adapter == TestAdapter::Kafka && !on_kafka {
                continue;
            }
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || platform::testing::run_case(case(adapter)).map_err(Failed::from),
            ));
        }
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}
