//! # sipact
//!
//! A SIP user-agent library: the SIP.js Session API in Rust, on actix actors
//! over a sans-IO protocol core. This facade re-exports the workspace crates
//! and holds the pieces the `sipact` command shares with library users.

pub use sipact_actors as actors;
pub use sipact_message as message;

pub mod demo;
pub mod json;
