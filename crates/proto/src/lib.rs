//! # sipact-proto
//!
//! The sans-IO SIP protocol core: transactions (RFC 3261 §17), dialogs
//! (§12), INVITE sessions, registration and digest authentication, as plain
//! state machines that take input and the current time and hand back output.
//! Built on [`sipact_message`]. Its contents arrive with the issue
//! "sipact-proto: the sans-IO protocol core"; this crate is the place for it.

pub use sipact_message as message;
