//! The query API end to end over an in-memory read store: every endpoint's
//! answers, access rules, paging, read-your-writes, generation switches
//! and live streams.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod admin;
mod auth;
mod catalog;
mod consistency;
mod fixture;
mod misc;
mod orders;
mod stream;
