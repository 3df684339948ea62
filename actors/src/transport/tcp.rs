//! The stream listeners (TCP, TLS, WebSocket, secure WebSocket), all over
//! a TCP listening socket, and the [`StreamConnector`] that opens outgoing
//! connections for the registry.
//!
//! A [`TcpListenerActor`] is supervised: an accept error stops it and its
//! supervisor restarts it, rebinding the same address. The connections it
//! accepted are separate actors and live on.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use sipact_proto::transport::{FlowId, TransportKind};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::stream::{StreamConnection, ws_config};
use super::{Connector, NewFlowId, Sinks};
use crate::messages::{FlowClosed, Send, TransportBound};

/// Longest a TCP connect, a TLS handshake or a WebSocket handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections waiting to be accepted by the kernel.
const BACKLOG: i32 = 1024;

/// The WebSocket subprotocol for SIP (RFC 7118 §4).
const SIP_SUBPROTOCOL: &str = "sip";

/// What a listener speaks on top of TCP.
#[derive(Clone)]
#[non_exhaustive]
pub enum ListenerKind {
    /// Plain TCP, framed by Content-Length.
    Tcp,
    /// TLS over TCP.
    Tls(TlsAcceptor),
    /// WebSocket (RFC 7118), `sip` subprotocol required.
    Ws,
    /// WebSocket over TLS.
    Wss(TlsAcceptor),
}

impl std::fmt::Debug for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.transport().via_token())
    }
}

impl ListenerKind {
    /// The transport kind of its connections.
    pub fn transport(&self) -> TransportKind {
        match self {
            ListenerKind::Tcp => TransportKind::Tcp,
            ListenerKind::Tls(_) => TransportKind::Tls,
            ListenerKind::Ws => TransportKind::Ws,
            ListenerKind::Wss(_) => TransportKind::Wss,
        }
    }
}

/// Binds a TCP listening socket with `SO_REUSEADDR` (so that a restarted
/// listener gets its port back at once).
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// A listener for one stream transport. Start it under
/// [`actix::Supervisor`]; `restarting()` rebinds the same address.
pub struct TcpListenerActor {
    addr: SocketAddr,
    kind: ListenerKind,
    sinks: Sinks,
    bound: Option<Recipient<TransportBound>>,
    /// A socket bound before the actor started (first start only).
    prebound: Option<std::net::TcpListener>,
    generation: u64,
    closed: bool,
}

impl TcpListenerActor {
    /// A listener that will bind `addr` (port 0 picks one, kept across
    /// restarts) and start a [`StreamConnection`] per accepted connection.
    pub fn new(addr: SocketAddr, kind: ListenerKind, sinks: Sinks, bound: Option<Recipient<TransportBound>>) -> Self {
        TcpListenerActor { addr, kind, sinks, bound, prebound: None, generation: 0, closed: false }
    }

    /// A listener on an already bound socket (from [`bind_listener`]), so
    /// that bind errors surface before the actor starts. Restarts rebind
    /// its address.
    pub fn from_std(listener: std::net::TcpListener, kind: ListenerKind, sinks: Sinks) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(TcpListenerActor { addr, kind, sinks, bound: None, prebound: Some(listener), generation: 0, closed: false })
    }

    /// Also report each (re)bind to `bound`.
    pub fn with_bound(mut self, bound: Recipient<TransportBound>) -> Self {
        self.bound = Some(bound);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn listen(&mut self, ctx: &mut Context<Self>) {
        let sock = match self.prebound.take() {
            Some(l) => Ok(l),
            None => bind_listener(self.addr),
        };
        match sock.and_then(TcpListener::from_std) {
            Ok(listener) => {
                if let Ok(local) = listener.local_addr() {
                    self.addr = local;
                }
                self.generation += 1;
                tracing::info!(addr = %self.addr, transport = %self.kind.transport(), generation = self.generation, "listening");
                let accepts = futures_util::stream::unfold(listener, |l| async move {
                    let r = l.accept().await;
                    Some((r, l))
                });
                ctx.add_stream(accepts);
                if let Some(b) = &self.bound {
                    b.do_send(TransportBound {
                        transport: self.kind.transport(),
                        addr: self.addr,
                        generation: self.generation,
                    });
                }
            }
            Err(e) => {
                // The old socket may still be closing: try again shortly.
                tracing::warn!(addr = %self.addr, error = %e, "listen failed, retrying");
                ctx.run_later(Duration::from_millis(20), |act, ctx| act.listen(ctx));
            }
        }
    }
}

impl Actor for TcpListenerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.closed {
            self.listen(ctx);
        }
    }
}

impl Handler<crate::messages::Close> for TcpListenerActor {
    type Result = ();
    fn handle(&mut self, _: crate::messages::Close, ctx: &mut Self::Context) {
        // The accept stream goes with the context; the restart binds nothing.
        self.closed = true;
        self.prebound = None;
        ctx.stop();
    }
}

impl Supervised for TcpListenerActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // The accept stream (and with it the socket) went with the context.
        if self.closed {
            tracing::debug!(addr = %self.addr, transport = %self.kind.transport(), "listener closed");
        } else {
            tracing::warn!(addr = %self.addr, transport = %self.kind.transport(), "listener restarting");
        }
    }
}

impl StreamHandler<io::Result<(TcpStream, SocketAddr)>> for TcpListenerActor {
    fn handle(&mut self, item: io::Result<(TcpStream, SocketAddr)>, ctx: &mut Self::Context) {
        match item {
            Ok((stream, remote)) => {
                let kind = self.kind.clone();
                let sinks = self.sinks.clone();
                actix::spawn(async move {
                    let Ok(flow) = sinks.registry.send(NewFlowId).await else { return };
                    if let Err(e) = accepted(kind, stream, remote, flow, sinks).await {
                        tracing::debug!(%remote, error = %e, "incoming connection failed its handshake");
                    }
                });
            }
            // The peer gave up before we took it, or a transient shortage:
            // the socket itself is fine.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::error!(addr = %self.addr, error = %e, "accept failed");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<super::udp::Generation> for TcpListenerActor {
    type Result = u64;
    fn handle(&mut self, _: super::udp::Generation, _: &mut Self::Context) -> u64 {
        self.generation
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::messages::InjectFault> for TcpListenerActor {
    type Result = ();
    fn handle(&mut self, _: crate::messages::InjectFault, ctx: &mut Self::Context) {
        tracing::warn!(addr = %self.addr, "listener: injected fault");
        ctx.stop();
    }
}

async fn with_timeout<T, E: std::fmt::Display>(f: impl Future<Output = Result<T, E>>) -> io::Result<T> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(io::Error::other(e.to_string())),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out")),
    }
}

/// Whether a WebSocket upgrade request offers the `sip` subprotocol.
fn offers_sip(req: &Request) -> bool {
    req.headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SIP_SUBPROTOCOL))
}

async fn ws_accept<S>(io: S) -> io::Result<tokio_tungstenite::WebSocketStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    #[allow(clippy::result_large_err)]
    fn check(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        if !offers_sip(req) {
            let mut r = ErrorResponse::new(Some("the sip subprotocol is required".into()));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Err(r);
        }
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SIP_SUBPROTOCOL));
        Ok(resp)
    }
    with_timeout(tokio_tungstenite::accept_hdr_async_with_config(io, check, Some(ws_config()))).await
}

async fn ws_connect<S>(io: S, url: String) -> io::Result<tokio_tungstenite::WebSocketStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().map_err(io::Error::other)?;
    req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SIP_SUBPROTOCOL));
    let (ws, _resp) = with_timeout(tokio_tungstenite::client_async_with_config(req, io, Some(ws_config()))).await?;
    Ok(ws)
}

/// Runs the handshakes of an accepted connection and starts its actor.
async fn accepted(
    kind: ListenerKind,
    stream: TcpStream,
    remote: SocketAddr,
    flow: FlowId,
    sinks: Sinks,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let t = kind.transport();
    match kind {
        ListenerKind::Tcp => {
            StreamConnection::from_io(stream, t, remote, flow, false, sinks).start();
        }
        ListenerKind::Tls(acc) => {
            let tls = with_timeout(acc.accept(stream)).await?;
            StreamConnection::from_io(tls, t, remote, flow, false, sinks).start();
        }
        ListenerKind::Ws => {
            let ws = ws_accept(stream).await?;
            StreamConnection::from_ws(ws, t, remote, flow, sinks).start();
        }
        ListenerKind::Wss(acc) => {
            let tls = with_timeout(acc.accept(stream)).await?;
            let ws = ws_accept(tls).await?;
            StreamConnection::from_ws(ws, t, remote, flow, sinks).start();
        }
    }
    Ok(())
}

/// Opens outgoing TCP, TLS, WS and WSS connections for the registry.
#[derive(Clone)]
pub struct StreamConnector {
    sinks: Sinks,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for StreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConnector").field("tls", &self.tls.is_some()).finish()
    }
}

impl StreamConnector {
    /// A connector for TCP and WS; TLS and WSS need [`Self::with_tls`].
    pub fn new(sinks: Sinks) -> Self {
        StreamConnector { sinks, tls: None }
    }

    /// Uses `tls` for TLS and WSS connections.
    pub fn with_tls(mut self, tls: TlsConnector) -> Self {
        self.tls = Some(tls);
        self
    }
}

fn server_name(remote: SocketAddr) -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::IpAddress(remote.ip().into())
}

async fn open(
    transport: TransportKind,
    remote: SocketAddr,
    flow: FlowId,
    tls: Option<TlsConnector>,
    sinks: Sinks,
) -> io::Result<StreamConnection> {
    let need_tls = || tls.clone().ok_or_else(|| io::Error::other("no TLS client configuration"));
    let stream = with_timeout(TcpStream::connect(remote)).await?;
    let _ = stream.set_nodelay(true);
    Ok(match transport {
        TransportKind::Tcp => StreamConnection::from_io(stream, transport, remote, flow, true, sinks),
        TransportKind::Tls => {
            let s = with_timeout(need_tls()?.connect(server_name(remote), stream)).await?;
            StreamConnection::from_io(s, transport, remote, flow, true, sinks)
        }
        TransportKind::Ws => {
            let ws = ws_connect(stream, format!("ws://{remote}/")).await?;
            StreamConnection::from_ws(ws, transport, remote, flow, sinks)
        }
        TransportKind::Wss => {
            let s = with_timeout(need_tls()?.connect(server_name(remote), stream)).await?;
            let ws = ws_connect(s, format!("wss://{remote}/")).await?;
            StreamConnection::from_ws(ws, transport, remote, flow, sinks)
        }
        TransportKind::Udp => return Err(io::Error::other("UDP is not a stream transport")),
    })
}

impl Connector for StreamConnector {
    fn connect(&mut self, transport: TransportKind, remote: SocketAddr, flow: FlowId, first: Send) {
        let sinks = self.sinks.clone();
        let tls = self.tls.clone();
        actix::spawn(async move {
            let registry = sinks.registry.clone();
            match open(transport, remote, flow, tls, sinks).await {
                Ok(conn) => {
                    conn.with_first(first).start();
                }
                Err(e) => {
                    tracing::warn!(%transport, %remote, flow = flow.0, error = %e, "cannot open connection");
                    registry.do_send(FlowClosed { flow });
                }
            }
        });
    }
}
