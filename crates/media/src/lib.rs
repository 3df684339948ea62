//! # sipact-media
//!
//! Session description handlers and the media they describe, sans-IO:
//!
//! - [`sdp`]: SDP parse and print (RFC 8866) with typed accessors;
//! - [`offer_answer`]: the RFC 3264 offer/answer engine (codec
//!   intersection, rejected streams, direction answering, hold and unhold,
//!   origin versions) and SIP.js-style modifiers;
//! - [`handler`]: the [`SessionDescriptionHandler`](handler::SessionDescriptionHandler)
//!   trait, its factory, an adapter to the session engine's
//!   [`DescriptionHooks`](sipact_proto::session::DescriptionHooks), the
//!   plain-RTP handler and the signalling-only [`NoneHandler`](handler::NoneHandler);
//! - [`rtp`]: RTP/RTCP packets (RFC 3550), G.711 (PCMU/PCMA), an
//!   [`RtpSession`](rtp::RtpSession) with receive statistics, RTCP reports,
//!   RFC 4733 telephone-events, symmetric RTP and an RTP timeout;
//! - [`audio`]: PCM [`AudioSource`](audio::AudioSource) and
//!   [`AudioSink`](audio::AudioSink) traits with silence, tone, WAV,
//!   echo and a Goertzel tone detector;
//! - [`webrtc`] (feature `webrtc`, on by default): the WebRTC handler over
//!   str0m (ICE host candidates, DTLS-SRTP, G.711/Opus, telephone-event,
//!   data channel), driven the same sans-IO way.
//!
//! Nothing here opens a socket, reads a clock or spawns: time is an
//! argument (`now: Instant`) and packets go out through `poll_transmit`.
//! The only I/O is the optional WAV file helpers in [`audio`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audio;
pub mod handler;
pub mod offer_answer;
pub mod rtp;
pub mod sdp;
#[cfg(feature = "webrtc")]
pub mod webrtc;

pub use sipact_message as message;
