//! The inventory context (being written).
