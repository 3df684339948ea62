//! Transport descriptions: where a message came from and where it goes.
//! No sockets here; the actors own those.

use std::fmt;
use std::net::SocketAddr;

/// The transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// UDP (unreliable: the transaction layer retransmits).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl TransportKind {
    /// Whether the transport is reliable (RFC 3261 §17: no retransmissions).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The Via transport token (`UDP`, `TCP`, `TLS`, `WS`, `WSS`).
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// The kind named by a Via transport token or `transport=` parameter.
    pub fn from_token(s: &str) -> Option<TransportKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "UDP" => TransportKind::Udp,
            "TCP" => TransportKind::Tcp,
            "TLS" => TransportKind::Tls,
            "WS" => TransportKind::Ws,
            "WSS" => TransportKind::Wss,
            _ => return None,
        })
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Identifies one connection of a connection-oriented transport, so that a
/// response goes back over the connection its request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// The far end of a message: transport, address, and for connections the
/// flow it arrived on (or must leave on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: TransportKind,
    /// Remote address.
    pub addr: SocketAddr,
    /// Connection, for TCP/TLS/WS; `None` lets the transport pick or open one.
    pub flow: Option<FlowId>,
}

impl Peer {
    /// A peer over UDP.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer { transport: TransportKind::Udp, addr, flow: None }
    }

    /// A peer over `transport`, no particular flow.
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Self {
        Peer { transport, addr, flow: None }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}
