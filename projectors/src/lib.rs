//! # projectors — read-model builders
//!
//! Will hold the projection workers that fold events into ScyllaDB read
//! models, and their rebuild/replay. Empty until the read-side issue: the
//! foundation only provides the event log they will consume.
