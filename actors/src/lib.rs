//! # sipact-actors
//!
//! The actix actors that drive the sans-IO protocol core:
//! - transports, supervised: UDP and the stream listeners (TCP, TLS,
//!   WebSocket, secure WebSocket); a failed transport is restarted on the
//!   same address and no session notices. Each connection is a
//!   [`StreamConnection`](transport::StreamConnection) that reports its flow
//!   closed, which ends only the client transactions pinned to it;
//! - the [`TransportRegistry`](transport::TransportRegistry), which routes
//!   outgoing messages and survives transport restarts;
//! - the [`TransactionActor`](transaction::TransactionActor), a thin shell
//!   around the sans-IO [`TransactionLayer`](sipact_proto::TransactionLayer):
//!   transports deliver to it, it owns every transaction timer;
//! - the [`DialogActor`](dialog::DialogActor), a thin shell around
//!   [`UserAgentCore`](sipact_proto::ua::UserAgentCore) in external mode
//!   (dialogs, INVITE sessions, registration), exchanging typed
//!   transaction commands and events with the transaction actor;
//! - one [`SessionActor`](session::SessionActor) per call, fanning out the
//!   session's events in order;
//! - one [`MediaActor`](media::MediaActor) per call with plain RTP media,
//!   owning its sockets and driving the sans-IO RTP session with real time,
//!   or one [`WebRtcMediaActor`](webrtc::WebRtcMediaActor) per call with
//!   WebRTC media, driving the str0m-based handler from its UDP socket;
//! - the public [`UserAgent`] and [`Session`] handles (`Send + Clone`).
//!
//! No `unwrap`, `expect` or `panic!` outside tests: actix does not
//! supervise panics.
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod deadline;
pub mod dialog;
pub mod media;
pub mod messages;
pub mod sdp;
pub mod session;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod webrtc;

/// The former home of the protocol-core actor, now split into
/// [`dialog`] and [`transaction`]: the old names keep working
/// ([`CoreActor`](dialog::CoreActor) is the dialog actor).
pub mod core {
    pub use crate::dialog::*;
}

pub use media::{AudioFactory, MediaStats};
pub use session::{
    AcceptOptions, ByeOptions, DATA_EVENTS_CAPACITY, DataError, DataEvent, DescriptionHandler, DtmfOptions,
    HoldOptions, ProgressOptions, ReferOptions, ReinviteOptions, ReplyOptions, Session, SessionEvents,
    TerminateOptions, extra_header,
};
pub use sipact_proto as proto;
pub use sipact_proto::session::Body;
pub use sipact_proto::ua::{DescriptionModifier, InviteOptions};
pub use sipact_proto::{Cause, SessionEvent, UaError};
pub use ua::{HandlerFactory, Incoming, StartError, UaConfig, UserAgent};
