//! # sipact
//!
//! A SIP user-agent library: the SIP.js Session API in Rust, on actix actors
//! over a sans-IO protocol core. This facade re-exports the workspace crates.

pub use sipact_message as message;
