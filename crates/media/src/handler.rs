//! Session description handlers, in the spirit of SIP.js.
//!
//! A [`SessionDescriptionHandler`] produces descriptions (an offer, or the
//! answer to an offer it was given) from [`DescriptionOptions`] and
//! [`Modifier`]s, applies remote descriptions, says which content types it
//! handles, sends DTMF, changes direction for hold, and closes.
//!
//! Like JSEP and SIP.js, a handler knows from its [`SignalingState`] whether
//! [`get_description`](SessionDescriptionHandler::get_description) makes an
//! offer (stable) or an answer (after a remote offer), and whether
//! [`set_description`](SessionDescriptionHandler::set_description) takes an
//! offer (stable) or an answer (after our offer).
//!
//! [`HandlerHooks`] adapts any handler to the session engine's
//! [`DescriptionHooks`], so `sipact_proto`'s INVITE sessions drive it.
//! A [`SessionDescriptionHandlerFactory`] makes one handler per session.
//!
//! Built in:
//! - [`RtpHandler`]: plain RTP/AVP (PCMU, PCMA, telephone-event), owning
//!   the sans-IO [`RtpSession`] that the media actor drives with its socket;
//! - [`NoneHandler`]: signalling only, for load generation. See its docs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sipact_message::MediaType;
use sipact_proto::session::{Body, DescriptionHooks};

use crate::offer_answer::{LocalMedia, Modifier, Negotiated, OfferAnswer, OfferAnswerError, SignalingState};
use crate::rtp::{G711, RtpConfig, RtpError, RtpSession};
use crate::sdp::{Direction, SdpError, SessionDescription};

/// The SDP content type.
pub const APPLICATION_SDP: &str = "application/sdp";

/// Options of one description (SIP.js `SessionDescriptionHandlerOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DescriptionOptions {
    /// Hold: offer `sendonly` (`inactive` if the peer holds too), or keep
    /// the answer's direction from sending-and-receiving.
    pub hold: bool,
}

/// A description with its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `application/sdp`.
    pub content_type: String,
    /// The body.
    pub body: Bytes,
}

impl Description {
    /// An SDP description.
    pub fn sdp(desc: &SessionDescription) -> Self {
        Description { content_type: APPLICATION_SDP.into(), body: Bytes::from(desc.to_bytes()) }
    }
}

/// How to send DTMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfOptions {
    /// Tone length (at least 40 ms).
    pub duration: Duration,
    /// Gap between tones.
    pub inter_tone_gap: Duration,
}

impl Default for DtmfOptions {
    fn default() -> Self {
        DtmfOptions { duration: Duration::from_millis(100), inter_tone_gap: Duration::from_millis(70) }
    }
}

/// Why a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The body is not valid SDP.
    #[error("invalid SDP: {0}")]
    Sdp(#[from] SdpError),
    /// Offer/answer failed (no common codec...).
    #[error(transparent)]
    OfferAnswer(#[from] OfferAnswerError),
    /// A content type this handler does not handle.
    #[error("unsupported content type {0}")]
    UnsupportedContentType(String),
    /// DTMF cannot be sent in media (use SIP INFO instead).
    #[error("DTMF not supported: {0}")]
    Dtmf(#[from] RtpError),
    /// The handler was closed.
    #[error("handler closed")]
    Closed,
    /// WebRTC (str0m) refused a description or an operation.
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

impl HandlerError {
    /// The SIP status for a [`DescriptionHooks`] failure: 415 for a content
    /// type, 488 (Not Acceptable Here) otherwise.
    pub fn status(&self) -> u16 {
        match self {
            HandlerError::UnsupportedContentType(_) => 415,
            _ => 488,
        }
    }
}

/// Produces and consumes session descriptions for one session.
pub trait SessionDescriptionHandler: Send {
    /// The content types handled (`application/sdp`).
    fn content_types(&self) -> &[&'static str] {
        &[APPLICATION_SDP]
    }
    /// Whether a body of `content_type` can be handled (SIP.js `hasDescription`).
    fn has_description(&self, content_type: &str) -> bool {
        let ct = content_type.split(';').next().unwrap_or_default().trim();
        self.content_types().iter().any(|t| t.eq_ignore_ascii_case(ct))
    }
    /// An offer (when stable) or the answer to the remote offer, after the
    /// outgoing `modifiers`.
    fn get_description(
        &mut self,
        options: &DescriptionOptions,
        modifiers: &[Modifier],
    ) -> Result<Description, HandlerError>;
    /// Applies a remote offer (when stable) or answer (after our offer),
    /// after the incoming `modifiers`.
    fn set_description(
        &mut self,
        description: &Description,
        options: &DescriptionOptions,
        modifiers: &[Modifier],
    ) -> Result<(), HandlerError>;
    /// Abandons an outstanding offer (SIP.js `rollbackDescription`).
    fn rollback_description(&mut self);
    /// Offer/answer state.
    fn signaling_state(&self) -> SignalingState;
    /// Our negotiated direction, once a description exchange completed.
    fn direction(&self) -> Option<Direction>;
    /// Whether our last description held the peer.
    fn is_on_hold(&self) -> bool;
    /// Sends DTMF in media (RFC 4733); an error means "use SIP INFO".
    fn send_dtmf(&mut self, tones: &str, options: &DtmfOptions) -> Result<(), HandlerError>;
    /// Releases the media; later calls fail with [`HandlerError::Closed`].
    fn close(&mut self);
}

impl<H: SessionDescriptionHandler + ?Sized> SessionDescriptionHandler for Box<H> {
    fn content_types(&self) -> &[&'static str] {
        (**self).content_types()
    }
    fn has_description(&self, content_type: &str) -> bool {
        (**self).has_description(content_type)
    }
    fn get_description(&mut self, o: &DescriptionOptions, m: &[Modifier]) -> Result<Description, HandlerError> {
        (**self).get_description(o, m)
    }
    fn set_description(&mut self, d: &Description, o: &DescriptionOptions, m: &[Modifier]) -> Result<(), HandlerError> {
        (**self).set_description(d, o, m)
    }
    fn rollback_description(&mut self) {
        (**self).rollback_description()
    }
    fn signaling_state(&self) -> SignalingState {
        (**self).signaling_state()
    }
    fn direction(&self) -> Option<Direction> {
        (**self).direction()
    }
    fn is_on_hold(&self) -> bool {
        (**self).is_on_hold()
    }
    fn send_dtmf(&mut self, tones: &str, options: &DtmfOptions) -> Result<(), HandlerError> {
        (**self).send_dtmf(tones, options)
    }
    fn close(&mut self) {
        (**self).close()
    }
}

/// A handler shared between the session engine (through [`HandlerHooks`])
/// and the media driver (which needs the [`RtpSession`]). A poisoned lock
/// is recovered, never a panic.
pub type SharedHandler<H> = Arc<Mutex<H>>;

fn locked<H>(h: &Mutex<H>) -> std::sync::MutexGuard<'_, H> {
    h.lock().unwrap_or_else(|p| p.into_inner())
}

impl<H: SessionDescriptionHandler> SessionDescriptionHandler for Arc<Mutex<H>> {
    fn has_description(&self, content_type: &str) -> bool {
        locked(self).has_description(content_type)
    }
    fn get_description(&mut self, o: &DescriptionOptions, m: &[Modifier]) -> Result<Description, HandlerError> {
        locked(self).get_description(o, m)
    }
    fn set_description(&mut self, d: &Description, o: &DescriptionOptions, m: &[Modifier]) -> Result<(), HandlerError> {
        locked(self).set_description(d, o, m)
    }
    fn rollback_description(&mut self) {
        locked(self).rollback_description()
    }
    fn signaling_state(&self) -> SignalingState {
        locked(self).signaling_state()
    }
    fn direction(&self) -> Option<Direction> {
        locked(self).direction()
    }
    fn is_on_hold(&self) -> bool {
        locked(self).is_on_hold()
    }
    fn send_dtmf(&mut self, tones: &str, options: &DtmfOptions) -> Result<(), HandlerError> {
        locked(self).send_dtmf(tones, options)
    }
    fn close(&mut self) {
        locked(self).close()
    }
}

/// What a factory knows when it makes a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerContext {
    /// Our media address.
    pub address: IpAddr,
    /// The RTP port the media driver bound for this session.
    pub port: u16,
    /// The SDP session id (random).
    pub session_id: u64,
    /// Our SSRC (random).
    pub ssrc: u32,
    /// Whether the session was started by the peer.
    pub inbound: bool,
}

/// Makes one handler per session (SIP.js `SessionDescriptionHandlerFactory`).
/// Closures `Fn(&HandlerContext) -> Result<Box<dyn SessionDescriptionHandler>, HandlerError>`
/// are factories.
pub trait SessionDescriptionHandlerFactory: Send + Sync {
    /// A handler for a new session.
    fn create(&self, context: &HandlerContext) -> Result<Box<dyn SessionDescriptionHandler>, HandlerError>;
}

impl<F> SessionDescriptionHandlerFactory for F
where
    F: Fn(&HandlerContext) -> Result<Box<dyn SessionDescriptionHandler>, HandlerError> + Send + Sync,
{
    fn create(&self, context: &HandlerContext) -> Result<Box<dyn SessionDescriptionHandler>, HandlerError> {
        self(context)
    }
}

/// Which built-in handler a [`BuiltinFactory`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// [`NoneHandler`].
    None,
    /// [`RtpHandler`].
    Rtp,
}

/// A factory of the built-in handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinFactory(pub MediaKind);

impl SessionDescriptionHandlerFactory for BuiltinFactory {
    fn create(&self, c: &HandlerContext) -> Result<Box<dyn SessionDescriptionHandler>, HandlerError> {
        Ok(match self.0 {
            MediaKind::None => Box::new(NoneHandler::new(c.address, c.port, c.session_id)),
            MediaKind::Rtp => {
                Box::new(RtpHandler::new(LocalMedia::audio(c.address, c.port), c.session_id, RtpConfig::pcmu(c.ssrc)))
            }
        })
    }
}

/// Adapts a [`SessionDescriptionHandler`] to the session engine's
/// [`DescriptionHooks`], with the modifiers for outgoing and incoming
/// descriptions. Failures become SIP statuses ([`HandlerError::status`]).
pub struct HandlerHooks<H> {
    handler: H,
    outgoing: Vec<Modifier>,
    incoming: Vec<Modifier>,
}

impl<H: SessionDescriptionHandler> HandlerHooks<H> {
    /// Hooks over `handler`, with no modifiers.
    pub fn new(handler: H) -> Self {
        HandlerHooks { handler, outgoing: Vec::new(), incoming: Vec::new() }
    }
    /// Adds a modifier for the descriptions we send.
    pub fn with_outgoing(mut self, m: Modifier) -> Self {
        self.outgoing.push(m);
        self
    }
    /// Adds a modifier for the descriptions we receive.
    pub fn with_incoming(mut self, m: Modifier) -> Self {
        self.incoming.push(m);
        self
    }
    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
    /// The handler back.
    pub fn into_inner(self) -> H {
        self.handler
    }

    fn body(d: Description) -> Body {
        let (t, s) = d.content_type.split_once('/').unwrap_or(("application", "sdp"));
        Body { content_type: MediaType::new(t, s), data: d.body }
    }

    fn description(&self, b: &Body) -> Result<Description, HandlerError> {
        let ct = format!("{}/{}", b.content_type.mtype, b.content_type.subtype);
        if !self.handler.has_description(&ct) {
            return Err(HandlerError::UnsupportedContentType(ct));
        }
        Ok(Description { content_type: ct, body: b.data.clone() })
    }
}

impl<H> std::fmt::Debug for HandlerHooks<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerHooks")
            .field("outgoing", &self.outgoing.len())
            .field("incoming", &self.incoming.len())
            .finish_non_exhaustive()
    }
}

impl<H: SessionDescriptionHandler> DescriptionHooks for HandlerHooks<H> {
    fn offer(&mut self, hold: bool) -> Result<Body, u16> {
        if self.handler.signaling_state() == SignalingState::HaveRemoteOffer {
            self.handler.rollback_description();
        }
        let d = self.handler.get_description(&DescriptionOptions { hold }, &self.outgoing).map_err(|e| e.status())?;
        Ok(Self::body(d))
    }

    fn answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16> {
        if self.handler.signaling_state() != SignalingState::Stable {
            self.handler.rollback_description();
        }
        let options = DescriptionOptions { hold };
        let d = self.description(offer).map_err(|e| e.status())?;
        self.handler.set_description(&d, &options, &self.incoming).map_err(|e| e.status())?;
        match self.handler.get_description(&options, &self.outgoing) {
            Ok(d) => Ok(Self::body(d)),
            Err(e) => {
                self.handler.rollback_description();
                Err(e.status())
            }
        }
    }

    fn apply_answer(&mut self, answer: &Body) -> Result<(), u16> {
        let d = self.description(answer).map_err(|e| e.status())?;
        if self.handler.signaling_state() != SignalingState::HaveLocalOffer {
            // RFC 3261 §13.2.1: the first description in a response to the
            // INVITE is the answer (an unreliable 183's); the same answer
            // repeated in the 2xx, or any later one, is ignored.
            if self.handler.direction().is_some() {
                return Ok(());
            }
            return Err(HandlerError::OfferAnswer(OfferAnswerError::NoOfferPending).status());
        }
        let hold = self.handler.is_on_hold();
        self.handler.set_description(&d, &DescriptionOptions { hold }, &self.incoming).map_err(|e| e.status())
    }
}

/// Shared offer/answer plumbing of the built-in handlers.
fn produce(
    oa: &mut OfferAnswer,
    closed: bool,
    options: &DescriptionOptions,
    modifiers: &[Modifier],
) -> Result<(Description, bool), HandlerError> {
    if closed {
        return Err(HandlerError::Closed);
    }
    match oa.state() {
        SignalingState::HaveRemoteOffer => Ok((Description::sdp(&oa.create_answer(options.hold, modifiers)?), true)),
        _ => Ok((Description::sdp(&oa.create_offer(options.hold, modifiers)), false)),
    }
}

fn consume(
    oa: &mut OfferAnswer,
    closed: bool,
    description: &Description,
    modifiers: &[Modifier],
) -> Result<bool, HandlerError> {
    if closed {
        return Err(HandlerError::Closed);
    }
    let ct = description.content_type.split(';').next().unwrap_or_default().trim();
    if !ct.eq_ignore_ascii_case(APPLICATION_SDP) {
        return Err(HandlerError::UnsupportedContentType(description.content_type.clone()));
    }
    let sdp = SessionDescription::parse(&description.body)?;
    match oa.state() {
        SignalingState::HaveLocalOffer => {
            oa.apply_answer(sdp, modifiers)?;
            Ok(true)
        }
        _ => {
            oa.set_remote_offer(sdp, modifiers);
            Ok(false)
        }
    }
}

/// Plain RTP/AVP audio: SDP offer/answer plus the [`RtpSession`] it
/// configures. The media driver (an actor with the UDP socket) takes the
/// session through [`rtp_session_mut`](Self::rtp_session_mut), feeds it
/// datagrams, frames and time, and sends what it polls.
#[derive(Debug)]
pub struct RtpHandler {
    oa: OfferAnswer,
    rtp: RtpSession,
    closed: bool,
}

impl RtpHandler {
    /// A handler offering `local`, with RTP `config` (its codec and
    /// telephone-event are replaced by the negotiated ones).
    pub fn new(local: LocalMedia, session_id: u64, config: RtpConfig) -> Self {
        let mut rtp = RtpSession::new(config);
        rtp.set_direction(Direction::Inactive);
        RtpHandler { oa: OfferAnswer::new(local, session_id), rtp, closed: false }
    }
    /// The offer/answer engine.
    pub fn offer_answer(&self) -> &OfferAnswer {
        &self.oa
    }
    /// The negotiated stream, if any.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.oa.negotiated()
    }
    /// The RTP session.
    pub fn rtp_session(&self) -> &RtpSession {
        &self.rtp
    }
    /// The RTP session, to drive.
    pub fn rtp_session_mut(&mut self) -> &mut RtpSession {
        &mut self.rtp
    }

    fn configure(&mut self) {
        let Some(n) = self.oa.negotiated().cloned() else { return };
        if let Some(law) = G711::from_name(&n.codec.name) {
            self.rtp.set_codec(law, n.codec.payload_type);
            self.rtp.set_direction(n.direction);
        } else {
            // A codec this session cannot encode (Opus): no plain-RTP audio.
            self.rtp.set_direction(Direction::Inactive);
        }
        self.rtp.set_telephone_event(n.telephone_event);
        self.rtp.set_remote(n.remote_rtp, n.remote_rtcp);
    }
}

impl SessionDescriptionHandler for RtpHandler {
    fn get_description(&mut self, o: &DescriptionOptions, m: &[Modifier]) -> Result<Description, HandlerError> {
        let (d, done) = produce(&mut self.oa, self.closed, o, m)?;
        if done {
            self.configure();
        }
        Ok(d)
    }
    fn set_description(
        &mut self,
        d: &Description,
        _o: &DescriptionOptions,
        m: &[Modifier],
    ) -> Result<(), HandlerError> {
        if consume(&mut self.oa, self.closed, d, m)? {
            self.configure();
        }
        Ok(())
    }
    fn rollback_description(&mut self) {
        self.oa.rollback();
    }
    fn signaling_state(&self) -> SignalingState {
        self.oa.state()
    }
    fn direction(&self) -> Option<Direction> {
        self.oa.negotiated().map(|n| n.direction)
    }
    fn is_on_hold(&self) -> bool {
        self.oa.local_hold()
    }
    fn send_dtmf(&mut self, tones: &str, options: &DtmfOptions) -> Result<(), HandlerError> {
        if self.closed {
            return Err(HandlerError::Closed);
        }
        self.rtp.set_dtmf_gap(options.inter_tone_gap);
        self.rtp.send_dtmf(tones, Some(options.duration))?;
        Ok(())
    }
    fn close(&mut self) {
        self.closed = true;
    }
}

/// Signalling only, for load generation: real SDP (PCMU, PCMA,
/// telephone-event on the given address and port, with the usual
/// offer/answer, hold and version rules) but no media is ever sent or
/// received. The port is announced, not bound: point it at a port nobody
/// sends to (or a discard sink). Peers that enforce an RTP timeout will
/// hang up; DTMF fails with [`HandlerError::Dtmf`] so callers fall back to
/// SIP INFO.
#[derive(Debug)]
pub struct NoneHandler {
    oa: OfferAnswer,
    closed: bool,
}

impl NoneHandler {
    /// A handler announcing `address:port`.
    pub fn new(address: IpAddr, port: u16, session_id: u64) -> Self {
        NoneHandler { oa: OfferAnswer::new(LocalMedia::audio(address, port), session_id), closed: false }
    }
    /// The offer/answer engine.
    pub fn offer_answer(&self) -> &OfferAnswer {
        &self.oa
    }
}

impl SessionDescriptionHandler for NoneHandler {
    fn get_description(&mut self, o: &DescriptionOptions, m: &[Modifier]) -> Result<Description, HandlerError> {
        Ok(produce(&mut self.oa, self.closed, o, m)?.0)
    }
    fn set_description(
        &mut self,
        d: &Description,
        _o: &DescriptionOptions,
        m: &[Modifier],
    ) -> Result<(), HandlerError> {
        consume(&mut self.oa, self.closed, d, m).map(|_| ())
    }
    fn rollback_description(&mut self) {
        self.oa.rollback();
    }
    fn signaling_state(&self) -> SignalingState {
        self.oa.state()
    }
    fn direction(&self) -> Option<Direction> {
        self.oa.negotiated().map(|n| n.direction)
    }
    fn is_on_hold(&self) -> bool {
        self.oa.local_hold()
    }
    fn send_dtmf(&mut self, _tones: &str, _options: &DtmfOptions) -> Result<(), HandlerError> {
        Err(HandlerError::Dtmf(RtpError::NoTelephoneEvent))
    }
    fn close(&mut self) {
        self.closed = true;
    }
}
