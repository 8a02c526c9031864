//! Deliveries: getting an order's parcel to its customer — scheduled by the
//! order-fulfillment saga, carried and reported on by couriers.

mod shipment;

pub use shipment::{Shipment, ShipmentError, ShipmentStatus};
