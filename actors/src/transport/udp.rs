//! The UDP transport: one socket, supervised. A restart rebinds the same
//! address; the transaction layer's retransmissions cover the gap.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use sipact_proto::transport::{Peer, TransportKind};
use tokio::net::UdpSocket;

use crate::messages::{Received, Send, TransportBound};

/// Largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

/// The UDP transport actor. Start it under [`actix::Supervisor`].
pub struct UdpTransport {
    addr: SocketAddr,
    socket: Option<Arc<UdpSocket>>,
    sink: Recipient<Received>,
    bound: Option<Recipient<TransportBound>>,
    generation: u64,
    pending: Vec<Send>,
    closed: bool,
}

impl UdpTransport {
    /// A transport that will bind `addr` and hand what it receives to `sink`.
    pub fn new(addr: SocketAddr, sink: Recipient<Received>, bound: Option<Recipient<TransportBound>>) -> Self {
        UdpTransport { addr, socket: None, sink, bound, generation: 0, pending: Vec::new(), closed: false }
    }

    fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        // Room for bursts: many sessions answer at once under load.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&addr.into())?;
        UdpSocket::from_std(s.into())
    }

    fn start_socket(&mut self, ctx: &mut Context<Self>) {
        match UdpTransport::bind(self.addr) {
            Ok(sock) => {
                let sock = Arc::new(sock);
                if let Ok(local) = sock.local_addr() {
                    // Port 0 resolves once; later restarts rebind the same port.
                    self.addr = local;
                }
                self.socket = Some(sock.clone());
                self.generation += 1;
                tracing::info!(addr = %self.addr, generation = self.generation, "udp transport bound");
                let reader = futures_util::stream::unfold(
                    (sock, BytesMut::with_capacity(MAX_DATAGRAM)),
                    |(sock, mut buf)| async move {
                        buf.clear();
                        buf.reserve(MAX_DATAGRAM);
                        let r = sock.recv_buf_from(&mut buf).await.map(|(_, from)| (buf.split().freeze(), from));
                        Some((r, (sock, buf)))
                    },
                );
                ctx.add_stream(reader);
                if let Some(b) = &self.bound {
                    b.do_send(TransportBound {
                        transport: TransportKind::Udp,
                        addr: self.addr,
                        generation: self.generation,
                    });
                }
                for m in std::mem::take(&mut self.pending) {
                    self.send_now(m);
                }
            }
            Err(e) => {
                // The old socket may still be closing: try again shortly.
                tracing::warn!(addr = %self.addr, error = %e, "udp bind failed, retrying");
                ctx.run_later(std::time::Duration::from_millis(20), |act, ctx| act.start_socket(ctx));
            }
        }
    }

    fn send_now(&mut self, Send(t): Send) {
        if self.closed {
            return;
        }
        let Some(sock) = &self.socket else {
            self.pending.push(Send(t));
            return;
        };
        match sock.try_send_to(&t.data, t.peer.addr) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The kernel buffer is full: send when it drains.
                let sock = sock.clone();
                actix::spawn(async move {
                    let _ = sock.send_to(&t.data, t.peer.addr).await;
                });
            }
            // UDP send errors (ICMP unreachable reported late, etc.) are not
            // fatal to the socket; the transaction layer retransmits or times out.
            Err(e) => tracing::debug!(to = %t.peer.addr, error = %e, "udp send failed"),
        }
    }

    /// The address it is bound to (after the first start).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Actor for UdpTransport {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.closed {
            self.start_socket(ctx);
        }
    }
}

impl Supervised for UdpTransport {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // The reader stream was dropped with the context items; drop our
        // handle too so the port is free to bind again.
        self.socket = None;
        if self.closed {
            // Closed on purpose (shutdown): the restart binds nothing.
            tracing::debug!(addr = %self.addr, "udp transport closed");
        } else {
            tracing::warn!(addr = %self.addr, "udp transport restarting");
        }
    }
}

impl StreamHandler<io::Result<(Bytes, SocketAddr)>> for UdpTransport {
    fn handle(&mut self, item: io::Result<(Bytes, SocketAddr)>, ctx: &mut Self::Context) {
        match item {
            Ok((data, from)) => {
                self.sink.do_send(Received { peer: Peer::udp(from), data });
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused || e.kind() == io::ErrorKind::ConnectionReset => {
                // ICMP port unreachable from an earlier send: not a socket failure.
            }
            Err(e) => {
                tracing::error!(addr = %self.addr, error = %e, "udp socket failed");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

/// How many times the transport has bound its socket (1 after the first
/// start, one more after each restart).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "u64")]
pub struct Generation;

impl Handler<Generation> for UdpTransport {
    type Result = u64;
    fn handle(&mut self, _: Generation, _: &mut Self::Context) -> u64 {
        self.generation
    }
}

impl Handler<crate::messages::Close> for UdpTransport {
    type Result = ();
    fn handle(&mut self, _: crate::messages::Close, ctx: &mut Self::Context) {
        // Stopping drops the reader stream; the restart then finds the
        // transport closed and binds nothing.
        self.closed = true;
        self.socket = None;
        self.pending.clear();
        ctx.stop();
    }
}

impl Handler<Send> for UdpTransport {
    type Result = ();
    fn handle(&mut self, msg: Send, _ctx: &mut Self::Context) {
        self.send_now(msg);
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::messages::InjectFault> for UdpTransport {
    type Result = ();
    fn handle(&mut self, _: crate::messages::InjectFault, ctx: &mut Self::Context) {
        tracing::warn!(addr = %self.addr, "udp transport: injected fault");
        ctx.stop();
    }
}
