//! One media actor per session: plain RTP/AVP audio.
//!
//! The actor owns the session's RTP socket (an even port on the user
//! agent's IP) and, when it could be bound, the RTCP socket on the next
//! port, and drives the sans-IO [`RtpSession`] of the session's
//! [`RtpHandler`]: every 20 ms it pulls a frame from the application's
//! [`AudioSource`] and sends it, received datagrams go to the session and
//! decoded audio to the [`AudioSink`], and one timer is armed from
//! `poll_timeout` (RTCP reports, the RTP timeout).
//!
//! The description handler is shared with the protocol core, which runs
//! offer/answer synchronously through [`HandlerHooks`]; each completed
//! exchange configures the RTP session (codec, telephone-event, remote
//! address, direction), so hold and unhold take effect on the next frame.
//! The actor holds no protocol rule: the RTP timeout, RFC 4733 digits and
//! directions are the media crate's.
//!
//! The media crate's modules are re-exported here (`media::audio::Tone`,
//! `media::rtp::RtpSession`...), as `sipact_actors::media` used to be the
//! media crate itself.
//!
//! [`HandlerHooks`]: sipact_media::handler::HandlerHooks
//! [`RtpSession`]: sipact_media::rtp::RtpSession

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use sipact_media::audio::{AudioSink, AudioSource, RATE_8K, frame_len};
use sipact_media::handler::{DtmfOptions, RtpHandler, SessionDescriptionHandler, SharedHandler};
use sipact_media::rtp::{Component, RtpEvent, is_rtcp};
use tokio::net::UdpSocket;

pub use sipact_media::{audio, handler, message, offer_answer, rtp, sdp};

use crate::deadline::Deadline;
use crate::dialog::DialogActor;
use crate::session::SessionInfo;
use crate::webrtc::WebRtcMediaActor;
use sipact_media::webrtc::WebRtcHandler;

/// Makes the audio of a session: called once per session with RTP media,
/// with the session id; returns what we play and where what we hear goes.
/// Frames are 8 kHz mono PCM (other rates are resampled crudely).
pub type AudioFactory = Arc<dyn Fn(u64) -> (Box<dyn AudioSource>, Box<dyn AudioSink>) + Send + Sync>;

/// Media counters of a session (see [`Session::media_stats`](crate::Session::media_stats)).
/// Sizes are UDP payloads: RTP header included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets sent (audio and telephone-events).
    pub packets_sent: u64,
    /// Octets of the RTP packets sent.
    pub bytes_sent: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Octets of the RTP packets received.
    pub bytes_received: u64,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// RTCP compound packets received.
    pub rtcp_received: u64,
    /// Packets lost, from the peer's sequence numbers (RFC 3550 A.3).
    pub lost: i64,
    /// Interarrival jitter in timestamp units (RFC 3550 A.8).
    pub jitter: u32,
}

/// The sockets and handler the description-hooks factory made for a
/// session, waiting for the dialog actor to start the session's media actor.
pub(crate) enum MediaSetup {
    /// Plain RTP/AVP: the RTP socket, the RTCP socket when bound.
    Rtp { rtp: std::net::UdpSocket, rtcp: Option<std::net::UdpSocket>, handler: SharedHandler<RtpHandler> },
    /// WebRTC: one socket for ICE, DTLS and SRTP.
    WebRtc { socket: std::net::UdpSocket, handler: SharedHandler<WebRtcHandler> },
}

/// The running media actor of a session, and its handler.
#[derive(Clone)]
pub(crate) enum MediaHandle {
    Rtp(Addr<MediaActor>, SharedHandler<RtpHandler>),
    WebRtc(Addr<WebRtcMediaActor>, SharedHandler<WebRtcHandler>),
}

impl MediaHandle {
    /// Starts the media actor of `setup`.
    pub(crate) fn start(
        setup: MediaSetup,
        audio: (Box<dyn AudioSource>, Box<dyn AudioSink>),
        core: Addr<DialogActor>,
        info: SessionInfo,
    ) -> std::io::Result<MediaHandle> {
        Ok(match setup {
            MediaSetup::Rtp { rtp, rtcp, handler } => {
                let actor = MediaActor::new(rtp, rtcp, handler.clone(), audio, core, info)?;
                MediaHandle::Rtp(actor.start(), handler)
            }
            MediaSetup::WebRtc { socket, handler } => {
                let actor = WebRtcMediaActor::new(socket, handler.clone(), audio, core, info)?;
                MediaHandle::WebRtc(actor.start(), handler)
            }
        })
    }

    /// Ends the media.
    pub(crate) fn stop(&self) {
        match self {
            MediaHandle::Rtp(a, _) => a.do_send(StopMedia),
            MediaHandle::WebRtc(a, _) => a.do_send(StopMedia),
        }
    }

    /// Sends DTMF in the media.
    pub(crate) fn dtmf(&self, m: SendDtmf) {
        match self {
            MediaHandle::Rtp(a, _) => a.do_send(m),
            MediaHandle::WebRtc(a, _) => a.do_send(m),
        }
    }

    /// Whether telephone-event was negotiated.
    pub(crate) fn telephone_event(&self) -> bool {
        match self {
            MediaHandle::Rtp(_, h) => lock(h).negotiated().is_some_and(|n| n.telephone_event.is_some()),
            MediaHandle::WebRtc(_, h) => lock(h).has_telephone_event(),
        }
    }
}

/// Media set up by the hooks factory, by session id.
pub(crate) type PendingMedia = Arc<Mutex<HashMap<u64, MediaSetup>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Binds the RTP socket of a session on `ip`: an even port with the RTCP
/// socket on the next one when possible (RFC 3550 §11), else any port and
/// no RTCP socket. Both non-blocking, for tokio.
pub(crate) fn bind_rtp(ip: IpAddr) -> std::io::Result<(std::net::UdpSocket, Option<std::net::UdpSocket>)> {
    let mut fallback = None;
    for _ in 0..16 {
        let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0
            && let Some(next) = port.checked_add(1)
            && let Ok(rtcp) = std::net::UdpSocket::bind(SocketAddr::new(ip, next))
        {
            rtp.set_nonblocking(true)?;
            rtcp.set_nonblocking(true)?;
            return Ok((rtp, Some(rtcp)));
        }
        fallback.get_or_insert(rtp);
    }
    let rtp = match fallback {
        Some(s) => s,
        None => std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?,
    };
    rtp.set_nonblocking(true)?;
    Ok((rtp, None))
}

/// What the media actor tells the dialog actor.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
#[non_exhaustive]
pub enum MediaReport {
    /// An RFC 4733 digit arrived.
    Dtmf {
        /// The session.
        session: u64,
        /// The digit.
        digit: char,
        /// Its duration in ms.
        duration: u32,
    },
    /// No RTP from the peer for the configured time.
    Timeout {
        /// The session.
        session: u64,
    },
}

/// Sends DTMF tones as RFC 4733 telephone-events.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SendDtmf {
    /// The tones (0-9, A-D, `*`, `#`; `,` is skipped).
    pub tones: String,
    /// Tone length.
    pub duration: Duration,
    /// Gap between tones.
    pub gap: Duration,
}

/// Ends the media: a last RTCP report with BYE, then the sockets close.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopMedia;

/// A datagram received on one of the sockets.
pub(crate) struct Datagram {
    pub(crate) component: Component,
    pub(crate) from: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// The media actor of one session.
pub struct MediaActor {
    id: u64,
    rtp: Arc<UdpSocket>,
    rtcp: Option<Arc<UdpSocket>>,
    handler: SharedHandler<RtpHandler>,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    core: Addr<DialogActor>,
    info: SessionInfo,
    stats: MediaStats,
    timer: Deadline,
    frame: Vec<i16>,
}

impl MediaActor {
    /// A media actor for session `info` on the sockets the hooks factory bound.
    pub(crate) fn new(
        rtp: std::net::UdpSocket,
        rtcp: Option<std::net::UdpSocket>,
        handler: SharedHandler<RtpHandler>,
        audio: (Box<dyn AudioSource>, Box<dyn AudioSink>),
        core: Addr<DialogActor>,
        info: SessionInfo,
    ) -> std::io::Result<Self> {
        let rtp = Arc::new(UdpSocket::from_std(rtp)?);
        let rtcp = match rtcp {
            Some(s) => Some(Arc::new(UdpSocket::from_std(s)?)),
            None => None,
        };
        Ok(MediaActor {
            id: info.id(),
            rtp,
            rtcp,
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

    pub(crate) fn receive(sock: Arc<UdpSocket>, component: Component) -> impl futures_util::Stream<Item = Datagram> {
        futures_util::stream::unfold(sock, move |sock| async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        buf.truncate(n);
                        return Some((Datagram { component, from, data: buf }, sock));
                    }
                    // ICMP errors surface on some systems: not fatal.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::Interrupted
                                | std::io::ErrorKind::WouldBlock
                        ) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "media socket failed");
                        return None;
                    }
                }
            }
        })
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let frame = next_frame(self.source.as_mut(), &mut self.frame);
        let now = Instant::now();
        {
            let mut h = lock(&self.handler);
            let rtp = h.rtp_session_mut();
            rtp.send_audio(now, &frame);
            if rtp.poll_timeout().is_some_and(|t| t <= now) {
                rtp.handle_timeout(now);
            }
        }
        self.drain(ctx);
    }

    /// Sends what the RTP session queued, handles its events, publishes the
    /// counters and re-arms the timer.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        let mut h = lock(&self.handler);
        let rtp = h.rtp_session_mut();
        while let Some(t) = rtp.poll_transmit() {
            let rtcp = is_rtcp(&t.data);
            let sock = match (t.component, &self.rtcp) {
                (Component::Rtcp, Some(s)) => s,
                _ => &self.rtp,
            };
            match sock.try_send_to(&t.data, t.destination) {
                Ok(_) if rtcp => self.stats.rtcp_sent += 1,
                Ok(n) => {
                    self.stats.packets_sent += 1;
                    self.stats.bytes_sent += n as u64;
                }
                Err(e) => tracing::trace!(error = %e, to = %t.destination, "RTP send failed"),
            }
        }
        let mut events = Vec::new();
        while let Some(e) = rtp.poll_event() {
            events.push(e);
        }
        let recv = rtp.receive_stats();
        self.stats.lost = recv.lost();
        self.stats.jitter = recv.jitter();
        let next = rtp.poll_timeout();
        drop(h);
        for e in events {
            match e {
                RtpEvent::Audio { samples, .. } => play(self.sink.as_mut(), &samples),
                RtpEvent::Dtmf { digit, duration } => {
                    let duration = u32::from(duration) * 1000 / RATE_8K;
                    self.core.do_send(MediaReport::Dtmf { session: self.id, digit, duration });
                }
                RtpEvent::Timeout => self.core.do_send(MediaReport::Timeout { session: self.id }),
                RtpEvent::RemoteAddress { component, address } => {
                    tracing::debug!(session = self.id, ?component, %address, "media peer address");
                }
                _ => {}
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
                lock(&act.handler).rtp_session_mut().handle_timeout(Instant::now());
                act.drain(ctx);
            },
        );
    }
}

/// One 20 ms frame from `source`, at 8 kHz (`buf` is scratch space).
pub(crate) fn next_frame(source: &mut dyn AudioSource, buf: &mut Vec<i16>) -> Vec<i16> {
    let n = frame_len(source.sample_rate().max(50));
    buf.clear();
    buf.resize(n, 0);
    let got = source.read(buf);
    if got < n {
        buf[got.min(n)..].fill(0);
    }
    resample(buf, frame_len(RATE_8K))
}

/// Plays 8 kHz `samples` into `sink`, at the sink's rate.
pub(crate) fn play(sink: &mut dyn AudioSink, samples: &[i16]) {
    let rate = sink.sample_rate();
    let out = resample(samples, frame_len(rate.max(50)) * samples.len() / frame_len(RATE_8K).max(1));
    sink.write(&out);
}

/// Nearest-neighbour resampling of `input` to `len` samples.
fn resample(input: &[i16], len: usize) -> Vec<i16> {
    if input.len() == len || input.is_empty() {
        return input.to_vec();
    }
    (0..len).map(|i| input.get(i * input.len() / len.max(1)).copied().unwrap_or(0)).collect()
}

impl Actor for MediaActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.add_stream(Self::receive(self.rtp.clone(), Component::Rtp));
        if let Some(s) = &self.rtcp {
            ctx.add_stream(Self::receive(s.clone(), Component::Rtcp));
        }
        ctx.run_interval(Duration::from_millis(20), |act, ctx| act.tick(ctx));
        self.info.set_media_stats(self.stats);
        tracing::debug!(session = self.id, local = ?self.rtp.local_addr().ok(), "media started");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        lock(&self.handler).close();
        tracing::debug!(session = self.id, stats = ?self.stats, "media stopped");
    }
}

impl StreamHandler<Datagram> for MediaActor {
    fn handle(&mut self, d: Datagram, ctx: &mut Self::Context) {
        if d.component == Component::Rtp && !is_rtcp(&d.data) {
            self.stats.packets_received += 1;
            self.stats.bytes_received += d.data.len() as u64;
        } else {
            self.stats.rtcp_received += 1;
        }
        lock(&self.handler).rtp_session_mut().handle_input(Instant::now(), d.from, d.component, &d.data);
        self.drain(ctx);
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // A socket failed: the session keeps its signalling, without media.
    }
}

/// Queues RFC 4733 tones on a session's handler (either kind).
pub(crate) fn send_dtmf<H: SessionDescriptionHandler>(handler: &SharedHandler<H>, session: u64, m: &SendDtmf) {
    let opts = DtmfOptions { duration: m.duration, inter_tone_gap: m.gap };
    if let Err(e) = lock(handler).send_dtmf(&m.tones, &opts) {
        tracing::warn!(session, error = %e, "RFC 4733 DTMF not sent");
    }
}

impl Handler<SendDtmf> for MediaActor {
    type Result = ();
    fn handle(&mut self, m: SendDtmf, _: &mut Self::Context) {
        send_dtmf(&self.handler, self.id, &m);
    }
}

impl Handler<StopMedia> for MediaActor {
    type Result = ();
    fn handle(&mut self, _: StopMedia, ctx: &mut Self::Context) {
        lock(&self.handler).rtp_session_mut().close(Instant::now(), Some("session ended"));
        self.drain(ctx);
        ctx.stop();
    }
}
