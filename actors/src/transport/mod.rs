//! Transports and the registry that routes outgoing messages to them.
//!
//! The registry survives transport restarts: it holds the supervised
//! transports' addresses (which actix keeps across restarts) and the live
//! connections by flow and by remote address.

pub mod stream;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::collections::HashMap;
use std::net::SocketAddr;

use actix::prelude::*;
use sipact_proto::transport::{FlowId, TransportKind};

use crate::messages::{FlowClosed, Received, Send};

pub use stream::{CloseFlow, StreamConnection};
pub use tcp::{ListenerKind, StreamConnector, TcpListenerActor};
pub use udp::UdpTransport;

/// Most messages held for one connection that is still being opened; more
/// are dropped (the transaction layer's timers then end their transactions).
const MAX_PENDING_PER_FLOW: usize = 64;

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
    /// Closes it.
    pub closer: Recipient<CloseFlow>,
}

/// The registry opened a new connection for messages to `transport` /
/// `remote` that named no flow: client transactions towards that
/// destination that are not pinned yet belong to `flow` (so a failed
/// connect ends them at once). Sent to the protocol core.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct FlowAssigned {
    /// The new connection.
    pub flow: FlowId,
    /// Transport kind.
    pub transport: TransportKind,
    /// Remote address.
    pub remote: SocketAddr,
}

/// Closes live connections: one flow, or every flow of a transport kind
/// (`None`: all). Each closed connection reports [`FlowClosed`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub enum CloseFlows {
    /// One connection.
    Flow(FlowId),
    /// Every connection of a kind.
    Kind(TransportKind),
    /// Every connection.
    All,
}

/// The ids of the live connections with their kind and remote address.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<(FlowId, TransportKind, SocketAddr)>")]
pub struct ListFlows;

struct Flow {
    transport: TransportKind,
    remote: SocketAddr,
    sender: Recipient<Send>,
    closer: Recipient<CloseFlow>,
}

/// Opens a new connection to a remote address for a message that has no
/// flow yet (the stream transports provide it: [`StreamConnector`]).
pub trait Connector: Unpin + 'static {
    /// Starts connecting; the connector must report [`FlowOpened`] to the
    /// registry and then deliver `first`, or report [`FlowClosed`] for
    /// `flow` if the connection cannot be opened.
    fn connect(&mut self, transport: TransportKind, remote: SocketAddr, flow: FlowId, first: Send);
}

/// Routes outgoing messages to the right transport or connection.
pub struct TransportRegistry {
    udp: Option<Recipient<Send>>,
    flows: HashMap<FlowId, Flow>,
    by_remote: HashMap<(TransportKind, SocketAddr), FlowId>,
    /// Connections being opened, with the messages queued behind the first.
    connecting: HashMap<FlowId, ((TransportKind, SocketAddr), Vec<Send>)>,
    connector: Option<Box<dyn Connector>>,
    closed_sink: Recipient<FlowClosed>,
    assigned_sink: Option<Recipient<FlowAssigned>>,
    next_flow: u64,
}

impl TransportRegistry {
    /// A registry reporting closed flows to `closed_sink` (the protocol core).
    pub fn new(closed_sink: Recipient<FlowClosed>) -> Self {
        TransportRegistry {
            udp: None,
            flows: HashMap::new(),
            by_remote: HashMap::new(),
            connecting: HashMap::new(),
            connector: None,
            closed_sink,
            assigned_sink: None,
            next_flow: 1,
        }
    }

    /// Also tell `sink` (the protocol core) which flow a new connection
    /// got, so that a failed connect ends the transactions waiting on it.
    pub fn with_assigned_sink(mut self, sink: Recipient<FlowAssigned>) -> Self {
        self.assigned_sink = Some(sink);
        self
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
        let queued = self.connecting.remove(&m.flow).map(|(_, q)| q).unwrap_or_default();
        // An outgoing connection is known by the address we dialled; an
        // accepted one by the peer's source address.
        self.by_remote.insert((m.transport, m.remote), m.flow);
        for msg in queued {
            m.sender.do_send(msg);
        }
        self.flows
            .insert(m.flow, Flow { transport: m.transport, remote: m.remote, sender: m.sender, closer: m.closer });
    }
}

impl Handler<FlowClosed> for TransportRegistry {
    type Result = ();
    fn handle(&mut self, m: FlowClosed, _: &mut Self::Context) {
        let key = match (self.flows.remove(&m.flow), self.connecting.remove(&m.flow)) {
            (Some(f), _) => Some((f.transport, f.remote)),
            (None, Some((key, dropped))) => {
                if !dropped.is_empty() {
                    tracing::debug!(flow = m.flow.0, dropped = dropped.len(), "connection failed with messages queued");
                }
                Some(key)
            }
            (None, None) => None,
        };
        if let Some(key) = key
            && self.by_remote.get(&key) == Some(&m.flow)
        {
            self.by_remote.remove(&key);
        }
        self.closed_sink.do_send(m);
    }
}

impl Handler<CloseFlows> for TransportRegistry {
    type Result = usize;
    fn handle(&mut self, m: CloseFlows, _: &mut Self::Context) -> usize {
        let mut n = 0;
        for (id, f) in &self.flows {
            let hit = match m {
                CloseFlows::Flow(x) => *id == x,
                CloseFlows::Kind(k) => f.transport == k,
                CloseFlows::All => true,
            };
            if hit {
                f.closer.do_send(CloseFlow);
                n += 1;
            }
        }
        n
    }
}

impl Handler<ListFlows> for TransportRegistry {
    type Result = MessageResult<ListFlows>;
    fn handle(&mut self, _: ListFlows, _: &mut Self::Context) -> Self::Result {
        let mut v: Vec<_> = self.flows.iter().map(|(id, f)| (*id, f.transport, f.remote)).collect();
        v.sort_by_key(|(id, _, _)| *id);
        MessageResult(v)
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
                if let Some(f) = flow.and_then(|f| self.flows.get(&f)) {
                    f.sender.do_send(msg);
                    return;
                }
                // A connection to that address is being opened: queue behind it.
                if let Some(pending) = self.by_remote.get(&(t, peer.addr)).and_then(|f| self.connecting.get_mut(f)) {
                    if pending.1.len() < MAX_PENDING_PER_FLOW {
                        pending.1.push(msg);
                    } else {
                        tracing::warn!(to = %peer, "connection still opening, queue full: message dropped");
                    }
                    return;
                }
                if self.connector.is_none() {
                    tracing::warn!(to = %peer, "no connector for this transport");
                    return;
                }
                let flow = self.allocate_flow();
                self.by_remote.insert((t, peer.addr), flow);
                self.connecting.insert(flow, ((t, peer.addr), Vec::new()));
                if let Some(s) = &self.assigned_sink {
                    s.do_send(FlowAssigned { flow, transport: t, remote: peer.addr });
                }
                if let Some(c) = self.connector.as_mut() {
                    c.connect(t, peer.addr, flow, msg);
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
