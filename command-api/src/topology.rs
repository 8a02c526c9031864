//! The topics one context's command side uses, and why they are shaped so.

use std::time::Duration;

use platform::eventlog::{Cleanup, TopicSpec};

/// Topic names and partition count of one context's command side.
#[derive(Debug, Clone)]
pub struct CommandTopology {
    /// The context's name (`orders`): a label of its metrics.
    pub context: String,
    pub commands: String,
    pub events: String,
    pub snapshots: String,
    pub outcomes: String,
    /// Every topic here has this many partitions: co-partitioning is what
    /// lets the owner of command partition p restore from events partition p.
    pub partitions: i32,
    pub replication_factor: i16,
}

impl CommandTopology {
    pub fn new(topics: &schemas::topics::TopicNames, context: &str, partitions: i32) -> Self {
        Self {
            context: context.to_owned(),
            commands: topics.commands_for(context),
            events: topics.events_for(context),
            snapshots: topics.snapshots_for(context),
            outcomes: topics.command_outcomes(),
            partitions,
            replication_factor: 1,
        }
    }

    pub fn specs(&self) -> Vec<TopicSpec> {
        let spec = |name: &str, cleanup| {
            let mut s = TopicSpec::new(name.to_owned(), self.partitions, cleanup);
            s.replication_factor = self.replication_factor;
            s
        };
        vec![
            // Commands are transient requests: a week is plenty to replay an outage.
            spec(
                &self.commands,
                Cleanup::Delete {
                    retention: Duration::from_secs(7 * 24 * 3600),
                },
            ),
            // Events are the system of record: kept forever, never compacted.
            spec(&self.events, Cleanup::KeepForever),
            // Snapshots are a changelog: only the latest per aggregate matters.
            spec(&self.snapshots, Cleanup::Compact),
            // Outcomes back the dedup window and the API's wait; a week too.
            spec(
                &self.outcomes,
                Cleanup::Delete {
                    retention: Duration::from_secs(7 * 24 * 3600),
                },
            ),
        ]
    }
}
