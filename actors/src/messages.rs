//! Messages between the actors: commands in the imperative, facts in the
//! past tense.

use actix::prelude::*;
use bytes::Bytes;
use sipact_proto::transaction::Transmit;
use sipact_proto::transport::{FlowId, Peer};

/// A transport received bytes (one datagram or one framed stream message).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Received {
    /// Where they came from (with the flow for connections).
    pub peer: Peer,
    /// The bytes.
    pub data: Bytes,
}

/// Send bytes to a peer.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Send(pub Transmit);

/// A connection closed (or failed).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct FlowClosed {
    /// The connection.
    pub flow: FlowId,
}

/// Make a transport fail exactly as a socket error would: the actor stops
/// and its supervisor restarts it, rebinding the same address.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct InjectFault;

/// Sent when a transport (re)bound its socket, with the address.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct TransportBound {
    /// Transport kind.
    pub transport: sipact_proto::transport::TransportKind,
    /// Bound address.
    pub addr: std::net::SocketAddr,
    /// How many times it has been (re)started, from 1.
    pub generation: u64,
}

/// Closes a transport for good (user agent shutdown): it releases its
/// socket and does not rebind.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Close;
