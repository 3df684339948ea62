//! One media actor per session with WebRTC media.
//!
//! The actor owns the session's UDP socket (ICE, DTLS, SRTP and SCTP all
//! share it) and drives the media crate's sans-IO
//! [`WebRtcHandler`], which wraps a
//! str0m `Rtc`: received datagrams and the handler's timeouts go in, and
//! every 20 ms one frame from the application's [`AudioSource`] (sent once
//! ICE and DTLS are up); what the handler queues goes out on the socket,
//! decoded audio goes to the [`AudioSink`] and RFC 4733 digits and the
//! media timeout to the dialog actor.
//!
//! The handler is shared with the protocol core, which runs offer/answer
//! through it synchronously; each of the handler's methods drains str0m,
//! so the actor only has to send what is queued after each turn.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sipact_media::audio::{AudioSink, AudioSource};
use sipact_media::handler::{SessionDescriptionHandler, SharedHandler};
use sipact_media::rtp::{Component, is_rtcp, is_rtp_or_rtcp};
use sipact_media::webrtc::{WebRtcEvent, WebRtcHandler};
use tokio::net::UdpSocket;

use crate::deadline::Deadline;
use crate::dialog::DialogActor;
use crate::media::{
    Datagram, MediaActor, MediaReport, MediaStats, SendDtmf, StopMedia, lock, next_frame, play, send_dtmf,
};
use crate::session::{DataError, DataEvent, SessionInfo};

/// The WebRTC media actor of one session.
pub struct WebRtcMediaActor {
    id: u64,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    handler: SharedHandler<WebRtcHandler>,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    core: Addr<DialogActor>,
    info: SessionInfo,
    stats: MediaStats,
    timer: Deadline,
    frame: Vec<i16>,
}

impl WebRtcMediaActor {
    /// A media actor for session `info` on `socket`, the one whose address
    /// the handler announces as its host candidate.
    pub(crate) fn new(
        socket: std::net::UdpSocket,
        handler: SharedHandler<WebRtcHandler>,
        audio: (Box<dyn AudioSource>, Box<dyn AudioSink>),
        core: Addr<DialogActor>,
        info: SessionInfo,
    ) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(WebRtcMediaActor {
            id: info.id(),
            socket: Arc::new(UdpSocket::from_std(socket)?),
            local,
            handler,
            source: audio.0,
            sink: audio.1,
            core,
            info,
            stats: MediaStats::default(),
            timer: Deadline::default(),
            frame: Vec::new(),
        })
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let frame = next_frame(self.source.as_mut(), &mut self.frame);
        let now = Instant::now();
        {
            let mut h = lock(&self.handler);
            if h.poll_timeout().is_some_and(|t| t <= now) {
                h.handle_timeout(now);
            }
            h.send_audio(now, &frame);
        }
        self.drain(ctx);
    }

    /// Sends what the handler queued, handles its events, publishes the
    /// counters and re-arms the timer.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        let mut h = lock(&self.handler);
        while let Some(t) = h.poll_transmit() {
            match self.socket.try_send_to(&t.data, t.destination) {
                Ok(_) if is_rtp_or_rtcp(&t.data) && is_rtcp(&t.data) => self.stats.rtcp_sent += 1,
                Ok(n) if is_rtp_or_rtcp(&t.data) => {
                    self.stats.packets_sent += 1;
                    self.stats.bytes_sent += n as u64;
                }
                Ok(_) => {}
                Err(e) => tracing::trace!(error = %e, to = %t.destination, "WebRTC send failed"),
            }
        }
        let mut events = Vec::new();
        while let Some(e) = h.poll_event() {
            events.push(e);
        }
        let next = h.poll_timeout();
        drop(h);
        for e in events {
            match e {
                WebRtcEvent::Audio { samples } => play(self.sink.as_mut(), &samples),
                WebRtcEvent::Dtmf { digit, duration } => {
                    self.core.do_send(MediaReport::Dtmf { session: self.id, digit, duration });
                }
                WebRtcEvent::Timeout => self.core.do_send(MediaReport::Timeout { session: self.id }),
                WebRtcEvent::Connected => tracing::debug!(session = self.id, "WebRTC connected"),
                WebRtcEvent::Disconnected => tracing::debug!(session = self.id, "WebRTC ICE disconnected"),
                WebRtcEvent::ChannelOpen { label } => self.info.publish_data(DataEvent::Open { label }),
                WebRtcEvent::ChannelData { data } => self.info.publish_data(DataEvent::Message(data)),
                other => tracing::debug!(session = self.id, event = ?other, "WebRTC event"),
            }
        }
        self.info.set_media_stats(self.stats);
        self.arm(next, ctx);
    }

    fn arm(&mut self, next: Option<Instant>, ctx: &mut Context<Self>) {
        self.timer.arm(
            next,
            ctx,
            |a| &mut a.timer,
            |act, ctx| {
                lock(&act.handler).handle_timeout(Instant::now());
                act.drain(ctx);
            },
        );
    }
}

impl Actor for WebRtcMediaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.add_stream(MediaActor::receive(self.socket.clone(), Component::Rtp));
        ctx.run_interval(Duration::from_millis(20), |act, ctx| act.tick(ctx));
        self.info.set_media_stats(self.stats);
        self.info.set_webrtc(Some(ctx.address()));
        // Answers made before the actor ran may have queued ICE checks.
        self.drain(ctx);
        tracing::debug!(session = self.id, local = %self.local, "WebRTC media started");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        lock(&self.handler).close();
        self.info.set_webrtc(None);
        tracing::debug!(session = self.id, stats = ?self.stats, "WebRTC media stopped");
    }
}

impl StreamHandler<Datagram> for WebRtcMediaActor {
    fn handle(&mut self, d: Datagram, ctx: &mut Self::Context) {
        if is_rtp_or_rtcp(&d.data) {
            if is_rtcp(&d.data) {
                self.stats.rtcp_received += 1;
            } else {
                self.stats.packets_received += 1;
                self.stats.bytes_received += d.data.len() as u64;
            }
        }
        lock(&self.handler).handle_input(Instant::now(), d.from, self.local, &d.data);
        self.drain(ctx);
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The socket failed: the session keeps its signalling, without media.
    }
}

impl Handler<SendDtmf> for WebRtcMediaActor {
    type Result = ();
    fn handle(&mut self, m: SendDtmf, _: &mut Self::Context) {
        send_dtmf(&self.handler, self.id, &m);
    }
}

/// Sends a message on the data channel ([`Session::send_data`](crate::Session::send_data)).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), DataError>")]
pub struct SendData(pub Vec<u8>);

impl Handler<SendData> for WebRtcMediaActor {
    type Result = Result<(), DataError>;
    fn handle(&mut self, m: SendData, ctx: &mut Self::Context) -> Self::Result {
        let r = lock(&self.handler).send_data(&m.0).map_err(|e| DataError::Channel(e.to_string()));
        self.drain(ctx);
        r
    }
}

impl Handler<StopMedia> for WebRtcMediaActor {
    type Result = ();
    fn handle(&mut self, _: StopMedia, ctx: &mut Self::Context) {
        lock(&self.handler).close();
        self.drain(ctx);
        ctx.stop();
    }
}
