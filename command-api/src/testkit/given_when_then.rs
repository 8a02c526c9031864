//! `given(events).when(command).then_expect_…`: an aggregate's decisions
//! tested as data, with no log and no processor.

use crate::aggregate::{Aggregate, DecisionContext, DomainError};

/// The history an aggregate test starts from.
#[derive(Debug)]
pub struct AggregateTest<A: Aggregate> {
    state: A,
    version: i64,
}

impl<A: Aggregate> AggregateTest<A> {
    /// An aggregate that has seen `events` (oldest first).
    pub fn given(events: Vec<A::Event>) -> Self {
        let mut state = A::default();
        for event in &events {
            state.evolve(event);
        }
        Self {
            state,
            version: i64::try_from(events.len()).unwrap_or(i64::MAX),
        }
    }

    /// An aggregate with no history.
    pub fn given_no_history() -> Self {
        Self::given(Vec::new())
    }

    /// Decides `command` at time `now_ms` as `actor` "tester".
    pub fn when(self, command: A::Command) -> Then<A> {
        self.when_at(command, 0)
    }

    pub fn when_at(self, command: A::Command, now_ms: i64) -> Then<A> {
        self.when_with(command, now_ms, A::Facts::default())
    }

    /// Decides `command` at time 0 as `actor` (`customer:c-1`,
    /// `system:order-fulfillment`…), for object-level rules that depend on
    /// who asks.
    pub fn when_as(self, command: A::Command, actor: &str) -> Then<A> {
        let context = DecisionContext {
            aggregate_id: "under-test".to_owned(),
            version: self.version,
            now_ms: 0,
            actor: actor.to_owned(),
            facts: A::Facts::default(),
        };
        Then {
            result: self.state.decide(&command, &context),
            state: self.state,
        }
    }

    /// Decides `command` with what outside systems answered (`facts`).
    pub fn when_with(self, command: A::Command, now_ms: i64, facts: A::Facts) -> Then<A> {
        let context = DecisionContext {
            aggregate_id: "under-test".to_owned(),
            version: self.version,
            now_ms,
            actor: "tester".to_owned(),
            facts,
        };
        Then {
            result: self.state.decide(&command, &context),
            state: self.state,
        }
    }
}

/// The outcome of a decision, to assert on.
#[derive(Debug)]
pub struct Then<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
    state: A,
}

impl<A: Aggregate> Then<A>
where
    A::Event: PartialEq,
{
    /// Asserts the command was accepted with exactly `expected`.
    #[track_caller]
    #[allow(
        clippy::panic,
        reason = "a test assertion reports failure by panicking, like assert!"
    )]
    pub fn then_expect_events(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "the command produced other events");
                let mut state = self.state;
                for e in &events {
                    state.evolve(e);
                }
                state
            }
            Err(e) => panic!(
                "expected events {expected:?}, the command was refused: {e} ({})",
                e.code()
            ),
        }
    }

    /// Asserts the command was refused with `code`.
    #[track_caller]
    #[allow(
        clippy::panic,
        reason = "a test assertion reports failure by panicking, like assert!"
    )]
    pub fn then_expect_error(self, code: &str) {
        match self.result {
            Ok(events) => panic!("expected refusal `{code}`, got events {events:?}"),
            Err(e) => assert_eq!(e.code(), code, "refused for another reason: {e}"),
        }
    }
}
