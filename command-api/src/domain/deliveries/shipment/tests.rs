use super::*;
use crate::testkit::AggregateTest;

type Test = AggregateTest<Shipment>;

fn address() -> PostalAddress {
    PostalAddress {
        recipient: "Ada Lovelace".into(),
        line1: "Main St 1".into(),
        line2: None,
        city: "Berlin".into(),
        region: None,
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

fn items() -> Vec<ShipmentItem> {
    vec![
        ShipmentItem {
            sku: "MUG-1".into(),
            quantity: 2,
        },
        ShipmentItem {
            sku: "TEA-9".into(),
            quantity: 1,
        },
    ]
}

fn schedule_with(destination: PostalAddress, items: Vec<ShipmentItem>) -> DeliveriesCommand {
    DeliveriesCommand::ScheduleShipment(ScheduleShipment {
        order_id: "o-1".into(),
        destination,
        items,
    })
}

fn schedule() -> DeliveriesCommand {
    schedule_with(address(), items())
}

fn assign(courier_id: &str) -> DeliveriesCommand {
    DeliveriesCommand::AssignCourier(AssignCourier {
        courier_id: courier_id.into(),
    })
}

fn pick_up(courier_id: &str) -> DeliveriesCommand {
    DeliveriesCommand::PickUpShipment(PickUpShipment {
        courier_id: courier_id.into(),
    })
}

fn deliver() -> DeliveriesCommand {
    DeliveriesCommand::DeliverShipment(DeliverShipment {
        received_by: Some("neighbour".into()),
        proof_key: Some("proofs/o-1.jpg".into()),
    })
}

fn fail(reason: &str) -> DeliveriesCommand {
    DeliveriesCommand::FailShipment(FailShipment {
        reason: reason.into(),
    })
}

fn cancel(reason: &str) -> DeliveriesCommand {
    DeliveriesCommand::CancelShipment(CancelShipment {
        reason: reason.into(),
    })
}

fn scheduled() -> Vec<DeliveriesEvent> {
    vec![DeliveriesEvent::ShipmentScheduled(ShipmentScheduled {
        order_id: "o-1".into(),
        destination: address(),
        items: items(),
    })]
}

fn assigned_event(courier_id: &str, previous: Option<&str>) -> DeliveriesEvent {
    DeliveriesEvent::CourierAssigned(CourierAssigned {
        courier_id: courier_id.into(),
        previous_courier_id: previous.map(Into::into),
    })
}

/// Scheduled and assigned to courier `k-1`.
fn assigned() -> Vec<DeliveriesEvent> {
    let mut history = scheduled();
    history.push(assigned_event("k-1", None));
    history
}

/// Picked up by `k-1`.
fn picked_up() -> Vec<DeliveriesEvent> {
    let mut history = assigned();
    history.push(DeliveriesEvent::ShipmentPickedUp(ShipmentPickedUp {
        courier_id: "k-1".into(),
    }));
    history
}

fn delivered_event() -> DeliveriesEvent {
    DeliveriesEvent::ShipmentDelivered(ShipmentDelivered {
        courier_id: "k-1".into(),
        received_by: Some("neighbour".into()),
        proof_key: Some("proofs/o-1.jpg".into()),
    })
}

fn delivered() -> Vec<DeliveriesEvent> {
    let mut history = picked_up();
    history.push(delivered_event());
    history
}

fn failed() -> Vec<DeliveriesEvent> {
    let mut history = picked_up();
    history.push(DeliveriesEvent::ShipmentFailed(ShipmentFailed {
        reason: "recipient_absent".into(),
        courier_id: Some("k-1".into()),
    }));
    history
}

fn cancelled() -> Vec<DeliveriesEvent> {
    let mut history = assigned();
    history.push(DeliveriesEvent::ShipmentCancelled(ShipmentCancelled {
        reason: "order cancelled".into(),
    }));
    history
}

/// The field a refusal names, deciding `command` on a new shipment.
fn refused_field(command: DeliveriesCommand) -> Option<&'static str> {
    let context = DecisionContext {
        aggregate_id: "o-1".to_owned(),
        version: 0,
        now_ms: 0,
        actor: "tester".to_owned(),
        facts: (),
    };
    match Shipment::default().decide(&command, &context) {
        Err(ShipmentError::InvalidField { field, .. }) => Some(field),
        _ => None,
    }
}

// --- ScheduleShipment -----------------------------------------------------

#[test]
fn schedule_records_what_goes_where() {
    let state = Test::given_no_history()
        .when(schedule())
        .then_expect_events(scheduled());
    assert_eq!(state.status, ShipmentStatus::Scheduled);
    assert_eq!(state.destination, Some(address()));
    assert_eq!((state.order_id.as_str(), state.items.len()), ("o-1", 2));
    let full: Vec<ShipmentItem> = (0..MAX_ITEMS)
        .map(|i| ShipmentItem {
            sku: format!("SKU-{i}"),
            quantity: validate::MAX_QUANTITY,
        })
        .collect();
    let state = Test::given_no_history()
        .when(schedule_with(address(), full.clone()))
        .then_expect_events(vec![DeliveriesEvent::ShipmentScheduled(
            ShipmentScheduled {
                order_id: "o-1".into(),
                destination: address(),
                items: full,
            },
        )]);
    assert_eq!(state.items.len(), MAX_ITEMS);
}

#[test]
fn schedule_happens_once() {
    for history in [
        scheduled(),
        assigned(),
        picked_up(),
        delivered(),
        failed(),
        cancelled(),
    ] {
        Test::given(history)
            .when(schedule())
            .then_expect_error("already-scheduled");
    }
}

#[test]
fn schedule_refuses_bad_items() {
    let item = |sku: &str, quantity| ShipmentItem {
        sku: sku.into(),
        quantity,
    };
    let too_many = (0..=MAX_ITEMS).map(|i| item(&format!("S{i}"), 1)).collect();
    for bad in [
        vec![],
        too_many,
        vec![item(" ", 1)],
        vec![item("MUG-1", 1), item("a\tb", 1)],
        vec![item("MUG-1", 0)],
        vec![item("MUG-1", -2)],
        vec![item("MUG-1", validate::MAX_QUANTITY + 1)],
    ] {
        Test::given_no_history()
            .when(schedule_with(address(), bad.clone()))
            .then_expect_error("invalid-field");
        assert_eq!(refused_field(schedule_with(address(), bad)), Some("items"));
    }
    let no_order = DeliveriesCommand::ScheduleShipment(ScheduleShipment {
        order_id: String::new(),
        destination: address(),
        items: items(),
    });
    assert_eq!(refused_field(no_order), Some("order_id"));
}

#[test]
fn schedule_refuses_a_bad_destination_naming_the_sub_field() {
    type Spoil = fn(&mut PostalAddress);
    let cases: [(Spoil, &str); 7] = [
        (|a| a.recipient = " ".into(), "destination.recipient"),
        (|a| a.line1 = String::new(), "destination.line1"),
        (|a| a.line2 = Some("\n".into()), "destination.line2"),
        (|a| a.city = String::new(), "destination.city"),
        (|a| a.region = Some(String::new()), "destination.region"),
        (
            |a| a.postal_code = "1".repeat(21),
            "destination.postal_code",
        ),
        (|a| a.country = "de".into(), "destination.country"),
    ];
    for (spoil, field) in cases {
        let mut bad = address();
        spoil(&mut bad);
        Test::given_no_history()
            .when(schedule_with(bad.clone(), items()))
            .then_expect_error("invalid-field");
        assert_eq!(refused_field(schedule_with(bad, items())), Some(field));
    }
}

// --- AssignCourier --------------------------------------------------------

#[test]
fn assign_names_the_courier_and_who_had_it_before() {
    let state = Test::given(scheduled())
        .when(assign("k-1"))
        .then_expect_events(vec![assigned_event("k-1", None)]);
    assert_eq!(state.status, ShipmentStatus::Assigned);
    assert_eq!(state.courier.as_deref(), Some("k-1"));
    let state = Test::given(assigned())
        .when(assign("k-2"))
        .then_expect_events(vec![assigned_event("k-2", Some("k-1"))]);
    assert_eq!(state.courier.as_deref(), Some("k-2"));
}

#[test]
fn assign_the_same_courier_again_records_nothing() {
    Test::given(assigned())
        .when(assign("k-1"))
        .then_expect_events(vec![]);
}

#[test]
fn assign_refusals() {
    Test::given_no_history()
        .when(assign("k-1"))
        .then_expect_error("not-found");
    Test::given(scheduled())
        .when(assign(" "))
        .then_expect_error("invalid-field");
    Test::given(picked_up())
        .when(assign("k-2"))
        .then_expect_error("already-picked-up");
    for history in [delivered(), failed(), cancelled()] {
        Test::given(history)
            .when(assign("k-2"))
            .then_expect_error("shipment-closed");
    }
}

// --- PickUpShipment -------------------------------------------------------

#[test]
fn pick_up_by_the_assigned_courier() {
    let picked = || {
        vec![DeliveriesEvent::ShipmentPickedUp(ShipmentPickedUp {
            courier_id: "k-1".into(),
        })]
    };
    let state = Test::given(assigned())
        .when_as(pick_up("k-1"), "courier:k-1")
        .then_expect_events(picked());
    assert_eq!(state.status, ShipmentStatus::PickedUp);
    // Staff (or a tool) may record it for the courier.
    for actor in ["admin:a-1", "system:order-fulfillment", "tester"] {
        Test::given(assigned())
            .when_as(pick_up("k-1"), actor)
            .then_expect_events(picked());
    }
}

#[test]
fn pick_up_again_records_nothing() {
    Test::given(picked_up())
        .when_as(pick_up("k-1"), "courier:k-1")
        .then_expect_events(vec![]);
}

#[test]
fn pick_up_refusals() {
    Test::given_no_history()
        .when(pick_up("k-1"))
        .then_expect_error("not-found");
    Test::given(scheduled())
        .when(pick_up("k-1"))
        .then_expect_error("no-courier-assigned");
    // Another courier named, or another courier asking.
    Test::given(assigned())
        .when(pick_up("k-2"))
        .then_expect_error("not-your-shipment");
    Test::given(assigned())
        .when_as(pick_up("k-2"), "courier:k-2")
        .then_expect_error("not-your-shipment");
    Test::given(assigned())
        .when_as(pick_up("k-1"), "courier:k-2")
        .then_expect_error("not-your-shipment");
    Test::given(picked_up())
        .when_as(pick_up("k-2"), "courier:k-2")
        .then_expect_error("not-your-shipment");
    for history in [delivered(), failed(), cancelled()] {
        Test::given(history)
            .when(pick_up("k-1"))
            .then_expect_error("shipment-closed");
    }
}

// --- DeliverShipment ------------------------------------------------------

#[test]
fn deliver_records_the_hand_over_by_the_carrying_courier() {
    let state = Test::given(picked_up())
        .when_as(deliver(), "courier:k-1")
        .then_expect_events(vec![delivered_event()]);
    assert_eq!(state.status, ShipmentStatus::Delivered);
    let anonymous = DeliveriesCommand::DeliverShipment(DeliverShipment {
        received_by: None,
        proof_key: None,
    });
    Test::given(picked_up())
        .when(anonymous)
        .then_expect_events(vec![DeliveriesEvent::ShipmentDelivered(
            ShipmentDelivered {
                courier_id: "k-1".into(),
                received_by: None,
                proof_key: None,
            },
        )]);
}

#[test]
fn deliver_again_records_nothing() {
    Test::given(delivered())
        .when_as(deliver(), "courier:k-1")
        .then_expect_events(vec![]);
}

#[test]
fn deliver_refusals() {
    Test::given_no_history()
        .when(deliver())
        .then_expect_error("not-found");
    for history in [scheduled(), assigned()] {
        Test::given(history)
            .when(deliver())
            .then_expect_error("not-picked-up");
    }
    for history in [failed(), cancelled()] {
        Test::given(history)
            .when(deliver())
            .then_expect_error("shipment-closed");
    }
    for history in [picked_up(), delivered()] {
        Test::given(history)
            .when_as(deliver(), "courier:k-2")
            .then_expect_error("not-your-shipment");
    }
    let bad_receiver = DeliveriesCommand::DeliverShipment(DeliverShipment {
        received_by: Some(" ".into()),
        proof_key: None,
    });
    Test::given(picked_up())
        .when(bad_receiver)
        .then_expect_error("invalid-field");
    let bad_proof = DeliveriesCommand::DeliverShipment(DeliverShipment {
        received_by: None,
        proof_key: Some("proofs/\n".into()),
    });
    Test::given(picked_up())
        .when(bad_proof)
        .then_expect_error("invalid-field");
}

// --- FailShipment ---------------------------------------------------------

#[test]
fn fail_records_the_reason_and_the_courier_at_the_time() {
    let failed_with = |courier: Option<&str>| {
        vec![DeliveriesEvent::ShipmentFailed(ShipmentFailed {
            reason: "recipient_absent".into(),
            courier_id: courier.map(Into::into),
        })]
    };
    let state = Test::given(scheduled())
        .when(fail("recipient_absent"))
        .then_expect_events(failed_with(None));
    assert_eq!(state.status, ShipmentStatus::Failed);
    Test::given(assigned())
        .when(fail("recipient_absent"))
        .then_expect_events(failed_with(Some("k-1")));
    Test::given(picked_up())
        .when_as(fail("recipient_absent"), "courier:k-1")
        .then_expect_events(failed_with(Some("k-1")));
}

#[test]
fn fail_refusals() {
    Test::given_no_history()
        .when(fail("lost"))
        .then_expect_error("not-found");
    // A courier fails only their own shipments (an unassigned one is not).
    for history in [scheduled(), assigned(), picked_up()] {
        Test::given(history)
            .when_as(fail("lost"), "courier:k-2")
            .then_expect_error("not-your-shipment");
    }
    Test::given(scheduled())
        .when_as(fail("lost"), "courier:k-1")
        .then_expect_error("not-your-shipment");
    Test::given(picked_up())
        .when(fail(""))
        .then_expect_error("invalid-field");
    for history in [delivered(), failed(), cancelled()] {
        Test::given(history)
            .when(fail("lost"))
            .then_expect_error("shipment-closed");
    }
}

// --- CancelShipment -------------------------------------------------------

#[test]
fn cancel_before_pickup() {
    let called_off = || {
        vec![DeliveriesEvent::ShipmentCancelled(ShipmentCancelled {
            reason: "order cancelled".into(),
        })]
    };
    let state = Test::given(scheduled())
        .when(cancel("order cancelled"))
        .then_expect_events(called_off());
    assert_eq!(state.status, ShipmentStatus::Cancelled);
    Test::given(assigned())
        .when(cancel("order cancelled"))
        .then_expect_events(called_off());
}

#[test]
fn cancel_again_records_nothing() {
    Test::given(cancelled())
        .when(cancel("order cancelled"))
        .then_expect_events(vec![]);
}

#[test]
fn cancel_refusals() {
    Test::given_no_history()
        .when(cancel("order cancelled"))
        .then_expect_error("not-found");
    Test::given(scheduled())
        .when(cancel(" "))
        .then_expect_error("invalid-field");
    Test::given(picked_up())
        .when(cancel("order cancelled"))
        .then_expect_error("already-picked-up");
    for history in [delivered(), failed()] {
        Test::given(history)
            .when(cancel("order cancelled"))
            .then_expect_error("shipment-closed");
    }
}

// --- The whole life -------------------------------------------------------

#[test]
fn every_command_but_schedule_needs_a_scheduled_shipment() {
    for command in [
        assign("k-1"),
        pick_up("k-1"),
        deliver(),
        fail("lost"),
        cancel("order cancelled"),
    ] {
        Test::given_no_history()
            .when(command)
            .then_expect_error("not-found");
    }
}

#[test]
fn the_state_survives_a_json_snapshot() {
    let state = Test::given(picked_up())
        .when(deliver())
        .then_expect_events(vec![delivered_event()]);
    let json = serde_json::to_string(&state).ok();
    let back = json.and_then(|j| serde_json::from_str::<Shipment>(&j).ok());
    assert_eq!(back, Some(state));
}
