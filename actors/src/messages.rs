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

/// A transaction event, from the transaction actor to the dialog actor
/// (the transaction user).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TxEventMsg(pub sipact_proto::TxEvent);

/// A transaction command, from the dialog actor to the transaction actor,
/// which runs it on its layer in the order sent.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TxCommandMsg(pub sipact_proto::TxCommand);

/// Stops an actor of the protocol pipeline (the dialog or the transaction
/// actor), after the user agent's shutdown.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Asks an actor of the protocol pipeline what crossed it (diagnostics
/// and tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "PipelineStats")]
pub struct GetStats;

/// What crossed one actor of the protocol pipeline since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Which actor answered: `"transaction"` or `"dialog"`.
    pub actor: &'static str,
    /// Messages received from the transports (transaction actor).
    pub received: u64,
    /// Transaction events forwarded (transaction actor) or handled
    /// (dialog actor).
    pub events: u64,
    /// Transaction commands run (transaction actor) or sent (dialog actor).
    pub commands: u64,
    /// Transmits handed to the transport registry (transaction actor).
    pub transmits: u64,
    /// Session events delivered to session actors (dialog actor).
    pub session_events: u64,
    /// Live transactions (transaction actor) or sessions (dialog actor).
    pub live: u64,
}
