//! The JSON command parsing never panics and always answers a client
//! error (issue 6: bad input everywhere it can enter): arbitrary bytes,
//! arbitrary JSON values, mutated valid bodies and arbitrary content types
//! given to `ApiJson` and every request shape of the command API give the
//! value or a 4xx problem — 400 for bytes that are not JSON, 415 for a body
//! that is not sent as JSON, 422 naming the field for JSON of the wrong
//! shape — never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use command_api::http::json::{parse, ApiJson};
use command_api::http::problem::AppError;
use command_api::http::routes::{
    auth, catalog, customers, deliveries, inventory, orders, payments,
};
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Every request shape, by name: the parse result reduced to what the
/// client sees (ok, or the problem).
type Parser = fn(&[u8]) -> Result<(), AppError>;

fn shape<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), AppError> {
    parse::<T>(bytes).map(drop)
}

const SHAPES: &[(&str, Parser)] = &[
    ("RegisterRequest", shape::<auth::RegisterRequest>),
    ("LoginRequest", shape::<auth::LoginRequest>),
    ("RefreshRequest", shape::<auth::RefreshRequest>),
    (
        "CreateProductRequest",
        shape::<catalog::CreateProductRequest>,
    ),
    (
        "ProductDetailsRequest",
        shape::<catalog::ProductDetailsRequest>,
    ),
    ("PriceRequest", shape::<catalog::PriceRequest>),
    ("CategoryRequest", shape::<catalog::CategoryRequest>),
    ("ImageRequest", shape::<catalog::ImageRequest>),
    ("DiscontinueRequest", shape::<catalog::DiscontinueRequest>),
    ("ProfileRequest", shape::<customers::ProfileRequest>),
    ("RoleRequest", shape::<customers::RoleRequest>),
    ("ScheduleRequest", shape::<deliveries::ScheduleRequest>),
    ("CourierRequest", shape::<deliveries::CourierRequest>),
    ("DeliveryRequest", shape::<deliveries::DeliveryRequest>),
    (
        "ShipmentReasonRequest",
        shape::<deliveries::ShipmentReasonRequest>,
    ),
    ("RestockRequest", shape::<inventory::RestockRequest>),
    ("AdjustmentRequest", shape::<inventory::AdjustmentRequest>),
    ("ThresholdRequest", shape::<inventory::ThresholdRequest>),
    ("ReservationRequest", shape::<inventory::ReservationRequest>),
    ("PlaceOrderRequest", shape::<orders::PlaceOrderRequest>),
    ("ReasonRequest", shape::<orders::ReasonRequest>),
    ("CartLineRequest", shape::<orders::CartLineRequest>),
    ("QuantityRequest", shape::<orders::QuantityRequest>),
    ("CheckoutRequest", shape::<orders::CheckoutRequest>),
    ("AuthorizeRequest", shape::<payments::AuthorizeRequest>),
    ("CaptureRequest", shape::<payments::CaptureRequest>),
    ("VoidRequest", shape::<payments::VoidRequest>),
    ("RefundRequest", shape::<payments::RefundRequest>),
];

/// A refusal is a client error of the documented kinds: 400
/// `malformed-json` or 422 `invalid-field` (which names the field unless
/// the root itself is at fault, e.g. a missing field).
fn assert_client_error(name: &str, bytes: &[u8], e: &AppError) {
    assert!(
        matches!(
            e.status,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{name}: {} for {:?}",
        e.status,
        String::from_utf8_lossy(bytes)
    );
    let problem = e.problem();
    assert_eq!(problem.status, e.status.as_u16());
    assert!(
        !problem.detail.is_empty(),
        "{name}: a problem without detail"
    );
    if e.status == StatusCode::UNPROCESSABLE_ENTITY {
        assert_eq!(e.code, "invalid-field", "{name}");
    } else {
        assert_eq!(e.code, "malformed-json", "{name}");
    }
}

fn check_all(bytes: &[u8]) {
    for (name, parser) in SHAPES {
        if let Err(e) = parser(bytes) {
            assert_client_error(name, bytes, &e);
        }
    }
}

/// Arbitrary JSON, with the numbers and strings that break parsers:
/// beyond i64/u64, negative, fractional, huge exponents, control
/// characters, lone surrogates escaped.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(0)),
        Just(json!(-1)),
        ".*".prop_map(Value::String),
        "[A-Z]{3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            hash_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly the request shapes' own field names, so generated objects get
/// past "unknown field" into the values.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "sku",
            "quantity",
            "lines",
            "price_minor",
            "currency",
            "amount_minor",
            "name",
            "category",
            "description",
            "email",
            "password",
            "display_name",
            "refresh_token",
            "reason",
            "customer_id",
            "shipping_address",
            "payment",
            "card_number",
            "recipient",
            "line1",
            "city",
            "postal_code",
            "country",
            "courier_id",
            "threshold",
            "delta",
            "order_id",
            "line_no",
            "role",
            "url",
            "items",
            "signature",
            "proof",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ]
}

/// Raw text that is almost JSON: numbers no parser type holds.
fn nasty_number() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "99999999999999999999999999999999",
        "1.5",
        "-0",
        "0x10",
        "NaN",
        "Infinity",
        "1e-400",
        "00012",
        "+1",
        ".5",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_as_client_errors(bytes in vec(any::<u8>(), 0..400)) {
        check_all(&bytes);
    }

    #[test]
    fn arbitrary_json_is_parsed_or_refused_naming_the_field(value in json_value()) {
        check_all(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn huge_and_odd_numbers_in_every_field_are_client_errors(
        field in field_name(),
        number in nasty_number(),
    ) {
        let body = format!("{{\"{field}\": {number}}}");
        check_all(body.as_bytes());
        let nested = format!(
            "{{\"lines\": [{{\"sku\": \"MUG-1\", \"{field}\": {number}}}], \"{field}\": [{number}]}}"
        );
        check_all(nested.as_bytes());
    }

    #[test]
    fn mutated_valid_orders_are_parsed_or_refused(
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<usize>(),
    ) {
        let valid = serde_json::to_vec(&json!({
            "lines": [{"sku": "MUG-1", "quantity": 2}],
            "payment": {"card_number": "4242 4242 4242 4242"},
            "shipping_address": {"recipient": "Carl", "line1": "1 Main St", "city": "Berlin",
                "postal_code": "10115", "country": "DE"},
        }))
        .unwrap();
        prop_assert!(parse::<orders::PlaceOrderRequest>(&valid).is_ok());
        let mut bytes = valid.clone();
        bytes[at % valid.len()] = byte;
        check_all(&bytes);
        bytes.truncate(cut % valid.len());
        check_all(&bytes);
    }

    /// The extractor: any content type and body give the value or a
    /// 400/415/422 problem.
    #[test]
    fn the_extractor_answers_any_content_type_with_a_client_error(
        content_type in prop_oneof![
            Just(None),
            Just(Some("application/json".to_owned())),
            Just(Some("application/merge-patch+json; charset=utf-8".to_owned())),
            Just(Some("text/plain".to_owned())),
            Just(Some("multipart/form-data; boundary=x".to_owned())),
            "[ -~]{0,40}".prop_map(Some),
        ],
        body in prop_oneof![vec(any::<u8>(), 0..200), json_value().prop_map(|v| serde_json::to_vec(&v).unwrap())],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut request = Request::builder().method("POST").uri("/orders");
        if let Some(ct) = &content_type {
            request = request.header("content-type", ct.as_str());
        }
        let request = request.body(Body::from(body.clone())).unwrap();
        let result = runtime.block_on(
            <ApiJson<orders::PlaceOrderRequest> as FromRequest<()>>::from_request(request, &()),
        );
        if let Err(e) = result {
            prop_assert!(
                matches!(
                    e.status,
                    StatusCode::BAD_REQUEST
                        | StatusCode::UNSUPPORTED_MEDIA_TYPE
                        | StatusCode::UNPROCESSABLE_ENTITY
                ),
                "{} for content type {content_type:?}", e.status
            );
        }
    }
}

/// 100,000 nested arrays: serde_json's recursion limit answers 400, no
/// stack overflow.
#[test]
fn deep_nesting_is_a_client_error_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let deep = open.repeat(100_000);
        for (name, parser) in SHAPES {
            let e = parser(deep.as_bytes()).expect_err(name);
            assert_client_error(name, deep.as_bytes(), &e);
        }
        // Nested where a value is expected, too.
        let inside = format!("{{\"lines\": {deep}");
        let e = parse::<orders::PlaceOrderRequest>(inside.as_bytes()).unwrap_err();
        assert_client_error("PlaceOrderRequest", inside.as_bytes(), &e);
    }
}

/// Numbers beyond the field's type name the field, whatever their size:
/// 422 for a number of the wrong kind, 400 for one no JSON number holds.
#[test]
fn an_overflowing_quantity_names_the_field() {
    for number in [
        "1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "1.5",
    ] {
        let body = format!(
            r#"{{"lines":[{{"sku":"MUG-1","quantity":{number}}}],"payment":{{"card_number":"4242424242424242"}},"shipping_address":{{"recipient":"C","line1":"1","city":"B","postal_code":"1","country":"DE"}}}}"#
        );
        let e = parse::<orders::PlaceOrderRequest>(body.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e.status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{number}: {e}"
        );
        assert_eq!(
            e.field.as_deref(),
            Some("lines[0].quantity"),
            "{number}: {e}"
        );
    }
}
