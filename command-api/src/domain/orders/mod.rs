//! The orders context (being written).
