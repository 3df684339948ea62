//! # sipact-media
//!
//! Session description handlers: the SDP offer/answer layer, WebRTC media
//! through str0m, plain RTP/AVP, and a no-media handler for load generation.
//! Its contents arrive with the "Media" issue; this crate is the place for it.

pub use sipact_message as message;
