//! A simulated courier fleet for demos and benchmarks: every scheduled
//! shipment gets a courier, is picked up and delivered, each step a real
//! command through the deliveries command processor, issued as that
//! courier (`courier:<id>`), so it passes the same ownership rules as the
//! courier app would.
//!
//! Delivery guarantee: exactly-once (events consumed and commands sent in
//! one transaction), like the saga; the commands' ids are derived from the
//! event that caused them, so a redelivery is also answered as a duplicate.

use std::sync::Arc;
use std::time::Duration;

use platform::eventlog::{EventLog, GroupConfig, GroupEvent, OffsetCommit, OutgoingRecord};
use schemas::deliveries::{
    AssignCourier, DeliverShipment, DeliveriesCommand, DeliveriesEvent, PickUpShipment,
};
use schemas::{CommandEnvelope, Context, TopicNames};
use tokio::sync::watch;

use crate::fulfillment::{Clock, SagaError};

/// Which couriers exist and how the fleet behaves.
#[derive(Debug, Clone)]
pub struct CourierFleet {
    pub courier_ids: Vec<String>,
    pub group_id: String,
    pub transactional_id: String,
}

impl CourierFleet {
    pub fn new(topics: &TopicNames, courier_ids: Vec<String>) -> Self {
        Self {
            courier_ids,
            group_id: format!("{}simulated-couriers", topics.prefix),
            transactional_id: format!("{}simulated-couriers.0", topics.prefix),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(
        self,
        log: Arc<dyn EventLog>,
        codec: Arc<schemas::AvroCodec>,
        topics: TopicNames,
        clock: Clock,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), SagaError> {
        let events = topics.events(Context::Deliveries);
        let commands = topics.commands(Context::Deliveries);
        let mut config = GroupConfig::new(self.group_id.clone(), vec![events.clone()])
            .transactional(self.transactional_id.clone());
        config.client_id = self.transactional_id.clone();
        let mut member = log.join_group(config).await?;
        while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
            let polled = member.poll(1000, Duration::from_millis(50)).await?;
            let mut records = Vec::new();
            for e in polled {
                if let GroupEvent::Records(r) = e {
                    platform::telemetry::metrics().record_waits("simulated-courier", &r);
                    records.extend(r);
                }
            }
            if records.is_empty() {
                continue;
            }
            member.begin().await?;
            let mut next = std::collections::HashMap::new();
            for record in &records {
                let e = next.entry(record.topic_partition()).or_insert(0);
                *e = (*e).max(record.offset + 1);
                let Some(bytes) = record.value.as_deref() else {
                    continue;
                };
                let (envelope, event) = codec.decode_event::<DeliveriesEvent>(bytes).await?;
                let shipment = envelope.aggregate_id.clone();
                let courier = self.courier_for(&shipment);
                let command = match event {
                    DeliveriesEvent::ShipmentScheduled(_) => {
                        DeliveriesCommand::AssignCourier(AssignCourier {
                            courier_id: courier.clone(),
                        })
                    }
                    DeliveriesEvent::CourierAssigned(e) => {
                        DeliveriesCommand::PickUpShipment(PickUpShipment {
                            courier_id: e.courier_id,
                        })
                    }
                    DeliveriesEvent::ShipmentPickedUp(_) => {
                        DeliveriesCommand::DeliverShipment(DeliverShipment {
                            received_by: Some("front door".into()),
                            proof_key: None,
                        })
                    }
                    _ => continue,
                };
                let command_id = uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_OID,
                    format!("simulated-courier/{}", envelope.event_id).as_bytes(),
                )
                .to_string();
                let command_envelope = CommandEnvelope {
                    command_id: command_id.clone(),
                    aggregate_type: "Shipment".into(),
                    aggregate_id: shipment.clone(),
                    expected_version: None,
                    issued_at: clock(),
                    correlation_id: envelope.correlation_id.clone(),
                    causation_id: envelope.event_id.clone(),
                    actor: format!("courier:{courier}"),
                    reply_to: None,
                };
                let bytes = codec.encode_command(&commands, &command_envelope, &command)?;
                member.send(
                    OutgoingRecord::new(commands.clone(), shipment, bytes)
                        .with_header("command_id", command_id),
                )?;
            }
            let offsets: Vec<OffsetCommit> = next
                .into_iter()
                .map(|(tp, next_offset)| OffsetCommit {
                    tp,
                    next_offset,
                    metadata: String::new(),
                })
                .collect();
            member.commit_transaction(&offsets).await?;
        }
        member.close().await?;
        Ok(())
    }

    /// The same shipment always gets the same courier.
    fn courier_for(&self, shipment: &str) -> String {
        let n = self.courier_ids.len().max(1);
        let index = platform::partitioner::murmur2(shipment.as_bytes()) as usize % n;
        self.courier_ids
            .get(index)
            .cloned()
            .unwrap_or_else(|| "courier-1".into())
    }
}
