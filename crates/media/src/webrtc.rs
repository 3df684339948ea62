//! WebRTC audio through [str0m]: ICE with host candidates, DTLS-SRTP,
//! G.711 and Opus, RFC 4733 telephone-events, an optional data channel.
//!
//! [`WebRtcHandler`] is a [`SessionDescriptionHandler`] around one str0m
//! [`Rtc`]. Like the rest of this crate it is sans-IO: the media driver
//! (the actors crate's WebRTC media actor) owns the UDP socket and feeds
//! the handler datagrams ([`handle_input`](WebRtcHandler::handle_input)),
//! time ([`handle_timeout`](WebRtcHandler::handle_timeout)) and audio
//! frames ([`send_audio`](WebRtcHandler::send_audio)), then sends what
//! [`poll_transmit`](WebRtcHandler::poll_transmit) returns and handles
//! what [`poll_event`](WebRtcHandler::poll_event) returns.
//!
//! str0m requires that every change of an `Rtc` is followed by draining
//! its output; every method here that changes it drains at once into the
//! handler's queues, so the protocol core (which calls the SDP methods
//! through [`HandlerHooks`](crate::handler::HandlerHooks)) and the media
//! driver can take turns on the same handler.
//!
//! Choices, written down:
//! - Codecs offered and accepted, in order of preference: PCMU, PCMA, then
//!   Opus (when [`WebRtcConfig::opus`]), and telephone-event/8000. Our own
//!   audio is G.711: the answer lists PCMU first, so browsers send PCMU.
//!   Opus frames from a peer that only speaks Opus are counted
//!   ([`WebRtcHandler::undecoded_frames`]) but not decoded: the crate has no
//!   Opus codec, and sends no audio on such a session.
//! - Remote candidates the local ones cannot reach are dropped: when every
//!   local candidate is a loopback address, only loopback remote candidates
//!   are kept and datagrams from other sources are ignored, so a loopback
//!   user agent never sends off the machine. mDNS (`.local`) candidates are
//!   always dropped (nothing here resolves them).
//! - A re-offer with nothing to change (a session refresh) resends the last
//!   local description with `a=setup:actpass` (RFC 5763 §5); its answer is
//!   checked for parse errors and otherwise ignored, as the media session
//!   stays as it is.
//! - Holding while answering a peer's re-offer keeps the direction str0m
//!   answers with (the intersection with the offer); hold is offered by
//!   our own re-offer, as SIP.js does.
//! - A panic inside str0m (on a hostile packet or description) is caught:
//!   the handler closes and reports [`WebRtcEvent::Disconnected`], the
//!   call keeps its signalling, and the actor driving it lives on.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::{Codec, CodecExtra, FormatParams};
use str0m::media::{Direction as RtcDirection, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::handler::{
    APPLICATION_SDP, Description, DescriptionOptions, DtmfOptions, HandlerError, SessionDescriptionHandler,
};
use crate::offer_answer::{Modifier, SignalingState, apply_modifiers, offer_direction};
use crate::rtp::{G711, RtpError};
use crate::sdp::{Direction, SessionDescription};

/// The telephone-event payload type we offer.
const TELEPHONE_EVENT_PT: u8 = 101;
/// Samples in a 20 ms G.711 frame.
const FRAME: usize = 160;
/// RFC 4733: events at least 40 ms long; str0m wants 50 ms between events.
const MIN_TONE: Duration = Duration::from_millis(40);
const MIN_GAP: Duration = Duration::from_millis(50);

/// Options of the WebRTC handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtcConfig {
    /// Offer and accept Opus after G.711 (frames counted, not decoded).
    pub opus: bool,
    /// Open a data channel with this label in our first offer.
    pub data_channel: Option<String>,
    /// No media from the peer for this long, once connected and while the
    /// peer is expected to send, raises [`WebRtcEvent::Timeout`].
    pub rtp_timeout: Option<Duration>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig { opus: true, data_channel: None, rtp_timeout: None }
    }
}

/// What the handler reports to its media driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebRtcEvent {
    /// ICE and DTLS are up: media can flow.
    Connected,
    /// ICE lost the peer.
    Disconnected,
    /// A decoded 20 ms audio frame (8 kHz mono).
    Audio {
        /// The samples.
        samples: Vec<i16>,
    },
    /// An RFC 4733 digit ended.
    Dtmf {
        /// `0`-`9`, `*`, `#`, `A`-`D`.
        digit: char,
        /// Its length in ms.
        duration: u32,
    },
    /// The data channel opened.
    ChannelOpen {
        /// Its label.
        label: String,
    },
    /// A data channel message.
    ChannelData {
        /// The payload.
        data: Vec<u8>,
    },
    /// No media for [`WebRtcConfig::rtp_timeout`].
    Timeout,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address it leaves from (one of the candidates).
    pub source: SocketAddr,
    /// Where it goes.
    pub destination: SocketAddr,
    /// The datagram.
    pub data: Vec<u8>,
}

/// A [`SessionDescriptionHandler`] for WebRTC audio, driving a str0m [`Rtc`].
pub struct WebRtcHandler {
    rtc: Rtc,
    config: WebRtcConfig,
    locals: Vec<SocketAddr>,
    loopback_only: bool,
    mid: Option<Mid>,
    state: SignalingState,
    pending: Option<SdpPendingOffer>,
    unchanged_offer: bool,
    answer: Option<String>,
    last_local: Option<String>,
    local_hold: bool,
    remote_hold: bool,
    closed: bool,
    connected: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<WebRtcEvent>,
    timeout: Option<Instant>,
    channel: Option<ChannelId>,
    samples_sent: u64,
    dtmf: VecDeque<char>,
    dtmf_options: DtmfOptions,
    dtmf_next: Option<Instant>,
    last_tone: Option<u64>,
    last_media: Option<Instant>,
    /// Since when media is expected (set on the first timer after a
    /// completed exchange, so a change to receiving starts a fresh wait).
    expect_since: Option<Instant>,
    timed_out: bool,
    ignored: u64,
    undecoded: u64,
}

impl std::fmt::Debug for WebRtcHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcHandler")
            .field("locals", &self.locals)
            .field("state", &self.state)
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn webrtc_error(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::WebRtc(e.to_string())
}

fn to_direction(d: RtcDirection) -> Direction {
    match d {
        RtcDirection::SendRecv => Direction::SendRecv,
        RtcDirection::SendOnly => Direction::SendOnly,
        RtcDirection::RecvOnly => Direction::RecvOnly,
        RtcDirection::Inactive => Direction::Inactive,
    }
}

fn from_direction(d: Direction) -> RtcDirection {
    match d {
        Direction::SendRecv => RtcDirection::SendRecv,
        Direction::SendOnly => RtcDirection::SendOnly,
        Direction::RecvOnly => RtcDirection::RecvOnly,
        Direction::Inactive => RtcDirection::Inactive,
    }
}

/// The RFC 4733 event code of a DTMF digit.
fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 event code.
fn event_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some(char::from(b'0' + code)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + code - 12)),
        _ => None,
    }
}

/// The direction of the first audio section of an SDP text (session-level
/// attribute as the default), for remote hold detection.
fn audio_direction(sdp: &str) -> Direction {
    let mut session = Direction::SendRecv;
    let mut media: Option<Direction> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            if seen_audio {
                break;
            }
            in_audio = m.starts_with("audio ");
            seen_audio |= in_audio;
            continue;
        }
        let d = match line {
            "a=sendrecv" => Direction::SendRecv,
            "a=sendonly" => Direction::SendOnly,
            "a=recvonly" => Direction::RecvOnly,
            "a=inactive" => Direction::Inactive,
            _ => continue,
        };
        if in_audio {
            media = Some(d);
        } else if !seen_audio {
            session = d;
        }
    }
    media.unwrap_or(session)
}

/// Whether an offer asks for WebRTC media: a DTLS-SRTP profile
/// (`UDP/TLS/RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, RFC 5764) or a DTLS
/// fingerprint (RFC 8122).
pub fn is_webrtc_offer(sdp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(sdp);
    text.contains("UDP/TLS/RTP/SAVP") || text.contains("a=fingerprint:")
}

/// The `a=mid` of the first audio section of an SDP text.
fn audio_mid(sdp: &str) -> Option<&str> {
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
        } else if in_audio && let Some(mid) = line.strip_prefix("a=mid:") {
            return Some(mid.trim());
        }
    }
    None
}

impl WebRtcHandler {
    /// A handler whose ICE host candidates are `locals` (the addresses of
    /// the UDP socket(s) its driver owns), created at `now`.
    pub fn new(config: WebRtcConfig, locals: &[SocketAddr], now: Instant) -> Result<Self, HandlerError> {
        let mut rtc_config = RtcConfig::new().clear_codecs().enable_pcmu(true, false).enable_pcma(true, false);
        if config.opus {
            rtc_config = rtc_config.enable_opus(true, false);
        }
        rtc_config.codec_config().add_config(
            Pt::new_with_value(TELEPHONE_EVENT_PT),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::parse_line("0-16"),
        );
        let mut rtc = rtc_config.build(now);
        for a in locals {
            let c = Candidate::host(*a, "udp").map_err(webrtc_error)?;
            if rtc.add_local_candidate(c).is_none() {
                return Err(HandlerError::WebRtc(format!("candidate {a} refused")));
            }
        }
        let mut h = WebRtcHandler {
            rtc,
            config,
            locals: locals.to_vec(),
            loopback_only: !locals.is_empty() && locals.iter().all(|a| a.ip().is_loopback()),
            mid: None,
            state: SignalingState::Stable,
            pending: None,
            unchanged_offer: false,
            answer: None,
            last_local: None,
            local_hold: false,
            remote_hold: false,
            closed: false,
            connected: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            timeout: None,
            channel: None,
            samples_sent: 0,
            dtmf: VecDeque::new(),
            dtmf_options: DtmfOptions::default(),
            dtmf_next: None,
            last_tone: None,
            last_media: None,
            expect_since: None,
            timed_out: false,
            ignored: 0,
            undecoded: 0,
        };
        h.drain();
        Ok(h)
    }

    /// The host candidates.
    pub fn local_candidates(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Datagrams ignored because their source is out of the candidates' reach.
    pub fn ignored_datagrams(&self) -> u64 {
        self.ignored
    }

    /// Audio frames received in a codec we cannot decode (Opus).
    pub fn undecoded_frames(&self) -> u64 {
        self.undecoded
    }

    /// Whether telephone-event was negotiated.
    pub fn has_telephone_event(&mut self) -> bool {
        let Some(mid) = self.mid else { return false };
        self.rtc.writer(mid).is_some_and(|w| w.payload_params().any(|p| p.spec().codec == Codec::Tele))
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<WebRtcEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let media = self.media_deadline();
        match (self.timeout, media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn media_deadline(&self) -> Option<Instant> {
        let t = self.config.rtp_timeout?;
        if self.timed_out || !self.connected || !self.expects_media() {
            return None;
        }
        let since = self.expect_since?;
        Some(self.last_media.map_or(since, |m| m.max(since)) + t)
    }

    /// Whether the peer is expected to send: our side receives.
    fn expects_media(&self) -> bool {
        matches!(self.direction(), Some(Direction::SendRecv | Direction::RecvOnly))
    }

    /// A datagram `data` from `source` arrived on the socket at `destination`.
    pub fn handle_input(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let _ = self.guarded(|h| {
            h.input(now, source, destination, data);
            Ok(())
        });
    }

    fn input(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        if self.closed {
            return;
        }
        if self.loopback_only && !source.ip().is_loopback() {
            self.ignored += 1;
            return;
        }
        let Ok(contents) = data.try_into() else {
            self.ignored += 1;
            return;
        };
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        if let Err(e) = self.rtc.handle_input(input) {
            log_error(&e);
        }
        self.drain();
    }

    /// Time passed: runs str0m's timers and the media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.guarded(|h| {
            h.timeout(now);
            Ok(())
        });
    }

    fn timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            log_error(&e);
        }
        self.drain();
        if self.expect_since.is_none() && self.connected {
            self.expect_since = Some(now);
        }
        if self.media_deadline().is_some_and(|d| d <= now) {
            self.timed_out = true;
            self.events.push_back(WebRtcEvent::Timeout);
        }
    }

    /// Sends one frame of 8 kHz audio (20 ms) when connected and sending,
    /// with the next queued DTMF tone when one is due.
    pub fn send_audio(&mut self, now: Instant, frame: &[i16]) {
        let _ = self.guarded(|h| {
            h.audio(now, frame);
            Ok(())
        });
    }

    fn audio(&mut self, now: Instant, frame: &[i16]) {
        if self.closed || !self.connected {
            return;
        }
        let Some(mid) = self.mid else { return };
        if !matches!(self.direction(), Some(Direction::SendRecv | Direction::SendOnly)) {
            return;
        }
        let tone = match (self.dtmf.front(), self.dtmf_next) {
            (Some(_), next) if next.is_none_or(|t| t <= now) => self.dtmf.pop_front().and_then(event_code),
            _ => None,
        };
        let opts = self.dtmf_options;
        let time = MediaTime::new(self.samples_sent, Frequency::EIGHT_KHZ);
        let len = if frame.is_empty() { FRAME } else { frame.len() };
        self.samples_sent += len as u64;
        let Some(mut writer) = self.rtc.writer(mid) else { return };
        let codec = writer.payload_params().find_map(|p| match p.spec().codec {
            Codec::PCMU => Some((p.pt(), G711::Pcmu)),
            Codec::PCMA => Some((p.pt(), G711::Pcma)),
            _ => None,
        });
        let Some((pt, law)) = codec else { return };
        if let Some(event) = tone {
            let duration = opts.duration.max(MIN_TONE);
            writer = writer.telephone_event(str0m::media::TelephoneEvent { event, end: true, volume: 10, duration });
            self.dtmf_next = Some(now + duration + opts.inter_tone_gap.max(MIN_GAP));
        }
        let data = law.encode(frame);
        if let Err(e) = writer.write(pt, now, time, data) {
            log_error(&e);
        }
        self.drain();
    }

    /// Sends `data` on the data channel, once open.
    pub fn send_data(&mut self, data: &[u8]) -> Result<(), HandlerError> {
        self.guarded(|h| h.data(data))
    }

    fn data(&mut self, data: &[u8]) -> Result<(), HandlerError> {
        let id = self.channel.ok_or_else(|| HandlerError::WebRtc("no data channel".into()))?;
        let mut ch = self.rtc.channel(id).ok_or_else(|| HandlerError::WebRtc("data channel not open".into()))?;
        let r = ch.write(true, data).map(|_| ()).map_err(webrtc_error);
        self.drain();
        r
    }

    /// Runs `f`, turning a panic inside str0m into a closed handler and an
    /// error: a malformed datagram or description must not take down the
    /// actor driving the handler (the dialog actor, for descriptions) and
    /// every other session with it. The session keeps its signalling.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, HandlerError>) -> Result<T, HandlerError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(_) => {
                self.closed = true;
                self.transmits.clear();
                self.events.push_back(WebRtcEvent::Disconnected);
                Err(HandlerError::WebRtc("the WebRTC engine failed: media closed".into()))
            }
        }
    }

    /// Drains str0m's output into the queues (str0m's run-loop contract).
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = Some(t);
                    break;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(Transmit {
                    source: t.source,
                    destination: t.destination,
                    data: t.contents.to_vec(),
                }),
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => {
                    log_error(&e);
                    self.timeout = None;
                    break;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.events.push_back(WebRtcEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.events.push_back(WebRtcEvent::Disconnected);
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.mid.is_none() => {
                self.mid = Some(m.mid);
            }
            Event::MediaData(d) => {
                self.last_media = Some(d.network_time);
                if let CodecExtra::Tele(ev) = d.codec_extra {
                    let start = d.time.numer();
                    if ev.end && self.last_tone != Some(start) {
                        self.last_tone = Some(start);
                        if let Some(digit) = event_digit(ev.event) {
                            let duration = u32::try_from(ev.duration.as_millis()).unwrap_or(u32::MAX);
                            self.events.push_back(WebRtcEvent::Dtmf { digit, duration });
                        }
                    }
                    return;
                }
                let law = match d.params.spec().codec {
                    Codec::PCMU => G711::Pcmu,
                    Codec::PCMA => G711::Pcma,
                    Codec::Tele => return,
                    _ => {
                        self.undecoded += 1;
                        return;
                    }
                };
                self.events.push_back(WebRtcEvent::Audio { samples: law.decode(&d.data) });
            }
            Event::ChannelOpen(id, label) => {
                self.channel = Some(id);
                self.events.push_back(WebRtcEvent::ChannelOpen { label });
            }
            Event::ChannelData(c) => self.events.push_back(WebRtcEvent::ChannelData { data: c.data }),
            _ => {}
        }
    }

    /// Keeps the remote candidates our host candidates can reach.
    fn filter_candidates(&self, sdp: &str) -> String {
        let mut out = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            if let Some(c) = line.trim_end().strip_prefix("a=candidate:") {
                let addr = c.split_ascii_whitespace().nth(4).unwrap_or_default();
                if addr.ends_with(".local") {
                    continue;
                }
                if self.loopback_only && !addr.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
                    continue;
                }
            }
            out.push_str(line);
        }
        out
    }

    fn modify(sdp: String, modifiers: &[Modifier]) -> Result<String, HandlerError> {
        if modifiers.is_empty() {
            return Ok(sdp);
        }
        let mut desc = SessionDescription::parse(sdp.as_bytes())?;
        apply_modifiers(&mut desc, modifiers);
        Ok(desc.to_string())
    }

    fn produce(&mut self, options: &DescriptionOptions, modifiers: &[Modifier]) -> Result<Description, HandlerError> {
        if self.closed {
            return Err(HandlerError::Closed);
        }
        let text = match self.state {
            SignalingState::HaveRemoteOffer => {
                let answer = self.answer.take().ok_or(HandlerError::WebRtc("no answer".into()))?;
                self.state = SignalingState::Stable;
                self.expect_since = None;
                answer
            }
            _ => self.offer(options.hold)?,
        };
        self.last_local = Some(text.clone());
        let text = Self::modify(text, modifiers)?;
        Ok(Description { content_type: APPLICATION_SDP.into(), body: text.into_bytes().into() })
    }

    fn consume(
        &mut self,
        description: &Description,
        _options: &DescriptionOptions,
        modifiers: &[Modifier],
    ) -> Result<(), HandlerError> {
        if self.closed {
            return Err(HandlerError::Closed);
        }
        let ct = description.content_type.split(';').next().unwrap_or_default().trim();
        if !ct.eq_ignore_ascii_case(APPLICATION_SDP) {
            return Err(HandlerError::UnsupportedContentType(description.content_type.clone()));
        }
        let text = std::str::from_utf8(&description.body)
            .map_err(|e| HandlerError::Sdp(crate::sdp::SdpError::NotUtf8 { offset: e.valid_up_to() }))?;
        let text = self.filter_candidates(&Self::modify(text.to_owned(), modifiers)?);
        if self.state == SignalingState::HaveLocalOffer {
            let answer = SdpAnswer::from_sdp_string(&text).map_err(webrtc_error)?;
            let result = match self.pending.take() {
                Some(p) => self.rtc.sdp_api().accept_answer(p, answer).map_err(webrtc_error),
                None => Ok(()),
            };
            self.unchanged_offer = false;
            self.state = SignalingState::Stable;
            self.expect_since = None;
            self.drain();
            return result;
        }
        let offer = SdpOffer::from_sdp_string(&text).map_err(webrtc_error)?;
        let answer = self.rtc.sdp_api().accept_offer(offer).map_err(webrtc_error);
        self.pending = None;
        self.drain();
        let answer = answer?;
        if self.mid.is_none() {
            self.mid = audio_mid(&text).map(Mid::from);
        }
        self.remote_hold = matches!(audio_direction(&text), Direction::SendOnly | Direction::Inactive);
        self.answer = Some(answer.to_sdp_string());
        self.state = SignalingState::HaveRemoteOffer;
        self.expect_since = None;
        Ok(())
    }

    fn offer(&mut self, hold: bool) -> Result<String, HandlerError> {
        let direction = from_direction(offer_direction(hold, self.remote_hold));
        let mut api = self.rtc.sdp_api();
        match self.mid {
            None => {
                self.mid = Some(api.add_media(MediaKind::Audio, direction, None, None, None));
                if let Some(label) = &self.config.data_channel {
                    self.channel = Some(api.add_channel(label.clone()));
                }
            }
            Some(mid) => api.set_direction(mid, direction),
        }
        let text = match api.apply() {
            Some((offer, pending)) => {
                self.pending = Some(pending);
                self.unchanged_offer = false;
                offer.to_sdp_string()
            }
            None => {
                let last = self.last_local.clone().ok_or_else(|| HandlerError::WebRtc("nothing to offer".into()))?;
                self.unchanged_offer = true;
                last.replace("a=setup:active", "a=setup:actpass").replace("a=setup:passive", "a=setup:actpass")
            }
        };
        self.drain();
        self.local_hold = hold;
        self.state = SignalingState::HaveLocalOffer;
        // str0m applies a direction change at once: a fresh wait for media.
        self.expect_since = None;
        Ok(text)
    }
}

/// str0m errors inside the run loop are not fatal to the session: logged,
/// and the handler keeps going.
fn log_error<E: std::fmt::Display>(e: &E) {
    tracing::debug!(error = %e, "str0m");
}

impl SessionDescriptionHandler for WebRtcHandler {
    fn get_description(
        &mut self,
        options: &DescriptionOptions,
        modifiers: &[Modifier],
    ) -> Result<Description, HandlerError> {
        self.guarded(|h| h.produce(options, modifiers))
    }

    fn set_description(
        &mut self,
        description: &Description,
        options: &DescriptionOptions,
        modifiers: &[Modifier],
    ) -> Result<(), HandlerError> {
        self.guarded(|h| h.consume(description, options, modifiers))
    }

    fn rollback_description(&mut self) {
        match self.state {
            SignalingState::HaveLocalOffer => {
                self.pending = None;
                self.unchanged_offer = false;
                if let Some(mid) = self.mid
                    && self.rtc.media(mid).is_none()
                {
                    self.mid = None;
                    self.channel = None;
                }
            }
            SignalingState::HaveRemoteOffer => self.answer = None,
            _ => {}
        }
        self.state = SignalingState::Stable;
    }

    fn signaling_state(&self) -> SignalingState {
        self.state
    }

    fn direction(&self) -> Option<Direction> {
        let m = self.rtc.media(self.mid?)?;
        Some(to_direction(m.direction()))
    }

    fn is_on_hold(&self) -> bool {
        self.local_hold
    }

    fn send_dtmf(&mut self, tones: &str, options: &DtmfOptions) -> Result<(), HandlerError> {
        if self.closed {
            return Err(HandlerError::Closed);
        }
        if !self.has_telephone_event() {
            return Err(HandlerError::Dtmf(RtpError::NoTelephoneEvent));
        }
        let digits: Vec<char> = tones.chars().filter(|c| *c != ',').collect();
        if let Some(bad) = digits.iter().find(|c| event_code(**c).is_none()) {
            return Err(HandlerError::WebRtc(format!("not a DTMF tone: {bad:?}")));
        }
        self.dtmf_options = *options;
        self.dtmf.extend(digits);
        Ok(())
    }

    fn close(&mut self) {
        if !self.closed {
            let _ = self.guarded(|h| {
                h.rtc.disconnect();
                h.drain();
                Ok(())
            });
            self.closed = true;
        }
    }
}

#[cfg(test)]
mod tests;
