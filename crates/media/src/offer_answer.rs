//! RFC 3264 offer/answer over [`SessionDescription`]s.
//!
//! [`OfferAnswer`] builds offers from a [`LocalMedia`] capability list,
//! answers offers by codec intersection, applies answers, and tracks hold:
//!
//! - an answer keeps the offerer's payload-type numbers and order (§6.1);
//! - an m-line we cannot use (other media, other transport, no common
//!   codec, offered with port 0, or a second audio stream) is answered with
//!   port 0 (§6);
//! - directions are answered as §6.1 says: `sendonly` → `recvonly`,
//!   `recvonly` → `sendonly`, `inactive` → `inactive`, `sendrecv` →
//!   `sendrecv`, or `sendonly` when we hold (and `sendonly` → `inactive`
//!   when we hold too);
//! - a hold offer is `sendonly`, or `inactive` when the peer holds us as
//!   well (§8.4); unhold offers `sendrecv` again;
//! - the origin's session version grows by one with each description we
//!   send that differs from the previous one, and stays put for an
//!   unchanged re-send (§8).
//!
//! [`Modifier`]s are applied in order to outgoing descriptions (after we
//! build them, before the version is settled) and to incoming ones (before
//! we read them), as in SIP.js.

use std::net::{IpAddr, SocketAddr};

use crate::sdp::{Attribute, Connection, Direction, MediaDescription, Origin, RtpMap, SessionDescription};

/// A SIP.js-style description modifier.
pub type Modifier = Box<dyn Fn(&mut SessionDescription) + Send>;

/// Applies `modifiers` to `desc` in order.
pub fn apply_modifiers(desc: &mut SessionDescription, modifiers: &[Modifier]) {
    for m in modifiers {
        m(desc);
    }
}

/// Why an offer or answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// No media stream could be accepted (SIP 488).
    #[error("no acceptable media stream")]
    NoAcceptableMedia,
    /// An answer arrived with no offer outstanding.
    #[error("answer without an outstanding offer")]
    NoOfferPending,
    /// The answer does not match the offer (m-line count, type, payload types).
    #[error("answer does not match the offer: {reason}")]
    AnswerMismatch {
        /// What differs.
        reason: &'static str,
    },
}

/// A codec we can send and receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// The payload type we offer it with.
    pub payload_type: u8,
    /// Encoding name (`PCMU`).
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels, when the rtpmap names them.
    pub channels: Option<u16>,
    /// `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// G.711 μ-law, static payload type 0.
    pub fn pcmu() -> Self {
        Codec { payload_type: 0, name: "PCMU".into(), clock_rate: 8000, channels: None, fmtp: None }
    }
    /// G.711 A-law, static payload type 8.
    pub fn pcma() -> Self {
        Codec { payload_type: 8, name: "PCMA".into(), clock_rate: 8000, channels: None, fmtp: None }
    }
    /// RFC 4733 telephone-event at 8 kHz, payload type 101, events 0-15.
    pub fn telephone_event() -> Self {
        Codec {
            payload_type: 101,
            name: "telephone-event".into(),
            clock_rate: 8000,
            channels: None,
            fmtp: Some("0-15".into()),
        }
    }
    /// Opus (RFC 7587), payload type 111, 48 kHz stereo signalling.
    pub fn opus() -> Self {
        Codec {
            payload_type: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: Some(2),
            fmtp: Some("minptime=10;useinbandfec=1".into()),
        }
    }
    /// Whether this is the DTMF payload.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }
    /// Whether `map` names this codec (name, clock rate and, for Opus, channels).
    pub fn matches(&self, map: &RtpMap) -> bool {
        self.name.eq_ignore_ascii_case(&map.encoding)
            && self.clock_rate == map.clock_rate
            && (self.channels.unwrap_or(1) == map.channels.unwrap_or(1) || self.channels.is_none())
    }
    fn rtpmap(&self, pt: u8) -> RtpMap {
        RtpMap { payload_type: pt, encoding: self.name.clone(), clock_rate: self.clock_rate, channels: self.channels }
    }
}

/// What we offer and accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our media address (origin and `c=`).
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Codecs in preference order (telephone-event included if wanted).
    pub codecs: Vec<Codec>,
    /// Transport protocols we accept; the first is offered.
    pub protos: Vec<String>,
    /// `a=ptime` to announce, if any.
    pub ptime: Option<u32>,
    /// Whether to offer and accept `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Origin username.
    pub username: String,
    /// `s=` value.
    pub session_name: String,
}

impl LocalMedia {
    /// Plain RTP/AVP audio on `address:port`: PCMU, PCMA, telephone-event, ptime 20.
    pub fn audio(address: IpAddr, port: u16) -> Self {
        LocalMedia {
            address,
            port,
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::telephone_event()],
            protos: vec!["RTP/AVP".into()],
            ptime: Some(20),
            rtcp_mux: false,
            username: "-".into(),
            session_name: "sipact".into(),
        }
    }
    /// The same, with Opus first.
    pub fn with_opus(mut self) -> Self {
        self.codecs.insert(0, Codec::opus());
        self
    }
}

/// Offer/answer signalling state (as in JSEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    /// No offer outstanding.
    Stable,
    /// We sent an offer and wait for the answer.
    HaveLocalOffer,
    /// We received an offer and owe an answer.
    HaveRemoteOffer,
}

/// The outcome of a completed exchange for the (single) audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio m-line.
    pub index: usize,
    /// The codec to send, with the payload type agreed (the offerer's number).
    pub codec: Codec,
    /// All agreed codecs, telephone-event included, in answer order.
    pub codecs: Vec<Codec>,
    /// The telephone-event payload type, if agreed.
    pub telephone_event: Option<u8>,
    /// Where to send RTP, from the peer's description (`None` if port 0 or no address).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (`a=rtcp`, else port + 1, else the RTP address when muxed).
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether RTCP is multiplexed on the RTP port.
    pub rtcp_mux: bool,
    /// Our direction.
    pub direction: Direction,
    /// The peer's ptime, if given.
    pub ptime: Option<u32>,
}

/// The RFC 3264 engine for one session.
#[derive(Debug, Clone)]
pub struct OfferAnswer {
    local: LocalMedia,
    session_id: u64,
    version: u64,
    state: SignalingState,
    last_sent: Option<SessionDescription>,
    pending_offer: Option<SessionDescription>,
    remote_offer: Option<SessionDescription>,
    remote: Option<SessionDescription>,
    negotiated: Option<Negotiated>,
    local_hold: bool,
    remote_hold: bool,
}

/// The answer direction of §6.1 for an offered direction.
pub fn answer_direction(offered: Direction, hold: bool) -> Direction {
    match (offered, hold) {
        (Direction::SendOnly, false) => Direction::RecvOnly,
        (Direction::SendOnly, true) => Direction::Inactive,
        (Direction::RecvOnly, _) => Direction::SendOnly,
        (Direction::Inactive, _) => Direction::Inactive,
        (Direction::SendRecv, false) => Direction::SendRecv,
        (Direction::SendRecv, true) => Direction::SendOnly,
    }
}

/// The direction to offer given our and the peer's hold state.
pub fn offer_direction(local_hold: bool, remote_hold: bool) -> Direction {
    match (local_hold, remote_hold) {
        (true, true) => Direction::Inactive,
        (true, false) => Direction::SendOnly,
        (false, _) => Direction::SendRecv,
    }
}

fn socket(conn: Option<&Connection>, port: u16) -> Option<SocketAddr> {
    let ip = conn?.ip_addr()?;
    (port != 0 && !ip.is_unspecified()).then_some(SocketAddr::new(ip, port))
}

impl OfferAnswer {
    /// An engine for `local`; `session_id` goes into the origin (pick it at random).
    pub fn new(local: LocalMedia, session_id: u64) -> Self {
        OfferAnswer {
            local,
            session_id,
            version: 0,
            state: SignalingState::Stable,
            last_sent: None,
            pending_offer: None,
            remote_offer: None,
            remote: None,
            negotiated: None,
            local_hold: false,
            remote_hold: false,
        }
    }

    /// The capability list.
    pub fn local_media(&self) -> &LocalMedia {
        &self.local
    }
    /// Changes the capability list (e.g. a new port); the next description gets a new version.
    pub fn set_local_media(&mut self, local: LocalMedia) {
        self.local = local;
    }
    /// Signalling state.
    pub fn state(&self) -> SignalingState {
        self.state
    }
    /// The last description we sent.
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.last_sent.as_ref()
    }
    /// The last description the peer sent (after incoming modifiers).
    pub fn remote_description(&self) -> Option<&SessionDescription> {
        self.remote.as_ref()
    }
    /// The outcome of the last completed exchange.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    /// Whether we hold the peer.
    pub fn local_hold(&self) -> bool {
        self.local_hold
    }
    /// Whether the peer holds us (its last description was `sendonly` or `inactive`).
    pub fn remote_hold(&self) -> bool {
        self.remote_hold
    }

    fn origin(&self) -> Origin {
        let addr_type = if self.local.address.is_ipv4() { "IP4" } else { "IP6" };
        Origin {
            username: self.local.username.clone(),
            session_id: self.session_id,
            session_version: self.version,
            net_type: "IN".into(),
            addr_type: addr_type.into(),
            address: self.local.address.to_string(),
        }
    }

    fn base(&self) -> SessionDescription {
        let mut d = SessionDescription::new(self.origin());
        d.session_name = self.local.session_name.clone();
        d.connection = Some(Connection::ip(self.local.address));
        d
    }

    fn audio_section(&self, port: u16, codecs: &[Codec], dir: Direction, mux: bool) -> MediaDescription {
        let proto = self.local.protos.first().map(String::as_str).unwrap_or("RTP/AVP");
        let formats = codecs.iter().map(|c| c.payload_type.to_string()).collect();
        let mut m = MediaDescription::new("audio", port, proto, formats);
        for c in codecs {
            m.attributes.push(Attribute::new("rtpmap", c.rtpmap(c.payload_type).value()));
            if let Some(f) = &c.fmtp {
                m.attributes.push(Attribute::new("fmtp", format!("{} {f}", c.payload_type)));
            }
        }
        if let Some(p) = self.local.ptime {
            m.attributes.push(Attribute::new("ptime", p.to_string()));
        }
        if mux {
            m.attributes.push(Attribute::flag("rtcp-mux"));
        }
        m.attributes.push(Attribute::flag(dir.as_str()));
        m
    }

    /// Settles the origin version of an outgoing description and records it.
    fn seal(&mut self, mut desc: SessionDescription, modifiers: &[Modifier]) -> SessionDescription {
        apply_modifiers(&mut desc, modifiers);
        desc.origin.session_id = self.session_id;
        desc.origin.session_version = self.version;
        let unchanged = self.last_sent.as_ref().is_some_and(|prev| *prev == desc);
        if !unchanged {
            self.version = self.version.wrapping_add(1);
            desc.origin.session_version = self.version;
        }
        self.last_sent = Some(desc.clone());
        desc
    }

    /// A new offer. `hold` asks for `sendonly` (`inactive` if the peer
    /// holds us too). An offer made while one is outstanding replaces it.
    pub fn create_offer(&mut self, hold: bool, modifiers: &[Modifier]) -> SessionDescription {
        self.local_hold = hold;
        self.remote_offer = None;
        let dir = offer_direction(hold, self.remote_hold);
        let mut desc = self.base();
        let codecs = self.local.codecs.clone();
        // Keep the m-line layout of a previous exchange (§8): other streams stay rejected.
        let audio_index = self.negotiated.as_ref().map(|n| n.index);
        match (&self.remote, audio_index) {
            (Some(prev), Some(idx)) => {
                for (i, m) in prev.media.iter().enumerate() {
                    if i == idx {
                        desc.media.push(self.audio_section(self.local.port, &codecs, dir, self.local.rtcp_mux));
                    } else {
                        desc.media.push(MediaDescription::new(&m.media, 0, &m.proto, m.formats.clone()));
                    }
                }
            }
            _ => desc.media.push(self.audio_section(self.local.port, &codecs, dir, self.local.rtcp_mux)),
        }
        let desc = self.seal(desc, modifiers);
        self.pending_offer = Some(desc.clone());
        self.state = SignalingState::HaveLocalOffer;
        desc
    }

    /// Records the peer's offer (after `modifiers`), to be answered by [`create_answer`](Self::create_answer).
    pub fn set_remote_offer(&mut self, mut offer: SessionDescription, modifiers: &[Modifier]) {
        apply_modifiers(&mut offer, modifiers);
        self.pending_offer = None;
        self.remote_offer = Some(offer);
        self.state = SignalingState::HaveRemoteOffer;
    }

    /// Answers the recorded remote offer. `hold` keeps our side held.
    pub fn create_answer(
        &mut self,
        hold: bool,
        modifiers: &[Modifier],
    ) -> Result<SessionDescription, OfferAnswerError> {
        let offer = self.remote_offer.clone().ok_or(OfferAnswerError::NoOfferPending)?;
        let mut desc = self.base();
        let mut accepted: Option<(usize, Vec<Codec>, Direction, bool)> = None;
        for (i, m) in offer.media.iter().enumerate() {
            let usable = accepted.is_none()
                && m.port != 0
                && m.media.eq_ignore_ascii_case("audio")
                && self.local.protos.iter().any(|p| p.eq_ignore_ascii_case(&m.proto));
            let common = if usable { self.intersect(m) } else { Vec::new() };
            if common.iter().any(|c| !c.is_telephone_event()) {
                let offered = offer.media_direction(i);
                let dir = answer_direction(offered, hold);
                let mux = self.local.rtcp_mux && m.rtcp_mux();
                desc.media.push(self.audio_section(self.local.port, &common, dir, mux));
                accepted = Some((i, common, offered, mux));
            } else {
                desc.media.push(MediaDescription::new(&m.media, 0, &m.proto, m.formats.clone()));
            }
        }
        let Some((index, codecs, offered, _)) = accepted else {
            return Err(OfferAnswerError::NoAcceptableMedia);
        };
        let desc = self.seal(desc, modifiers);
        self.local_hold = hold;
        self.remote_hold = matches!(offered, Direction::SendOnly | Direction::Inactive);
        self.negotiated = Some(Self::outcome(&offer, index, codecs, desc.media_direction(index)));
        self.remote = Some(offer);
        self.remote_offer = None;
        self.state = SignalingState::Stable;
        Ok(desc)
    }

    /// Offered codecs we support, in the offer's order with its payload types.
    fn intersect(&self, m: &MediaDescription) -> Vec<Codec> {
        let mut out: Vec<Codec> = Vec::new();
        for pt in m.payload_types() {
            let Some(map) = m.rtpmap(pt) else { continue };
            if let Some(c) = self.local.codecs.iter().find(|c| c.matches(&map)) {
                if out.iter().any(|o| o.payload_type == pt) {
                    continue;
                }
                let fmtp = if c.is_telephone_event() {
                    m.fmtp(pt).map(String::from).or_else(|| c.fmtp.clone())
                } else {
                    c.fmtp.clone()
                };
                out.push(Codec {
                    payload_type: pt,
                    name: map.encoding.clone(),
                    clock_rate: map.clock_rate,
                    channels: map.channels.or(c.channels),
                    fmtp,
                });
            }
        }
        out
    }

    fn outcome(remote: &SessionDescription, index: usize, codecs: Vec<Codec>, local_dir: Direction) -> Negotiated {
        let m = remote.media.get(index);
        let port = m.map(|m| m.port).unwrap_or(0);
        let conn = remote.media_connection(index);
        let remote_rtp = socket(conn, port);
        let rtcp_mux = m.is_some_and(|m| m.rtcp_mux());
        let remote_rtcp = if rtcp_mux {
            remote_rtp
        } else {
            match m.and_then(|m| m.rtcp()) {
                Some(r) => socket(r.connection.as_ref().or(conn), r.port),
                None => socket(conn, port.wrapping_add(1)),
            }
        };
        let codec = codecs.iter().find(|c| !c.is_telephone_event()).cloned().unwrap_or_else(Codec::pcmu);
        let telephone_event =
            codecs.iter().find(|c| c.is_telephone_event() && c.clock_rate == codec.clock_rate).map(|c| c.payload_type);
        Negotiated {
            index,
            codec,
            codecs,
            telephone_event,
            remote_rtp,
            remote_rtcp,
            rtcp_mux,
            direction: local_dir,
            ptime: m.and_then(|m| m.ptime()),
        }
    }

    /// Applies the peer's answer (after `modifiers`) to our outstanding offer.
    pub fn apply_answer(
        &mut self,
        mut answer: SessionDescription,
        modifiers: &[Modifier],
    ) -> Result<&Negotiated, OfferAnswerError> {
        apply_modifiers(&mut answer, modifiers);
        let offer = self.pending_offer.as_ref().ok_or(OfferAnswerError::NoOfferPending)?;
        if answer.media.len() != offer.media.len() {
            return Err(OfferAnswerError::AnswerMismatch { reason: "m-line count" });
        }
        let mut accepted = None;
        for (i, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
            if !o.media.eq_ignore_ascii_case(&a.media) {
                return Err(OfferAnswerError::AnswerMismatch { reason: "media type" });
            }
            if a.port == 0 || o.port == 0 || accepted.is_some() {
                continue;
            }
            let offered = o.payload_types();
            let mut codecs = Vec::new();
            for pt in a.payload_types() {
                if !offered.contains(&pt) {
                    return Err(OfferAnswerError::AnswerMismatch { reason: "payload type not offered" });
                }
                let map = a.rtpmap(pt).or_else(|| o.rtpmap(pt));
                if let Some(c) = map.and_then(|map| self.local.codecs.iter().find(|c| c.matches(&map))) {
                    let mut c = c.clone();
                    c.payload_type = pt;
                    codecs.push(c);
                }
            }
            if codecs.iter().any(|c| !c.is_telephone_event()) {
                accepted = Some((i, codecs));
            }
        }
        let Some((index, codecs)) = accepted else {
            return Err(OfferAnswerError::NoAcceptableMedia);
        };
        let offered_dir = offer.media_direction(index);
        let answered = answer.media_direction(index);
        // Our effective direction: what we offered, narrowed by what the peer answered.
        let local_dir = match (offered_dir.sends() && answered.receives(), offered_dir.receives() && answered.sends()) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        };
        self.remote_hold = match offered_dir {
            Direction::SendRecv => matches!(answered, Direction::SendOnly | Direction::Inactive),
            Direction::SendOnly | Direction::RecvOnly => answered == Direction::Inactive,
            // An inactive offer says nothing new about the peer's wish.
            Direction::Inactive => self.remote_hold,
        };
        self.negotiated = Some(Self::outcome(&answer, index, codecs, local_dir));
        self.remote = Some(answer);
        self.pending_offer = None;
        self.state = SignalingState::Stable;
        self.negotiated.as_ref().ok_or(OfferAnswerError::NoAcceptableMedia)
    }

    /// Abandons an outstanding offer (ours or the peer's), back to `Stable`.
    pub fn rollback(&mut self) {
        self.pending_offer = None;
        self.remote_offer = None;
        self.state = SignalingState::Stable;
    }
}
