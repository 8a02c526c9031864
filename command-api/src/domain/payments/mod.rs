//! The payments context (being written).
