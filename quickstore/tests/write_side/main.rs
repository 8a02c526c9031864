//! The write side end to end — HTTP API, command processors, the
//! order-fulfillment saga — on the embedded log and on real Kafka. A custom
//! harness (libtest-mimic) so every case runs once per adapter.

mod app;
mod audit;
mod bad_input;
mod cases;
mod check;
mod crash;
mod pii;
mod projections;
mod read_models;
mod read_side;

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
    // RUST_LOG=… shows what the system under test logs (off by default).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let cases = [
        case!(cases::happy_path),
        case!(cases::out_of_stock_rejects_and_releases),
        case!(cases::declined_card_and_payment_timeout_cancel),
        case!(cases::a_deadline_fires_after_a_restart),
        case!(cases::webhook_answers_a_pending_authorization),
        case!(cases::delivery_failure_refunds_and_returns_stock),
        case!(cases::cancel_before_and_after_pickup),
        case!(cases::fifty_orders_race_for_ten_units),
        case!(cases::a_repeated_post_appends_nothing),
        case!(cases::a_retry_after_a_202_gets_the_outcome),
        case!(cases::trace_ids_cross_every_hop_without_a_tracer),
        case!(cases::bad_input_is_refused_and_appends_nothing),
        case!(bad_input::bad_input_matrix_is_refused_with_problems_and_appends_nothing),
        case!(cases::the_api_documents_itself),
        case!(crash::saga_survives_kill_9),
        case!(read_side::orders_projection_holds_what_the_events_say),
        case!(projections::rebuild_while_serving_loses_no_row),
        case!(projections::dlq_round_trip_through_the_library),
        case!(read_models::every_read_model_holds_what_the_events_say),
        case!(read_models::read_your_writes_and_who_may_read),
        case!(pii::personal_data_is_sealed_shown_and_forgotten),
        case!(audit::audit_cli_is_clean_then_finds_every_tampering),
        case!(audit::auditors_read_state_and_chain_on_the_query_api),
        case!(check::checker_passes_then_finds_every_tampering),
    ];
    let mut trials = Vec::new();
    for adapter in TestAdapter::ALL {
        for (name, case) in cases {
            trials.push(Trial::test(
                format!("{}::{name}", adapter.name()),
                move || platform::testing::run_case(case(adapter)).map_err(Failed::from),
            ));
        }
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}
