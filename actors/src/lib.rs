//! # sipact-actors
//!
//! The actix actors that drive the sans-IO core: transports (supervised),
//! the transaction layer, the dialog layer, one Session and one Media actor
//! per call, and the `UserAgent` handle. Its contents arrive with the issue
//! "Actors and the public Session API"; this crate is the place for it.

pub use sipact_media as media;
pub use sipact_proto as proto;
