//! INVITE sessions: the engine under the SIP.js `Session`.
//!
//! An [`InviteSession`] holds one call's state: its dialog, offer/answer
//! (RFC 3264), reliable provisionals (RFC 3262), re-INVITE and UPDATE
//! (RFC 3311) with glare handling, session timers (RFC 4028), INFO, REFER
//! (RFC 3515) and its NOTIFYs. It is sans-IO: it consumes transaction-layer
//! results and user commands with the current time, and yields [`Out`]
//! actions, [`SessionEvent`]s and its next deadline. Session descriptions
//! are produced by [`DescriptionHooks`] (hold and unhold are offer hooks).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipact_message::{ByteString, HeaderName, MethodList, TokenList};
use sipact_message::{
    CSeq, DeltaParams, Header, Headers, MediaType, Method, NameAddr, Param, Params, RAck, Request, Response,
    TokenParams, Uri, Via,
};

use crate::dialog::{Dialog, DialogId, DialogState};
use crate::rand::Rng;
use crate::transaction::{TimerConfig, TxKey};
use crate::util::response_for;

/// A description as a session holds it and hands it over in events.
pub(crate) type BoxedBody = Option<Box<Body>>;

/// A message body with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// Content-Type.
    pub content_type: MediaType,
    /// Bytes.
    pub data: Bytes,
}

impl Body {
    /// An `application/sdp` body.
    pub fn sdp(data: impl Into<Bytes>) -> Self {
        Body { content_type: MediaType::new("application", "sdp"), data: data.into() }
    }

    pub(crate) fn of_request(r: &Request) -> Option<Body> {
        let ct = r.headers.content_type()?;
        (!r.body.is_empty()).then(|| Body { content_type: ct.clone(), data: r.body.clone() })
    }

    fn of_response(r: &Response) -> Option<Body> {
        let ct = r.headers.content_type()?;
        (!r.body.is_empty()).then(|| Body { content_type: ct.clone(), data: r.body.clone() })
    }

    fn is_sdp(&self) -> bool {
        self.content_type.is("application", "sdp")
    }
}

/// What the user adds to a request or response a command sends (SIP.js
/// `extraHeaders` and `body`). Headers are appended as they are; a body
/// replaces the one the session would have sent, with its own
/// Content-Type. An `application/sdp` body given this way bypasses the
/// [`DescriptionHooks`] but still counts as our description for
/// offer/answer (RFC 3264).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// Extra headers.
    pub headers: Vec<Header>,
    /// A body, with its type.
    pub body: Option<Body>,
}

impl Extras {
    /// Only extra headers.
    pub fn headers(headers: Vec<Header>) -> Self {
        Extras { headers, body: None }
    }

    fn apply(&self, h: &mut sipact_message::Headers, body_slot: &mut Bytes) {
        for x in &self.headers {
            h.push(x.clone());
        }
        if let Some(b) = &self.body {
            h.remove(sipact_message::HeaderName::ContentType);
            h.push(Header::ContentType(b.content_type.clone()));
            *body_slot = b.data.clone();
        }
    }
}

/// Produces and consumes session descriptions. Hold and unhold are offers
/// made with `hold` set or cleared. Errors are SIP status codes (488...).
pub trait DescriptionHooks: Send {
    /// A new offer; `hold` asks for `sendonly` (or `inactive`) media.
    fn offer(&mut self, hold: bool) -> Result<Body, u16>;
    /// An answer to `offer`; `hold` keeps our side held.
    fn answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16>;
    /// Applies the peer's answer to our offer.
    fn apply_answer(&mut self, answer: &Body) -> Result<(), u16>;
}

/// Why a session failed or ended (the SIP.js causes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// Normal hang-up by BYE.
    Bye,
    /// CANCEL (sent or received).
    Canceled,
    /// 300, 301, 302, 305, 380.
    Redirected,
    /// 486, 600.
    Busy,
    /// 403, 603.
    Rejected,
    /// 404, 604.
    NotFound,
    /// 480, 410, 408, 430.
    Unavailable,
    /// 484.
    AddressIncomplete,
    /// 488, 606.
    IncompatibleSdp,
    /// 401/407 without working credentials.
    AuthenticationError,
    /// Any other final failure.
    SipFailureCode,
    /// The transport failed.
    ConnectionError,
    /// No final response in time (Timer B).
    RequestTimeout,
    /// Our 2xx was never ACKed.
    NoAck,
    /// Our reliable provisional was never PRACKed.
    NoPrack,
    /// The dialog could not be kept (481, 408 to an in-dialog request).
    DialogError,
    /// The session timer expired without refresh.
    Expires,
    /// No answer before the user's timeout.
    NoAnswer,
    /// Replaced by another session (RFC 3891).
    Replaced,
    /// A bad session description.
    BadMediaDescription,
    /// No RTP (or RTCP) from the peer for the configured time while its
    /// media was expected: we hung up with BYE.
    RtpTimeout,
    /// An internal failure.
    InternalError,
}

impl Cause {
    /// The cause for a final failure status (SESSION-API.md table).
    pub fn from_status(status: u16) -> Cause {
        match status {
            300 | 301 | 302 | 305 | 380 => Cause::Redirected,
            486 | 600 => Cause::Busy,
            403 | 603 => Cause::Rejected,
            404 | 604 => Cause::NotFound,
            480 | 410 | 408 | 430 => Cause::Unavailable,
            484 => Cause::AddressIncomplete,
            488 | 606 => Cause::IncompatibleSdp,
            401 | 407 => Cause::AuthenticationError,
            487 => Cause::Canceled,
            _ => Cause::SipFailureCode,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which side started the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent the INVITE.
    Outbound,
    /// We received it.
    Inbound,
}

/// Session states, for [`SessionError::InvalidState`] and inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Outbound INVITE sent, no provisional yet.
    Calling,
    /// Outbound, a provisional received.
    Early,
    /// Inbound INVITE received, not answered.
    Incoming,
    /// Inbound, we sent a 2xx and wait for the ACK.
    WaitAck,
    /// Established.
    Confirmed,
    /// We sent BYE (or CANCEL) and wait for the end.
    Terminating,
    /// Over.
    Terminated,
}

/// RFC 3262 policy for an outgoing INVITE or incoming one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rel100 {
    /// Never reliable provisionals.
    Unsupported,
    /// Supported: reliable when the peer requires it (or, inbound, when it supports it).
    #[default]
    Supported,
    /// Required.
    Required,
}

/// Errors of user commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The command is not valid in the session's state (SIP.js `INVALID_STATE_ERROR`).
    #[error("{op} is not allowed in state {state:?}")]
    InvalidState {
        /// The command.
        op: &'static str,
        /// The state.
        state: SessionState,
    },
    /// A DTMF tone outside `0-9 A-D * #` and `,`, or a bad duration.
    #[error("invalid DTMF: {0}")]
    InvalidDtmf(String),
    /// A status code the command cannot send (`reply` takes 101-699).
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    /// The description hooks failed with this status.
    #[error("session description failed ({0})")]
    Description(u16),
    /// An offer/answer exchange is already under way.
    #[error("an offer/answer exchange is in progress")]
    Pending,
}

/// Something that happened to the session.
///
/// Requests are boxed: an event is moved through two queues (the
/// session's, then the core's) and a request is the largest payload, so
/// boxing keeps every event small for the common ones (progress, accepted
/// without an ACK, terminated).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A provisional response (outbound) or one we sent (inbound).
    Progress {
        /// The response.
        response: Response,
    },
    /// The session is established: the 2xx and, inbound, the ACK.
    Accepted {
        /// The 2xx.
        response: Response,
        /// The ACK (inbound sessions).
        ack: Option<Box<Request>>,
    },
    /// A final non-2xx response to our INVITE (followed by `Failed`).
    Rejected {
        /// The response.
        response: Response,
        /// The cause.
        cause: Cause,
    },
    /// The session failed before being accepted.
    Failed {
        /// The final response, if any.
        response: Option<Response>,
        /// The cause.
        cause: Cause,
    },
    /// The session is over. Always last, exactly once.
    Terminated {
        /// The cause.
        cause: Cause,
    },
    /// The peer canceled its INVITE.
    Cancel,
    /// A BYE: received (the peer hung up), or, when a 2xx crossed our
    /// CANCEL, the one we sent to end the call we had canceled.
    Bye {
        /// The BYE.
        request: Box<Request>,
    },
    /// A DTMF tone, sent (`outgoing`) or received, by INFO or in the
    /// media as an RFC 4733 telephone-event.
    Dtmf {
        /// The INFO; `None` for an RFC 4733 telephone-event.
        request: Option<Box<Request>>,
        /// The tone.
        tone: char,
        /// Its duration in ms.
        duration: u32,
        /// Whether we sent it.
        outgoing: bool,
    },
    /// An INFO other than DTMF.
    Info {
        /// The INFO.
        request: Box<Request>,
    },
    /// The peer asks us to transfer (we answered 202).
    Refer {
        /// The REFER.
        request: Box<Request>,
    },
    /// Progress of a REFER we sent, from the peer's NOTIFY sipfrag.
    ReferProgress {
        /// Status line code in the sipfrag, or the status of the final
        /// response to the REFER itself (202, or a failure).
        status: u16,
        /// Whether the subscription ended with this NOTIFY.
        terminated: bool,
    },
    /// Hold state changed (after a successful re-INVITE/UPDATE).
    HoldChanged {
        /// Whether we hold the peer.
        local_hold: bool,
    },
    /// The peer sent a new offer (re-INVITE or UPDATE) and we answered.
    Reinvited {
        /// The request.
        request: Box<Request>,
    },
    /// A hold/unhold/re-INVITE of ours failed and was rolled back.
    RenegotiationFailed {
        /// The status received.
        status: u16,
    },
    /// The session was refreshed (RFC 4028).
    Refreshed,
    /// This session was replaced by `new_session` (RFC 3891) and is ending.
    Replaced {
        /// The session that took over.
        new_session: u64,
    },
}

impl SessionEvent {
    /// A short, stable name for the event (logs, JSON lines, ladders): it
    /// never includes the event's contents, which may carry credentials.
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::Progress { .. } => "progress",
            SessionEvent::Accepted { .. } => "accepted",
            SessionEvent::Rejected { .. } => "rejected",
            SessionEvent::Failed { .. } => "failed",
            SessionEvent::Terminated { .. } => "terminated",
            SessionEvent::Cancel => "cancel",
            SessionEvent::Bye { .. } => "bye",
            SessionEvent::Dtmf { .. } => "dtmf",
            SessionEvent::Info { .. } => "info",
            SessionEvent::Refer { .. } => "refer",
            SessionEvent::ReferProgress { .. } => "refer-progress",
            SessionEvent::HoldChanged { .. } => "hold-changed",
            SessionEvent::Reinvited { .. } => "reinvited",
            SessionEvent::RenegotiationFailed { .. } => "renegotiation-failed",
            SessionEvent::Refreshed => "refreshed",
            SessionEvent::Replaced { .. } => "replaced",
        }
    }
}

/// Actions for the transaction layer (the caller carries them out).
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// Start a client transaction; the response comes back through
    /// [`InviteSession::handle_response`] with this `purpose`.
    Request {
        /// The request.
        request: Request,
        /// What it is for.
        purpose: Purpose,
    },
    /// Answer a server transaction.
    Response {
        /// The transaction.
        key: TxKey,
        /// The response.
        response: Response,
    },
    /// Send outside transactions: an ACK for a 2xx, or a 2xx retransmission.
    Ack {
        /// The ACK.
        request: Request,
    },
    /// Start a client transaction, like [`Out::Request`], with a request
    /// printed without being built (one that is only ever sent: a BYE),
    /// to the next hop of the session's dialog.
    PrintedRequest {
        /// Its transaction's key ([`client_key`](crate::transaction::client_key)
        /// of the request).
        key: TxKey,
        /// The printed request.
        bytes: Bytes,
        /// What it is for.
        purpose: Purpose,
    },
    /// Answer a server transaction with a response printed without being
    /// built (one that is only ever sent: the 200 to a BYE).
    PrintedResponse {
        /// The transaction.
        key: TxKey,
        /// The status code.
        status: u16,
        /// The printed response.
        bytes: Bytes,
    },
    /// Send outside transactions, to the next hop of the session's dialog:
    /// the ACK for a 2xx, printed straight from the dialog (it is only ever
    /// sent, so it is not built).
    PrintedAck {
        /// The printed ACK.
        bytes: Bytes,
    },
    /// Retransmit our 2xx (RFC 3261 §13.3.1.4) through the INVITE server transaction.
    Retransmit {
        /// The INVITE server transaction.
        key: TxKey,
        /// The 2xx.
        response: Response,
    },
    /// Cancel our INVITE.
    Cancel {
        /// The INVITE client transaction.
        key: TxKey,
    },
}

/// What a client request of the session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The initial INVITE.
    Invite,
    /// A re-INVITE (hold, unhold, refresh, new offer).
    Reinvite,
    /// An UPDATE.
    Update,
    /// BYE.
    Bye,
    /// PRACK.
    Prack,
    /// INFO.
    Info,
    /// REFER.
    Refer,
    /// NOTIFY for a REFER we received.
    Notify,
}

/// Local settings of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Timer values (T1, T2...).
    pub timers: TimerConfig,
    /// RFC 3262 policy.
    pub rel100: Rel100,
    /// Session-Expires we ask for (RFC 4028), `None` disables session timers.
    pub session_expires: Option<u32>,
    /// Smallest session interval we accept (Min-SE), default 90.
    pub min_se: u32,
    /// Our Contact.
    pub contact: NameAddr,
    /// Our Via template (transport, host, port); the branch is set per request.
    pub via: Via,
    /// User-Agent / Server value.
    pub user_agent: Option<String>,
    /// Refresh with UPDATE (RFC 3311) instead of re-INVITE.
    pub refresh_with_update: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Oa {
    /// No exchange under way.
    Idle,
    /// We sent an offer and wait for the answer.
    LocalOffer,
    /// The peer sent an offer we have not answered yet.
    RemoteOffer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum STimer {
    Rel1xx,
    NoPrack,
    Retrans2xx,
    NoAck,
    Glare,
    Refresh,
    Expire,
    Dtmf,
}

#[derive(Debug, Clone)]
struct Renegotiation {
    hold: bool,
    purpose: Purpose,
    refresh: bool,
    /// A re-INVITE without offer: the 2xx brings the peer's, our answer
    /// goes in the ACK.
    without_sdp: bool,
    /// The user's extra headers (kept for a retry after 491).
    extra: Vec<Header>,
}

impl Renegotiation {
    fn plain(hold: bool, purpose: Purpose, refresh: bool) -> Self {
        Renegotiation { hold, purpose, refresh, without_sdp: false, extra: Vec::new() }
    }
}

/// What a BYE carries: a `Reason` (cause, text) and the user's extras.
#[derive(Debug, Clone, Default)]
struct ByeSpec {
    reason: Option<(u16, String)>,
    extras: Extras,
}

/// One queued DTMF tone.
#[derive(Debug, Clone)]
struct Tone {
    tone: char,
    duration: u32,
    gap: u32,
    extra: Arc<Vec<Header>>,
}

/// One INVITE session.
pub struct InviteSession {
    id: u64,
    direction: Direction,
    state: SessionState,
    config: Arc<SessionConfig>,
    hooks: Box<dyn DescriptionHooks>,
    invite: Request,
    invite_key: Option<TxKey>,
    dialog: Option<Dialog>,
    early: Vec<Dialog>,
    oa: Oa,
    remote_offer: Option<Box<Body>>,
    local_hold: bool,
    reneg: Option<Box<Renegotiation>>,
    /// A re-INVITE from the peer was answered with a 2xx that still waits
    /// for its ACK: another re-INVITE meanwhile gets 500 with Retry-After
    /// (RFC 3261 §14.2), and no renegotiation of ours starts.
    reneg_server: bool,
    pending_retry: Option<Box<Renegotiation>>,
    timers: Vec<(STimer, Instant)>,
    /// The deadline the UA last entered in its timer index for this
    /// session (the index gets one entry per change, not one per look).
    pub(crate) scheduled: Option<Instant>,
    interval: Duration,
    last_2xx: Option<Response>,
    retrans_key: Option<TxKey>,
    last_rel1xx: Option<Response>,
    rseq: u32,
    /// Outbound: last RSeq received per remote tag (RFC 3262 §4).
    rseq_in: Vec<(ByteString, u32)>,
    prack_pending: bool,
    /// CSeq of the last ACK we sent for a 2xx (it is rebuilt from the
    /// dialog when the 2xx is retransmitted, not kept).
    last_ack_seq: Option<u32>,
    /// The body of the ACK for the initial INVITE's 2xx (delayed offer).
    ack_body: Option<Box<Body>>,
    /// Our answer sent in an unreliable provisional: the 2xx repeats it
    /// (RFC 3261 §13.3.1.1: the answer is in the 2xx).
    early_answer: Option<Box<Body>>,
    /// CSeq and body of the ACK of our last re-INVITE without offer.
    reneg_ack: Option<Box<(u32, Body)>>,
    /// The last session description we sent, and the last we received.
    local_sdp: Option<Box<Body>>,
    remote_sdp: Option<Box<Body>>,
    /// Whether either changed since [`InviteSession::take_description_change`].
    cancel_requested: bool,
    /// `terminate` came while our 2xx waited for its ACK: BYE once it comes.
    bye_on_ack: Option<Box<ByeSpec>>,
    session_interval: Option<u32>,
    we_refresh: bool,
    dtmf_queue: VecDeque<Tone>,
    /// The implicit subscription of a REFER we accepted (RFC 3515 §2.4.4)
    /// is active: progress goes out as NOTIFY.
    refer_sub: bool,
    refer_out: bool,
    out: Queue<Out>,
    events: Queue<SessionEvent>,
    ended: bool,
    /// Whether the user agent has indexed this session's dialog (see
    /// [`InviteSession::dialog_to_index`]).
    dialog_indexed: bool,
    tag: ByteString,
}

impl fmt::Debug for InviteSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteSession")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .field("dialog", &self.dialog.as_ref().map(|d| &d.id))
            .finish()
    }
}

fn set_body(h: &mut sipact_message::Headers, body_slot: &mut Bytes, body: Option<&Body>) {
    if let Some(b) = body {
        h.push(Header::ContentType(b.content_type.clone()));
        *body_slot = b.data.clone();
    }
}

/// An SDP body that owns its bytes (not a slice of a datagram).
fn detached_sdp(b: &Body) -> Body {
    Body {
        content_type: MediaType {
            mtype: ByteString::from_static("application"),
            subtype: ByteString::from_static("sdp"),
            params: Params::new(),
        },
        data: Bytes::copy_from_slice(&b.data),
    }
}

fn sdp_of(b: Option<Body>) -> Option<Body> {
    b.filter(Body::is_sdp)
}

/// The methods a session answers, for its Allow headers (printed as is).
const ALLOW: MethodList =
    MethodList::from_static("INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY");

/// A session's queue of outputs or events: rarely more than two values at
/// once, and large ones (a message each), so it starts with room for two
/// (four, the default, would take the allocator's slow path) and gives
/// its memory back when the session settles. Buffers of two slots are
/// handed back and taken again through a per-thread free list: a call
/// fills and empties them several times (set-up, then BYE), and each time
/// cost an allocation and a free.
#[derive(Debug)]
struct Queue<T: Pooled>(VecDeque<T>);

/// Slots in a fresh queue buffer.
const QUEUE_SLOTS: usize = 2;
/// Spare buffers kept per thread and type.
const QUEUE_SPARES: usize = 16;

/// A type whose queue buffers have a per-thread free list.
trait Pooled: Sized + 'static {
    fn spares() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<VecDeque<Self>>>>;
}

macro_rules! pooled {
    ($t:ty) => {
        impl Pooled for $t {
            fn spares() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<VecDeque<Self>>>> {
                thread_local! {
                    static SPARES: std::cell::RefCell<Vec<VecDeque<$t>>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                &SPARES
            }
        }
    };
}
pooled!(Out);
pooled!(SessionEvent);

impl<T: Pooled> Queue<T> {
    fn new() -> Self {
        Queue(VecDeque::new())
    }

    fn push_back(&mut self, v: T) {
        if self.0.capacity() == 0 {
            self.0 = T::spares()
                .try_with(|l| l.try_borrow_mut().ok().and_then(|mut l| l.pop()))
                .ok()
                .flatten()
                .unwrap_or_else(|| VecDeque::with_capacity(QUEUE_SLOTS));
        }
        self.0.push_back(v);
    }

    fn pop_front(&mut self) -> Option<T> {
        self.0.pop_front()
    }

    /// Gives the buffer back when nothing is queued (to the free list when
    /// it has the usual two slots).
    fn release(&mut self) {
        if self.0.is_empty() && self.0.capacity() > 0 {
            let buf = std::mem::take(&mut self.0);
            if buf.capacity() == QUEUE_SLOTS {
                let _ = T::spares().try_with(|l| {
                    if let Ok(mut l) = l.try_borrow_mut()
                        && l.len() < QUEUE_SPARES
                    {
                        l.push(buf);
                    }
                });
            }
        }
    }
}

impl<T: Pooled> Drop for Queue<T> {
    fn drop(&mut self) {
        self.release();
    }
}

fn supported() -> Header {
    Header::Supported(TokenList::from_static("100rel, timer, replaces"))
}

impl InviteSession {
    // ----- construction ------------------------------------------------

    /// An outbound session: builds the INVITE (with an offer from `hooks`
    /// unless `delayed_offer`) and queues it. `request` carries the
    /// Request-URI, From (with tag), To, Call-ID and any extra headers; the
    /// session adds Via, CSeq, Contact, Max-Forwards, Supported/Require,
    /// Allow, Session-Expires and the body.
    pub fn outbound(
        id: u64,
        mut request: Request,
        config: impl Into<Arc<SessionConfig>>,
        mut hooks: Box<dyn DescriptionHooks>,
        delayed_offer: bool,
        rng: &mut dyn Rng,
    ) -> Result<InviteSession, SessionError> {
        let config: Arc<SessionConfig> = config.into();
        let tag = ByteString::from(request.headers.from().and_then(|f| f.tag()).unwrap_or(""));
        let mut via = config.via.clone();
        via.params.set("branch", Some(&crate::transaction::new_branch(rng)));
        // One borrow of the (copy-on-write) header vector for all the pushes.
        let h = request.headers.as_mut_vec();
        h.insert(0, Header::Via(via));
        h.push(Header::CSeq(CSeq { seq: 1, method: Method::Invite }));
        h.push(Header::MaxForwards(70));
        h.push(Header::Contact(sipact_message::Contact::Addr(config.contact.clone())));
        h.push(Header::Allow(ALLOW));
        match config.rel100 {
            Rel100::Required => {
                h.push(Header::Require(TokenList::from_static("100rel")));
                h.push(Header::Supported(TokenList::from_static("timer, replaces")));
            }
            Rel100::Supported => h.push(supported()),
            Rel100::Unsupported => h.push(Header::Supported(TokenList::from_static("timer, replaces"))),
        }
        if let Some(se) = config.session_expires {
            h.push(Header::SessionExpires(DeltaParams::new(se)));
            h.push(Header::MinSe(DeltaParams::new(config.min_se)));
        }
        if let Some(ua) = &config.user_agent {
            h.push(Header::UserAgent(ByteString::from(ua.as_str())));
        }
        let mut oa = Oa::Idle;
        let mut sent = None;
        if !delayed_offer {
            let offer = hooks.offer(false).map_err(SessionError::Description)?;
            set_body(&mut request.headers, &mut request.body, Some(&offer));
            oa = Oa::LocalOffer;
            sent = Some(offer);
        }
        let t1 = config.timers.t1;
        let mut s = InviteSession::blank(id, Direction::Outbound, SessionState::Calling, config, hooks, request, tag);
        s.oa = oa;
        if let Some(b) = &sent {
            s.sent_sdp(b);
        }
        s.interval = t1;
        s.out.push_back(Out::Request { request: s.invite.clone(), purpose: Purpose::Invite });
        Ok(s)
    }

    /// An inbound session for an INVITE received in server transaction `key`.
    /// `local_tag` is the tag we will put in To.
    pub fn inbound(
        id: u64,
        request: Request,
        key: TxKey,
        config: impl Into<Arc<SessionConfig>>,
        hooks: Box<dyn DescriptionHooks>,
        local_tag: &str,
    ) -> InviteSession {
        let config: Arc<SessionConfig> = config.into();
        let remote_offer = sdp_of(Body::of_request(&request));
        let mut s = InviteSession::blank(
            id,
            Direction::Inbound,
            SessionState::Incoming,
            config,
            hooks,
            request,
            ByteString::from(local_tag),
        );
        s.invite_key = Some(key);
        if let Some(b) = &remote_offer {
            s.got_sdp(b);
        }
        if remote_offer.is_some() {
            s.oa = Oa::RemoteOffer;
            s.remote_offer = remote_offer.map(Box::new);
        }
        s.dialog = Dialog::uas(&s.invite, local_tag, DialogState::Early).ok();
        s
    }

    fn blank(
        id: u64,
        direction: Direction,
        state: SessionState,
        config: Arc<SessionConfig>,
        hooks: Box<dyn DescriptionHooks>,
        invite: Request,
        tag: ByteString,
    ) -> InviteSession {
        InviteSession {
            id,
            direction,
            state,
            interval: config.timers.t1,
            config,
            hooks,
            invite,
            invite_key: None,
            dialog: None,
            early: Vec::new(),
            oa: Oa::Idle,
            remote_offer: None,
            local_hold: false,
            reneg: None,
            reneg_server: false,
            pending_retry: None,
            timers: Vec::new(),
            scheduled: None,
            last_2xx: None,
            retrans_key: None,
            last_rel1xx: None,
            rseq: 0,
            rseq_in: Vec::new(),
            prack_pending: false,
            last_ack_seq: None,
            ack_body: None,
            early_answer: None,
            reneg_ack: None,
            local_sdp: None,
            remote_sdp: None,
            cancel_requested: false,
            bye_on_ack: None,
            session_interval: None,
            we_refresh: false,
            dtmf_queue: VecDeque::new(),
            refer_sub: false,
            refer_out: false,
            // A session rarely has more than two outputs or events queued
            // at once; four slots of these large values would take the
            // allocator's slow path.
            out: Queue::new(),
            events: Queue::new(),
            ended: false,
            dialog_indexed: false,
            tag,
        }
    }

    // ----- inspection --------------------------------------------------

    /// The session's number.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Outbound or inbound.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Current state.
    pub fn state(&self) -> SessionState {
        self.state
    }
    /// The initial INVITE. Once the session is confirmed only its
    /// Request-URI, Call-ID, CSeq and credentials are kept (the dialog has
    /// the rest), without the body.
    pub fn request(&self) -> &Request {
        &self.invite
    }
    /// The dialog, once there is one (early or confirmed).
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The dialog, the first time it is asked for once it exists: a user
    /// agent indexes each session's dialog once (its Call-ID and local tag
    /// never change), not on every event.
    pub fn dialog_to_index(&mut self) -> Option<&Dialog> {
        if self.dialog_indexed {
            return None;
        }
        let d = self.dialog.as_ref()?;
        self.dialog_indexed = true;
        Some(d)
    }
    /// The early dialogs of an outbound session (forking).
    pub fn early_dialogs(&self) -> &[Dialog] {
        &self.early
    }
    /// Our tag.
    pub fn local_tag(&self) -> &str {
        &self.tag
    }
    /// Whether we hold the peer.
    pub fn is_on_hold(&self) -> bool {
        self.local_hold
    }
    /// The negotiated session interval (RFC 4028), if any.
    pub fn session_interval(&self) -> Option<u32> {
        self.session_interval
    }
    /// The descriptions (SDP) sent and received since the last call, if
    /// any changed: `(local, remote)`, `None` for a side that did not
    /// change. The session keeps no copy afterwards (a confirmed dialog
    /// stays small); whoever shows descriptions keeps the latest.
    pub fn take_descriptions(&mut self) -> Option<(Option<Body>, Option<Body>)> {
        self.take_description_boxes().map(|(l, r)| (l.map(|b| *b), r.map(|b| *b)))
    }

    /// [`InviteSession::take_descriptions`] as the session holds them (boxed).
    pub(crate) fn take_description_boxes(&mut self) -> Option<(BoxedBody, BoxedBody)> {
        if self.local_sdp.is_none() && self.remote_sdp.is_none() {
            return None;
        }
        Some((self.local_sdp.take(), self.remote_sdp.take()))
    }
    /// Whether the session has ended (Terminated was emitted).
    pub fn is_terminated(&self) -> bool {
        self.ended
    }
    /// Whether the session timer is armed (for tests and invariants).
    pub fn has_timers(&self) -> bool {
        !self.timers.is_empty()
    }
    /// The INVITE transaction key.
    pub fn invite_key(&self) -> Option<&TxKey> {
        self.invite_key.as_ref()
    }
    /// Records the client transaction of the initial INVITE (set by the caller
    /// after it started the transaction).
    pub fn set_invite_key(&mut self, key: TxKey) {
        self.invite_key = Some(key);
    }
    /// Replaces the initial INVITE after an authentication retry (new branch,
    /// next CSeq, credentials added by the caller).
    pub fn set_invite(&mut self, req: Request) {
        self.invite = req;
    }

    /// Next action.
    pub fn poll_out(&mut self) -> Option<Out> {
        self.out.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
    /// Earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|(_, at)| *at).min()
    }

    fn arm(&mut self, t: STimer, at: Instant) {
        self.disarm(t);
        self.timers.push((t, at));
    }
    fn disarm(&mut self, t: STimer) {
        self.timers.retain(|(x, _)| *x != t);
    }

    fn sent_sdp(&mut self, b: &Body) {
        if b.is_sdp() {
            // Our own description (from the hooks), not a slice of a
            // received datagram: kept as it is, not copied.
            self.local_sdp = Some(Box::new(b.clone()));
        }
    }

    fn got_sdp(&mut self, b: &Body) {
        if b.is_sdp() {
            // A copy: a slice would keep the whole received datagram alive.
            self.remote_sdp = Some(Box::new(detached_sdp(b)));
        }
    }

    /// A new offer from the hooks, recorded as our description.
    fn h_offer(&mut self, hold: bool) -> Result<Body, u16> {
        let o = self.hooks.offer(hold)?;
        self.sent_sdp(&o);
        Ok(o)
    }

    /// An answer from the hooks; the offer and the answer are recorded.
    fn h_answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16> {
        let a = self.hooks.answer(offer, hold)?;
        self.got_sdp(offer);
        self.sent_sdp(&a);
        Ok(a)
    }

    /// Applies the peer's answer, recorded as its description.
    fn h_apply(&mut self, answer: &Body) -> Result<(), u16> {
        self.got_sdp(answer);
        self.hooks.apply_answer(answer)
    }

    /// A body the user gave for a response of ours to the INVITE: if it
    /// is SDP it is our answer (or our offer, when the INVITE had none).
    fn user_description(&mut self, b: &Body) {
        if !b.is_sdp() {
            return;
        }
        match self.oa {
            Oa::RemoteOffer => {
                self.remote_offer = None;
                self.oa = Oa::Idle;
            }
            Oa::Idle if self.invite.body.is_empty() && self.direction == Direction::Inbound => {
                self.oa = Oa::LocalOffer;
            }
            _ => {}
        }
        self.sent_sdp(b);
    }

    fn invalid(&self, op: &'static str) -> SessionError {
        SessionError::InvalidState { op, state: self.state }
    }

    fn end(&mut self, cause: Cause) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.state = SessionState::Terminated;
        self.timers.clear();
        self.dtmf_queue.clear();
        self.events.push_back(SessionEvent::Terminated { cause });
    }

    fn fail(&mut self, response: Option<Response>, cause: Cause) {
        if let Some(r) = &response
            && r.status >= 300
        {
            self.events.push_back(SessionEvent::Rejected { response: r.clone(), cause });
        }
        self.events.push_back(SessionEvent::Failed { response, cause });
        self.end(cause);
    }

    fn via(&self, rng: &mut dyn Rng) -> Via {
        let mut via = self.config.via.clone();
        via.params.set("branch", Some(&crate::transaction::new_branch(rng)));
        via
    }

    fn in_dialog(&mut self, method: Method, rng: &mut dyn Rng) -> Option<Request> {
        let via = self.via(rng);
        let d = self.dialog.as_mut()?;
        let mut r = d.request(method, via, None);
        if let Some(ua) = &self.config.user_agent {
            r.headers.push(Header::UserAgent(ByteString::from(ua.as_str())));
        }
        Some(r)
    }

    /// [`InviteSession::in_dialog`] printed without being built, as an
    /// [`Out::PrintedRequest`] for `purpose`: `None` (nothing used up) when
    /// there is no dialog or its first hop is a strict router.
    fn printed_in_dialog(&mut self, method: Method, purpose: Purpose, rng: &mut dyn Rng) -> Option<Out> {
        let via = self.via(rng);
        let branch = via.branch().filter(|b| b.starts_with(crate::util::BRANCH_COOKIE))?;
        let key = TxKey {
            role: crate::transaction::Role::Client,
            branch: ByteString::from(branch),
            method: method.clone(),
            sent_by: ByteString::new(),
        };
        let ua = self.config.user_agent.as_deref();
        let bytes = self.dialog.as_mut()?.print_request(method, &via, None, |w| {
            if let Some(ua) = ua {
                w.text(HeaderName::UserAgent, ua);
            }
        })?;
        Some(Out::PrintedRequest { key, bytes, purpose })
    }

    fn with_contact(&self, h: &mut sipact_message::Headers) {
        h.push(Header::Contact(sipact_message::Contact::Addr(self.config.contact.clone())));
    }

    fn respond(&self, req: &Request, status: u16) -> Response {
        let mut r = response_for(req, status, Some(&self.tag));
        if let Some(ua) = &self.config.user_agent {
            r.headers.push(Header::Server(ByteString::from(ua.as_str())));
        }
        r
    }

    // ----- outbound: responses to our INVITE ----------------------------

    /// Handles a response to a client request of this session.
    pub fn handle_response(&mut self, now: Instant, purpose: Purpose, resp: Response, rng: &mut dyn Rng) {
        match purpose {
            Purpose::Invite => self.invite_response(now, resp, rng),
            Purpose::Reinvite | Purpose::Update => self.reneg_response(now, purpose, resp, rng),
            Purpose::Bye => {
                if resp.status >= 200 {
                    self.end(Cause::Bye);
                }
            }
            Purpose::Prack => {
                if (200..300).contains(&resp.status)
                    && self.oa == Oa::LocalOffer
                    && let Some(b) = sdp_of(Body::of_response(&resp))
                {
                    let _ = self.h_apply(&b);
                    self.oa = Oa::Idle;
                }
            }
            Purpose::Info | Purpose::Notify => {
                if matches!(resp.status, 481 | 408) && self.state == SessionState::Confirmed {
                    self.send_bye(rng);
                    self.end(Cause::DialogError);
                }
            }
            Purpose::Refer => {
                if resp.status >= 200 {
                    self.refer_out = (200..300).contains(&resp.status);
                    self.events
                        .push_back(SessionEvent::ReferProgress { status: resp.status, terminated: resp.status >= 300 });
                }
            }
        }
    }

    fn invite_response(&mut self, now: Instant, resp: Response, rng: &mut dyn Rng) {
        let status = resp.status;
        let remote_tag = resp.headers.to().and_then(|t| t.tag()).map(ByteString::from);
        if status < 200 {
            if self.state != SessionState::Calling && self.state != SessionState::Early {
                return;
            }
            if status == 100 {
                return;
            }
            // RFC 3262 §4: a reliable provisional whose RSeq is not one higher
            // than the last one of its dialog (a retransmission, or out of
            // order) is neither PRACKed nor processed.
            if resp.headers.requires("100rel")
                && let (Some(tag), Some(n)) = (&remote_tag, resp.headers.rseq())
            {
                match self.rseq_in.iter_mut().find(|(t, _)| **t == **tag) {
                    Some((_, last)) if n != last.wrapping_add(1) => return,
                    Some((_, last)) => *last = n,
                    None => self.rseq_in.push((ByteString::from(tag.as_str()), n)),
                }
            }
            self.state = SessionState::Early;
            if let Some(tag) = &remote_tag {
                if !self.early.iter().any(|d| *d.id.remote_tag == **tag)
                    && let Ok(d) = Dialog::uac(&self.invite, &resp)
                {
                    // Forking is rare: room for one early dialog at first.
                    if self.early.capacity() == 0 {
                        self.early.reserve_exact(1);
                    }
                    self.early.push(d);
                }
                if self.dialog.is_none() {
                    self.dialog = self.early.iter().find(|d| *d.id.remote_tag == **tag).cloned();
                }
            }
            let reliable = resp.headers.requires("100rel") && resp.headers.rseq().is_some();
            let body = sdp_of(Body::of_response(&resp));
            self.events.push_back(SessionEvent::Progress { response: resp.clone() });
            if reliable {
                self.send_prack(&resp, body, rng);
            } else if let Some(b) = body {
                // Early media answer in an unreliable 1xx: apply, but keep the
                // offer open until the 2xx (RFC 3261 §13.2.1 allows this).
                if self.oa == Oa::LocalOffer {
                    let _ = self.h_apply(&b);
                }
            }
            return;
        }
        if status < 300 {
            let tag = remote_tag.unwrap_or_default();
            // A 2xx from a dialog we already confirmed: a retransmission, ACK again.
            if let Some(d) = &self.dialog
                && d.state == DialogState::Confirmed
            {
                if *d.id.remote_tag == *tag {
                    let seq = resp.headers.cseq().map(|c| c.seq);
                    self.resend_ack(seq, rng);
                } else {
                    // Forking: another UAS answered too. ACK it, then BYE it (§13.2.2.4).
                    self.ack_and_bye_fork(&resp, rng);
                }
                return;
            }
            if self.state == SessionState::Terminated || self.state == SessionState::Terminating {
                // A 2xx after we gave up (CANCEL crossed it): ACK and BYE.
                self.ack_and_bye_fork(&resp, rng);
                return;
            }
            // The early dialog of this tag is taken out, not copied: the others
            // are dropped just below.
            let early = self.early.iter().position(|d| *d.id.remote_tag == *tag);
            let mut dialog = match early.map(|i| self.early.swap_remove(i)) {
                Some(d) => d,
                None => match Dialog::uac(&self.invite, &resp) {
                    Ok(d) => d,
                    Err(_) => {
                        self.fail(Some(resp), Cause::DialogError);
                        return;
                    }
                },
            };
            dialog.on_response(&Method::Invite, &resp);
            self.dialog = Some(dialog);
            self.early.clear();
            // Offer/answer: the 2xx carries the answer to our offer, or the
            // offer when the INVITE had none (answer goes in the ACK).
            let body = sdp_of(Body::of_response(&resp));
            let mut ack_body = None;
            match (self.oa, body) {
                (Oa::LocalOffer, Some(b)) => {
                    if let Err(code) = self.h_apply(&b) {
                        self.send_ack(None, rng);
                        self.events.push_back(SessionEvent::Accepted { response: resp.clone(), ack: None });
                        self.state = SessionState::Confirmed;
                        self.send_bye_reason(rng, code);
                        self.end(Cause::BadMediaDescription);
                        return;
                    }
                    self.oa = Oa::Idle;
                }
                (Oa::Idle, Some(b)) if self.invite.body.is_empty() => match self.h_answer(&b, false) {
                    Ok(a) => ack_body = Some(a),
                    Err(_) => {
                        self.send_ack(None, rng);
                        self.state = SessionState::Confirmed;
                        self.events.push_back(SessionEvent::Accepted { response: resp.clone(), ack: None });
                        self.send_bye(rng);
                        self.end(Cause::BadMediaDescription);
                        return;
                    }
                },
                _ => {}
            }
            self.send_ack(ack_body.as_ref(), rng);
            self.state = SessionState::Confirmed;
            if self.cancel_requested {
                // The 2xx crossed our CANCEL (§9.1): the callee considers the
                // call up. ACK it, then hang up at once; the user asked for no
                // call. As SIP.js reports it: accepted, bye (the BYE we
                // send), terminated, the latter with `Cause::Canceled`: the
                // call ends because the user canceled it, not because
                // anybody hung up on it.
                self.events.push_back(SessionEvent::Accepted { response: resp, ack: None });
                if let Some(bye) = self.in_dialog(Method::Bye, rng) {
                    self.events.push_back(SessionEvent::Bye { request: Box::new(bye.clone()) });
                    self.out.push_back(Out::Request { request: bye, purpose: Purpose::Bye });
                }
                self.end(Cause::Canceled);
                return;
            }
            self.negotiate_timer_uac(now, &resp);
            self.compact();
            self.events.push_back(SessionEvent::Accepted { response: resp, ack: None });
            return;
        }
        // 3xx-6xx.
        if self.state == SessionState::Terminated {
            return;
        }
        if status == 422 && self.config.session_expires.is_some() {
            // RFC 4028 §7.4: retry with the Min-SE the peer asked for.
            if let Some(min) = resp.headers.iter().find_map(|h| match h {
                Header::MinSe(d) => Some(d.delta),
                _ => None,
            }) {
                let mut req = self.invite.clone();
                req.headers.remove(sipact_message::HeaderName::SessionExpires);
                req.headers.remove(sipact_message::HeaderName::MinSe);
                req.headers.push(Header::SessionExpires(DeltaParams::new(min)));
                req.headers.push(Header::MinSe(DeltaParams::new(min)));
                self.retry_invite(req, rng);
                return;
            }
        }
        let cause = if self.cancel_requested || status == 487 { Cause::Canceled } else { Cause::from_status(status) };
        self.fail(Some(resp), cause);
    }

    /// Re-sends the initial INVITE as `req` (new branch and CSeq are set
    /// here), for example after a 422 or with credentials after a 401/407.
    pub fn retry_invite(&mut self, mut req: Request, rng: &mut dyn Rng) {
        req.headers.remove(sipact_message::HeaderName::Via);
        req.headers.push_front(Header::Via(self.via(rng)));
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        req.headers.remove(sipact_message::HeaderName::CSeq);
        req.headers.push(Header::CSeq(CSeq { seq, method: Method::Invite }));
        self.invite = req.clone();
        self.state = SessionState::Calling;
        self.early.clear();
        self.rseq_in.clear();
        self.dialog = None;
        self.out.push_back(Out::Request { request: req, purpose: Purpose::Invite });
    }

    fn ack_and_bye_fork(&mut self, resp: &Response, rng: &mut dyn Rng) {
        let seq = self.invite.headers.cseq().map(|c| c.seq);
        // A confirmed session keeps only part of its INVITE: the other
        // dialog is derived from ours.
        let fork = match &self.dialog {
            Some(d) if self.invite.headers.from().is_none() => d.fork(resp, seq.unwrap_or(1), &self.invite.uri),
            _ => Dialog::uac(&self.invite, resp),
        };
        let Ok(mut d) = fork else { return };
        let via = self.via(rng);
        let ack = d.request(Method::Ack, via, seq);
        self.out.push_back(Out::Ack { request: ack });
        let via = self.via(rng);
        let bye = d.request(Method::Bye, via, None);
        // The BYE of a dialog we never used: its response is not this session's business.
        self.out.push_back(Out::Request { request: bye, purpose: Purpose::Info });
    }

    fn send_ack(&mut self, body: Option<&Body>, rng: &mut dyn Rng) {
        let seq = self.invite.headers.cseq().map(|c| c.seq);
        let via = self.via(rng);
        let Some(d) = self.dialog.as_mut() else { return };
        // The usual ACK (no body, no credentials to repeat) is printed from
        // the dialog without building it.
        let credentials =
            self.invite.headers.iter().any(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)));
        if body.is_none()
            && !credentials
            && let Some(seq) = seq
            && let Some(bytes) = d.print_ack(&via, seq)
        {
            self.last_ack_seq = Some(seq);
            self.ack_body = None;
            self.out.push_back(Out::PrintedAck { bytes });
            return;
        }
        let mut ack = d.request(Method::Ack, via, seq);
        // Credentials used on the INVITE go on the ACK too (§22.1).
        for h in self.invite.headers.iter() {
            if matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)) {
                ack.headers.push(h.clone());
            }
        }
        set_body(&mut ack.headers, &mut ack.body, body);
        self.last_ack_seq = seq;
        self.ack_body = body.cloned().map(Box::new);
        self.out.push_back(Out::Ack { request: ack });
    }

    /// ACKs a retransmitted 2xx (CSeq `seq`) again. The ACK is built anew
    /// from the dialog (a new branch; the ACK of a 2xx is a transaction of
    /// its own), with the credentials and body of the first one when it
    /// answers the initial INVITE. Nothing is sent before our first ACK.
    fn resend_ack(&mut self, seq: Option<u32>, rng: &mut dyn Rng) {
        let Some(seq) = seq.or(self.last_ack_seq) else { return };
        if self.last_ack_seq.is_none() {
            return;
        }
        let via = self.via(rng);
        let Some(d) = self.dialog.as_mut() else { return };
        let mut ack = d.request(Method::Ack, via, Some(seq));
        if Some(seq) == self.invite.headers.cseq().map(|c| c.seq) {
            for h in self.invite.headers.iter() {
                if matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)) {
                    ack.headers.push(h.clone());
                }
            }
            set_body(&mut ack.headers, &mut ack.body, self.ack_body.as_deref());
        } else if let Some((s, b)) = self.reneg_ack.as_deref()
            && *s == seq
        {
            set_body(&mut ack.headers, &mut ack.body, Some(b));
        }
        self.out.push_back(Out::Ack { request: ack });
    }

    /// Drops what a confirmed session no longer needs: early dialogs, RSeq
    /// bookkeeping, the last reliable provisional, and all of the initial
    /// INVITE but its Request-URI, Call-ID, CSeq and credentials (the
    /// dialog has the rest). What stays is copied out of the received
    /// datagrams, so that they can be freed.
    fn compact(&mut self) {
        self.early = Vec::new();
        self.rseq_in = Vec::new();
        self.last_rel1xx = None;
        let keep = |h: &Header| {
            matches!(h, Header::CallId(_) | Header::CSeq(_) | Header::Authorization(_) | Header::ProxyAuthorization(_))
        };
        let mut kept = Vec::with_capacity(self.invite.headers.iter().filter(|h| keep(h)).count());
        for h in self.invite.headers.iter() {
            match h {
                Header::CallId(c) => kept.push(Header::CallId(c.detached())),
                Header::CSeq(_) | Header::Authorization(_) | Header::ProxyAuthorization(_) => kept.push(h.clone()),
                _ => {}
            }
        }
        self.invite = Request {
            method: self.invite.method.clone(),
            uri: self.invite.uri.detached(),
            version: self.invite.version,
            headers: Headers::from_vec(kept),
            body: Bytes::new(),
        };
        if let Some(d) = self.dialog.as_mut() {
            d.detach();
        }
    }

    /// Frees the (empty) output and event queues of a session at rest; the
    /// caller drains them after every input, so a confirmed session need
    /// not keep their buffers.
    pub fn release_queues(&mut self) {
        self.out.release();
        self.events.release();
    }

    fn send_prack(&mut self, resp: &Response, body: Option<Body>, rng: &mut dyn Rng) {
        let (Some(rseq), Some(cseq)) = (resp.headers.rseq(), resp.headers.cseq()) else { return };
        let tag = resp.headers.to().and_then(|t| t.tag()).unwrap_or("").to_owned();
        let via = self.via(rng);
        let Some(d) = self.early.iter_mut().find(|d| *d.id.remote_tag == *tag) else { return };
        // RFC 3262 §4: PRACK in the early dialog with RAck.
        let mut prack = d.request(Method::Prack, via, None);
        let (early_id, early_seq) = (d.id.clone(), d.local_seq);
        prack.headers.push(Header::RAck(RAck { rseq, cseq: cseq.seq, method: cseq.method.clone() }));
        // Offer/answer in reliable provisionals (RFC 3262 §5).
        match (self.oa, body) {
            (Oa::LocalOffer, Some(b)) => {
                let _ = self.h_apply(&b);
                self.oa = Oa::Idle;
            }
            (Oa::Idle, Some(b)) if self.invite.body.is_empty() => {
                if let Ok(a) = self.h_answer(&b, false) {
                    set_body(&mut prack.headers, &mut prack.body, Some(&a));
                }
            }
            _ => {}
        }
        if let Some(main) = self.dialog.as_mut()
            && main.id == early_id
        {
            main.local_seq = early_seq;
        }
        self.out.push_back(Out::Request { request: prack, purpose: Purpose::Prack });
    }

    fn negotiate_timer_uac(&mut self, now: Instant, resp: &Response) {
        let Some(se) = resp.headers.session_expires() else {
            // The peer does not do session timers; RFC 4028 §7.2: if we asked,
            // we may still refresh as UAC.
            if let Some(asked) = self.config.session_expires
                && self.invite.headers.session_expires().is_some()
                && !resp.headers.requires("timer")
            {
                self.start_session_timer(now, asked, true);
            }
            return;
        };
        let we = !matches!(se.refresher(), Some(r) if r.eq_ignore_ascii_case("uas"));
        self.start_session_timer(now, se.delta, we);
    }

    fn start_session_timer(&mut self, now: Instant, interval: u32, we_refresh: bool) {
        self.session_interval = Some(interval);
        self.we_refresh = we_refresh;
        let iv = Duration::from_secs(interval.into());
        if we_refresh {
            // RFC 4028 §10: refresh at half the interval.
            self.arm(STimer::Refresh, now + iv / 2);
            self.disarm(STimer::Expire);
        } else {
            // §10: without a refresh, BYE at interval - min(32, interval/3).
            let slack = Duration::from_secs(u64::from((interval / 3).min(32)));
            self.arm(STimer::Expire, now + iv - slack);
            self.disarm(STimer::Refresh);
        }
    }

    // ----- inbound: user answers ---------------------------------------

    /// Sends a provisional response (default 180). Reliable (RFC 3262) when
    /// the INVITE requires 100rel, or supports it and our policy is
    /// `Required`/`reliable` asked. A body (early media) is our answer, or
    /// our offer when the INVITE had none.
    pub fn progress(
        &mut self,
        now: Instant,
        status: u16,
        body_wanted: bool,
        reliable_wanted: bool,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        self.provisional(now, "progress", status, (body_wanted, reliable_wanted), None, &Extras::default(), rng)
    }

    /// Sends any response to the INVITE of an inbound session (SIP.js
    /// `reply`): a provisional as [`InviteSession::progress`] does (no
    /// description unless the INVITE requires a reliable one that must
    /// carry it), a 2xx as [`InviteSession::accept`] does, a 3xx-6xx as
    /// [`InviteSession::reject`] does. `reason` replaces the default
    /// reason phrase; `extras` are added to the response.
    pub fn reply(
        &mut self,
        now: Instant,
        status: u16,
        reason: Option<&str>,
        extras: &Extras,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        if self.direction != Direction::Inbound || self.state != SessionState::Incoming {
            return Err(self.invalid("reply"));
        }
        match status {
            101..=199 => self.provisional(now, "reply", status, (false, false), reason, extras, rng),
            200..=299 => self.answer_2xx(now, "reply", status, reason, extras),
            300..=699 => self.final_failure("reply", status, reason, extras),
            _ => Err(SessionError::InvalidStatus(status)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn provisional(
        &mut self,
        now: Instant,
        op: &'static str,
        status: u16,
        (body_wanted, reliable_wanted): (bool, bool),
        reason: Option<&str>,
        extras: &Extras,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        if self.direction != Direction::Inbound || self.state != SessionState::Incoming || !(101..200).contains(&status)
        {
            return Err(self.invalid(op));
        }
        let Some(key) = self.invite_key.clone() else { return Err(self.invalid(op)) };
        if self.prack_pending {
            return Err(SessionError::Pending);
        }
        let h = &self.invite.headers;
        let reliable = self.config.rel100 != Rel100::Unsupported
            && (h.requires("100rel")
                || (h.supports("100rel") && (reliable_wanted || self.config.rel100 == Rel100::Required)));
        let mut resp = self.respond(&self.invite, status);
        self.with_contact(&mut resp.headers);
        // RFC 3262 §5 / RFC 3261 §13.2.1: an INVITE without an offer gets
        // ours in the first reliable non-failure response.
        let first_offer = reliable && self.oa == Oa::Idle && self.invite.body.is_empty() && self.last_rel1xx.is_none();
        if let Some(b) = &extras.body {
            self.user_description(b);
        } else if body_wanted || first_offer || reliable && self.oa == Oa::RemoteOffer && status == 183 {
            let body = self.answer_or_reject(op)?;
            if let Some(b) = body {
                set_body(&mut resp.headers, &mut resp.body, Some(&b));
            }
        }
        if let Some(r) = reason {
            resp.reason = ByteString::from(r);
        }
        extras.apply(&mut resp.headers, &mut resp.body);
        if !reliable
            && !self.invite.body.is_empty()
            && let Some(b) = sdp_of(Body::of_response(&resp))
        {
            self.early_answer = Some(Box::new(b));
        }
        if reliable {
            // RFC 3262 §3: the first RSeq is random in 1..2^31-1; we keep it
            // below 2^30 so that it never wraps during a call.
            self.rseq = if self.rseq == 0 { 1 + rng.below(1 << 30) as u32 } else { self.rseq + 1 };
            resp.headers.push(Header::Require(TokenList::from_static("100rel")));
            resp.headers.push(Header::RSeq(self.rseq));
            self.prack_pending = true;
            self.last_rel1xx = Some(resp.clone());
            self.interval = self.config.timers.t1;
            // RFC 3262 §3: retransmit with T1 doubling; give up after 64*T1.
            self.arm(STimer::Rel1xx, now + self.interval);
            self.arm(STimer::NoPrack, now + self.config.timers.t1x64());
        }
        self.out.push_back(Out::Response { key, response: resp.clone() });
        self.events.push_back(SessionEvent::Progress { response: resp });
        Ok(())
    }

    /// [`Self::make_answer_or_offer`] for a final or provisional answer to
    /// the initial INVITE: when the hooks cannot answer its offer (or make
    /// one), the INVITE is rejected at once with their status (488 Not
    /// Acceptable Here unless they said otherwise, RFC 3261 §13.3.1.3 and
    /// RFC 3264 §6), as SIP.js does, and the caller gets the error.
    fn answer_or_reject(&mut self, op: &'static str) -> Result<Option<Body>, SessionError> {
        match self.make_answer_or_offer() {
            Err(SessionError::Description(code)) if self.state == SessionState::Incoming => {
                let status = if (400..700).contains(&code) { code } else { 488 };
                self.final_failure(op, status, None, &Extras::default())?;
                Err(SessionError::Description(status))
            }
            other => other,
        }
    }

    fn make_answer_or_offer(&mut self) -> Result<Option<Body>, SessionError> {
        match self.oa {
            Oa::RemoteOffer => {
                let offer = self.remote_offer.take().ok_or(SessionError::Description(500))?;
                let a = self.h_answer(&offer, self.local_hold).map_err(SessionError::Description)?;
                self.oa = Oa::Idle;
                Ok(Some(a))
            }
            Oa::Idle if self.invite.body.is_empty() && self.direction == Direction::Inbound => {
                let o = self.h_offer(self.local_hold).map_err(SessionError::Description)?;
                self.oa = Oa::LocalOffer;
                Ok(Some(o))
            }
            _ => Ok(None),
        }
    }

    /// Accepts an inbound session: a 2xx with our answer (or our offer if the
    /// INVITE had none), retransmitted until the ACK (§13.3.1.4).
    pub fn accept(&mut self, now: Instant) -> Result<(), SessionError> {
        self.answer_2xx(now, "accept", 200, None, &Extras::default())
    }

    /// [`InviteSession::accept`] with extra headers and, optionally, a body
    /// of the user's instead of the description hooks' answer.
    pub fn accept_with(&mut self, now: Instant, extras: &Extras) -> Result<(), SessionError> {
        self.answer_2xx(now, "accept", 200, None, extras)
    }

    /// The checks and the response shared by every final answer to an
    /// inbound INVITE: inbound, still unanswered, `status` in `range`.
    fn inbound_final(
        &self,
        op: &'static str,
        range: std::ops::Range<u16>,
        status: u16,
        reason: Option<&str>,
    ) -> Result<(TxKey, Response), SessionError> {
        if self.direction != Direction::Inbound || self.state != SessionState::Incoming || !range.contains(&status) {
            return Err(self.invalid(op));
        }
        let Some(key) = self.invite_key.clone() else { return Err(self.invalid(op)) };
        let mut resp = self.respond(&self.invite, status);
        if let Some(r) = reason {
            resp.reason = ByteString::from(r);
        }
        Ok((key, resp))
    }

    fn answer_2xx(
        &mut self,
        now: Instant,
        op: &'static str,
        status: u16,
        reason: Option<&str>,
        extras: &Extras,
    ) -> Result<(), SessionError> {
        let (key, mut resp) = self.inbound_final(op, 200..300, status, reason)?;
        self.with_contact(&mut resp.headers);
        resp.headers.push(Header::Allow(ALLOW));
        resp.headers.push(supported());
        let body = if let Some(b) = &extras.body {
            self.user_description(b);
            None
        } else if self.oa == Oa::RemoteOffer
            || (self.oa == Oa::Idle
                && self.invite.body.is_empty()
                && self.remote_offer.is_none()
                && self.last_rel1xx.is_none())
        {
            self.answer_or_reject(op)?
        } else {
            None
        };
        let body = body.or_else(|| if extras.body.is_none() { self.early_answer.take().map(|b| *b) } else { None });
        if let Some(b) = &body {
            set_body(&mut resp.headers, &mut resp.body, Some(b));
        }
        extras.apply(&mut resp.headers, &mut resp.body);
        // RFC 4028 §9: answer a Session-Expires; we refresh if the UAC did not say.
        if let Some(se) = self.invite.headers.session_expires().cloned() {
            let refresher = se.refresher().map(str::to_owned).unwrap_or_else(|| "uas".to_owned());
            let mut p = Params::new();
            p.push(Param::new("refresher", refresher.as_str()));
            resp.headers.push(Header::SessionExpires(DeltaParams { delta: se.delta, comment: None, params: p }));
            resp.headers.push(Header::Require(TokenList::from_static("timer")));
            self.start_session_timer(now, se.delta, refresher == "uas");
        }
        if let Some(d) = self.dialog.as_mut() {
            d.state = DialogState::Confirmed;
        }
        self.disarm(STimer::Rel1xx);
        self.disarm(STimer::NoPrack);
        self.prack_pending = false;
        self.last_2xx = Some(resp.clone());
        self.retrans_key = Some(key.clone());
        self.state = SessionState::WaitAck;
        self.interval = self.config.timers.t1;
        self.arm(STimer::Retrans2xx, now + self.interval);
        self.arm(STimer::NoAck, now + self.config.timers.t1x64());
        self.out.push_back(Out::Response { key, response: resp });
        Ok(())
    }

    /// Rejects an inbound session with a non-2xx final response (default 480).
    pub fn reject(&mut self, status: u16, reason: Option<&str>) -> Result<(), SessionError> {
        self.final_failure("reject", status, reason, &Extras::default())
    }

    /// [`InviteSession::reject`] with extra headers and a body.
    pub fn reject_with(&mut self, status: u16, reason: Option<&str>, extras: &Extras) -> Result<(), SessionError> {
        self.final_failure("reject", status, reason, extras)
    }

    fn final_failure(
        &mut self,
        op: &'static str,
        status: u16,
        reason: Option<&str>,
        extras: &Extras,
    ) -> Result<(), SessionError> {
        let (key, mut resp) = self.inbound_final(op, 300..700, status, reason)?;
        extras.apply(&mut resp.headers, &mut resp.body);
        self.out.push_back(Out::Response { key, response: resp.clone() });
        self.events.push_back(SessionEvent::Rejected { response: resp.clone(), cause: Cause::from_status(status) });
        self.events.push_back(SessionEvent::Failed { response: Some(resp), cause: Cause::from_status(status) });
        self.end(Cause::from_status(status));
        Ok(())
    }

    // ----- requests from the peer --------------------------------------

    /// Handles the ACK for our 2xx.
    pub fn handle_ack(&mut self, now: Instant, ack: Request, rng: &mut dyn Rng) {
        let _ = now;
        if self.state != SessionState::WaitAck && self.state != SessionState::Confirmed {
            return;
        }
        self.disarm(STimer::Retrans2xx);
        self.disarm(STimer::NoAck);
        if let Some(b) = sdp_of(Body::of_request(&ack))
            && self.oa == Oa::LocalOffer
        {
            if self.h_apply(&b).is_err() {
                self.send_bye(rng);
            }
            self.oa = Oa::Idle;
        }
        // The 2xx needs no more retransmissions.
        let last_2xx = self.last_2xx.take();
        if self.state == SessionState::WaitAck {
            self.state = SessionState::Confirmed;
            self.compact();
            let response = last_2xx.unwrap_or_else(|| Response::new(200));
            self.events.push_back(SessionEvent::Accepted { response, ack: Some(Box::new(ack)) });
            if let Some(spec) = self.bye_on_ack.take() {
                // `terminate` was asked while we waited for this ACK.
                let reason = spec.reason.as_ref().map(|(c, t)| (*c, t.as_str()));
                let _ = self.bye_with(reason, &spec.extras, rng);
            }
        } else {
            // The ACK of a re-INVITE of the peer's ends that exchange.
            self.reneg_server = false;
        }
    }

    /// Handles CANCEL of our inbound INVITE (the layer answered the CANCEL).
    pub fn handle_cancel(&mut self) {
        if self.state != SessionState::Incoming {
            return;
        }
        if let Some(key) = self.invite_key.clone() {
            let resp = self.respond(&self.invite, 487);
            self.out.push_back(Out::Response { key, response: resp });
        }
        self.events.push_back(SessionEvent::Cancel);
        self.events.push_back(SessionEvent::Failed { response: None, cause: Cause::Canceled });
        self.end(Cause::Canceled);
    }

    /// Handles an in-dialog request (server transaction `key`).
    pub fn handle_request(&mut self, now: Instant, key: TxKey, req: Request, rng: &mut dyn Rng) {
        if let Some(d) = self.dialog.as_mut()
            && let Err(crate::dialog::DialogError::CSeqOutOfOrder { .. }) = d.on_request(&req)
        {
            let r = self.respond(&req, 500);
            self.out.push_back(Out::Response { key, response: r });
            return;
        }
        match req.method {
            Method::Bye => {
                let ua = self.config.user_agent.as_deref();
                let bytes = req.print_response(200, Some(&self.tag), |w| {
                    if let Some(ua) = ua {
                        w.text(HeaderName::Server, ua);
                    }
                });
                self.out.push_back(Out::PrintedResponse { key, status: 200, bytes });
                if self.state == SessionState::Incoming {
                    // BYE before our final answer (RFC 3261 §15.1.2): 487 the INVITE.
                    if let Some(k) = self.invite_key.clone() {
                        let resp = self.respond(&self.invite, 487);
                        self.out.push_back(Out::Response { key: k, response: resp });
                    }
                }
                self.events.push_back(SessionEvent::Bye { request: Box::new(req) });
                self.end(Cause::Bye);
            }
            Method::Prack => self.handle_prack(key, req),
            Method::Invite | Method::Update => self.handle_reoffer(now, key, req, rng),
            Method::Info => {
                let r = self.respond(&req, 200);
                self.out.push_back(Out::Response { key, response: r });
                match parse_dtmf_relay(&req) {
                    Some((tone, duration)) => self.events.push_back(SessionEvent::Dtmf {
                        request: Some(Box::new(req)),
                        tone,
                        duration,
                        outgoing: false,
                    }),
                    None => self.events.push_back(SessionEvent::Info { request: Box::new(req) }),
                }
            }
            Method::Refer => {
                if req.headers.iter().any(|h| matches!(h, Header::ReferTo(_))) {
                    let r = self.respond(&req, 202);
                    self.out.push_back(Out::Response { key: key.clone(), response: r });
                    self.refer_sub = true;
                    self.events.push_back(SessionEvent::Refer { request: Box::new(req) });
                    // RFC 3515 §2.4.4: the first NOTIFY reports 100 Trying.
                    self.notify_refer(100, rng);
                } else {
                    let mut r = self.respond(&req, 400);
                    r.reason = ByteString::from_static("Missing Refer-To");
                    self.out.push_back(Out::Response { key, response: r });
                }
            }
            Method::Notify => {
                let r = self.respond(&req, 200);
                self.out.push_back(Out::Response { key, response: r });
                let status = parse_sipfrag(&req.body).unwrap_or(0);
                let terminated = req
                    .headers
                    .iter()
                    .any(|h| matches!(h, Header::SubscriptionState(s) if s.value.eq_ignore_ascii_case("terminated")));
                self.events.push_back(SessionEvent::ReferProgress { status, terminated });
            }
            _ => {
                let mut r = self.respond(&req, 405);
                r.headers.push(Header::Allow(ALLOW));
                self.out.push_back(Out::Response { key, response: r });
            }
        }
    }

    fn handle_prack(&mut self, key: TxKey, req: Request) {
        let matches = req.headers.rack().is_some_and(|r| {
            self.prack_pending && r.rseq == self.rseq && Some(r.cseq) == self.invite.headers.cseq().map(|c| c.seq)
        });
        if !matches {
            // RFC 3262 §3: a PRACK that matches no reliable provisional → 481.
            let r = self.respond(&req, 481);
            self.out.push_back(Out::Response { key, response: r });
            return;
        }
        self.prack_pending = false;
        self.disarm(STimer::Rel1xx);
        self.disarm(STimer::NoPrack);
        let mut r = self.respond(&req, 200);
        if let Some(b) = sdp_of(Body::of_request(&req)) {
            match self.oa {
                Oa::LocalOffer => {
                    let _ = self.h_apply(&b);
                    self.oa = Oa::Idle;
                }
                Oa::Idle => {
                    if let Ok(a) = self.h_answer(&b, self.local_hold) {
                        set_body(&mut r.headers, &mut r.body, Some(&a));
                    }
                }
                Oa::RemoteOffer => {}
            }
        }
        self.out.push_back(Out::Response { key, response: r });
    }

    fn handle_reoffer(&mut self, now: Instant, key: TxKey, req: Request, rng: &mut dyn Rng) {
        let _ = rng;
        // RFC 3261 §14.2 / RFC 3311 §5.2: an offer while ours is pending → 491;
        // a re-INVITE while one of the peer's is in progress → 500 with Retry-After.
        if self.reneg.is_some() || self.oa == Oa::LocalOffer {
            let r = self.respond(&req, 491);
            self.out.push_back(Out::Response { key, response: r });
            return;
        }
        if self.reneg_server && req.method == Method::Invite {
            let mut r = self.respond(&req, 500);
            r.headers.push(Header::RetryAfter(DeltaParams::new(1)));
            self.out.push_back(Out::Response { key, response: r });
            return;
        }
        let mut r = self.respond(&req, 200);
        self.with_contact(&mut r.headers);
        match sdp_of(Body::of_request(&req)) {
            Some(offer) => match self.h_answer(&offer, self.local_hold) {
                Ok(a) => set_body(&mut r.headers, &mut r.body, Some(&a)),
                Err(code) => {
                    let r = self.respond(&req, code);
                    self.out.push_back(Out::Response { key, response: r });
                    return;
                }
            },
            None if req.method == Method::Invite => {
                // Re-INVITE without offer: we offer in the 2xx, answer in ACK.
                if let Ok(o) = self.h_offer(self.local_hold) {
                    set_body(&mut r.headers, &mut r.body, Some(&o));
                    self.oa = Oa::LocalOffer;
                }
            }
            None => {}
        }
        // A refresh from the peer restarts the session timer (RFC 4028 §10).
        if let Some(se) = req.headers.session_expires().cloned() {
            let refresher = se.refresher().map(str::to_owned).unwrap_or_else(|| "uas".to_owned());
            let mut p = Params::new();
            p.push(Param::new("refresher", refresher.as_str()));
            r.headers.push(Header::SessionExpires(DeltaParams { delta: se.delta, comment: None, params: p }));
            self.start_session_timer(now, se.delta, refresher == "uas");
            self.events.push_back(SessionEvent::Refreshed);
        } else if let Some(iv) = self.session_interval {
            self.start_session_timer(now, iv, self.we_refresh);
        }
        if req.method == Method::Invite {
            self.reneg_server = true;
            self.last_2xx = Some(r.clone());
            self.interval = self.config.timers.t1;
            self.arm(STimer::Retrans2xx, now + self.interval);
            self.arm(STimer::NoAck, now + self.config.timers.t1x64());
            // 2xx retransmissions go through the re-INVITE's own transaction.
            self.retrans_key = Some(key.clone());
        }
        self.out.push_back(Out::Response { key, response: r });
        self.events.push_back(SessionEvent::Reinvited { request: Box::new(req) });
    }

    // ----- user commands in a session ----------------------------------

    fn send_bye(&mut self, rng: &mut dyn Rng) {
        if let Some(bye) = self.in_dialog(Method::Bye, rng) {
            self.out.push_back(Out::Request { request: bye, purpose: Purpose::Bye });
        }
    }

    fn send_bye_reason(&mut self, rng: &mut dyn Rng, code: u16) {
        if let Some(mut bye) = self.in_dialog(Method::Bye, rng) {
            let mut p = Params::new();
            p.push(Param::new("cause", code.to_string().as_str()));
            bye.headers.push(Header::Reason(TokenParams { value: ByteString::from_static("SIP"), params: p }));
            self.out.push_back(Out::Request { request: bye, purpose: Purpose::Bye });
        }
    }

    /// Sends BYE in a confirmed session; `reason` becomes a `Reason` header
    /// (`SIP;cause=code;text="..."`).
    pub fn bye(&mut self, reason: Option<(u16, &str)>, rng: &mut dyn Rng) -> Result<(), SessionError> {
        self.bye_with(reason, &Extras::default(), rng)
    }

    /// [`InviteSession::bye`] with the user's extra headers and body.
    pub fn bye_with(
        &mut self,
        reason: Option<(u16, &str)>,
        extras: &Extras,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        if self.state != SessionState::Confirmed {
            return Err(self.invalid("bye"));
        }
        if reason.is_none() && extras.headers.is_empty() && extras.body.is_none() {
            // The usual BYE is printed from the dialog without being built.
            if let Some(out) = self.printed_in_dialog(Method::Bye, Purpose::Bye, rng) {
                self.out.push_back(out);
                self.bye_sent();
                return Ok(());
            }
        }
        let Some(mut bye) = self.in_dialog(Method::Bye, rng) else { return Err(self.invalid("bye")) };
        if let Some((code, text)) = reason {
            let mut p = Params::new();
            p.push(Param::new("cause", code.to_string().as_str()));
            let mut quoted = Vec::new();
            quoted.push(b'"');
            quoted.extend(text.bytes().filter(|b| *b != b'"' && *b != b'\\'));
            quoted.push(b'"');
            p.push(Param::new("text", String::from_utf8_lossy(&quoted).as_ref()));
            bye.headers.push(Header::Reason(TokenParams { value: ByteString::from_static("SIP"), params: p }));
        }
        extras.apply(&mut bye.headers, &mut bye.body);
        self.out.push_back(Out::Request { request: bye, purpose: Purpose::Bye });
        self.bye_sent();
        Ok(())
    }

    /// After our BYE: no more in-dialog activity of ours.
    fn bye_sent(&mut self) {
        self.state = SessionState::Terminating;
        self.dtmf_queue.clear();
        self.disarm(STimer::Dtmf);
        self.disarm(STimer::Refresh);
        self.disarm(STimer::Expire);
        self.disarm(STimer::Glare);
    }

    /// Ends a confirmed session for a media reason (an RTP timeout): BYE,
    /// then `Terminated` with `cause` at once, as when a session timer
    /// expires (RFC 4028 §10). A session that is not confirmed fails with
    /// `InvalidState` and is left to its own end.
    pub fn end_for_media(&mut self, cause: Cause, rng: &mut dyn Rng) -> Result<(), SessionError> {
        if self.state != SessionState::Confirmed {
            return Err(self.invalid("end_for_media"));
        }
        self.send_bye(rng);
        self.end(cause);
        Ok(())
    }

    /// Cancels an outbound session before its final response. The
    /// transaction layer holds the CANCEL until a provisional (a 100
    /// included) has arrived (RFC 3261 §9.1); a 2xx that crosses it is
    /// ACKed and hung up with BYE.
    pub fn cancel(&mut self) -> Result<(), SessionError> {
        if self.direction != Direction::Outbound || !matches!(self.state, SessionState::Calling | SessionState::Early) {
            return Err(self.invalid("cancel"));
        }
        if self.cancel_requested {
            return Ok(());
        }
        self.cancel_requested = true;
        // Always hand it to the layer: it knows whether a 100 came (the
        // session only sees the provisionals after it).
        if let Some(k) = self.invite_key.clone() {
            self.out.push_back(Out::Cancel { key: k });
        }
        Ok(())
    }

    /// SIP.js `terminate`: CANCEL (outbound, unanswered), 480 (inbound,
    /// unanswered), BYE once ACKed (inbound, 2xx sent), BYE (confirmed).
    pub fn terminate(&mut self, rng: &mut dyn Rng) -> Result<(), SessionError> {
        self.terminate_with(None, None, &Extras::default(), rng)
    }

    /// SIP.js `terminate(options)`. By state:
    /// - outbound, no final response yet: CANCEL (the CANCEL is built by
    ///   the transaction layer from the INVITE, RFC 3261 §9.1: `status`,
    ///   `reason` and `extras` are not used);
    /// - inbound, unanswered: a final response `status` (default 480, must
    ///   be 300-699) with `reason` as its phrase and `extras`;
    /// - inbound, 2xx sent and no ACK yet: the BYE below, once ACKed;
    /// - confirmed: BYE, with `Reason: SIP;cause=status;text="reason"`
    ///   when `status` is given, and `extras`.
    pub fn terminate_with(
        &mut self,
        status: Option<u16>,
        reason: Option<&str>,
        extras: &Extras,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        let bye_reason = status.map(|c| (c, reason.unwrap_or(sipact_message::default_reason(c))));
        match self.state {
            SessionState::Calling | SessionState::Early if self.direction == Direction::Outbound => self.cancel(),
            SessionState::Incoming => match status {
                Some(s) if !(300..700).contains(&s) => Err(SessionError::InvalidStatus(s)),
                _ => self.final_failure("terminate", status.unwrap_or(480), reason, extras),
            },
            SessionState::WaitAck => {
                // §15: the callee must wait for the ACK (or its timeout,
                // which sends the BYE itself) before BYE.
                let reason = bye_reason.map(|(c, t)| (c, t.to_owned()));
                self.bye_on_ack = Some(Box::new(ByeSpec { reason, extras: extras.clone() }));
                Ok(())
            }
            SessionState::Confirmed => self.bye_with(bye_reason, extras, rng),
            _ => Err(self.invalid("terminate")),
        }
    }

    /// Starts a re-INVITE (or UPDATE with `use_update`) with a new offer.
    /// `hold` marks the offer held; the hold state changes when it succeeds.
    pub fn renegotiate(
        &mut self,
        now: Instant,
        hold: bool,
        use_update: bool,
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        let op = if hold { "hold" } else { "unhold" };
        self.renegotiate_with(now, op, Some(hold), use_update, false, &[], rng)
    }

    /// Starts a re-INVITE (or UPDATE with `use_update`). `hold` `Some`
    /// changes the hold state (hold/unhold), `None` keeps it (SIP.js
    /// `reinvite`). With `without_sdp` (re-INVITE only) the request has no
    /// offer: the peer offers in its 2xx and our answer goes in the ACK.
    /// `extra` headers are added to the request (and to its retry after
    /// a 491). `op` names the API method in errors.
    #[allow(clippy::too_many_arguments)]
    pub fn renegotiate_with(
        &mut self,
        now: Instant,
        op: &'static str,
        hold: Option<bool>,
        use_update: bool,
        without_sdp: bool,
        extra: &[Header],
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        let _ = now;
        if self.state != SessionState::Confirmed || without_sdp && use_update {
            return Err(self.invalid(op));
        }
        if self.reneg.is_some() || self.oa != Oa::Idle || self.reneg_server {
            return Err(SessionError::Pending);
        }
        let purpose = if use_update { Purpose::Update } else { Purpose::Reinvite };
        let hold = hold.unwrap_or(self.local_hold);
        let r = Renegotiation { hold, purpose, refresh: false, without_sdp, extra: extra.to_vec() };
        self.send_reneg(r, rng)
    }

    fn send_reneg(&mut self, r: Renegotiation, rng: &mut dyn Rng) -> Result<(), SessionError> {
        let method = if r.purpose == Purpose::Update { Method::Update } else { Method::Invite };
        let offer = if r.without_sdp { None } else { Some(self.h_offer(r.hold).map_err(SessionError::Description)?) };
        let Some(mut req) = self.in_dialog(method, rng) else { return Err(self.invalid("reinvite")) };
        let contact = self.config.contact.clone();
        req.headers.push(Header::Contact(sipact_message::Contact::Addr(contact)));
        if let Some(iv) = self.session_interval {
            let mut p = Params::new();
            // RFC 4028 §7.4: `refresher` names a role in *this* transaction,
            // where we are the UAC, whichever side sent the initial INVITE.
            p.push(Param::new("refresher", if self.we_refresh { "uac" } else { "uas" }));
            req.headers.push(Header::SessionExpires(DeltaParams { delta: iv, comment: None, params: p }));
        }
        for h in &r.extra {
            req.headers.push(h.clone());
        }
        if let Some(offer) = &offer {
            set_body(&mut req.headers, &mut req.body, Some(offer));
            self.oa = Oa::LocalOffer;
        }
        self.reneg = Some(Box::new(r.clone()));
        self.out.push_back(Out::Request { request: req, purpose: r.purpose });
        Ok(())
    }

    fn reneg_response(&mut self, now: Instant, purpose: Purpose, resp: Response, rng: &mut dyn Rng) {
        let status = resp.status;
        if status < 200 {
            return;
        }
        let Some(r) = self.reneg.take() else {
            // A 2xx retransmission of a finished re-INVITE: ACK it again.
            if purpose == Purpose::Reinvite && (200..300).contains(&status) {
                let seq = resp.headers.cseq().map(|c| c.seq);
                self.resend_ack(seq, rng);
            }
            return;
        };
        // A re-INVITE without offer: the 2xx carries the peer's offer, our
        // answer goes in the ACK (RFC 3261 §14.1).
        let mut ack_body = None;
        let mut bad_offer = false;
        if r.without_sdp && (200..300).contains(&status) {
            match sdp_of(Body::of_response(&resp)) {
                Some(offer) => match self.h_answer(&offer, r.hold) {
                    Ok(a) => ack_body = Some(a),
                    Err(_) => bad_offer = true,
                },
                None => bad_offer = true,
            }
        }
        if purpose == Purpose::Reinvite {
            // ACK every final response to the re-INVITE: the layer ACKs non-2xx;
            // we ACK the 2xx.
            if (200..300).contains(&status) {
                let seq = resp.headers.cseq().map(|c| c.seq);
                let via = self.via(rng);
                if let Some(d) = self.dialog.as_mut() {
                    let mut ack = d.request(Method::Ack, via, seq);
                    set_body(&mut ack.headers, &mut ack.body, ack_body.as_ref());
                    self.last_ack_seq = seq;
                    self.reneg_ack = seq.zip(ack_body).map(Box::new);
                    self.out.push_back(Out::Ack { request: ack });
                }
            }
        }
        if bad_offer {
            // No usable offer in the 2xx: the ACK went out without an
            // answer; the session cannot go on (§14.1 leaves only BYE).
            if let Some(d) = self.dialog.as_mut() {
                d.on_response(&Method::Invite, &resp);
            }
            self.oa = Oa::Idle;
            self.send_bye_reason(rng, 488);
            self.end(Cause::BadMediaDescription);
            return;
        }
        if (200..300).contains(&status) {
            if let Some(d) = self.dialog.as_mut() {
                d.on_response(&if purpose == Purpose::Update { Method::Update } else { Method::Invite }, &resp);
            }
            if !r.without_sdp
                && let Some(b) = sdp_of(Body::of_response(&resp))
            {
                let _ = self.h_apply(&b);
            }
            self.oa = Oa::Idle;
            if let Some(se) = resp.headers.session_expires() {
                // The refresher is relative to this transaction, in which we are the UAC.
                let we = match se.refresher() {
                    Some(x) => x.eq_ignore_ascii_case("uac"),
                    None => true,
                };
                self.start_session_timer(now, se.delta, we);
            } else if let Some(iv) = self.session_interval {
                self.start_session_timer(now, iv, self.we_refresh);
            }
            if r.refresh {
                self.events.push_back(SessionEvent::Refreshed);
            } else if r.hold != self.local_hold {
                self.local_hold = r.hold;
                self.events.push_back(SessionEvent::HoldChanged { local_hold: r.hold });
            }
            return;
        }
        self.oa = Oa::Idle;
        match status {
            491 => {
                // RFC 3261 §14.1: the Call-ID owner waits 2.1-4 s, the other 0-2 s.
                let ms = if self.direction == Direction::Outbound { 2100 + rng.below(1901) } else { rng.below(2001) };
                self.pending_retry = Some(r);
                self.arm(STimer::Glare, now + Duration::from_millis(ms));
            }
            481 | 408 => {
                // §12.2.1.2: the dialog is gone.
                self.send_bye(rng);
                self.end(Cause::DialogError);
            }
            _ => {
                self.events.push_back(SessionEvent::RenegotiationFailed { status });
            }
        }
    }

    /// Queues DTMF tones sent by INFO (`application/dtmf-relay`), one INFO
    /// per tone, `gap` ms apart; `,` pauses 2 s.
    pub fn dtmf(&mut self, now: Instant, tones: &str, duration: u32, gap: u32) -> Result<(), SessionError> {
        self.dtmf_with(now, tones, duration, gap, &[])
    }

    /// Whether DTMF `tones` may be sent now, by INFO or in the media: the
    /// session is confirmed, the tones are 0-9, A-D, `*`, `#` or `,`, the
    /// duration is 40-6000 ms and the gap at least 50 ms.
    pub fn check_dtmf(&self, tones: &str, duration: u32, gap: u32) -> Result<(), SessionError> {
        if self.state != SessionState::Confirmed {
            return Err(self.invalid("dtmf"));
        }
        if tones.is_empty() {
            return Err(SessionError::InvalidDtmf("no tones".into()));
        }
        if !(40..=6000).contains(&duration) || gap < 50 {
            return Err(SessionError::InvalidDtmf(format!("duration {duration} ms, gap {gap} ms")));
        }
        for c in tones.chars() {
            let c = c.to_ascii_uppercase();
            if !(c.is_ascii_digit() || matches!(c, 'A'..='D' | '*' | '#' | ',')) {
                return Err(SessionError::InvalidDtmf(format!("tone {c:?}")));
            }
        }
        Ok(())
    }

    /// [`InviteSession::dtmf`] with extra headers on every INFO.
    pub fn dtmf_with(
        &mut self,
        now: Instant,
        tones: &str,
        duration: u32,
        gap: u32,
        extra: &[Header],
    ) -> Result<(), SessionError> {
        self.check_dtmf(tones, duration, gap)?;
        let idle = self.dtmf_queue.is_empty();
        let extra = Arc::new(extra.to_vec());
        for c in tones.chars() {
            self.dtmf_queue.push_back(Tone { tone: c.to_ascii_uppercase(), duration, gap, extra: extra.clone() });
        }
        if idle {
            self.arm(STimer::Dtmf, now);
        }
        Ok(())
    }

    fn next_dtmf(&mut self, now: Instant, rng: &mut dyn Rng) {
        let Some(Tone { tone, duration, gap, extra }) = self.dtmf_queue.pop_front() else { return };
        if tone == ',' {
            self.arm(STimer::Dtmf, now + Duration::from_secs(2));
            return;
        }
        if let Some(mut info) = self.in_dialog(Method::Info, rng) {
            for h in extra.iter() {
                info.headers.push(h.clone());
            }
            info.headers.push(Header::ContentType(MediaType::new("application", "dtmf-relay")));
            info.body = Bytes::from(format!("Signal={tone}\r\nDuration={duration}\r\n"));
            self.events.push_back(SessionEvent::Dtmf {
                request: Some(Box::new(info.clone())),
                tone,
                duration,
                outgoing: true,
            });
            self.out.push_back(Out::Request { request: info, purpose: Purpose::Info });
        }
        if !self.dtmf_queue.is_empty() {
            self.arm(STimer::Dtmf, now + Duration::from_millis(u64::from(duration + gap)));
        }
    }

    /// Sends an INFO with any body.
    pub fn info(&mut self, body: Body, rng: &mut dyn Rng) -> Result<(), SessionError> {
        if self.state != SessionState::Confirmed {
            return Err(self.invalid("info"));
        }
        let Some(mut info) = self.in_dialog(Method::Info, rng) else { return Err(self.invalid("info")) };
        set_body(&mut info.headers, &mut info.body, Some(&body));
        self.out.push_back(Out::Request { request: info, purpose: Purpose::Info });
        Ok(())
    }

    /// Sends REFER: blind (`replaces` None) or attended, with the dialog to
    /// replace put in the Refer-To URI as a `Replaces` header (RFC 3891 §5).
    pub fn refer(&mut self, target: Uri, replaces: Option<&DialogId>, rng: &mut dyn Rng) -> Result<(), SessionError> {
        self.refer_with(target, replaces, &[], rng)
    }

    /// [`InviteSession::refer`] with extra headers on the REFER.
    pub fn refer_with(
        &mut self,
        target: Uri,
        replaces: Option<&DialogId>,
        extra: &[Header],
        rng: &mut dyn Rng,
    ) -> Result<(), SessionError> {
        if self.state != SessionState::Confirmed {
            return Err(self.invalid("refer"));
        }
        let mut target = target;
        if let (Some(r), Uri::Sip(u)) = (replaces, &mut target) {
            let v = format!(
                "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
                escape_hvalue(&r.call_id),
                escape_hvalue(&r.remote_tag),
                escape_hvalue(&r.local_tag)
            );
            u.headers_mut().push(Param::new("Replaces", v.as_str()));
        }
        let local = self.dialog.as_ref().map(|d| d.local.clone());
        let Some(mut refer) = self.in_dialog(Method::Refer, rng) else { return Err(self.invalid("refer")) };
        refer.headers.push(Header::ReferTo(NameAddr::new(target)));
        if let Some(l) = local {
            refer.headers.push(Header::ReferredBy(l));
        }
        let contact = self.config.contact.clone();
        refer.headers.push(Header::Contact(sipact_message::Contact::Addr(contact)));
        for h in extra {
            refer.headers.push(h.clone());
        }
        self.out.push_back(Out::Request { request: refer, purpose: Purpose::Refer });
        Ok(())
    }

    /// Reports the progress of the transfer we were asked to make, as a
    /// NOTIFY with a `message/sipfrag` status line (RFC 3515 §2.4.5); a final
    /// status (≥ 200) ends the implicit subscription.
    pub fn notify_refer(&mut self, status: u16, rng: &mut dyn Rng) {
        if !self.refer_sub || self.state != SessionState::Confirmed && self.state != SessionState::Terminating {
            return;
        }
        let Some(mut n) = self.in_dialog(Method::Notify, rng) else { return };
        n.headers.push(Header::Event(TokenParams::new("refer")));
        let state = if status >= 200 {
            let mut t = TokenParams::new("terminated");
            t.params.push(Param::new("reason", "noresource"));
            t
        } else {
            let mut t = TokenParams::new("active");
            t.params.push(Param::new("expires", "60"));
            t
        };
        n.headers.push(Header::SubscriptionState(state));
        let contact = self.config.contact.clone();
        n.headers.push(Header::Contact(sipact_message::Contact::Addr(contact)));
        n.headers.push(Header::ContentType(MediaType::new("message", "sipfrag")));
        n.body = Bytes::from(format!("SIP/2.0 {status} {}\r\n", sipact_message::default_reason(status)));
        if status >= 200 {
            self.refer_sub = false;
        }
        self.out.push_back(Out::Request { request: n, purpose: Purpose::Notify });
    }

    // ----- time and transport ------------------------------------------

    /// Fires due session timers.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut dyn Rng) {
        let due: Vec<STimer> = self.timers.iter().filter(|(_, at)| *at <= now).map(|(t, _)| *t).collect();
        for t in due {
            self.disarm(t);
            match t {
                STimer::Rel1xx => {
                    if let (Some(r), Some(k)) = (self.last_rel1xx.clone(), self.invite_key.clone())
                        && self.prack_pending
                    {
                        self.out.push_back(Out::Retransmit { key: k, response: r });
                        self.interval *= 2;
                        self.arm(STimer::Rel1xx, now + self.interval);
                    }
                }
                STimer::NoPrack => {
                    // RFC 3262 §3: no PRACK in 64*T1 → reject the INVITE with 5xx.
                    if self.state == SessionState::Incoming {
                        if let Some(k) = self.invite_key.clone() {
                            let resp = self.respond(&self.invite, 504);
                            self.out.push_back(Out::Response { key: k, response: resp });
                        }
                        self.events.push_back(SessionEvent::Failed { response: None, cause: Cause::NoPrack });
                        self.end(Cause::NoPrack);
                    }
                }
                STimer::Retrans2xx => {
                    if let (Some(r), Some(k)) = (self.last_2xx.clone(), self.retrans_key.clone()) {
                        self.out.push_back(Out::Retransmit { key: k, response: r });
                        self.interval = (self.interval * 2).min(self.config.timers.t2);
                        self.arm(STimer::Retrans2xx, now + self.interval);
                    }
                }
                STimer::NoAck => {
                    // §13.3.1.4: no ACK in 64*T1: confirm, then BYE.
                    self.disarm(STimer::Retrans2xx);
                    if self.state == SessionState::WaitAck {
                        self.state = SessionState::Confirmed;
                        self.send_bye(rng);
                        self.end(Cause::NoAck);
                    } else {
                        self.reneg_server = false;
                    }
                }
                STimer::Glare => {
                    if let Some(r) = self.pending_retry.take() {
                        if self.state == SessionState::Confirmed && self.reneg.is_none() && self.oa == Oa::Idle {
                            if let Err(SessionError::Description(code)) = self.send_reneg(*r, rng) {
                                self.events.push_back(SessionEvent::RenegotiationFailed { status: code });
                            }
                        } else {
                            self.pending_retry = Some(r);
                            self.arm(STimer::Glare, now + Duration::from_millis(500));
                        }
                    }
                }
                STimer::Refresh => {
                    if self.state == SessionState::Confirmed && self.reneg.is_none() && self.oa == Oa::Idle {
                        let purpose = if self.config.refresh_with_update { Purpose::Update } else { Purpose::Reinvite };
                        let r = Renegotiation::plain(self.local_hold, purpose, true);
                        let _ = self.send_reneg(r, rng);
                    } else if self.state == SessionState::Confirmed {
                        self.arm(STimer::Refresh, now + Duration::from_secs(1));
                    }
                }
                STimer::Expire => {
                    // RFC 4028 §10: no refresh came: BYE.
                    if self.state == SessionState::Confirmed {
                        self.send_bye(rng);
                        self.end(Cause::Expires);
                    }
                }
                STimer::Dtmf => {
                    if self.state == SessionState::Confirmed {
                        self.next_dtmf(now, rng);
                    }
                }
            }
        }
    }

    /// The INVITE (or another client request) timed out or its transport
    /// failed.
    pub fn handle_failure(&mut self, purpose: Purpose, timeout: bool, rng: &mut dyn Rng) {
        let cause = if timeout { Cause::RequestTimeout } else { Cause::ConnectionError };
        match purpose {
            Purpose::Invite => {
                if matches!(self.state, SessionState::Calling | SessionState::Early) {
                    self.fail(None, cause);
                }
            }
            Purpose::Bye => self.end(Cause::Bye),
            Purpose::Reinvite | Purpose::Update => {
                self.reneg = None;
                self.oa = Oa::Idle;
                // §12.2.1.2: a timeout to an in-dialog request ends the dialog.
                if timeout {
                    self.send_bye(rng);
                    self.end(Cause::DialogError);
                } else {
                    self.events.push_back(SessionEvent::RenegotiationFailed { status: 503 });
                }
            }
            _ => {}
        }
    }

    /// Ends the session at once without signalling (it was replaced, or the
    /// UA is going away and has already sent what it had to).
    pub fn force_end(&mut self, cause: Cause) {
        self.end(cause);
    }
}

fn escape_hvalue(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Signal=`/`Duration=` of an `application/dtmf-relay` INFO.
pub fn parse_dtmf_relay(req: &Request) -> Option<(char, u32)> {
    let ct = req.headers.content_type()?;
    if !ct.is("application", "dtmf-relay") {
        return None;
    }
    let text = std::str::from_utf8(&req.body).ok()?;
    let mut tone = None;
    let mut duration = 250;
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "signal" => tone = v.trim().chars().next().map(|c| c.to_ascii_uppercase()),
            "duration" => duration = v.trim().parse().unwrap_or(250),
            _ => {}
        }
    }
    tone.map(|t| (t, duration))
}

/// The status code of a `message/sipfrag` status line.
pub fn parse_sipfrag(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts.next()?.parse().ok()
}
