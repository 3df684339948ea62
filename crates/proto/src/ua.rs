//! A whole user agent core, sans-IO: the transaction layer, every INVITE
//! session and its dialog, registration, OPTIONS and MESSAGE, and digest
//! authentication, behind one input/output surface. The test harness and
//! the benchmarks drive it directly; the actors split its parts.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sipact_message::{ByteString, MethodList, TokenList};
use sipact_message::{Header, Host, Method, NameAddr, ParseError, Request, Response, SipMessage, SipUri, Uri, Via};

use crate::auth::{Credentials, DigestClient};
use crate::dialog::DialogId;
use crate::rand::Rng;
use crate::register::{RegEvent, RegState, Registration};
use crate::session::{
    Body, Cause, DescriptionHooks, Direction, Extras, InviteSession, Out, Purpose, Rel100, SessionConfig, SessionError,
    SessionEvent, SessionState,
};
use crate::transaction::{
    TransactionError, TransactionLayer, Transmit, TxCommand, TxConfig, TxEvent, TxKey, client_key, local_via,
};
use crate::transport::{Peer, TransportKind};
use crate::util::response_for;

/// Settings of a [`UserAgentCore`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Transport we send on.
    pub transport: TransportKind,
    /// Our address, for Via and Contact.
    pub local: SocketAddr,
    /// User part of our Contact and default From.
    pub user: String,
    /// Display name.
    pub display: Option<String>,
    /// Domain of our address of record (default: the local IP).
    pub domain: Option<String>,
    /// Transaction layer settings.
    pub tx: TxConfig,
    /// RFC 3262 policy.
    pub rel100: Rel100,
    /// Session-Expires to ask for (RFC 4028); `None` turns session timers off.
    pub session_expires: Option<u32>,
    /// Smallest session interval accepted.
    pub min_se: u32,
    /// User-Agent / Server header.
    pub user_agent: Option<String>,
    /// Credentials for digest challenges.
    pub credentials: Vec<Credentials>,
    /// Send every out-of-dialog request here instead of resolving the URI.
    pub outbound_proxy: Option<Peer>,
    /// Challenge incoming INVITE, REGISTER and MESSAGE requests with digest
    /// authentication in this realm (a UAS or registrar that checks callers).
    pub auth_realm: Option<String>,
    /// Users (name, password) accepted when `auth_realm` is set.
    pub auth_users: Vec<(String, String)>,
    /// Answer REGISTER as a simple registrar (bindings kept in memory).
    pub registrar: bool,
    /// As a registrar, the shortest binding accepted: shorter ones are
    /// answered 423 Interval Too Brief with this `Min-Expires` (§10.3 step 7).
    pub registrar_min_expires: Option<u32>,
    /// Refresh sessions (RFC 4028) with UPDATE instead of re-INVITE.
    pub refresh_with_update: bool,
    /// Modifiers applied to every session description of every session
    /// (inbound ones included), before per-call ones.
    pub modifiers: Vec<DescriptionModifier>,
    /// Addresses of the other transports this UA listens on: a session
    /// or request carried by one of them names it in Via and Contact.
    pub locals: Vec<(TransportKind, SocketAddr)>,
}

impl CoreConfig {
    /// Defaults for a UA at `local` over `transport`.
    pub fn new(transport: TransportKind, local: SocketAddr, user: &str) -> Self {
        CoreConfig {
            transport,
            local,
            user: user.to_owned(),
            display: None,
            domain: None,
            tx: TxConfig::default(),
            rel100: Rel100::Supported,
            session_expires: None,
            min_se: 90,
            user_agent: Some(concat!("sipact/", env!("CARGO_PKG_VERSION")).to_owned()),
            credentials: Vec::new(),
            outbound_proxy: None,
            auth_realm: None,
            auth_users: Vec::new(),
            registrar: false,
            registrar_min_expires: None,
            refresh_with_update: false,
            locals: Vec::new(),
            modifiers: Vec::new(),
        }
    }

    fn host(&self) -> Host {
        match self.local.ip() {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }

    /// Our Contact.
    pub fn contact(&self) -> NameAddr {
        self.contact_for(self.transport)
    }

    /// Our address on `transport` (the main one when we do not listen on it).
    pub fn local_for(&self, transport: TransportKind) -> (TransportKind, SocketAddr) {
        if transport == self.transport {
            return (self.transport, self.local);
        }
        self.locals.iter().find(|(t, _)| *t == transport).copied().unwrap_or((self.transport, self.local))
    }

    /// Our Contact for sessions carried over `transport`.
    pub fn contact_for(&self, transport: TransportKind) -> NameAddr {
        let (t, addr) = self.local_for(transport);
        let mut u = SipUri::new(host_of(addr));
        u.user = Some(ByteString::from(self.user.as_str()));
        u.port = Some(addr.port());
        if t != TransportKind::Udp {
            u.params.set("transport", Some(&t.via_token().to_ascii_lowercase()));
        }
        NameAddr::new(Uri::Sip(u))
    }

    /// A Via for a request sent over `transport`.
    pub fn via_for(&self, transport: TransportKind, branch: &str) -> Via {
        let (t, addr) = self.local_for(transport);
        local_via(t, host_of(addr), addr.port(), branch)
    }

    /// Our address of record.
    pub fn aor(&self) -> NameAddr {
        let host = match &self.domain {
            Some(d) => Host::Domain(ByteString::from(d.as_str())),
            None => self.host(),
        };
        let mut u = SipUri::new(host);
        u.user = Some(ByteString::from(self.user.as_str()));
        if self.domain.is_none() {
            u.port = Some(self.local.port());
        }
        let mut a = NameAddr::new(Uri::Sip(u));
        a.display = self.display.as_deref().map(ByteString::from);
        a
    }

    fn via(&self, branch: &str) -> Via {
        local_via(self.transport, self.host(), self.local.port(), branch)
    }
}

fn host_of(addr: SocketAddr) -> Host {
    match addr.ip() {
        IpAddr::V4(a) => Host::Ipv4(a),
        IpAddr::V6(a) => Host::Ipv6(a),
    }
}

/// A SIP.js-style description modifier: applied, in order, to every
/// session description the session sends (after the description handler
/// made it) and receives (before the handler sees it).
#[derive(Clone)]
pub struct DescriptionModifier(pub Arc<dyn Fn(&mut Body) + Send + Sync>);

impl DescriptionModifier {
    /// A modifier from a function.
    pub fn new(f: impl Fn(&mut Body) + Send + Sync + 'static) -> Self {
        DescriptionModifier(Arc::new(f))
    }
}

impl std::fmt::Debug for DescriptionModifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DescriptionModifier")
    }
}

/// Modifiers given with the latest call of a session (hold, reinvite,
/// accept...): they apply, after the session's own, from then on.
pub(crate) type CallModifiers = Arc<CallMods>;

/// The list behind [`CallModifiers`], with a flag saying whether it holds
/// any: most calls never set one, and every description exchange looks,
/// so the look is one load instead of locking the mutex.
#[derive(Default)]
pub(crate) struct CallMods {
    any: std::sync::atomic::AtomicBool,
    list: std::sync::Mutex<Vec<DescriptionModifier>>,
}

impl CallMods {
    /// Replaces the list.
    fn set(&self, modifiers: Vec<DescriptionModifier>) {
        if let Ok(mut l) = self.list.lock() {
            self.any.store(!modifiers.is_empty(), std::sync::atomic::Ordering::Release);
            *l = modifiers;
        }
    }

    /// A copy of the list (empty without locking when there is none).
    fn get(&self) -> Vec<DescriptionModifier> {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return Vec::new();
        }
        self.list.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Description hooks wrapped with modifiers.
struct ModifiedHooks {
    inner: Box<dyn DescriptionHooks>,
    modifiers: Vec<DescriptionModifier>,
    call: CallModifiers,
}

impl ModifiedHooks {
    fn call_mods(&self) -> Vec<DescriptionModifier> {
        self.call.get()
    }

    fn apply(&self, b: &Body) -> Option<Body> {
        let call = self.call_mods();
        if self.modifiers.is_empty() && call.is_empty() {
            return None;
        }
        let mut b = b.clone();
        for m in self.modifiers.iter().chain(call.iter()) {
            (m.0)(&mut b);
        }
        Some(b)
    }
}

impl DescriptionHooks for ModifiedHooks {
    fn offer(&mut self, hold: bool) -> Result<Body, u16> {
        self.inner.offer(hold).map(|b| self.apply(&b).unwrap_or(b))
    }
    fn answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16> {
        let modified = self.apply(offer);
        let b = self.inner.answer(modified.as_ref().unwrap_or(offer), hold)?;
        Ok(self.apply(&b).unwrap_or(b))
    }
    fn apply_answer(&mut self, answer: &Body) -> Result<(), u16> {
        let modified = self.apply(answer);
        self.inner.apply_answer(modified.as_ref().unwrap_or(answer))
    }
}

fn with_modifiers(
    inner: Box<dyn DescriptionHooks>,
    modifiers: Vec<DescriptionModifier>,
    call: CallModifiers,
) -> Box<dyn DescriptionHooks> {
    Box::new(ModifiedHooks { inner, modifiers, call })
}

/// Options of an outgoing INVITE (SIP.js `inviteOptions`).
#[derive(Debug, Clone, Default)]
pub struct InviteOptions {
    /// SIP.js `modifiers`: applied to every description of this session,
    /// after the UA-wide ones of [`CoreConfig::modifiers`].
    pub modifiers: Vec<DescriptionModifier>,
    /// SIP.js `sessionDescriptionHandlerOptions`, handed to the
    /// description-handler factory in [`HooksContext::options`].
    pub description_options: Vec<(String, String)>,
    /// Extra headers, added as they are.
    pub extra_headers: Vec<Header>,
    /// Hide our identity (RFC 3323/3325): anonymous From plus `Privacy: id`.
    pub anonymous: bool,
    /// RFC 3262 policy for this call (default: the UA's).
    pub rel100: Option<Rel100>,
    /// Delayed offer: no SDP in the INVITE.
    pub without_sdp: bool,
}

/// Errors of the UA core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// The target is not a usable URI.
    #[error("invalid target {0:?}")]
    InvalidTarget(String),
    /// No address to send to (only IP hosts resolve without an outbound proxy).
    #[error("cannot resolve {0}")]
    Unresolvable(String),
    /// No such session.
    #[error("no session {0}")]
    NoSession(u64),
    /// A session command failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The transaction layer refused the request.
    #[error("transaction: {0}")]
    Transaction(String),
}

/// What the UA core tells its user. Requests are boxed, as in
/// [`SessionEvent`], to keep the event small.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum UaEvent {
    /// A new inbound session.
    Incoming {
        /// Its id.
        session: u64,
        /// The INVITE.
        request: Box<Request>,
        /// The session it replaces (RFC 3891), if any.
        replaces: Option<u64>,
    },
    /// Something happened in a session.
    Session {
        /// The session.
        session: u64,
        /// The event.
        event: SessionEvent,
    },
    /// A session sent or received a session description: the last one
    /// each way (`None` where that side did not change). Queued before the
    /// session events that follow the exchange (an `Accepted` included).
    Descriptions {
        /// The session.
        session: u64,
        /// The last description we sent (boxed, as the session holds it:
        /// the event stays small).
        local: Option<Box<Body>>,
        /// The last description we received.
        remote: Option<Box<Body>>,
    },
    /// Registration news.
    Registration(RegEvent),
    /// The final response to an OPTIONS or MESSAGE we sent.
    RequestDone {
        /// The id returned when it was sent.
        id: u64,
        /// Status (408 for a timeout, 503 for a transport error).
        status: u16,
        /// The response, if one arrived.
        response: Option<Response>,
    },
    /// A MESSAGE arrived (answered 200).
    Message {
        /// The request.
        request: Box<Request>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Owner {
    Session(u64, Purpose),
    Register,
    Plain(u64),
    /// BYE of a forked dialog nobody uses.
    Nobody,
}

/// Factory of description hooks, one per session.
pub type HooksFactory = Box<dyn FnMut(&HooksContext) -> Box<dyn DescriptionHooks> + Send>;

/// What a [`HooksFactory`] knows about the session it makes hooks for: its
/// id (the one later events and commands carry) and who started it. A
/// session whose creation fails after the factory ran (an inbound INVITE
/// without Contact) never appears under that id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksContext {
    /// The session id.
    pub session: u64,
    /// True for a session the peer started.
    pub inbound: bool,
    /// SIP.js `sessionDescriptionHandlerOptions` of an outgoing INVITE
    /// (name/value pairs the handler factory interprets; empty for
    /// inbound sessions, whose handler exists before anyone answers).
    pub options: Vec<(String, String)>,
    /// The INVITE's body of an inbound session (its offer, when it carried
    /// one), so a factory can pick the handler that speaks it.
    pub offer: Option<crate::session::Body>,
}

/// Where the core's transaction commands go: its own layer, run at once
/// (embedded), or an outbox for a layer held elsewhere (external, drained
/// by [`UserAgentCore::poll_tx_command`]). Every call the core makes on
/// the transaction layer goes through here, so both modes share one path.
enum TxPort {
    Embedded(Box<TransactionLayer>),
    External(VecDeque<TxCommand>),
}

impl TxPort {
    /// Starts a client transaction; its key is [`client_key`] of the request.
    fn send_request(&mut self, now: Instant, request: Request, peer: Peer) -> Result<TxKey, TransactionError> {
        match self {
            TxPort::Embedded(tl) => tl.send_request(now, request, peer),
            TxPort::External(out) => {
                let key = client_key(&request)?;
                out.push_back(TxCommand::SendRequest { request, peer });
                Ok(key)
            }
        }
    }

    fn send_response(&mut self, now: Instant, key: &TxKey, response: Response) -> Result<(), TransactionError> {
        match self {
            TxPort::Embedded(tl) => tl.send_response(now, key, response),
            TxPort::External(out) => {
                out.push_back(TxCommand::SendResponse { key: key.clone(), response });
                Ok(())
            }
        }
    }

    /// Cancels a client INVITE. The embedded layer says whether the CANCEL
    /// left now (its key); an external one decides later, so no key is
    /// given: a CANCEL's transaction has no owner either way.
    fn cancel(&mut self, now: Instant, invite: &TxKey) -> Result<Option<TxKey>, TransactionError> {
        match self {
            TxPort::Embedded(tl) => tl.cancel(now, invite),
            TxPort::External(out) => {
                out.push_back(TxCommand::Cancel { invite: invite.clone() });
                Ok(None)
            }
        }
    }

    fn send_stateless(&mut self, peer: Peer, message: SipMessage) {
        match self {
            TxPort::Embedded(tl) => tl.send_stateless(peer, &message),
            TxPort::External(out) => out.push_back(TxCommand::SendStateless { peer, message }),
        }
    }

    fn send_request_bytes(
        &mut self,
        now: Instant,
        key: TxKey,
        data: Bytes,
        peer: Peer,
    ) -> Result<TxKey, TransactionError> {
        match self {
            TxPort::Embedded(tl) => tl.send_request_bytes(now, key, data, peer),
            TxPort::External(out) => {
                out.push_back(TxCommand::SendRequestBytes { key: key.clone(), data, peer });
                Ok(key)
            }
        }
    }

    fn send_response_bytes(
        &mut self,
        now: Instant,
        key: &TxKey,
        status: u16,
        data: Bytes,
    ) -> Result<(), TransactionError> {
        match self {
            TxPort::Embedded(tl) => tl.send_response_bytes(now, key, status, data),
            TxPort::External(out) => {
                out.push_back(TxCommand::SendResponseBytes { key: key.clone(), status, data });
                Ok(())
            }
        }
    }

    fn send_bytes(&mut self, peer: Peer, data: Bytes) {
        match self {
            TxPort::Embedded(tl) => tl.send_bytes(peer, data),
            TxPort::External(out) => out.push_back(TxCommand::SendBytes { peer, data }),
        }
    }

    fn flow_closed(&mut self, flow: crate::transport::FlowId) {
        match self {
            TxPort::Embedded(tl) => tl.handle_flow_closed(flow),
            TxPort::External(out) => out.push_back(TxCommand::FlowClosed { flow }),
        }
    }

    fn flow_assigned(&mut self, transport: TransportKind, addr: SocketAddr, flow: crate::transport::FlowId) {
        match self {
            TxPort::Embedded(tl) => tl.handle_flow_assigned(transport, addr, flow),
            TxPort::External(out) => out.push_back(TxCommand::FlowAssigned { transport, addr, flow }),
        }
    }

    fn layer(&self) -> Option<&TransactionLayer> {
        match self {
            TxPort::Embedded(tl) => Some(tl),
            TxPort::External(_) => None,
        }
    }

    fn layer_mut(&mut self) -> Option<&mut TransactionLayer> {
        match self {
            TxPort::Embedded(tl) => Some(tl),
            TxPort::External(_) => None,
        }
    }
}

/// The live sessions (boxed: the map then holds pointers, not sessions,
/// and its spare capacity costs little), with an index of their timer
/// deadlines so that finding the next one does not visit every session.
///
/// Every mutable access marks the session as touched; before the index is
/// read, each touched session whose earliest deadline changed gets an
/// entry `(deadline, id)`. An entry is live while its session still has
/// that deadline as its earliest; others are dropped when they reach the
/// top. No path can change a session's timers without `get_mut` or
/// `insert`, so none can leave a deadline out of the index.
#[derive(Default)]
struct SessionTable {
    map: crate::Map<u64, Box<InviteSession>>,
    touched: Vec<u64>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl SessionTable {
    fn get(&self, id: &u64) -> Option<&InviteSession> {
        self.map.get(id).map(|s| &**s)
    }

    fn get_mut(&mut self, id: &u64) -> Option<&mut Box<InviteSession>> {
        // A driver that rarely asks for the next deadline must not make the
        // list grow with every message.
        if self.touched.len() > 2 * self.map.len() + 64 {
            self.refresh();
        }
        let s = self.map.get_mut(id)?;
        // Consecutive accesses to one session (a drain loop) mark it once.
        if self.touched.last() != Some(id) {
            self.touched.push(*id);
        }
        Some(s)
    }

    fn insert(&mut self, id: u64, s: Box<InviteSession>) {
        if self.touched.len() > 2 * self.map.len() + 64 {
            self.refresh();
        }
        self.touched.push(id);
        self.map.insert(id, s);
    }

    fn remove(&mut self, id: &u64) -> Option<Box<InviteSession>> {
        self.map.remove(id)
    }

    fn iter(&self) -> impl Iterator<Item = (&u64, &InviteSession)> {
        self.map.iter().map(|(id, s)| (id, &**s))
    }

    fn keys(&self) -> impl Iterator<Item = &u64> {
        self.map.keys()
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Enters the changed deadlines of the touched sessions.
    fn refresh(&mut self) {
        for id in self.touched.drain(..) {
            if let Some(s) = self.map.get_mut(&id) {
                let at = s.poll_timeout();
                if at != s.scheduled {
                    s.scheduled = at;
                    if let Some(at) = at {
                        self.heap.push(Reverse((at, id)));
                    }
                }
            }
        }
        // Stale entries deep in the heap leave only when their time comes:
        // when they outnumber the sessions, the heap is rebuilt.
        if self.heap.len() > 2 * self.map.len() + 256 {
            self.heap = self.map.iter().filter_map(|(id, s)| s.scheduled.map(|at| Reverse((at, *id)))).collect();
        }
    }

    /// Whether the entry `(at, id)` still stands for a deadline.
    fn live(&self, at: Instant, id: u64) -> bool {
        self.map.get(&id).is_some_and(|s| s.scheduled == Some(at))
    }

    /// The earliest deadline of any session.
    fn next_deadline(&mut self) -> Option<Instant> {
        self.refresh();
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if self.live(at, id) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// The sessions with a deadline at or before `now`, earliest first.
    fn due(&mut self, now: Instant) -> Vec<u64> {
        self.refresh();
        let mut due = Vec::new();
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.live(at, id) && !due.contains(&id) {
                // Taken out of the index: whatever the session has armed
                // after it is handled (the same deadline too, if it did not
                // clear it) goes back in at the next refresh.
                if let Some(s) = self.map.get_mut(&id) {
                    s.scheduled = None;
                }
                due.push(id);
            }
        }
        due
    }

    /// Gives back spare room after a burst.
    fn compact(&mut self) {
        const KEEP: usize = 256;
        if self.heap.capacity() > KEEP && self.heap.len() * 4 < self.heap.capacity() {
            self.heap.shrink_to((self.heap.len() * 2).max(KEEP));
        }
        if self.touched.capacity() > KEEP {
            self.touched.shrink_to(KEEP);
        }
    }
}

/// The user agent core.
pub struct UserAgentCore {
    config: CoreConfig,
    tl: TxPort,
    rng: Box<dyn Rng + Send>,
    hooks: HooksFactory,
    /// The live sessions, with an index of their deadlines.
    sessions: SessionTable,
    /// Session settings shared by every session, one per RFC 3262 policy
    /// (`Rel100::Unsupported`, `Supported`, `Required`).
    session_configs: Vec<((Rel100, TransportKind), Arc<SessionConfig>)>,
    by_dialog: DialogIndex,
    by_server_tx: crate::Map<TxKey, u64>,
    client: crate::Map<TxKey, Owner>,
    /// Client re-INVITE transactions started per session (those finished
    /// since are skipped when read), so that ending a session finds its
    /// pending re-INVITE without scanning every client transaction.
    reinvites: crate::Map<u64, Vec<TxKey>>,
    /// Out-of-dialog OPTIONS and MESSAGE requests, kept to retry them
    /// with credentials (a session's INVITE is kept by the session).
    plain_requests: crate::Map<TxKey, Request>,
    refer_links: crate::Map<u64, u64>,
    replacing: crate::Map<u64, u64>,
    registration: Option<Registration>,
    digest: DigestClient,
    auth_tries: crate::Map<u64, u32>,
    call_mods: crate::Map<u64, CallModifiers>,
    verifier: Option<crate::auth::DigestVerifier>,
    bindings: crate::Map<String, (NameAddr, u32)>,
    epoch: Option<Instant>,
    events: VecDeque<UaEvent>,
    next_id: u64,
}

impl std::fmt::Debug for UserAgentCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgentCore")
            .field("local", &self.config.local)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Sessions by dialog: Call-ID, then local tag. Looked up with the text
/// of a received message (no key to build, one string hashed); several
/// sessions share a Call-ID only when a UA calls itself.
#[derive(Debug, Default)]
struct DialogIndex(crate::Map<ByteString, Tagged>);

/// The sessions under one Call-ID: the first held in place (the usual
/// case: no vector to allocate), any others after it.
#[derive(Debug)]
struct Tagged {
    first: (ByteString, u64),
    more: Vec<(ByteString, u64)>,
}

impl Tagged {
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut (ByteString, u64)> {
        std::iter::once(&mut self.first).chain(self.more.iter_mut())
    }
}

impl DialogIndex {
    fn get(&self, call_id: &str, local_tag: &str) -> Option<u64> {
        let t = self.0.get(call_id)?;
        std::iter::once(&t.first).chain(t.more.iter()).find(|(t, _)| **t == *local_tag).map(|&(_, id)| id)
    }

    /// Indexes `id` (kept as it is when already there).
    fn insert(&mut self, call_id: &ByteString, local_tag: &str, id: u64) {
        if let Some(t) = self.0.get_mut(call_id.as_str()) {
            if let Some(e) = t.iter_mut().find(|(t, _)| **t == *local_tag) {
                e.1 = id;
            } else {
                t.more.push((ByteString::from(local_tag), id));
            }
            return;
        }
        self.0.insert(call_id.detached(), Tagged { first: (ByteString::from(local_tag), id), more: Vec::new() });
    }

    /// Removes the entry of `id` under this Call-ID and tag, if it is there.
    fn remove(&mut self, call_id: &str, local_tag: &str, id: u64) {
        let Some(t) = self.0.get_mut(call_id) else { return };
        let this = |(tag, i): &(ByteString, u64)| *i == id && **tag == *local_tag;
        t.more.retain(|e| !this(e));
        if this(&t.first) {
            match t.more.pop() {
                Some(last) => t.first = last,
                None => {
                    self.0.remove(call_id);
                }
            }
        }
    }
}

/// Whether a client transaction started for `purpose` is a session's re-INVITE.
fn request_is_reinvite(purpose: Purpose, key: &TxKey) -> bool {
    purpose == Purpose::Reinvite && key.method == Method::Invite
}

/// Where a URI points, for a UA without DNS: IP hosts only.
pub fn resolve(uri: &Uri, default: TransportKind) -> Option<Peer> {
    let Uri::Sip(u) = uri else { return None };
    let ip = match &u.host {
        Host::Ipv4(a) => IpAddr::V4(*a),
        Host::Ipv6(a) => IpAddr::V6(*a),
        Host::Domain(d) => d.parse().ok()?,
    };
    let transport = u.transport().and_then(TransportKind::from_token).unwrap_or(if u.secure {
        TransportKind::Tls
    } else {
        default
    });
    let port = u.port.unwrap_or(if transport == TransportKind::Tls { 5061 } else { 5060 });
    Some(Peer::new(transport, SocketAddr::new(ip, port)))
}

impl UserAgentCore {
    /// A core with `config`, randomness from `rng` and session descriptions
    /// from `hooks`, running its own transaction layer.
    pub fn new(config: CoreConfig, rng: Box<dyn Rng + Send>, hooks: HooksFactory) -> Self {
        let tl = TxPort::Embedded(Box::new(TransactionLayer::new(config.tx.clone())));
        Self::build(config, rng, hooks, tl)
    }

    /// A core whose transaction layer is held elsewhere (another actor):
    /// what it would ask of the layer comes out of
    /// [`poll_tx_command`](Self::poll_tx_command), to be run in order by
    /// [`TransactionLayer::handle_command`], and the layer's events come in
    /// through [`handle_tx_event`](Self::handle_tx_event). Received bytes,
    /// transmits and transaction timers are the layer's business then:
    /// [`handle_bytes`](Self::handle_bytes) and
    /// [`handle_message`](Self::handle_message) drop their input,
    /// [`poll_transmit`](Self::poll_transmit) gives nothing and
    /// [`poll_timeout`](Self::poll_timeout) covers session and
    /// registration timers only.
    pub fn new_external(config: CoreConfig, rng: Box<dyn Rng + Send>, hooks: HooksFactory) -> Self {
        Self::build(config, rng, hooks, TxPort::External(VecDeque::new()))
    }

    fn build(config: CoreConfig, rng: Box<dyn Rng + Send>, hooks: HooksFactory, tl: TxPort) -> Self {
        let digest = DigestClient::with_credentials(config.credentials.clone());
        let verifier = config.auth_realm.as_deref().map(crate::auth::DigestVerifier::new);
        let mut transports = vec![config.transport];
        transports.extend(config.locals.iter().map(|(t, _)| *t).filter(|t| *t != config.transport));
        let mut session_configs = Vec::new();
        for t in transports {
            for r in [Rel100::Unsupported, Rel100::Supported, Rel100::Required] {
                session_configs.push(((r, t), Arc::new(build_session_config(&config, r, t))));
            }
        }
        UserAgentCore {
            tl,
            config,
            rng,
            hooks,
            sessions: SessionTable::default(),
            session_configs,
            by_dialog: DialogIndex::default(),
            by_server_tx: crate::Map::default(),
            client: crate::Map::default(),
            reinvites: crate::Map::default(),
            plain_requests: crate::Map::default(),
            refer_links: crate::Map::default(),
            replacing: crate::Map::default(),
            registration: None,
            digest,
            auth_tries: crate::Map::default(),
            call_mods: crate::Map::default(),
            verifier,
            bindings: crate::Map::default(),
            epoch: None,
            events: VecDeque::new(),
            next_id: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Sets the modifiers of a session's next description exchanges (SIP.js
    /// `hold(options, modifiers)` and the like); they replace the previous
    /// call's and apply after the session's own.
    pub fn set_call_modifiers(&mut self, id: u64, modifiers: Vec<DescriptionModifier>) -> Result<(), UaError> {
        let m = self.call_mods.get(&id).ok_or(UaError::NoSession(id))?;
        m.set(modifiers);
        Ok(())
    }

    /// Takes the descriptions a session sent or received since they were
    /// last taken (see [`InviteSession::take_descriptions`]).
    pub fn take_descriptions(&mut self, id: u64) -> Option<(Option<Body>, Option<Body>)> {
        self.sessions.get_mut(&id).and_then(|s| s.take_descriptions())
    }

    /// A session.
    pub fn session(&self, id: u64) -> Option<&InviteSession> {
        self.sessions.get(&id)
    }

    /// Ids of live sessions.
    pub fn session_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.sessions.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The transaction layer (read-only); `None` for a core made with
    /// [`new_external`](Self::new_external).
    pub fn transactions(&self) -> Option<&TransactionLayer> {
        self.tl.layer()
    }

    /// Whether the transaction layer is held elsewhere (see
    /// [`new_external`](Self::new_external)).
    pub fn is_external(&self) -> bool {
        matches!(self.tl, TxPort::External(_))
    }

    /// The registration, if any.
    pub fn registration(&self) -> Option<&Registration> {
        self.registration.as_ref()
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn peer_for(&self, req: &Request) -> Result<Peer, UaError> {
        self.peer_for_uri(req.headers.routes().next().map(|r| &r.uri).unwrap_or(&req.uri))
    }

    /// Where a request whose first hop is `uri` goes (the outbound proxy,
    /// when there is one).
    fn peer_for_uri(&self, uri: &Uri) -> Result<Peer, UaError> {
        if let Some(p) = self.config.outbound_proxy {
            return Ok(p);
        }
        resolve(uri, self.config.transport).ok_or_else(|| UaError::Unresolvable(uri.to_string()))
    }

    fn session_config(&self, rel100: Rel100, transport: TransportKind) -> Arc<SessionConfig> {
        let find = |t: TransportKind| self.session_configs.iter().find(|((r, k), _)| *r == rel100 && *k == t);
        match find(transport).or_else(|| find(self.config.transport)) {
            Some((_, c)) => c.clone(),
            None => Arc::new(build_session_config(&self.config, rel100, transport)),
        }
    }

    /// A fresh Via for a request to `uri` (its transport, our address on it).
    fn via_to(&mut self, uri: &Uri) -> Via {
        let t = self.transport_to(uri);
        let branch = crate::transaction::new_branch(&mut *self.rng);
        self.config.via_for(t, &branch)
    }

    /// A fresh Via for a REGISTER to the current registrar.
    fn register_via(&mut self) -> Via {
        match self.registration.as_ref().map(|r| r.registrar.clone()) {
            Some(u) => self.via_to(&u),
            None => {
                let branch = crate::transaction::new_branch(&mut *self.rng);
                self.config.via(&branch)
            }
        }
    }

    /// The transport a request to `uri` leaves on.
    fn transport_to(&self, uri: &Uri) -> TransportKind {
        match self.config.outbound_proxy {
            Some(p) => p.transport,
            None => resolve(uri, self.config.transport).map(|p| p.transport).unwrap_or(self.config.transport),
        }
    }

    // ----- commands -----------------------------------------------------

    /// A new Call-ID: 16 random characters (82 bits) at `sipact`. The 23
    /// bytes fit a string held inline, so the Call-ID is never allocated,
    /// however many times a session, its dialog and the indexes copy it.
    fn new_call_id(&mut self) -> ByteString {
        let mut buf = *b"0123456789abcdef@sipact";
        self.rng.fill_token(&mut buf[..16]);
        crate::rand::token_text(&buf)
    }

    /// Starts an outbound session to `target` (a URI; `user@host` gets `sip:`).
    pub fn invite(&mut self, now: Instant, target: &str, opts: InviteOptions) -> Result<u64, UaError> {
        let text =
            if target.contains(':') && !target.contains('@') || target.starts_with("sip") || target.starts_with("tel:")
            {
                target.to_owned()
            } else {
                format!("sip:{target}")
            };
        let uri = Uri::parse(&text).map_err(|_| UaError::InvalidTarget(target.to_owned()))?;
        let id = self.id();
        let mut req = Request::new(Method::Invite, uri.clone());
        let tag = crate::rand::short_token(&mut *self.rng, 10);
        let mut from = if opts.anonymous {
            let mut a = NameAddr::new(
                Uri::parse("sip:anonymous@anonymous.invalid").map_err(|_| UaError::InvalidTarget(text.clone()))?,
            );
            a.display = Some(ByteString::from_static("Anonymous"));
            a
        } else {
            self.config.aor()
        };
        from.params.set("tag", Some(&tag));
        req.headers.push(Header::From(from));
        req.headers.push(Header::To(NameAddr::new(uri)));
        let call_id = self.new_call_id();
        req.headers.push(Header::CallId(call_id.clone()));
        if opts.anonymous {
            req.headers.push(Header::Privacy(vec![ByteString::from_static("id")]));
        }
        for h in opts.extra_headers {
            req.headers.push(h);
        }
        let transport = self.transport_to(&req.uri);
        let cfg = self.session_config(opts.rel100.unwrap_or(self.config.rel100), transport);
        let hooks = (self.hooks)(&HooksContext {
            session: id,
            inbound: false,
            options: opts.description_options.clone(),
            offer: None,
        });
        let mut mods = self.config.modifiers.clone();
        mods.extend(opts.modifiers.iter().cloned());
        let call = CallModifiers::default();
        self.call_mods.insert(id, call.clone());
        let hooks = with_modifiers(hooks, mods, call);
        let s = InviteSession::outbound(id, req, cfg, hooks, opts.without_sdp, &mut *self.rng)?;
        self.by_dialog.insert(&call_id, &tag, id);
        self.sessions.insert(id, Box::new(s));
        self.drain_session(now, id);
        Ok(id)
    }

    fn with_session<T>(
        &mut self,
        now: Instant,
        id: u64,
        f: impl FnOnce(&mut InviteSession, &mut dyn Rng) -> Result<T, SessionError>,
    ) -> Result<T, UaError> {
        let s = self.sessions.get_mut(&id).ok_or(UaError::NoSession(id))?;
        let r = f(s, &mut *self.rng);
        self.drain_session(now, id);
        Ok(r?)
    }

    /// Sends a provisional (see [`InviteSession::progress`]).
    pub fn progress(
        &mut self,
        now: Instant,
        id: u64,
        status: u16,
        early_media: bool,
        reliable: bool,
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.progress(now, status, early_media, reliable, rng))
    }

    /// Accepts an inbound session.
    pub fn accept(&mut self, now: Instant, id: u64) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.accept(now))
    }

    /// Accepts an inbound session with extra headers and/or a body of
    /// the user's (see [`InviteSession::accept_with`]).
    pub fn accept_with(&mut self, now: Instant, id: u64, extras: &Extras) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.accept_with(now, extras))
    }

    /// Rejects an inbound session.
    pub fn reject(&mut self, now: Instant, id: u64, status: u16) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.reject(status, None))
    }

    /// Rejects an inbound session with a reason phrase, extra headers and
    /// a body.
    pub fn reject_with(
        &mut self,
        now: Instant,
        id: u64,
        status: u16,
        reason: Option<&str>,
        extras: &Extras,
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.reject_with(status, reason, extras))
    }

    /// Sends any response to an inbound INVITE (see [`InviteSession::reply`]).
    pub fn reply(
        &mut self,
        now: Instant,
        id: u64,
        status: u16,
        reason: Option<&str>,
        extras: &Extras,
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.reply(now, status, reason, extras, rng))
    }

    /// Hangs up a confirmed session.
    pub fn bye(&mut self, now: Instant, id: u64) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.bye(None, rng))
    }

    /// Hangs up a confirmed session with a `Reason` header (cause and
    /// text), extra headers and a body.
    pub fn bye_with(
        &mut self,
        now: Instant,
        id: u64,
        reason: Option<(u16, &str)>,
        extras: &Extras,
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.bye_with(reason, extras, rng))
    }

    /// SIP.js `terminate(options)` (see [`InviteSession::terminate_with`]).
    pub fn terminate_with(
        &mut self,
        now: Instant,
        id: u64,
        status: Option<u16>,
        reason: Option<&str>,
        extras: &Extras,
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.terminate_with(status, reason, extras, rng))
    }

    /// A re-INVITE (or UPDATE) with a fresh offer, or a re-INVITE without
    /// offer (see [`InviteSession::renegotiate_with`]).
    #[allow(clippy::too_many_arguments)]
    pub fn renegotiate_with(
        &mut self,
        now: Instant,
        id: u64,
        op: &'static str,
        hold: Option<bool>,
        use_update: bool,
        without_sdp: bool,
        extra: &[Header],
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.renegotiate_with(now, op, hold, use_update, without_sdp, extra, rng))
    }

    /// Ends a confirmed session for a media reason, such as
    /// [`Cause::RtpTimeout`]: BYE, then
    /// `Terminated` with `cause` (see [`InviteSession::end_for_media`]).
    pub fn end_for_media(&mut self, now: Instant, id: u64, cause: Cause) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.end_for_media(cause, rng))
    }

    /// Cancels an outbound session.
    pub fn cancel(&mut self, now: Instant, id: u64) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.cancel())
    }

    /// SIP.js `terminate`.
    pub fn terminate(&mut self, now: Instant, id: u64) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.terminate(rng))
    }

    /// Puts the peer on hold (`true`) or takes it off (`false`), by
    /// re-INVITE or by UPDATE.
    pub fn hold(&mut self, now: Instant, id: u64, hold: bool, use_update: bool) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.renegotiate(now, hold, use_update, rng))
    }

    /// Sends DTMF tones by INFO.
    pub fn dtmf(&mut self, now: Instant, id: u64, tones: &str, duration: u32, gap: u32) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.dtmf(now, tones, duration, gap))
    }

    /// Sends DTMF tones by INFO with extra headers on each.
    pub fn dtmf_with(
        &mut self,
        now: Instant,
        id: u64,
        tones: &str,
        duration: u32,
        gap: u32,
        extra: &[Header],
    ) -> Result<(), UaError> {
        self.with_session(now, id, |s, _| s.dtmf_with(now, tones, duration, gap, extra))
    }

    /// Checks DTMF tones for session `id` without sending them (see
    /// [`InviteSession::check_dtmf`]), for tones sent in the media.
    pub fn check_dtmf(&self, id: u64, tones: &str, duration: u32, gap: u32) -> Result<(), UaError> {
        let s = self.sessions.get(&id).ok_or(UaError::NoSession(id))?;
        Ok(s.check_dtmf(tones, duration, gap)?)
    }

    /// Sends an INFO with `body`.
    pub fn info(&mut self, now: Instant, id: u64, body: Body) -> Result<(), UaError> {
        self.with_session(now, id, |s, rng| s.info(body, rng))
    }

    /// Transfers the peer of `id` to `target` (blind), or to the peer of
    /// session `replaces` (attended, RFC 3891).
    pub fn refer(&mut self, now: Instant, id: u64, target: &str, replaces: Option<u64>) -> Result<(), UaError> {
        self.refer_with(now, id, target, replaces, &[])
    }

    /// [`UserAgentCore::refer`] with extra headers on the REFER.
    pub fn refer_with(
        &mut self,
        now: Instant,
        id: u64,
        target: &str,
        replaces: Option<u64>,
        extra: &[Header],
    ) -> Result<(), UaError> {
        let uri = Uri::parse(target).map_err(|_| UaError::InvalidTarget(target.to_owned()))?;
        let rep: Option<DialogId> = match replaces {
            Some(r) => Some(
                self.sessions.get(&r).and_then(|s| s.dialog()).map(|d| d.id.clone()).ok_or(UaError::NoSession(r))?,
            ),
            None => None,
        };
        self.with_session(now, id, |s, rng| s.refer_with(uri, rep.as_ref(), extra, rng))
    }

    /// Accepts the transfer asked by the REFER received in session `id`:
    /// INVITEs the Refer-To target (with its Replaces header and a
    /// Referred-By) and reports progress to the transferor by NOTIFY.
    pub fn follow_refer(&mut self, now: Instant, id: u64, refer: &Request) -> Result<u64, UaError> {
        let target = refer
            .headers
            .iter()
            .find_map(|h| match h {
                Header::ReferTo(a) => Some(a.uri.clone()),
                _ => None,
            })
            .ok_or_else(|| UaError::InvalidTarget("no Refer-To".into()))?;
        let mut extra = Vec::new();
        let mut uri = target;
        if let Uri::Sip(u) = &mut uri {
            if let Some(rep) = u.headers().find("Replaces").and_then(|p| p.value.clone()) {
                let decoded = String::from_utf8_lossy(&percent(&rep)).into_owned();
                let v = format!("Replaces: {decoded}");
                if let Ok(SipMessage::Request(r)) = SipMessage::parse(Bytes::from(format!(
                    "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n{v}\r\n\r\n"
                ))) {
                    extra.extend(r.headers.iter().filter(|h| matches!(h, Header::Replaces(_))).cloned());
                }
            }
            u.set_headers(Default::default());
        }
        if let Some(by) = refer.headers.from() {
            let mut by = by.clone();
            by.params.remove("tag");
            extra.push(Header::ReferredBy(by));
        }
        let new = self.invite(now, &uri.to_string(), InviteOptions { extra_headers: extra, ..Default::default() })?;
        self.refer_links.insert(new, id);
        Ok(new)
    }

    /// Registers with `registrar` for `expires` seconds (refreshing until
    /// [`UserAgentCore::unregister`]).
    pub fn register(&mut self, now: Instant, registrar: &str, expires: u32) -> Result<(), UaError> {
        let uri = Uri::parse(registrar).map_err(|_| UaError::InvalidTarget(registrar.to_owned()))?;
        let call_id = self.new_call_id();
        let tag = crate::rand::short_token(&mut *self.rng, 10);
        let t = self.transport_to(&uri);
        let via = self.via_to(&uri);
        let mut reg = Registration::new(uri, self.config.aor(), self.config.contact_for(t), expires, &call_id, &tag);
        let req = reg.request(via, false);
        self.registration = Some(reg);
        self.send_client(now, req, Owner::Register)
    }

    /// Removes the binding.
    pub fn unregister(&mut self, now: Instant) -> Result<(), UaError> {
        let via = self.register_via();
        let Some(reg) = self.registration.as_mut() else { return Ok(()) };
        let req = reg.request(via, true);
        self.send_client(now, req, Owner::Register)
    }

    /// Sends an out-of-dialog OPTIONS (or MESSAGE, with a body). Returns an
    /// id reported back in [`UaEvent::RequestDone`].
    pub fn request(&mut self, now: Instant, method: Method, target: &str, body: Option<Body>) -> Result<u64, UaError> {
        let uri = Uri::parse(target).map_err(|_| UaError::InvalidTarget(target.to_owned()))?;
        let id = self.id();
        let mut req = Request::new(method.clone(), uri.clone());
        let via = self.via_to(&uri);
        req.headers.push(Header::Via(via));
        req.headers.push(Header::MaxForwards(70));
        let mut from = self.config.aor();
        from.params.set("tag", Some(&crate::rand::short_token(&mut *self.rng, 10)));
        req.headers.push(Header::From(from));
        req.headers.push(Header::To(NameAddr::new(uri)));
        req.headers.push(Header::CallId(self.new_call_id()));
        req.headers.push(Header::CSeq(sipact_message::CSeq { seq: 1, method }));
        if let Some(b) = body {
            req.headers.push(Header::ContentType(b.content_type));
            req.body = b.data;
        }
        self.send_client(now, req, Owner::Plain(id))?;
        Ok(id)
    }

    fn send_client(&mut self, now: Instant, mut req: Request, owner: Owner) -> Result<(), UaError> {
        let _ = self.digest.authorize(&mut req, &mut *self.rng);
        let peer = self.peer_for(&req)?;
        // Only OPTIONS and MESSAGE need their request again (to retry it
        // with credentials); a REGISTER is rebuilt by the registration.
        let copy = matches!(owner, Owner::Plain(_)).then(|| req.clone());
        let key = self.tl.send_request(now, req, peer).map_err(|e| UaError::Transaction(e.to_string()))?;
        if let Some(r) = copy {
            self.plain_requests.insert(key.clone(), r);
        }
        self.client.insert(key, owner);
        Ok(())
    }

    // ----- input ---------------------------------------------------------

    /// Bytes received from `peer` (dropped by a core whose transaction
    /// layer is external).
    pub fn handle_bytes(&mut self, now: Instant, peer: Peer, data: Bytes) -> Result<(), ParseError> {
        let Some(tl) = self.tl.layer_mut() else { return Ok(()) };
        let r = tl.handle_bytes(now, peer, data);
        self.drain(now);
        r
    }

    /// A parsed message received from `peer` (dropped by a core whose
    /// transaction layer is external).
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: SipMessage) {
        let Some(tl) = self.tl.layer_mut() else { return };
        tl.handle_message(now, peer, msg);
        self.drain(now);
    }

    /// An event of the transaction layer serving this core (see
    /// [`new_external`](Self::new_external)); the core handles it as it
    /// handles those of its own layer.
    pub fn handle_tx_event(&mut self, now: Instant, event: TxEvent) {
        self.on_tx_event(now, event);
        self.drain(now);
    }

    /// The next command for the external transaction layer, in the order
    /// they must run (always `None` for a core with its own layer).
    pub fn poll_tx_command(&mut self) -> Option<TxCommand> {
        match &mut self.tl {
            TxPort::External(out) => out.pop_front(),
            TxPort::Embedded(_) => None,
        }
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tl) = self.tl.layer_mut() {
            tl.handle_timeout(now);
        }
        for id in self.sessions.due(now) {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.handle_timeout(now, &mut *self.rng);
            }
            self.drain_session(now, id);
        }
        self.shrink();
        if self.registration.as_ref().and_then(Registration::refresh_at).is_some_and(|t| t <= now) {
            let via = self.register_via();
            if let Some(reg) = self.registration.as_mut() {
                let req = reg.request(via, false);
                let _ = self.send_client(now, req, Owner::Register);
            }
        }
        self.drain(now);
    }

    /// The transport opened connection `flow` for messages to
    /// `transport`/`addr` that named none: pending client transactions to
    /// that destination are pinned to it (see
    /// [`TransactionLayer::handle_flow_assigned`](crate::transaction::TransactionLayer::handle_flow_assigned)).
    pub fn handle_flow_assigned(
        &mut self,
        now: Instant,
        transport: TransportKind,
        addr: SocketAddr,
        flow: crate::transport::FlowId,
    ) {
        self.tl.flow_assigned(transport, addr, flow);
        self.drain(now);
    }

    /// A connection closed.
    pub fn handle_flow_closed(&mut self, now: Instant, flow: crate::transport::FlowId) {
        self.tl.flow_closed(flow);
        self.drain(now);
    }

    /// Next bytes to send (always `None` when the transaction layer is external).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tl.layer_mut().and_then(TransactionLayer::poll_transmit)
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// Earliest deadline (of sessions and registration only when the
    /// transaction layer is external).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut t = self.tl.layer_mut().and_then(TransactionLayer::poll_timeout);
        if let Some(s) = self.sessions.next_deadline() {
            t = Some(t.map_or(s, |a| a.min(s)));
        }
        if let Some(r) = self.registration.as_ref().and_then(Registration::refresh_at) {
            t = Some(t.map_or(r, |a| a.min(r)));
        }
        t
    }

    // ----- plumbing ------------------------------------------------------

    /// Gives back the spare capacity of the tables after a burst (a hash
    /// map keeps its largest size otherwise).
    fn shrink(&mut self) {
        fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut crate::Map<K, V>) {
            // Room for some tens of calls stays, so steady short bursts
            // do not rebuild the tables from nothing each time.
            const KEEP: usize = 256;
            if m.capacity() > KEEP && m.len() * 4 < m.capacity() {
                m.shrink_to((m.len() * 2).max(KEEP));
            }
        }
        shrink_map(&mut self.sessions.map);
        self.sessions.compact();
        shrink_map(&mut self.by_dialog.0);
        shrink_map(&mut self.by_server_tx);
        shrink_map(&mut self.client);
        shrink_map(&mut self.reinvites);
        shrink_map(&mut self.plain_requests);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(ev) = self.tl.layer_mut().and_then(TransactionLayer::poll_event) {
            self.on_tx_event(now, ev);
        }
    }

    fn drain_session(&mut self, now: Instant, id: u64) {
        loop {
            let Some(s) = self.sessions.get_mut(&id) else { return };
            if let Some(out) = s.poll_out() {
                self.execute(now, id, out);
                continue;
            }
            if let Some((local, remote)) = s.take_description_boxes() {
                self.events.push_back(UaEvent::Descriptions { session: id, local, remote });
                continue;
            }
            if let Some(ev) = s.poll_event() {
                self.on_session_event(now, id, ev);
                continue;
            }
            break;
        }
        // One lookup for what follows a drain: a confirmed session gives its
        // queue buffers back, a terminated one leaves the table.
        let terminated = match self.sessions.get_mut(&id) {
            Some(s) if s.is_terminated() => true,
            Some(s) => {
                if s.state() == SessionState::Confirmed {
                    s.release_queues();
                }
                false
            }
            None => false,
        };
        if terminated && let Some(s) = self.sessions.remove(&id) {
            if let Some(d) = s.dialog() {
                self.by_dialog.remove(&d.id.call_id, &d.id.local_tag, id);
            }
            self.by_dialog.remove(s.request().headers.call_id().unwrap_or(""), s.local_tag(), id);
            // The session's server transactions leave `by_server_tx` when
            // they terminate (their timers bound that); session ids are
            // never reused, so an entry left until then routes nowhere.
            self.auth_tries.remove(&id);
            self.call_mods.remove(&id);
            // A re-INVITE still pending when the session ended (BYE crossed
            // it, and its 2xx was lost) would keep its client transaction
            // in Proceeding for ever: nothing retransmits that 2xx any more.
            // Cancel it, which also bounds it to 64*T1 (RFC 3261 §9.1).
            let mut pending = self.reinvites.remove(&id).unwrap_or_default();
            pending.retain(|k| self.client.contains_key(k));
            pending.sort_by(|a, b| a.branch.cmp(&b.branch));
            for key in pending {
                if let Ok(Some(ck)) = self.tl.cancel(now, &key) {
                    self.client.insert(ck, Owner::Nobody);
                }
            }
        }
        self.drain(now);
    }

    fn execute(&mut self, now: Instant, id: u64, out: Out) {
        match out {
            Out::Request { request, purpose } => {
                let owner = if purpose == Purpose::Info && request.method == Method::Bye {
                    Owner::Nobody
                } else {
                    Owner::Session(id, purpose)
                };
                let peer = match self.peer_for(&request) {
                    Ok(p) => p,
                    Err(_) => {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            s.handle_failure(purpose, false, &mut *self.rng);
                        }
                        return;
                    }
                };
                let mut request = request;
                // The session holds its INVITE as queued; it needs a new copy
                // only when credentials were added here.
                let mut authorized = None;
                if request.method == Method::Invite
                    && purpose == Purpose::Invite
                    && !matches!(self.digest.authorize(&mut request, &mut *self.rng), Ok(0))
                {
                    authorized = Some(request.clone());
                }
                match self.tl.send_request(now, request, peer) {
                    Ok(key) => {
                        if purpose == Purpose::Invite
                            && let Some(s) = self.sessions.get_mut(&id)
                        {
                            s.set_invite_key(key.clone());
                            if let Some(r) = authorized {
                                s.set_invite(r);
                            }
                        }
                        if request_is_reinvite(purpose, &key) {
                            let keys = self.reinvites.entry(id).or_default();
                            keys.retain(|k| self.client.contains_key(k));
                            keys.push(key.clone());
                        }
                        self.client.insert(key, owner);
                    }
                    Err(_) => {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            s.handle_failure(purpose, false, &mut *self.rng);
                        }
                    }
                }
            }
            Out::Response { key, response } | Out::Retransmit { key, response } => {
                let _ = self.tl.send_response(now, &key, response);
            }
            Out::Ack { request } => {
                if let Ok(peer) = self.peer_for(&request) {
                    self.tl.send_stateless(peer, SipMessage::Request(request));
                }
            }
            Out::PrintedRequest { key, bytes, purpose } => {
                let peer = self.sessions.get(&id).and_then(|s| s.dialog()).map(|d| self.peer_for_uri(d.next_hop()));
                let sent = match peer {
                    Some(Ok(peer)) => self.tl.send_request_bytes(now, key, bytes, peer).ok(),
                    _ => None,
                };
                match sent {
                    Some(key) => {
                        self.client.insert(key, Owner::Session(id, purpose));
                    }
                    None => {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            s.handle_failure(purpose, false, &mut *self.rng);
                        }
                    }
                }
            }
            Out::PrintedResponse { key, status, bytes } => {
                let _ = self.tl.send_response_bytes(now, &key, status, bytes);
            }
            Out::PrintedAck { bytes } => {
                let peer = match self.sessions.get(&id).and_then(|s| s.dialog()) {
                    Some(d) => self.peer_for_uri(d.next_hop()),
                    None => return,
                };
                if let Ok(peer) = peer {
                    self.tl.send_bytes(peer, bytes);
                }
            }
            Out::Cancel { key } => {
                if let Ok(Some(ck)) = self.tl.cancel(now, &key) {
                    self.client.insert(ck, Owner::Nobody);
                }
            }
        }
    }

    fn on_session_event(&mut self, now: Instant, id: u64, event: SessionEvent) {
        // Index dialogs as they appear, so in-dialog requests find the session.
        if let Some(s) = self.sessions.get_mut(&id)
            && let Some(d) = s.dialog_to_index()
        {
            self.by_dialog.insert(&d.id.call_id, &d.id.local_tag, id);
        }
        // Transfers we follow report to the transferor (RFC 3515 §2.4.5).
        if let Some(&old) = self.refer_links.get(&id) {
            let status = match &event {
                SessionEvent::Progress { response } => Some(response.status),
                SessionEvent::Accepted { .. } => Some(200),
                SessionEvent::Failed { response, cause } => {
                    Some(response.as_ref().map(|r| r.status).unwrap_or(if *cause == Cause::Canceled {
                        487
                    } else {
                        503
                    }))
                }
                _ => None,
            };
            if let Some(st) = status
                && st != 100
            {
                if let Some(o) = self.sessions.get_mut(&old) {
                    o.notify_refer(st, &mut *self.rng);
                }
                if st >= 200 {
                    self.refer_links.remove(&id);
                }
                self.drain_session(now, old);
            }
        }
        // A session that replaces another ends it once accepted (RFC 3891 §3).
        if let SessionEvent::Accepted { .. } = &event
            && let Some(old) = self.replacing.remove(&id)
        {
            self.events.push_back(UaEvent::Session { session: old, event: SessionEvent::Replaced { new_session: id } });
            if let Some(o) = self.sessions.get_mut(&old) {
                if o.state() == SessionState::Confirmed {
                    let _ = o.bye(None, &mut *self.rng);
                } else {
                    let _ = o.terminate(&mut *self.rng);
                }
            }
            self.drain_session(now, old);
        }
        self.events.push_back(UaEvent::Session { session: id, event });
    }

    fn on_tx_event(&mut self, now: Instant, ev: TxEvent) {
        match ev {
            TxEvent::Request { key, request, peer } => self.on_request(now, key, request, peer),
            TxEvent::Ack { request, .. } => {
                if let Some(id) = self.dialog_of(&request) {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.handle_ack(now, request, &mut *self.rng);
                    }
                    self.drain_session(now, id);
                }
            }
            TxEvent::Cancelled { invite, .. } => {
                if let Some(&id) = self.by_server_tx.get(&invite) {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.handle_cancel();
                    }
                    self.drain_session(now, id);
                }
            }
            TxEvent::Response { key, response } => {
                let Some(&owner) = self.client.get(&key) else { return };
                self.on_response(now, owner, &key, response);
            }
            TxEvent::StrayResponse { response, .. } => {
                // A 2xx to an INVITE after its transaction ended: ACK it through the session.
                if (200..300).contains(&response.status)
                    && response.headers.cseq().is_some_and(|c| c.method == Method::Invite)
                {
                    let call_id = response.headers.call_id().unwrap_or("");
                    let tag = response.headers.from().and_then(|f| f.tag()).unwrap_or("");
                    if let Some(id) = self.by_dialog.get(call_id, tag) {
                        if let Some(s) = self.sessions.get_mut(&id) {
                            let purpose = if response.headers.cseq().map(|c| c.seq)
                                == s.request().headers.cseq().map(|c| c.seq)
                            {
                                Purpose::Invite
                            } else {
                                Purpose::Reinvite
                            };
                            s.handle_response(now, purpose, response, &mut *self.rng);
                        }
                        self.drain_session(now, id);
                    }
                }
            }
            TxEvent::Timeout { key } => {
                self.forget_plain(&key);
                if let Some(owner) = self.client.remove(&key) {
                    self.on_failure(now, owner, true);
                }
            }
            TxEvent::TransportError { key } | TxEvent::Refused { key, .. } => {
                self.forget_plain(&key);
                if let Some(owner) = self.client.remove(&key) {
                    self.on_failure(now, owner, false);
                }
            }
            TxEvent::NoAck { .. } => {}
            // Client keys live in `client` (and `plain_requests`), server
            // keys in `by_server_tx`: one table to look in, not three.
            TxEvent::Terminated { key, .. } => {
                if key.role == crate::transaction::Role::Client {
                    self.client.remove(&key);
                    self.forget_plain(&key);
                } else {
                    self.by_server_tx.remove(&key);
                }
            }
        }
    }

    fn on_failure(&mut self, now: Instant, owner: Owner, timeout: bool) {
        match owner {
            Owner::Session(id, purpose) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.handle_failure(purpose, timeout, &mut *self.rng);
                }
                self.drain_session(now, id);
            }
            Owner::Register => {
                if let Some(r) = self.registration.as_mut() {
                    let ev = r.handle_timeout();
                    self.events.push_back(UaEvent::Registration(ev));
                }
            }
            Owner::Plain(id) => self.events.push_back(UaEvent::RequestDone {
                id,
                status: if timeout { 408 } else { 503 },
                response: None,
            }),
            Owner::Nobody => {}
        }
    }

    fn on_response(&mut self, now: Instant, owner: Owner, key: &TxKey, response: Response) {
        // Digest challenges: retry with credentials (RFC 3261 §22.2).
        if matches!(response.status, 401 | 407) {
            let tries_key = match &owner {
                Owner::Session(id, Purpose::Invite) => Some(*id),
                Owner::Register => Some(0),
                Owner::Plain(id) => Some(*id),
                _ => None,
            };
            if let Some(tk) = tries_key {
                let tries = self.auth_tries.entry(tk).or_insert(0);
                *tries += 1;
                if *tries <= 3 && self.digest.handle_challenge(&response).is_ok() {
                    // The request as sent: the session keeps its INVITE, OPTIONS
                    // and MESSAGE are kept aside; a REGISTER is rebuilt.
                    let sent = match owner {
                        Owner::Session(id, _) => self.sessions.get(&id).map(|s| s.request().clone()),
                        Owner::Plain(_) => self.plain_requests.get(key).cloned(),
                        _ => None,
                    };
                    let retry = sent.map(|mut r| {
                        r.headers.remove(sipact_message::HeaderName::Authorization);
                        r.headers.remove(sipact_message::HeaderName::ProxyAuthorization);
                        r
                    });
                    match (owner, retry) {
                        (Owner::Session(id, _), retry) => {
                            if let (Some(s), Some(retry)) = (self.sessions.get_mut(&id), retry) {
                                s.retry_invite(retry, &mut *self.rng);
                            }
                            self.drain_session(now, id);
                            return;
                        }
                        (Owner::Register, _) => {
                            // §10.2.4: the retry takes the registration's next
                            // CSeq, so that later refreshes keep increasing.
                            let via = self.register_via();
                            if let Some(r) = self.registration.as_mut() {
                                let unregister = r.state == RegState::Unregistering;
                                let req = r.request(via, unregister);
                                let _ = self.send_client(now, req, owner);
                            }
                            return;
                        }
                        (Owner::Plain(_), Some(mut retry)) => {
                            retry.headers.remove(sipact_message::HeaderName::Via);
                            let via = self.via_to(&retry.uri.clone());
                            retry.headers.push_front(Header::Via(via));
                            let seq = retry.headers.cseq().map(|c| c.seq + 1).unwrap_or(2);
                            let m = retry.method.clone();
                            retry.headers.remove(sipact_message::HeaderName::CSeq);
                            retry.headers.push(Header::CSeq(sipact_message::CSeq { seq, method: m }));
                            let _ = self.send_client(now, retry, owner);
                            return;
                        }
                        (Owner::Plain(_), None) | (Owner::Nobody, _) => {}
                    }
                }
            }
        }
        match owner {
            Owner::Session(id, purpose) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.handle_response(now, purpose, response, &mut *self.rng);
                }
                self.drain_session(now, id);
            }
            Owner::Register => {
                // A final answer ends this round of challenges: the next
                // refresh may be challenged again (a nonce expires).
                if response.status >= 200 {
                    self.auth_tries.remove(&0);
                }
                let mut resend = false;
                if let Some(r) = self.registration.as_mut() {
                    let (events, again) = r.handle_response(now, &response);
                    resend = again;
                    for e in events {
                        self.events.push_back(UaEvent::Registration(e));
                    }
                }
                if resend {
                    let via = self.register_via();
                    if let Some(r) = self.registration.as_mut() {
                        let req = r.request(via, false);
                        let _ = self.send_client(now, req, Owner::Register);
                    }
                }
            }
            Owner::Plain(id) => {
                if response.status >= 200 {
                    self.events.push_back(UaEvent::RequestDone {
                        id,
                        status: response.status,
                        response: Some(response),
                    });
                }
            }
            Owner::Nobody => {}
        }
    }

    /// Drops the kept copy of an OPTIONS or MESSAGE (none for most
    /// transactions: the table is usually empty, and then not hashed into).
    fn forget_plain(&mut self, key: &TxKey) {
        if !self.plain_requests.is_empty() {
            self.plain_requests.remove(key);
        }
    }

    fn dialog_of(&self, req: &Request) -> Option<u64> {
        self.by_dialog.get(req.headers.call_id()?, req.headers.to()?.tag()?)
    }

    fn on_request(&mut self, now: Instant, key: TxKey, request: Request, peer: Peer) {
        let has_to_tag = request.headers.to().and_then(|t| t.tag()).is_some();
        if has_to_tag {
            match self.dialog_of(&request) {
                Some(id) => {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.handle_request(now, key, request, &mut *self.rng);
                    }
                    self.drain_session(now, id);
                }
                None => {
                    // §12.2.2: no such dialog.
                    let resp = response_for(&request, 481, None);
                    let _ = self.tl.send_response(now, &key, resp);
                }
            }
            return;
        }
        if matches!(request.method, Method::Invite | Method::Register | Method::Message)
            && !self.authorized(now, &key, &request)
        {
            return;
        }
        match request.method {
            Method::Invite => self.on_invite(now, key, request, peer.transport),
            Method::Register if self.config.registrar => self.on_register(now, key, request),
            Method::Options => {
                let mut resp = response_for(&request, 200, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                resp.headers.push(Header::Allow(MethodList::from_static(
                    "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY, MESSAGE",
                )));
                resp.headers.push(Header::Supported(TokenList::from_static("100rel, timer, replaces")));
                let _ = self.tl.send_response(now, &key, resp);
            }
            Method::Message => {
                let resp = response_for(&request, 200, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                let _ = self.tl.send_response(now, &key, resp);
                self.events.push_back(UaEvent::Message { request: Box::new(request) });
            }
            Method::Bye | Method::Prack | Method::Update | Method::Info | Method::Refer | Method::Notify => {
                let resp = response_for(&request, 481, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                let _ = self.tl.send_response(now, &key, resp);
            }
            _ => {
                let mut resp = response_for(&request, 405, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                resp.headers.push(Header::Allow(MethodList::from_static("INVITE, ACK, CANCEL, BYE, OPTIONS")));
                let _ = self.tl.send_response(now, &key, resp);
            }
        }
    }

    fn on_invite(&mut self, now: Instant, key: TxKey, request: Request, transport: TransportKind) {
        // RFC 4028 §8.1: a session interval below our Min-SE is refused with
        // 422 naming it; the caller retries with a bigger one.
        if let Some(se) = request.headers.session_expires()
            && se.delta < self.config.min_se
        {
            let mut resp = response_for(&request, 422, Some(&crate::rand::short_token(&mut *self.rng, 10)));
            resp.headers.push(Header::MinSe(sipact_message::DeltaParams::new(self.config.min_se)));
            let _ = self.tl.send_response(now, &key, resp);
            return;
        }
        // RFC 3891 §3: Replaces must match a dialog of ours, else 481.
        let mut replaces = None;
        if let Some(rep) = request.headers.iter().find_map(|h| match h {
            Header::Replaces(r) => Some(r.clone()),
            _ => None,
        }) {
            let to_tag = rep.params.value("to-tag").unwrap_or("");
            let from_tag = rep.params.value("from-tag").unwrap_or("");
            let early_only = rep.params.contains("early-only");
            let found = self.sessions.iter().find(|(_, s)| {
                s.dialog().is_some_and(|d| {
                    *d.id.call_id == *rep.value && *d.id.local_tag == *to_tag && *d.id.remote_tag == *from_tag
                }) && !s.is_terminated()
                    && !(early_only && s.state() == SessionState::Confirmed)
            });
            match found {
                Some((&old, _)) => replaces = Some(old),
                None => {
                    let resp = response_for(&request, 481, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                    let _ = self.tl.send_response(now, &key, resp);
                    return;
                }
            }
        }
        let id = self.id();
        let tag = crate::rand::short_token(&mut *self.rng, 10);
        let cfg = self.session_config(self.config.rel100, transport);
        let offer = crate::session::Body::of_request(&request);
        let hooks = (self.hooks)(&HooksContext { session: id, inbound: true, options: Vec::new(), offer });
        let call = CallModifiers::default();
        self.call_mods.insert(id, call.clone());
        let hooks = with_modifiers(hooks, self.config.modifiers.clone(), call);
        let s = Box::new(InviteSession::inbound(id, request.clone(), key.clone(), cfg, hooks, &tag));
        if s.dialog().is_none() {
            let mut resp = response_for(&request, 400, Some(&tag));
            resp.reason = ByteString::from_static("Missing Contact");
            let _ = self.tl.send_response(now, &key, resp);
            return;
        }
        if let Some(call_id) = request.headers.call_id() {
            self.by_dialog.insert(&ByteString::from(call_id), &tag, id);
        }
        self.by_server_tx.insert(key, id);
        self.sessions.insert(id, s);
        if let Some(old) = replaces {
            self.replacing.insert(id, old);
        }
        self.events.push_back(UaEvent::Incoming { session: id, request: Box::new(request), replaces });
    }

    /// Checks digest credentials when the UA challenges (RFC 3261 §22.1);
    /// answers 401 and returns false when they are missing or wrong.
    fn authorized(&mut self, now: Instant, key: &TxKey, request: &Request) -> bool {
        let Some(v) = self.verifier.as_mut() else { return true };
        let epoch = *self.epoch.get_or_insert(now);
        let secs = now.saturating_duration_since(epoch).as_secs();
        let users = &self.config.auth_users;
        let lookup = |user: &str, _realm: &str| {
            users.iter().find(|(u, _)| u == user).map(|(_, p)| crate::auth::Secret::Password(p.clone()))
        };
        match v.verify(request, lookup, secs) {
            Ok(_) => true,
            Err(e) => {
                let mut resp = response_for(request, 401, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                v.add_challenges(&mut resp, &mut *self.rng, secs, e.is_stale());
                let _ = self.tl.send_response(now, key, resp);
                false
            }
        }
    }

    /// A minimal registrar (RFC 3261 §10.3): keeps the bindings of each
    /// address of record and returns them with their lifetimes.
    fn on_register(&mut self, now: Instant, key: TxKey, request: Request) {
        let aor = request.headers.to().map(|t| t.uri.to_string()).unwrap_or_default();
        let expires = request.headers.expires().unwrap_or(3600);
        if let Some(min) = self.config.registrar_min_expires {
            let too_brief = request.headers.contacts().any(|c| match c {
                sipact_message::Contact::Addr(a) => (1..min).contains(&a.expires().unwrap_or(expires)),
                _ => false,
            });
            if too_brief {
                let mut resp = response_for(&request, 423, Some(&crate::rand::short_token(&mut *self.rng, 10)));
                resp.headers.push(Header::MinExpires(min));
                let _ = self.tl.send_response(now, &key, resp);
                return;
            }
        }
        let mut resp = response_for(&request, 200, Some(&crate::rand::short_token(&mut *self.rng, 10)));
        for c in request.headers.contacts() {
            match c {
                sipact_message::Contact::Any if expires == 0 => {
                    self.bindings.remove(&aor);
                }
                sipact_message::Contact::Addr(a) => {
                    let e = a.expires().unwrap_or(expires);
                    if e == 0 {
                        self.bindings.remove(&aor);
                    } else {
                        self.bindings.insert(aor.clone(), (a.clone(), e));
                    }
                }
                _ => {}
            }
        }
        if let Some((c, e)) = self.bindings.get(&aor) {
            let mut c = c.clone();
            c.params.set("expires", Some(&e.to_string()));
            resp.headers.push(Header::Contact(sipact_message::Contact::Addr(c)));
        }
        let _ = self.tl.send_response(now, &key, resp);
    }

    /// The binding a registrar holds for an address of record.
    pub fn binding(&self, aor: &str) -> Option<&NameAddr> {
        self.bindings.get(aor).map(|(c, _)| c)
    }

    /// Every session's direction, for inspection.
    pub fn direction(&self, id: u64) -> Option<Direction> {
        self.sessions.get(&id).map(|s| s.direction())
    }
}

/// The settings every session of a core shares, for one RFC 3262 policy.
fn build_session_config(config: &CoreConfig, rel100: Rel100, transport: TransportKind) -> SessionConfig {
    SessionConfig {
        timers: config.tx.timers,
        rel100,
        session_expires: config.session_expires,
        min_se: config.min_se,
        contact: config.contact_for(transport),
        via: config.via_for(transport, "z9hG4bK"),
        user_agent: config.user_agent.clone(),
        refresh_with_update: config.refresh_with_update,
    }
}

fn percent(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::DialogIndex;
    use sipact_message::ByteString;

    #[test]
    fn sessions_sharing_a_call_id_are_told_apart_by_their_tag() {
        // A UA calling itself: two sessions under one Call-ID. Removing
        // either (first or later) keeps the other; removing a wrong id or
        // tag changes nothing; the Call-ID leaves with its last session.
        for remove_first in [true, false] {
            let mut ix = DialogIndex::default();
            let cid = ByteString::from("c1@example.com");
            ix.insert(&cid, "a", 1);
            ix.insert(&cid, "b", 2);
            ix.insert(&cid, "c", 3);
            ix.insert(&cid, "b", 22);
            assert_eq!((ix.get("c1@example.com", "a"), ix.get("c1@example.com", "b")), (Some(1), Some(22)));
            assert_eq!(ix.get("c1@example.com", "x"), None);
            assert_eq!(ix.get("other", "a"), None);
            ix.remove("c1@example.com", "a", 9);
            ix.remove("c1@example.com", "x", 1);
            assert_eq!(ix.get("c1@example.com", "a"), Some(1));
            let (gone, kept) = if remove_first { (("a", 1), ("b", 22)) } else { (("b", 22), ("a", 1)) };
            ix.remove("c1@example.com", gone.0, gone.1);
            assert_eq!(ix.get("c1@example.com", gone.0), None);
            assert_eq!(ix.get("c1@example.com", kept.0), Some(kept.1));
            assert_eq!(ix.get("c1@example.com", "c"), Some(3));
            ix.remove("c1@example.com", kept.0, kept.1);
            ix.remove("c1@example.com", "c", 3);
            assert!(ix.0.is_empty());
        }
    }
}
