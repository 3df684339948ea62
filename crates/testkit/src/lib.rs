//! # sipact-testkit
//!
//! Development-only helpers: a deterministic network simulator (loss,
//! duplication, reordering, delay), a two-UA harness and fixtures. Its
//! contents arrive with the "sipact-proto" issue; this crate is the place for it.

pub use sipact_message as message;
