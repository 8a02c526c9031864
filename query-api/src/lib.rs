//! # query-api — HTTP reads
//!
//! Will serve the read models, live order status and audit reads. Empty
//! until the read-side issue.
