//! The deliveries context (being written).
