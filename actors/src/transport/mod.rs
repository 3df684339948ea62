//! Transports and the registry that routes outgoing messages to them.
//!
//! The registry survives transport restarts: it holds the supervised
//! transports' addresses (which actix keeps across restarts) and the live
//! connections by flow and by remote address.

pub mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;

use actix::prelude::*;
use sipact_proto::transport::{FlowId, TransportKind};

use crate::messages::{FlowClosed, Received, Send};

pub use udp::UdpTransport;

/// A connection came up (accepted or opened).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FlowOpened {
    /// Its id.
    pub flow: FlowId,
    /// Transport kind.
    pub transport: TransportKind,
    /// Remote address.
    pub remote: SocketAddr,
    /// Where to send its outgoing messages.
    pub sender: Recipient<Send>,
}

/// Opens a new connection to a remote address for a message that has no
/// flow yet (the stream transports provide it).
pub trait Connector: Unpin + 'static {
    /// Starts connecting; the connector must report [`FlowOpened`] to the
    /// registry and then deliver `first`, or [`FlowClosed`]-style failure.
    fn connect(&mut self, transport: TransportKind, remote: SocketAddr, flow: FlowId, first: Send);
}

/// Routes outgoing messages to the right transport or connection.
pub struct TransportRegistry {
    udp: Option<Recipient<Send>>,
    flows: HashMap<FlowId, (TransportKind, SocketAddr, Recipient<Send>)>,
    by_remote: HashMap<(TransportKind, SocketAddr), FlowId>,
    connector: Option<Box<dyn Connector>>,
    closed_sink: Recipient<FlowClosed>,
    next_flow: u64,
}

impl TransportRegistry {
    /// A registry reporting closed flows to `closed_sink` (the protocol core).
    pub fn new(closed_sink: Recipient<FlowClosed>) -> Self {
        TransportRegistry {
            udp: None,
            flows: HashMap::new(),
            by_remote: HashMap::new(),
            connector: None,
            closed_sink,
            next_flow: 1,
        }
    }

    /// A fresh flow id (connections ask for one when they start).
    pub fn allocate_flow(&mut self) -> FlowId {
        let f = FlowId(self.next_flow);
        self.next_flow += 1;
        f
    }
}

impl Actor for TransportRegistry {
    type Context = Context<Self>;
}

/// Sets the UDP transport.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetUdp(pub Recipient<Send>);

/// Sets the connector for outgoing stream connections.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetConnector(pub Box<dyn Connector + std::marker::Send>);

/// Asks for a fresh flow id.
#[derive(Message)]
#[rtype(result = "FlowId")]
pub struct NewFlowId;

impl Handler<SetUdp> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, msg: SetUdp, _: &mut Self::Context) {
        self.udp = Some(msg.0);
    }
}

impl Handler<SetConnector> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, msg: SetConnector, _: &mut Self::Context) {
        self.connector = Some(msg.0);
    }
}

impl Handler<NewFlowId> for TransportRegistry {
    type Result = MessageResult<NewFlowId>;
    fn handle(&mut self, _: NewFlowId, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.allocate_flow())
    }
}

impl Handler<FlowOpened> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, m: FlowOpened, _: &mut Self::Context) {
        self.by_remote.insert((m.transport, m.remote), m.flow);
        self.flows.insert(m.flow, (m.transport, m.remote, m.sender));
    }
}

impl Handler<FlowClosed> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, m: FlowClosed, _: &mut Self::Context) {
        if let Some((t, remote, _)) = self.flows.remove(&m.flow)
            && self.by_remote.get(&(t, remote)) == Some(&m.flow)
        {
            self.by_remote.remove(&(t, remote));
        }
        self.closed_sink.do_send(m);
    }
}

impl Handler<Send> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, msg: Send, _: &mut Self::Context) {
        let peer = msg.0.peer;
        match peer.transport {
            TransportKind::Udp => match &self.udp {
                Some(u) => u.do_send(msg),
                None => tracing::warn!(to = %peer, "no UDP transport"),
            },
            t => {
                // The flow the message arrived on, else any live connection
                // to that address, else a new one (RFC 3261 §18.2.2 / §18.1.1).
                let flow = peer
                    .flow
                    .filter(|f| self.flows.contains_key(f))
                    .or_else(|| self.by_remote.get(&(t, peer.addr)).copied());
                match flow.and_then(|f| self.flows.get(&f)) {
                    Some((_, _, sender)) => sender.do_send(msg),
                    None => {
                        let flow = self.allocate_flow();
                        match self.connector.as_mut() {
                            Some(c) => c.connect(t, peer.addr, flow, msg),
                            None => tracing::warn!(to = %peer, "no connector for this transport"),
                        }
                    }
                }
            }
        }
    }
}

/// Forwards received bytes (used by stream transports that were started
/// before the core's address was known).
#[derive(Clone)]
pub struct Sinks {
    /// Where received messages go.
    pub received: Recipient<Received>,
    /// The registry.
    pub registry: Addr<TransportRegistry>,
}
