//! Given/when/then for the saga's state machine: inputs in, commands out,
//! no log and no worker.

use crate::fulfillment::outgoing::Outgoing;
use crate::fulfillment::state::{FulfillmentState, FulfillmentTimeouts, Input, Stage};

/// A saga after some inputs.
#[derive(Debug, Clone)]
pub struct SagaTest {
    state: Option<FulfillmentState>,
    now: i64,
    timeouts: FulfillmentTimeouts,
}

/// The result of one input.
#[derive(Debug)]
pub struct SagaThen {
    pub state: Option<FulfillmentState>,
    pub commands: Vec<Outgoing>,
    pub note: Option<String>,
    /// Whether the input moved the saga at all.
    pub stepped: bool,
}

impl SagaTest {
    /// A saga that has handled `inputs` (at time 0, default timeouts).
    pub fn given(inputs: &[Input]) -> Self {
        let mut test = SagaTest {
            state: None,
            now: 0,
            timeouts: FulfillmentTimeouts::default(),
        };
        for input in inputs {
            let then = test.clone().when(input.clone());
            test.state = then.state;
        }
        test
    }

    pub fn at(mut self, now: i64) -> Self {
        self.now = now;
        self
    }

    pub fn when(self, input: Input) -> SagaThen {
        match self.state {
            None => match FulfillmentState::start(&input, self.now) {
                Some((state, t)) => SagaThen {
                    state: Some(state),
                    commands: t.commands,
                    note: t.note,
                    stepped: true,
                },
                None => SagaThen {
                    state: None,
                    commands: Vec::new(),
                    note: None,
                    stepped: false,
                },
            },
            Some(mut state) => match state.handle(&input, self.now, &self.timeouts) {
                Some(t) => SagaThen {
                    state: Some(state),
                    commands: t.commands,
                    note: t.note,
                    stepped: true,
                },
                None => SagaThen {
                    state: Some(state),
                    commands: Vec::new(),
                    note: None,
                    stepped: false,
                },
            },
        }
    }
}

impl SagaThen {
    /// `CommandType@aggregate` for each command, in order.
    pub fn sent(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| format!("{}@{}", c.command_type(), c.aggregate_id))
            .collect()
    }

    pub fn stage(&self) -> Option<Stage> {
        self.state.as_ref().map(|s| s.stage)
    }
}
