//! One actor per session, and the public [`Session`] handle.
//!
//! The session actor keeps what the SIP.js `Session` exposes (start and end
//! time, identities, the application's data, the event history) and fans
//! the session's events out, in order, to every subscriber. Commands go to
//! the protocol core, which owns the INVITE-session state machine.
//!
//! ## Options
//!
//! Every method whose SIP.js counterpart takes options has an option
//! struct implementing `Default` ([`ReplyOptions`], [`ByeOptions`],
//! [`TerminateOptions`], [`HoldOptions`], [`ReinviteOptions`],
//! [`ReferOptions`], [`DtmfOptions`], [`ProgressOptions`]). The simple
//! methods stay (`bye()`, `terminate()`, `hold()`, `unhold()`,
//! `refer(target)`...) and use the defaults; their `*_with(opts)` variants
//! (`bye_with`, `terminate_with`, `hold_with`, `unhold_with`, `refer_with`,
//! `refer_session_with`) take the struct. Methods that always took options
//! (`progress`, `dtmf`, `reply`, `reinvite`) take the struct directly.
//! SIP.js `extraHeaders` are typed [`Header`]s (build any header with
//! [`extra_header`]); a SIP.js `body` string with its Content-Type in
//! `extraHeaders` is a [`Body`], which carries its type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use actix::prelude::*;
use sipact_message::{Header, Method, NameAddr, RawHeader, Request};
use sipact_proto::session::{Body, Extras, SessionEvent};
use sipact_proto::{Direction, SessionError, UaError};
use tokio::sync::mpsc;
use tokio_stream::Stream;

use crate::dialog::{Command, DialogActor, FollowRefer, SessionCmd};
use crate::ua::UserAgent;

/// A session event with the wall-clock time it was seen.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The event.
    pub event: SessionEvent,
    /// When.
    pub at: SystemTime,
}

#[derive(Default)]
struct Shared {
    start_time: Option<SystemTime>,
    end_time: Option<SystemTime>,
    history: Vec<SessionEvent>,
    subscribers: Vec<mpsc::UnboundedSender<SessionEvent>>,
    recipients: Vec<Recipient<Deliver>>,
    data: HashMap<TypeId, Box<dyn Any + Send>>,
    terminated: bool,
    local_description: Option<Body>,
    remote_description: Option<Body>,
    media_stats: Option<crate::media::MediaStats>,
    /// The WebRTC media actor, which carries the data channel.
    webrtc: Option<Addr<crate::webrtc::WebRtcMediaActor>>,
    data_subscribers: Vec<mpsc::Sender<DataEvent>>,
    /// The label of the open data channel.
    data_open: Option<String>,
}

/// What the session's WebRTC data channel reports
/// ([`Session::data_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataEvent {
    /// The channel opened (either side may have offered it).
    Open {
        /// Its label.
        label: String,
    },
    /// A message arrived.
    Message(Vec<u8>),
}

/// How many data channel events a [`Session::data_events`] receiver holds.
pub const DATA_EVENTS_CAPACITY: usize = 1024;

/// Why [`Session::send_data`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The session has no WebRTC media (or it ended).
    #[error("the session has no WebRTC media")]
    NoWebRtcMedia,
    /// No data channel was negotiated, or it is not open yet.
    #[error("data channel: {0}")]
    Channel(String),
}

/// What identifies a session and reaches its actors; the core hands these
/// out, and [`Session`] wraps one.
#[derive(Clone)]
pub struct SessionInfo {
    id: u64,
    direction: Direction,
    request: Option<Request>,
    local_tag: Option<String>,
    replaces: Option<u64>,
    core: Addr<DialogActor>,
    shared: Arc<Mutex<Shared>>,
}

impl SessionInfo {
    pub(crate) fn new(
        id: u64,
        direction: Direction,
        request: Option<Request>,
        local_tag: Option<String>,
        core: Addr<DialogActor>,
    ) -> Self {
        SessionInfo { id, direction, request, local_tag, replaces: None, core, shared: Arc::default() }
    }

    pub(crate) fn set_replaces(&mut self, r: Option<u64>) {
        self.replaces = r;
    }

    /// The session id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Publishes the media counters (the media actor does, as they change).
    pub(crate) fn set_media_stats(&self, stats: crate::media::MediaStats) {
        if let Ok(mut s) = self.shared.lock() {
            s.media_stats = Some(stats);
        }
    }

    /// The WebRTC media actor of the session, which carries its data channel.
    pub(crate) fn set_webrtc(&self, actor: Option<Addr<crate::webrtc::WebRtcMediaActor>>) {
        if let Ok(mut s) = self.shared.lock() {
            if actor.is_none() {
                // The media ended: so do the data channel's event streams.
                s.data_subscribers.clear();
                s.data_open = None;
            }
            s.webrtc = actor;
        }
    }

    /// Hands a data channel event to every subscriber still listening.
    pub(crate) fn publish_data(&self, event: DataEvent) {
        if let Ok(mut s) = self.shared.lock() {
            if let DataEvent::Open { label } = &event {
                s.data_open = Some(label.clone());
            }
            // Bounded: a subscriber that stops reading loses messages
            // (the peer sets the pace), it does not grow the heap.
            s.data_subscribers.retain(|tx| match tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(session = self.id, "data channel subscriber full: message dropped");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
    }

    /// Records the descriptions sent and received; `None` leaves that side as it was.
    pub(crate) fn set_descriptions(&self, local: Option<Body>, remote: Option<Body>) {
        if let Ok(mut s) = self.shared.lock() {
            if local.is_some() {
                s.local_description = local;
            }
            if remote.is_some() {
                s.remote_description = remote;
            }
        }
    }
}

/// The session actor.
pub struct SessionActor {
    info: SessionInfo,
}

impl SessionActor {
    /// An actor for `info`.
    pub fn new(info: SessionInfo) -> Self {
        SessionActor { info }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;
}

impl Handler<Deliver> for SessionActor {
    type Result = ();
    fn handle(&mut self, m: Deliver, ctx: &mut Self::Context) {
        let Ok(mut sh) = self.info.shared.lock() else { return };
        match &m.event {
            SessionEvent::Accepted { .. } => sh.start_time = Some(m.at),
            SessionEvent::Terminated { .. } => {
                sh.end_time = Some(m.at);
                sh.terminated = true;
            }
            _ => {}
        }
        sh.history.push(m.event.clone());
        sh.subscribers.retain(|tx| tx.send(m.event.clone()).is_ok());
        for r in &sh.recipients {
            r.do_send(m.clone());
        }
        if sh.terminated {
            // Dropping the senders ends every event stream after Terminated.
            sh.subscribers.clear();
            drop(sh);
            ctx.stop();
        }
    }
}

/// An ordered stream of a session's events; it ends after `Terminated`.
pub struct SessionEvents {
    rx: mpsc::UnboundedReceiver<SessionEvent>,
}

impl Stream for SessionEvents {
    type Item = SessionEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<SessionEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl SessionEvents {
    /// The next event, or `None` once the session is over.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        self.rx.recv().await
    }
}

/// Options of `progress` (SIP.js `progress(options)`).
#[derive(Debug, Clone, Copy)]
pub struct ProgressOptions {
    /// Status code, default 180.
    pub status: u16,
    /// Send our session description (early media, usually with 183).
    pub early_media: bool,
    /// Ask for a reliable provisional (RFC 3262) when the peer supports it.
    pub reliable: bool,
}

impl Default for ProgressOptions {
    fn default() -> Self {
        ProgressOptions { status: 180, early_media: false, reliable: false }
    }
}

/// Options of `dtmf` (SIP.js defaults: 100 ms tones, 500 ms gaps).
#[derive(Debug, Clone)]
pub struct DtmfOptions {
    /// Tone duration in ms.
    pub duration: u32,
    /// Gap between tones in ms.
    pub inter_tone_gap: u32,
    /// Extra headers on each INFO.
    pub extra_headers: Vec<Header>,
}

impl Default for DtmfOptions {
    fn default() -> Self {
        DtmfOptions { duration: 100, inter_tone_gap: 500, extra_headers: Vec::new() }
    }
}

/// Options of `reply` (SIP.js `reply(options)`): any response to the
/// INVITE of an inbound session.
#[derive(Debug, Clone)]
pub struct ReplyOptions {
    /// Status code, 101-699 (default 180).
    pub status: u16,
    /// Reason phrase (default: the standard one for `status`).
    pub reason_phrase: Option<String>,
    /// Extra headers.
    pub extra_headers: Vec<Header>,
    /// A body of our own. An `application/sdp` body takes the place of
    /// the description handler's answer (or offer); without one, a 2xx
    /// carries the handler's description as `accept` does.
    pub body: Option<Body>,
}

impl ReplyOptions {
    /// A reply with `status` and nothing else.
    pub fn new(status: u16) -> Self {
        ReplyOptions { status, reason_phrase: None, extra_headers: Vec::new(), body: None }
    }
}

impl Default for ReplyOptions {
    fn default() -> Self {
        ReplyOptions::new(180)
    }
}

/// Options of `bye_with` (SIP.js `bye(options)`).
#[derive(Debug, Clone, Default)]
pub struct ByeOptions {
    /// With it, the BYE carries `Reason: SIP;cause=<code>;text="<phrase>"`.
    pub status_code: Option<u16>,
    /// The `text` of the `Reason` header (default: the standard phrase of
    /// `status_code`; unused without `status_code`).
    pub reason_phrase: Option<String>,
    /// Extra headers.
    pub extra_headers: Vec<Header>,
    /// A body, with its type.
    pub body: Option<Body>,
}

/// Options of `terminate_with` (SIP.js `terminate(options)`).
///
/// Unanswered inbound session: `status_code` (default 480, 300-699) and
/// `reason_phrase` make the final response, which carries the extra
/// headers and body. Answered or confirmed session: as [`ByeOptions`] on
/// the BYE. Outbound session not yet answered: a CANCEL, built from the
/// INVITE by the transaction layer (RFC 3261 §9.1); the options are not
/// used.
#[derive(Debug, Clone, Default)]
pub struct TerminateOptions {
    /// Final status (unanswered inbound) or `Reason` cause (BYE).
    pub status_code: Option<u16>,
    /// Reason phrase, or the `Reason` text.
    pub reason_phrase: Option<String>,
    /// Extra headers.
    pub extra_headers: Vec<Header>,
    /// A body, with its type.
    pub body: Option<Body>,
}

/// Options of `hold_with` and `unhold_with`.
#[derive(Debug, Clone, Default)]
pub struct HoldOptions {
    /// Extra headers on the re-INVITE or UPDATE.
    pub extra_headers: Vec<Header>,
    /// SIP.js `modifiers` for this exchange and the following ones (they
    /// replace those of the previous call and apply after the session's own).
    pub modifiers: Vec<sipact_proto::ua::DescriptionModifier>,
    /// UPDATE (RFC 3311) instead of re-INVITE.
    pub use_update: bool,
}

/// Options of `reinvite` (SIP.js `reinvite(options)`).
#[derive(Debug, Clone, Default)]
pub struct ReinviteOptions {
    /// No offer in the re-INVITE: the peer offers in its 2xx and our
    /// answer goes in the ACK (SIP.js `inviteWithoutSdp`).
    pub without_sdp: bool,
    /// Extra headers.
    pub extra_headers: Vec<Header>,
    /// SIP.js `modifiers`, as in [`HoldOptions::modifiers`].
    pub modifiers: Vec<sipact_proto::ua::DescriptionModifier>,
}

/// Options of `accept_with` (SIP.js `accept(options)`).
#[derive(Debug, Clone, Default)]
pub struct AcceptOptions {
    /// SIP.js `modifiers` for the answer (or offer) of the 2xx and the
    /// exchanges that follow, as in [`HoldOptions::modifiers`].
    pub modifiers: Vec<sipact_proto::ua::DescriptionModifier>,
}

/// Options of `refer_with` and `refer_session_with`.
#[derive(Debug, Clone, Default)]
pub struct ReferOptions {
    /// Extra headers on the REFER.
    pub extra_headers: Vec<Header>,
}

/// A header for the `extra_headers` of the options, as written
/// (`extra_header("X-Foo", "foo")`). Known headers are sent as they are
/// too; they are not parsed.
pub fn extra_header(name: &str, value: &str) -> Header {
    Header::Other(RawHeader { name: name.into(), value: value.into() })
}

/// A read-only view of a session's descriptions: the last one we sent
/// and the last one we received (SIP.js `sessionDescriptionHandler`).
/// Read live: the values follow the session.
///
/// The handler itself is chosen by `UaConfig::media`: plain RTP audio
/// driven by the session's media actor (the default), signalling-only
/// SDP, or none; [`UserAgent::start_with`] takes other hooks. The media
/// counters are [`Session::media_stats`].
#[derive(Clone)]
pub struct DescriptionHandler {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for DescriptionHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DescriptionHandler")
            .field("local", &self.local_description().is_some())
            .field("remote", &self.remote_description().is_some())
            .finish()
    }
}

impl DescriptionHandler {
    /// The last session description we sent (offer or answer).
    pub fn local_description(&self) -> Option<Body> {
        self.shared.lock().ok()?.local_description.clone()
    }

    /// The last session description we received (offer or answer).
    pub fn remote_description(&self) -> Option<Body> {
        self.shared.lock().ok()?.remote_description.clone()
    }
}

fn with_tag(mut a: NameAddr, tag: Option<&str>) -> NameAddr {
    if let Some(t) = tag
        && a.tag().is_none()
    {
        a.params.set("tag", Some(t));
    }
    a
}

/// A SIP.js `Session`: a cloneable, `Send` handle usable from any task.
/// See the [module documentation](self) for how options are passed.
#[derive(Clone)]
pub struct Session {
    info: SessionInfo,
    ua: UserAgent,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.info.id).field("direction", &self.info.direction).finish()
    }
}

impl Session {
    pub(crate) fn from_info(info: SessionInfo, ua: UserAgent) -> Self {
        Session { info, ua }
    }

    /// The user agent the session belongs to (SIP.js `ua`).
    pub fn ua(&self) -> UserAgent {
        self.ua.clone()
    }

    /// A read-only view of the session's descriptions, the last sent and
    /// the last received (SIP.js `sessionDescriptionHandler`; see
    /// [`DescriptionHandler`]). They are up to date when the event that
    /// follows their exchange (`Progress`, `Accepted`, `HoldChanged`,
    /// `Reinvited`...) is delivered.
    pub fn description_handler(&self) -> DescriptionHandler {
        DescriptionHandler { shared: self.info.shared.clone() }
    }

    /// The session's media counters: RTP packets and bytes sent and
    /// received (SRTP with WebRTC), RTCP reports, loss and jitter (plain
    /// RTP). `None` when the session has no media actor (`UaConfig::media`
    /// `signalling` or `none`, or handlers of the application's own). Updated every 20 ms and on each packet.
    pub fn media_stats(&self) -> Option<crate::media::MediaStats> {
        self.info.shared.lock().ok()?.media_stats
    }

    /// Sends a message on the session's WebRTC data channel (offered when
    /// [`UaConfig::data_channel`](crate::UaConfig::data_channel) is set,
    /// or accepted from the peer's offer), once it is open.
    pub async fn send_data(&self, data: impl Into<Vec<u8>>) -> Result<(), DataError> {
        let actor = self.info.shared.lock().ok().and_then(|s| s.webrtc.clone()).ok_or(DataError::NoWebRtcMedia)?;
        actor.send(crate::webrtc::SendData(data.into())).await.map_err(|_| DataError::NoWebRtcMedia)?
    }

    /// The events of the session's WebRTC data channel: [`DataEvent::Open`]
    /// (at once when the channel is already open), then each message
    /// received from now on. Ends with the media. Holds up to
    /// [`DATA_EVENTS_CAPACITY`] events: a reader that falls further behind
    /// loses messages (logged) rather than growing memory.
    pub fn data_events(&self) -> mpsc::Receiver<DataEvent> {
        let (tx, rx) = mpsc::channel(DATA_EVENTS_CAPACITY);
        if let Ok(mut s) = self.info.shared.lock() {
            if let Some(label) = s.data_open.clone() {
                let _ = tx.try_send(DataEvent::Open { label });
            }
            s.data_subscribers.push(tx);
        }
        rx
    }

    /// The session's number within its user agent.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// `Outbound` (we sent the INVITE) or `Inbound`.
    pub fn direction(&self) -> Direction {
        self.info.direction
    }

    /// Always `Method::Invite` (SIP.js `method`).
    pub fn method(&self) -> Method {
        Method::Invite
    }

    /// The initial INVITE, sent or received.
    pub fn request(&self) -> Option<&Request> {
        self.info.request.as_ref()
    }

    /// The session this inbound one replaces (RFC 3891), if any.
    pub fn replaces(&self) -> Option<u64> {
        self.info.replaces
    }

    /// Our identity: From of an outbound INVITE, To of an inbound one,
    /// with our tag.
    pub fn local_identity(&self) -> Option<NameAddr> {
        let h = &self.info.request.as_ref()?.headers;
        match self.info.direction {
            Direction::Outbound => h.from().cloned(),
            Direction::Inbound => h.to().cloned().map(|a| with_tag(a, self.info.local_tag.as_deref())),
        }
    }

    /// The peer's identity: To of an outbound INVITE (with the peer's tag
    /// once a response made a dialog: the 2xx's, else the last
    /// provisional's), From of an inbound one.
    pub fn remote_identity(&self) -> Option<NameAddr> {
        let h = &self.info.request.as_ref()?.headers;
        match self.info.direction {
            Direction::Outbound => h.to().cloned().map(|a| with_tag(a, self.remote_tag().as_deref())),
            Direction::Inbound => h.from().cloned(),
        }
    }

    fn remote_tag(&self) -> Option<String> {
        let s = self.info.shared.lock().ok()?;
        let tag_of = |r: &sipact_message::Response| r.headers.to().and_then(|t| t.tag()).map(str::to_owned);
        let mut last = None;
        for e in &s.history {
            match e {
                SessionEvent::Accepted { response, .. } => return tag_of(response),
                SessionEvent::Progress { response } => last = tag_of(response).or(last),
                _ => {}
            }
        }
        last
    }

    /// When `Accepted` was emitted.
    pub fn start_time(&self) -> Option<SystemTime> {
        self.info.shared.lock().ok().and_then(|s| s.start_time)
    }

    /// When `Terminated` was emitted.
    pub fn end_time(&self) -> Option<SystemTime> {
        self.info.shared.lock().ok().and_then(|s| s.end_time)
    }

    /// Whether `Terminated` was emitted.
    pub fn is_terminated(&self) -> bool {
        self.info.shared.lock().map(|s| s.terminated).unwrap_or(true)
    }

    /// Stores an application value (SIP.js `data`), one per type.
    pub fn set_data<T: Any + Send>(&self, value: T) {
        if let Ok(mut s) = self.info.shared.lock() {
            s.data.insert(TypeId::of::<T>(), Box::new(value));
        }
    }

    /// A clone of the application value of type `T`.
    pub fn data<T: Any + Send + Clone>(&self) -> Option<T> {
        let s = self.info.shared.lock().ok()?;
        s.data.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref::<T>()).cloned()
    }

    /// The session's events: those already emitted, then the live ones, in
    /// order; the stream ends after `Terminated`.
    pub fn events(&self) -> SessionEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.info.shared.lock() {
            for e in &s.history {
                let _ = tx.send(e.clone());
            }
            if !s.terminated {
                s.subscribers.push(tx);
            }
        }
        SessionEvents { rx }
    }

    /// Also delivers every future event to an actix recipient.
    pub fn subscribe(&self, recipient: Recipient<Deliver>) {
        if let Ok(mut s) = self.info.shared.lock() {
            s.recipients.push(recipient);
        }
    }

    async fn cmd(&self, cmd: SessionCmd) -> Result<(), UaError> {
        let op = cmd.op();
        let r = self.info.core.send(Command { id: self.info.id, cmd }).await;
        self.ended_is_invalid(op, r.unwrap_or(Err(UaError::NoSession(self.info.id))))
    }

    /// The core forgets a session once it is over: a command for it then
    /// fails with `NoSession`, which the API reports as SIP.js does, an
    /// `InvalidState` in `Terminated`.
    fn ended_is_invalid<T>(&self, op: &'static str, r: Result<T, UaError>) -> Result<T, UaError> {
        match r {
            Err(UaError::NoSession(id)) if id == self.info.id => {
                Err(UaError::Session(SessionError::InvalidState { op, state: sipact_proto::SessionState::Terminated }))
            }
            other => other,
        }
    }

    fn only(&self, dir: Direction, op: &'static str) -> Result<(), UaError> {
        if self.info.direction == dir {
            Ok(())
        } else {
            let state = if self.is_terminated() {
                sipact_proto::SessionState::Terminated
            } else if dir == Direction::Inbound {
                sipact_proto::SessionState::Calling
            } else {
                sipact_proto::SessionState::Incoming
            };
            Err(UaError::Session(SessionError::InvalidState { op, state }))
        }
    }

    /// Inbound: sends a provisional response.
    pub async fn progress(&self, opts: ProgressOptions) -> Result<(), UaError> {
        self.only(Direction::Inbound, "progress")?;
        self.cmd(SessionCmd::Progress { status: opts.status, early_media: opts.early_media, reliable: opts.reliable })
            .await
    }

    /// Inbound: accepts with a 2xx.
    pub async fn accept(&self) -> Result<(), UaError> {
        self.only(Direction::Inbound, "accept")?;
        self.cmd(SessionCmd::Accept).await
    }

    /// Inbound: accepts with a 2xx, with options (SIP.js `accept(options)`).
    pub async fn accept_with(&self, opts: AcceptOptions) -> Result<(), UaError> {
        self.only(Direction::Inbound, "accept")?;
        // The command that follows reports any state error under its own name.
        let _ = self.cmd(SessionCmd::SetModifiers(opts.modifiers)).await;
        self.cmd(SessionCmd::Accept).await
    }

    /// Inbound: rejects with a non-2xx final response (SIP.js default 480).
    pub async fn reject(&self, status: u16) -> Result<(), UaError> {
        self.only(Direction::Inbound, "reject")?;
        self.cmd(SessionCmd::Reject(status)).await
    }

    /// Inbound: sends any response to the INVITE (SIP.js `reply`). A
    /// provisional is sent as `progress` sends it; a 2xx accepts the
    /// session (`Accepted` once the ACK comes); a 3xx-6xx ends it as
    /// `reject` does (`Rejected`, `Failed`, `Terminated`). A status
    /// outside 101-699 fails with `SessionError::InvalidStatus`.
    pub async fn reply(&self, opts: ReplyOptions) -> Result<(), UaError> {
        self.only(Direction::Inbound, "reply")?;
        let extras = Extras { headers: opts.extra_headers, body: opts.body };
        self.cmd(SessionCmd::Reply { status: opts.status, reason: opts.reason_phrase, extras }).await
    }

    /// Outbound: CANCEL. If the 2xx crosses it, the call is ACKed and hung
    /// up at once: the events are then `Accepted`, `Bye` (the BYE we
    /// sent), `Terminated` with `Cause::Canceled`.
    pub async fn cancel(&self) -> Result<(), UaError> {
        self.only(Direction::Outbound, "cancel")?;
        self.cmd(SessionCmd::Cancel).await
    }

    /// BYE in a confirmed session.
    pub async fn bye(&self) -> Result<(), UaError> {
        self.bye_with(ByeOptions::default()).await
    }

    /// BYE in a confirmed session, with a `Reason` header, extra headers
    /// and a body (see [`ByeOptions`]).
    pub async fn bye_with(&self, opts: ByeOptions) -> Result<(), UaError> {
        let reason = opts.status_code.map(|c| (c, reason_text(c, opts.reason_phrase)));
        let extras = Extras { headers: opts.extra_headers, body: opts.body };
        self.cmd(SessionCmd::Bye { reason, extras }).await
    }

    /// SIP.js `terminate`: CANCEL, a 480, or a BYE depending on the state.
    pub async fn terminate(&self) -> Result<(), UaError> {
        self.terminate_with(TerminateOptions::default()).await
    }

    /// SIP.js `terminate(options)` (see [`TerminateOptions`]).
    pub async fn terminate_with(&self, opts: TerminateOptions) -> Result<(), UaError> {
        let extras = Extras { headers: opts.extra_headers, body: opts.body };
        self.cmd(SessionCmd::Terminate { status: opts.status_code, reason: opts.reason_phrase, extras }).await
    }

    /// Holds the peer (re-INVITE with a `sendonly` offer).
    pub async fn hold(&self) -> Result<(), UaError> {
        self.hold_with(HoldOptions::default()).await
    }

    /// Holds the peer, by re-INVITE or UPDATE, with extra headers.
    pub async fn hold_with(&self, opts: HoldOptions) -> Result<(), UaError> {
        // The command that follows reports any state error under its own name.
        let _ = self.cmd(SessionCmd::SetModifiers(opts.modifiers)).await;
        self.renegotiate("hold", Some(true), opts.use_update, false, opts.extra_headers).await
    }

    /// Takes the peer off hold.
    pub async fn unhold(&self) -> Result<(), UaError> {
        self.unhold_with(HoldOptions::default()).await
    }

    /// Takes the peer off hold, by re-INVITE or UPDATE, with extra headers.
    pub async fn unhold_with(&self, opts: HoldOptions) -> Result<(), UaError> {
        // The command that follows reports any state error under its own name.
        let _ = self.cmd(SessionCmd::SetModifiers(opts.modifiers)).await;
        self.renegotiate("unhold", Some(false), opts.use_update, false, opts.extra_headers).await
    }

    /// A re-INVITE with a fresh offer (the hold state unchanged), or
    /// without one (`without_sdp`: the peer offers in its 2xx, our answer
    /// goes in the ACK). A failure is reported as `RenegotiationFailed`;
    /// success has no event of its own.
    pub async fn reinvite(&self, opts: ReinviteOptions) -> Result<(), UaError> {
        // The command that follows reports any state error under its own name.
        let _ = self.cmd(SessionCmd::SetModifiers(opts.modifiers)).await;
        self.renegotiate("reinvite", None, false, opts.without_sdp, opts.extra_headers).await
    }

    async fn renegotiate(
        &self,
        op: &'static str,
        hold: Option<bool>,
        use_update: bool,
        without_sdp: bool,
        extra: Vec<Header>,
    ) -> Result<(), UaError> {
        self.cmd(SessionCmd::Renegotiate { op, hold, use_update, without_sdp, extra }).await
    }

    /// Sends DTMF tones: by INFO, one per tone (the default), or as RFC
    /// 4733 telephone-events in the RTP stream when `UaConfig::dtmf` is
    /// `rfc4733` and the session has RTP media with telephone-event
    /// negotiated. Either way each tone is reported as an outgoing
    /// `SessionEvent::Dtmf` (with no request for RFC 4733).
    pub async fn dtmf(&self, tones: &str, opts: DtmfOptions) -> Result<(), UaError> {
        let DtmfOptions { duration, inter_tone_gap: gap, extra_headers: extra } = opts;
        self.cmd(SessionCmd::Dtmf { tones: tones.to_owned(), duration, gap, extra }).await
    }

    /// Sends an INFO with any body.
    pub async fn info(&self, body: Body) -> Result<(), UaError> {
        self.cmd(SessionCmd::Info(body)).await
    }

    /// Blind transfer of the peer to `target`.
    pub async fn refer(&self, target: &str) -> Result<(), UaError> {
        self.refer_with(target, ReferOptions::default()).await
    }

    /// Blind transfer with extra headers on the REFER.
    pub async fn refer_with(&self, target: &str, opts: ReferOptions) -> Result<(), UaError> {
        self.cmd(SessionCmd::Refer { target: target.to_owned(), replaces: None, extra: opts.extra_headers }).await
    }

    /// Attended transfer: the peer is sent to the peer of `other`, whose
    /// dialog it replaces.
    pub async fn refer_session(&self, target: &str, other: &Session) -> Result<(), UaError> {
        self.refer_session_with(target, other, ReferOptions::default()).await
    }

    /// Attended transfer with extra headers on the REFER.
    pub async fn refer_session_with(&self, target: &str, other: &Session, opts: ReferOptions) -> Result<(), UaError> {
        let cmd =
            SessionCmd::Refer { target: target.to_owned(), replaces: Some(other.id()), extra: opts.extra_headers };
        self.cmd(cmd).await
    }

    /// Follows a REFER this session received: INVITEs its target and
    /// reports progress to the transferor.
    pub async fn follow_refer(&self, refer: &Request) -> Result<Session, UaError> {
        let r = self.info.core.send(FollowRefer { id: self.info.id, refer: refer.clone() }).await;
        let info = self.ended_is_invalid("follow_refer", r.unwrap_or(Err(UaError::NoSession(self.info.id))))?;
        Ok(Session::from_info(info, self.ua.clone()))
    }
}

/// The `Reason` text: the phrase given, or the standard one of `code`.
fn reason_text(code: u16, phrase: Option<String>) -> String {
    phrase.unwrap_or_else(|| sipact_message::default_reason(code).to_owned())
}
