//! One connection of a stream transport (TCP, TLS, WebSocket): the
//! [`StreamConnection`] actor.
//!
//! It reads through a [`StreamFramer`] (TCP and TLS) or takes each
//! WebSocket message as one SIP message (RFC 7118), answers double-CRLF
//! keep-alive pings with a CRLF pong (RFC 5626 §3.5.1), hands every message
//! to the protocol core as [`Received`] with its flow, and writes outgoing
//! messages in order through a bounded queue. It reports [`FlowOpened`] to
//! the registry when it starts and [`FlowClosed`] when it stops, whatever
//! the reason (end of stream, I/O error, framing error, a full write queue,
//! [`CloseFlow`]).

use std::io;
use std::net::SocketAddr;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;
use futures_util::{FutureExt, SinkExt, StreamExt};
use sipact_message::{Frame, Limits, StreamFramer};
use sipact_proto::transport::{FlowId, Peer, TransportKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{FlowOpened, Sinks, TransportRegistry};
use crate::messages::{FlowClosed, Received, Send};

/// Outgoing messages queued per connection before it counts as stuck and
/// is closed (memory stays bounded when a peer stops reading).
pub const WRITE_QUEUE: usize = 256;

/// Largest WebSocket message (one SIP message) accepted: 64 KiB.
pub const MAX_WS_MESSAGE: usize = 64 * 1024;

/// Bytes read from a byte stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The WebSocket settings for SIP: one SIP message per WS message, at most
/// [`MAX_WS_MESSAGE`] bytes.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_WS_MESSAGE)).max_frame_size(Some(MAX_WS_MESSAGE))
}

/// Closes a connection (it reports [`FlowClosed`]).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct CloseFlow;

/// What a connection's reader yields.
#[derive(Debug)]
enum Inbound {
    /// Bytes of a byte stream, to frame.
    Bytes(Bytes),
    /// One whole message (WebSocket).
    Message(Bytes),
}

type Reader = LocalBoxStream<'static, io::Result<Inbound>>;
type Writer = LocalBoxFuture<'static, io::Result<()>>;

/// One connection. Start it with [`Actor::start`] (it is not supervised: a
/// dead connection stays dead, and the registry opens a new one when needed).
pub struct StreamConnection {
    flow: FlowId,
    transport: TransportKind,
    remote: SocketAddr,
    /// `None` for WebSocket, where each WS message is one SIP message.
    framer: Option<StreamFramer>,
    sinks: Sinks,
    tx: mpsc::Sender<Bytes>,
    io: Option<(Reader, Writer)>,
    first: Option<Send>,
}

impl std::fmt::Debug for StreamConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConnection")
            .field("flow", &self.flow.0)
            .field("transport", &self.transport)
            .field("remote", &self.remote)
            .finish()
    }
}

impl StreamConnection {
    /// A connection over a byte stream (TCP or TLS). `opened` is true when
    /// this side opened it (its framer then takes a lone CRLF as a pong).
    pub fn from_io<S>(
        io: S,
        transport: TransportKind,
        remote: SocketAddr,
        flow: FlowId,
        opened: bool,
        sinks: Sinks,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (r, w) = tokio::io::split(io);
        let reader = futures_util::stream::unfold((r, BytesMut::new()), |(mut r, mut buf)| async move {
            buf.reserve(READ_CHUNK);
            match r.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(Inbound::Bytes(buf.split().freeze())), (r, buf))),
                Err(e) => Some((Err(e), (r, buf))),
            }
        })
        .boxed_local();
        let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer = async move {
            let mut w = w;
            while let Some(b) = rx.recv().await {
                w.write_all(&b).await?;
            }
            let _ = w.shutdown().await;
            Ok(())
        }
        .boxed_local();
        let framer = if opened { StreamFramer::client(Limits::default()) } else { StreamFramer::new() };
        StreamConnection {
            flow,
            transport,
            remote,
            framer: Some(framer),
            sinks,
            tx,
            io: Some((reader, writer)),
            first: None,
        }
    }

    /// A connection over an established WebSocket (RFC 7118): each text or
    /// binary message is one SIP message.
    pub fn from_ws<S>(
        ws: WebSocketStream<S>,
        transport: TransportKind,
        remote: SocketAddr,
        flow: FlowId,
        sinks: Sinks,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (mut sink, stream) = ws.split();
        let reader = stream
            .filter_map(|m| async move {
                match m {
                    Ok(Message::Text(t)) => Some(Ok(Inbound::Message(Bytes::from(t)))),
                    Ok(Message::Binary(b)) => Some(Ok(Inbound::Message(b))),
                    // Pings are answered by tungstenite; a close ends the stream.
                    Ok(_) => None,
                    Err(e) => Some(Err(io::Error::other(e))),
                }
            })
            .boxed_local();
        let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer = async move {
            while let Some(b) = rx.recv().await {
                let m = match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(b.clone()) {
                    Ok(t) => Message::Text(t),
                    Err(_) => Message::Binary(b),
                };
                sink.send(m).await.map_err(io::Error::other)?;
            }
            let _ = sink.close().await;
            Ok(())
        }
        .boxed_local();
        StreamConnection { flow, transport, remote, framer: None, sinks, tx, io: Some((reader, writer)), first: None }
    }

    /// Writes `first` as soon as the connection starts (the message that
    /// made the registry open it).
    pub fn with_first(mut self, first: Send) -> Self {
        self.first = Some(first);
        self
    }

    /// The connection's flow id.
    pub fn flow(&self) -> FlowId {
        self.flow
    }

    fn peer(&self) -> Peer {
        Peer { transport: self.transport, addr: self.remote, flow: Some(self.flow) }
    }

    fn write(&mut self, data: Bytes, ctx: &mut Context<Self>) {
        match self.tx.try_send(data) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(flow = self.flow.0, remote = %self.remote, "write queue full: closing the connection");
                ctx.stop();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    fn deliver(&self, data: Bytes) {
        self.sinks.received.do_send(Received { peer: self.peer(), data });
    }

    fn registry(&self) -> &Addr<TransportRegistry> {
        &self.sinks.registry
    }
}

impl Actor for StreamConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some((reader, writer)) = self.io.take() {
            ctx.add_stream(reader);
            ctx.spawn(writer.into_actor(self).map(|r, act, ctx| {
                if let Err(e) = r {
                    tracing::debug!(flow = act.flow.0, remote = %act.remote, error = %e, "connection write failed");
                }
                ctx.stop();
            }));
        }
        tracing::debug!(flow = self.flow.0, transport = %self.transport, remote = %self.remote, "connection up");
        self.registry().do_send(FlowOpened {
            flow: self.flow,
            transport: self.transport,
            remote: self.remote,
            sender: ctx.address().recipient(),
            closer: ctx.address().recipient(),
        });
        if let Some(Send(t)) = self.first.take() {
            self.write(t.data, ctx);
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::debug!(flow = self.flow.0, transport = %self.transport, remote = %self.remote, "connection closed");
        self.registry().do_send(FlowClosed { flow: self.flow });
    }
}

impl StreamHandler<io::Result<Inbound>> for StreamConnection {
    fn handle(&mut self, item: io::Result<Inbound>, ctx: &mut Self::Context) {
        match item {
            Ok(Inbound::Bytes(b)) => {
                let Some(framer) = self.framer.as_mut() else { return };
                framer.push(&b);
                let mut out = Vec::new();
                let mut failed = None;
                let mut pings = 0usize;
                loop {
                    match framer.next() {
                        Ok(Some(Frame::Message(m))) => out.push(m),
                        Ok(Some(Frame::Ping)) => pings += 1,
                        Ok(Some(Frame::Pong)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                for m in out {
                    self.deliver(m);
                }
                for _ in 0..pings {
                    self.write(Bytes::from_static(b"\r\n"), ctx);
                }
                if let Some(e) = failed {
                    tracing::warn!(flow = self.flow.0, remote = %self.remote, error = %e, "framing error: closing the connection");
                    ctx.stop();
                }
            }
            Ok(Inbound::Message(m)) => {
                if m.len() > MAX_WS_MESSAGE {
                    tracing::warn!(flow = self.flow.0, remote = %self.remote, len = m.len(), "message too large: closing the connection");
                    ctx.stop();
                } else if m.iter().all(u8::is_ascii_whitespace) {
                    // A keep-alive some clients send: nothing to parse.
                } else {
                    self.deliver(m);
                }
            }
            Err(e) => {
                tracing::debug!(flow = self.flow.0, remote = %self.remote, error = %e, "connection read failed");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        // The peer closed its side.
        ctx.stop();
    }
}

impl Handler<Send> for StreamConnection {
    type Result = ();
    fn handle(&mut self, Send(t): Send, ctx: &mut Self::Context) {
        self.write(t.data, ctx);
    }
}

impl Handler<CloseFlow> for StreamConnection {
    type Result = ();
    fn handle(&mut self, _: CloseFlow, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::messages::InjectFault> for StreamConnection {
    type Result = ();
    fn handle(&mut self, _: crate::messages::InjectFault, ctx: &mut Self::Context) {
        tracing::warn!(flow = self.flow.0, remote = %self.remote, "connection: injected fault");
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipact_proto::transaction::Transmit;
    use std::time::Duration;

    /// Stands in for the protocol core: forwards what it gets to channels.
    struct Collector(mpsc::UnboundedSender<Received>, mpsc::UnboundedSender<FlowClosed>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<Received> for Collector {
        type Result = ();
        fn handle(&mut self, m: Received, _: &mut Self::Context) {
            let _ = self.0.send(m);
        }
    }

    impl Handler<FlowClosed> for Collector {
        type Result = ();
        fn handle(&mut self, m: FlowClosed, _: &mut Self::Context) {
            let _ = self.1.send(m);
        }
    }

    fn sinks() -> (Sinks, mpsc::UnboundedReceiver<Received>, mpsc::UnboundedReceiver<FlowClosed>) {
        let (rtx, rrx) = mpsc::unbounded_channel();
        let (ctx, crx) = mpsc::unbounded_channel();
        let c = Collector(rtx, ctx).start();
        let registry = TransportRegistry::new(c.clone().recipient()).start();
        (Sinks { received: c.recipient(), registry }, rrx, crx)
    }

    fn remote() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5070))
    }

    #[actix_rt::test]
    async fn a_peer_that_stops_reading_gets_its_connection_closed() {
        let (sinks, _rx, mut closed) = sinks();
        // The far end never reads: the pipe fills, then the write queue.
        let (near, _far) = tokio::io::duplex(1024);
        let conn = StreamConnection::from_io(near, TransportKind::Tcp, remote(), FlowId(1), false, sinks).start();
        let peer = Peer { transport: TransportKind::Tcp, addr: remote(), flow: Some(FlowId(1)) };
        let data = Bytes::from(vec![b'x'; 4096]);
        for _ in 0..(WRITE_QUEUE + 16) {
            conn.do_send(Send(Transmit { peer, data: data.clone() }));
        }
        let c = tokio::time::timeout(Duration::from_secs(5), closed.recv()).await.unwrap().unwrap();
        assert_eq!(c.flow, FlowId(1));
    }

    #[actix_rt::test]
    async fn framed_messages_and_pings_on_a_byte_stream() {
        let (sinks, mut rx, mut closed) = sinks();
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let _conn = StreamConnection::from_io(near, TransportKind::Tcp, remote(), FlowId(2), false, sinks).start();
        let msg = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        far.write_all(b"\r\n\r\n").await.unwrap();
        far.write_all(msg).await.unwrap();
        far.write_all(msg).await.unwrap();
        let mut pong = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), far.read_exact(&mut pong)).await.unwrap().unwrap();
        assert_eq!(&pong, b"\r\n");
        for _ in 0..2 {
            let r = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert_eq!(&r.data[..], &msg[..]);
            assert_eq!(r.peer.flow, Some(FlowId(2)));
        }
        // No Content-Length: framing is lost and the connection closes.
        far.write_all(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: x\r\n\r\n").await.unwrap();
        let c = tokio::time::timeout(Duration::from_secs(5), closed.recv()).await.unwrap().unwrap();
        assert_eq!(c.flow, FlowId(2));
    }
}
