//! The transaction layer (RFC 3261 §17, with the RFC 6026 Accepted states).
//!
//! Sans-IO: [`TransactionLayer`] takes received messages, commands from the
//! transaction user and the current time; it hands back [`Transmit`]s (bytes
//! and a destination), [`TxEvent`]s for the transaction user, and the
//! instant of its earliest timer. It never reads a clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipact_message::ByteString;
use sipact_message::{
    CSeq, ErrorKind, Header, Headers, Host, Limits, Method, ParseError, Request, Response, SipMessage, Uri, Via,
};

use crate::transport::{FlowId, Peer};
use crate::util::{BRANCH_COOKIE, response_for, stamp_via};

/// Timer values (RFC 3261 §17.1.1.1 and Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, default 4 s.
    pub t2: Duration,
    /// Longest time a message stays in the network, default 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports, at least 32 s (default 32 s).
    pub d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// 64 * T1: timers B, F, H, J (unreliable), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// The transaction timers, named as in RFC 3261 (and RFC 6026 for L and M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit (client, unreliable).
    A,
    /// INVITE transaction timeout (client).
    B,
    /// Wait for response retransmits (client INVITE, Completed).
    D,
    /// Non-INVITE request retransmit (client, unreliable).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmit (server, unreliable).
    G,
    /// Wait for ACK (server INVITE).
    H,
    /// Wait for ACK retransmits (server INVITE, Confirmed).
    I,
    /// Wait for request retransmits (server non-INVITE, Completed).
    J,
    /// Wait for response retransmits (client non-INVITE, Completed).
    K,
    /// Wait for INVITE retransmits after a 2xx (server, Accepted; RFC 6026).
    L,
    /// Wait for 2xx retransmits (client INVITE, Accepted; RFC 6026).
    M,
}

const TIMERS: usize = 12;

/// Entries the transaction table and each timer queue keep room for when
/// they shrink after a burst (some tens of calls in flight, about 40 KB),
/// so that steady short bursts do not rebuild them from nothing every
/// time, while a burst of thousands still gives its memory back.
const KEEP: usize = 256;

impl Timer {
    fn idx(self) -> usize {
        self as usize
    }
}

/// Which side of the transaction this stack is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// The four transaction machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// INVITE client transaction (§17.1.1).
    ClientInvite,
    /// Non-INVITE client transaction (§17.1.2).
    ClientNonInvite,
    /// INVITE server transaction (§17.2.1).
    ServerInvite,
    /// Non-INVITE server transaction (§17.2.2).
    ServerNonInvite,
}

/// Transaction states (RFC 3261 §17 and RFC 6026 `Accepted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxState {
    /// Client INVITE sent, nothing received.
    Calling,
    /// Client non-INVITE sent, or server non-INVITE received, no response yet.
    Trying,
    /// A provisional response was received or sent.
    Proceeding,
    /// A final non-2xx (INVITE) or any final (non-INVITE) response was exchanged.
    Completed,
    /// A 2xx to an INVITE was exchanged (RFC 6026).
    Accepted,
    /// Server INVITE: the ACK for a non-2xx arrived.
    Confirmed,
    /// Gone.
    Terminated,
}

/// Identifies a transaction: branch, method (ACK counted as INVITE) and, on
/// the server side, the top Via sent-by (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxKey {
    /// Client or server.
    pub role: Role,
    /// The branch (or a synthesised RFC 2543 key).
    pub branch: ByteString,
    /// The method; CANCEL has its own transactions.
    pub method: Method,
    /// Server side: the sent-by of the top Via.
    pub sent_by: ByteString,
}

// Hashes the branch only: it is random and (RFC 3261 §8.1.1.7) unique per
// transaction, so the other fields add cost and no spread; equality still
// compares them all. A branch of up to 23 bytes (this stack's, most
// others') is hashed as the three words of its inline form: the hasher's
// byte path read it from unaligned offsets and stalled on the stores that
// had just built the key. Longer ones hash their bytes, less the magic
// cookie that starts them all.
impl std::hash::Hash for TxKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self.branch.short_words() {
            Some([a, b, c]) => {
                state.write_u64(a);
                state.write_u64(b);
                state.write_u64(c);
            }
            None => {
                let b = self.branch.as_bytes();
                state.write(b.strip_prefix(crate::util::BRANCH_COOKIE.as_bytes()).unwrap_or(b));
            }
        }
    }
}

/// Bytes to send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub peer: Peer,
    /// The printed message.
    pub data: Bytes,
}

/// What the transaction layer tells its user.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TxEvent {
    /// A new request created a server transaction; answer it with
    /// [`TransactionLayer::send_response`].
    Request {
        /// The server transaction.
        key: TxKey,
        /// The request, its top Via stamped with `received`/`rport`.
        request: Request,
        /// Where it came from.
        peer: Peer,
    },
    /// An ACK outside any transaction: the ACK for a 2xx (§17.2.1 hands it to the TU).
    Ack {
        /// The ACK.
        request: Request,
        /// Where it came from.
        peer: Peer,
    },
    /// A CANCEL matched a server INVITE transaction still without a final
    /// response. The layer has answered the CANCEL with 200; the TU should
    /// answer the INVITE with 487 (§9.2).
    Cancelled {
        /// The INVITE server transaction.
        invite: TxKey,
        /// The CANCEL.
        request: Request,
    },
    /// A response for a client transaction (including 2xx retransmissions
    /// in the Accepted state, which the TU must ACK).
    Response {
        /// The client transaction.
        key: TxKey,
        /// The response.
        response: Response,
    },
    /// A response matching no transaction (for instance a 2xx retransmitted
    /// after Timer M): the dialog layer may still ACK it.
    StrayResponse {
        /// The response.
        response: Response,
        /// Where it came from.
        peer: Peer,
    },
    /// Timer B or F fired: no final response (the TU treats it as a 408).
    Timeout {
        /// The client transaction.
        key: TxKey,
    },
    /// Timer H fired: the ACK for our non-2xx final never came.
    NoAck {
        /// The server transaction.
        key: TxKey,
    },
    /// The transport failed for this transaction (the TU treats it as a 503,
    /// RFC 3261 §8.1.3.1).
    TransportError {
        /// The transaction.
        key: TxKey,
    },
    /// A [`TxCommand::SendRequest`] was refused (a transaction with that
    /// key exists already): nothing was sent. Only a transaction user that
    /// sends its requests as commands sees it; it treats it as a transport
    /// error.
    Refused {
        /// The key the request would have had.
        key: TxKey,
        /// Why.
        error: TransactionError,
    },
    /// The transaction is gone; its key will not be used again.
    Terminated {
        /// The transaction.
        key: TxKey,
        /// Its kind.
        kind: TxKind,
    },
}

/// Errors of commands given to the transaction layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// No transaction with that key.
    #[error("no such transaction")]
    NoTransaction,
    /// The request has no top Via with an RFC 3261 branch.
    #[error("request has no Via with a z9hG4bK branch")]
    MissingBranch,
    /// A transaction with that branch already exists.
    #[error("a transaction with this branch already exists")]
    Duplicate,
    /// ACK is never sent in a transaction; use [`TransactionLayer::send_stateless`].
    #[error("ACK is not sent in a client transaction")]
    AckNotAllowed,
    /// The response does not fit the transaction's state.
    #[error("cannot send a {status} response in state {state:?}")]
    InvalidState {
        /// The transaction's state.
        state: TxState,
        /// The status of the response.
        status: u16,
    },
    /// The request has no CSeq/Call-ID/From/To to build from.
    #[error("request lacks {0}")]
    MissingHeader(&'static str),
}

#[derive(Debug)]
struct Tx {
    /// The key it is found by (kept here so that a timer, which names the
    /// slot, can end the transaction and report its key without a copy).
    key: TxKey,
    kind: TxKind,
    state: TxState,
    peer: Peer,
    reliable: bool,
    /// Client INVITE transactions, until the final response: the request
    /// (for CANCEL and the ACK of a non-2xx). Others keep only bytes.
    request: Option<Request>,
    request_bytes: Bytes,
    last_response: Option<Bytes>,
    last_status: u16,
    ack_bytes: Option<Bytes>,
    interval: Duration,
    timers: [Option<Instant>; TIMERS],
    /// Client INVITE: a CANCEL was asked for before any provisional (§9.1).
    cancel_pending: bool,
}

/// Settings of a transaction layer.
#[derive(Debug, Clone)]
pub struct TxConfig {
    /// Timer values.
    pub timers: TimerConfig,
    /// Message size limits for [`TransactionLayer::handle_bytes`].
    pub limits: Limits,
    /// Option tags this UA supports: a request that `Require`s another gets 420 (§8.2.2.3).
    pub supported: Vec<String>,
    /// `Server`/`User-Agent` value for responses the layer makes itself.
    pub server: Option<String>,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig {
            timers: TimerConfig::default(),
            limits: Limits::default(),
            supported: ["100rel", "timer", "replaces", "norefersub"].iter().map(|s| s.to_string()).collect(),
            server: None,
        }
    }
}

/// The transaction layer: all client and server transactions of a UA.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TxConfig,
    txs: TxTable,
    queues: TimerQueues,
    /// The origin of the deadlines' time keys: the first deadline armed.
    epoch: Option<Instant>,
    seq: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

/// A timer deadline in the [`TimerQueues`], ordered by time then
/// insertion: small (queues move entries as they grow). It names the slot of its
/// transaction in the [`TxTable`]; it is live while that slot holds a
/// transaction with this timer armed for exactly this time. A deadline left
/// over from a transaction that ended, whose slot now holds another one, is
/// live only if the new one armed the same timer for the same instant, and
/// then firing it is right (the second entry finds it disarmed).
///
/// The time is kept as signed nanoseconds from the layer's first deadline
/// (24-byte entries, and one integer comparison where an `Instant` takes
/// two); the transaction's own `timers` entry holds the exact `Instant`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline {
    key: i64,
    seq: u64,
    slot: u32,
    timer: Timer,
}

/// The armed deadlines, in queues by duration, each in deadline order.
///
/// Timers B, F, H, J, L and M always run 64*T1, I and K run T4, D a fixed
/// 32 s: with time moving forward, each new deadline of those goes at the
/// back of its queue. A, E and G double; they have a queue each and go at
/// the back too unless an earlier one was armed after a later one, and
/// are then inserted in place. The next deadline is the earliest of six
/// queue heads, whose times are kept side by side. This replaced a binary
/// heap: popping one of some thousands of entries walked a dozen levels
/// spread over the heap's memory (1.8 % of a whole call's time, stale
/// entries included). The order is the heap's: time, then arming order.
#[derive(Debug)]
struct TimerQueues {
    queues: [VecDeque<Deadline>; QUEUES],
    /// Each queue's head as (time key, arming number), [`EMPTY`] when
    /// empty: what the scan for the earliest compares.
    heads: [(i64, u64); QUEUES],
    /// The queue whose head is the earliest deadline (`None` when all are
    /// empty): kept up to date by `push` and `pop`, so `peek` reads it.
    first: Option<usize>,
}

/// Queues of [`TimerQueues`].
const QUEUES: usize = 6;

impl Timer {
    /// The [`TimerQueues`] queue of this timer: one per duration.
    fn queue(self) -> usize {
        match self {
            Timer::B | Timer::F | Timer::H | Timer::J | Timer::L | Timer::M => 0,
            Timer::I | Timer::K => 1,
            Timer::D => 2,
            Timer::A => 3,
            Timer::E => 4,
            Timer::G => 5,
        }
    }
}

/// The head of an empty queue: after any deadline (arming numbers never
/// reach `u64::MAX`).
const EMPTY: (i64, u64) = (i64::MAX, u64::MAX);

impl Default for TimerQueues {
    fn default() -> Self {
        TimerQueues { queues: Default::default(), heads: [EMPTY; QUEUES], first: None }
    }
}

impl TimerQueues {
    fn push(&mut self, d: Deadline) {
        let i = d.timer.queue();
        let when = (d.key, d.seq);
        let q = &mut self.queues[i];
        match q.back() {
            Some(last) if *last > d => {
                let at = q.partition_point(|x| *x < d);
                q.insert(at, d);
            }
            _ => q.push_back(d),
        }
        if q.len() == 1 || when < self.heads[i] {
            self.heads[i] = when;
        }
        // Earlier than every armed deadline: it heads its queue and all.
        if self.first.is_none_or(|f| when < self.heads[f]) {
            self.first = Some(i);
        }
    }

    #[inline]
    fn peek(&self) -> Option<&Deadline> {
        self.first.and_then(|i| self.queues[i].front())
    }

    fn pop(&mut self) -> Option<Deadline> {
        let i = self.first?;
        let d = self.queues[i].pop_front();
        self.heads[i] = self.queues[i].front().map_or(EMPTY, |h| (h.key, h.seq));
        // The next earliest: the least of the heads.
        let mut best = 0;
        for j in 1..QUEUES {
            if self.heads[j] < self.heads[best] {
                best = j;
            }
        }
        self.first = (self.heads[best] != EMPTY).then_some(best);
        d
    }

    /// Gives back the room of queues much larger than their contents.
    fn shrink(&mut self) {
        for q in &mut self.queues {
            if q.capacity() > KEEP && q.len() * 4 < q.capacity() {
                q.shrink_to((q.len() * 2).max(KEEP));
            }
        }
    }
}

/// Signed nanoseconds from `epoch` to `at` (saturating at about 292 years).
fn time_key(epoch: Instant, at: Instant) -> i64 {
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match at.checked_duration_since(epoch) {
        Some(d) => nanos(d),
        None => -nanos(epoch.duration_since(at)),
    }
}

/// The live transactions: each boxed in a slot of a slab (growing or
/// shrinking moves pointers, not transactions; timers name the slot, so
/// firing one hashes nothing and copies no key), found by key through an
/// index.
#[derive(Debug, Default)]
struct TxTable {
    index: crate::Map<TxKey, u32>,
    slots: Vec<Option<Box<Tx>>>,
    free: Vec<u32>,
}

impl TxTable {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn contains_key(&self, key: &TxKey) -> bool {
        self.index.contains_key(key)
    }

    fn slot_of(&self, key: &TxKey) -> Option<u32> {
        self.index.get(key).copied()
    }

    fn get(&self, key: &TxKey) -> Option<&Tx> {
        self.at(self.slot_of(key)?)
    }

    fn get_mut(&mut self, key: &TxKey) -> Option<&mut Tx> {
        self.at_mut(self.slot_of(key)?)
    }

    fn at(&self, slot: u32) -> Option<&Tx> {
        self.slots.get(slot as usize)?.as_deref()
    }

    fn at_mut(&mut self, slot: u32) -> Option<&mut Tx> {
        self.slots.get_mut(slot as usize)?.as_deref_mut()
    }

    /// Adds a transaction (its key is not in the table) and returns its slot.
    fn insert(&mut self, tx: Box<Tx>) -> u32 {
        let key = tx.key.clone();
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(tx);
                i
            }
            None => {
                self.slots.push(Some(tx));
                (self.slots.len() - 1) as u32
            }
        };
        // Callers insert only new keys; should one be there already, its
        // transaction goes rather than leaking its slot.
        if let Some(old) = self.index.insert(key, slot) {
            self.take_slot(old);
        }
        slot
    }

    fn remove(&mut self, key: &TxKey) -> Option<Box<Tx>> {
        let slot = self.index.remove(key)?;
        self.take_slot(slot)
    }

    fn remove_at(&mut self, slot: u32) -> Option<Box<Tx>> {
        let tx = self.take_slot(slot)?;
        self.index.remove(&tx.key);
        Some(tx)
    }

    fn take_slot(&mut self, slot: u32) -> Option<Box<Tx>> {
        let tx = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(tx)
    }

    fn iter(&self) -> impl Iterator<Item = &Tx> {
        self.slots.iter().filter_map(|s| s.as_deref())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Tx> {
        self.slots.iter_mut().filter_map(|s| s.as_deref_mut())
    }

    /// Gives back memory after a burst, keeping room for [`KEEP`].
    fn shrink(&mut self) {
        if self.index.capacity() > KEEP && self.index.len() * 4 < self.index.capacity() {
            self.index.shrink_to((self.index.len() * 2).max(KEEP));
        }
        if self.index.is_empty() && self.slots.capacity() > KEEP {
            self.slots.clear();
            self.free.clear();
            self.slots.shrink_to(KEEP);
            self.free.shrink_to(KEEP);
        }
    }
}

fn top_via(h: &Headers) -> Option<&Via> {
    h.via()
}

fn sent_by(via: &Via) -> ByteString {
    via.sent_by()
}

/// Response destination for a server transaction (RFC 3261 §18.2.2, RFC 3581 §4).
fn response_peer(req: &Request, source: Peer) -> Peer {
    if source.transport.is_reliable() {
        return source;
    }
    let Some(via) = top_via(&req.headers) else { return source };
    if via.rport().is_some() {
        return source;
    }
    let port = via.port.unwrap_or(5060);
    Peer { addr: SocketAddr::new(source.addr.ip(), port), ..source }
}

impl TransactionLayer {
    /// A layer with `config`.
    pub fn new(config: TxConfig) -> Self {
        TransactionLayer {
            config,
            txs: TxTable::default(),
            queues: TimerQueues::default(),
            epoch: None,
            seq: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TxConfig {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The state of a transaction.
    pub fn state(&self, key: &TxKey) -> Option<TxState> {
        self.txs.get(key).map(|t| t.state)
    }

    /// The deadline of `timer` in a transaction, if armed.
    pub fn timer(&self, key: &TxKey, timer: Timer) -> Option<Instant> {
        self.txs.get(key).and_then(|t| t.timers[timer.idx()])
    }

    /// The original request of a client INVITE transaction until its final
    /// response (what a CANCEL or the ACK of a non-2xx is built from);
    /// `None` for other transactions, which retransmit from the printed
    /// bytes, and for server transactions, which keep only their responses.
    pub fn request(&self, key: &TxKey) -> Option<&Request> {
        self.txs.get(key).and_then(|t| t.request.as_ref())
    }

    /// Next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// The earliest armed timer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Drop stale entries so the answer is exact.
        while let Some(d) = self.queues.peek() {
            if let Some(at) = self.armed(d) {
                return Some(at);
            }
            self.queues.pop();
        }
        None
    }

    fn arm(&mut self, key: &TxKey, timer: Timer, at: Instant) {
        if let Some(slot) = self.txs.slot_of(key) {
            self.arm_at(slot, timer, at);
        }
    }

    fn arm_at(&mut self, slot: u32, timer: Timer, at: Instant) {
        if let Some(tx) = self.txs.at_mut(slot) {
            tx.timers[timer.idx()] = Some(at);
            self.schedule(slot, timer, at);
        }
    }

    /// The queue half of arming, for a transaction whose `timers` entry the
    /// caller already set (it holds the transaction: no second lookup).
    fn schedule(&mut self, slot: u32, timer: Timer, at: Instant) {
        self.seq += 1;
        let key = time_key(*self.epoch.get_or_insert(at), at);
        self.queues.push(Deadline { key, seq: self.seq, slot, timer });
    }

    /// The exact time of `d` while its transaction still has that timer
    /// armed for it (a re-armed or disarmed timer leaves a stale entry).
    fn armed(&self, d: &Deadline) -> Option<Instant> {
        let epoch = self.epoch?;
        let at = self.txs.at(d.slot)?.timers[d.timer.idx()]?;
        (time_key(epoch, at) == d.key).then_some(at)
    }

    fn disarm(tx: &mut Tx, timer: Timer) {
        tx.timers[timer.idx()] = None;
    }

    fn terminate(&mut self, key: &TxKey) {
        if let Some(tx) = self.txs.remove(key) {
            let Tx { key, kind, .. } = *tx;
            self.events.push_back(TxEvent::Terminated { key, kind });
        }
    }

    fn terminate_at(&mut self, slot: u32) {
        if let Some(tx) = self.txs.remove_at(slot) {
            let Tx { key, kind, .. } = *tx;
            self.events.push_back(TxEvent::Terminated { key, kind });
        }
    }

    fn send(&mut self, peer: Peer, data: Bytes) {
        self.transmits.push_back(Transmit { peer, data });
    }

    /// Sends bytes outside any transaction: the ACK for a 2xx, a 2xx
    /// retransmission the TU drives, or a stateless response.
    pub fn send_stateless(&mut self, peer: Peer, msg: &SipMessage) {
        self.send(peer, msg.to_bytes());
    }

    /// [`TransactionLayer::send_stateless`] for a message already printed.
    pub fn send_bytes(&mut self, peer: Peer, data: Bytes) {
        self.send(peer, data);
    }

    // ----- client side -------------------------------------------------

    /// Starts a client transaction for `req` towards `peer`. The request must
    /// carry a top Via whose branch starts with `z9hG4bK`.
    pub fn send_request(&mut self, now: Instant, req: Request, peer: Peer) -> Result<TxKey, TransactionError> {
        let key = client_key(&req)?;
        if self.txs.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let bytes = req.to_bytes();
        let invite = req.method == Method::Invite;
        self.start_client(now, key, invite.then_some(req), bytes, peer)
    }

    /// [`TransactionLayer::send_request`] for a request other than INVITE
    /// (whose request the transaction keeps) and ACK, already printed;
    /// `key` is its [`client_key`] (its top Via's branch and its method).
    pub fn send_request_bytes(
        &mut self,
        now: Instant,
        key: TxKey,
        bytes: Bytes,
        peer: Peer,
    ) -> Result<TxKey, TransactionError> {
        match key.method {
            Method::Ack => return Err(TransactionError::AckNotAllowed),
            Method::Invite => return Err(TransactionError::MissingHeader("the INVITE itself")),
            _ => {}
        }
        if key.role != Role::Client || !key.branch.starts_with(BRANCH_COOKIE) {
            return Err(TransactionError::MissingBranch);
        }
        if self.txs.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        self.start_client(now, key, None, bytes, peer)
    }

    /// Starts a client transaction sending `bytes`; `invite` is the request
    /// of a client INVITE transaction.
    fn start_client(
        &mut self,
        now: Instant,
        key: TxKey,
        invite_request: Option<Request>,
        bytes: Bytes,
        peer: Peer,
    ) -> Result<TxKey, TransactionError> {
        let invite = key.method == Method::Invite;
        let reliable = peer.transport.is_reliable();
        let t = self.config.timers;
        // §17.1.1.2: "If an unreliable transport is being used, the client
        // transaction MUST start timer A with a value of T1." / "...MUST set
        // timer B to 64*T1". §17.1.2.2: timer F = 64*T1; timer E = T1 for
        // unreliable transports.
        let (retransmit, timeout) = if invite { (Timer::A, Timer::B) } else { (Timer::E, Timer::F) };
        let mut timers = [None; TIMERS];
        if !reliable {
            timers[retransmit.idx()] = Some(now + t.t1);
        }
        timers[timeout.idx()] = Some(now + t.t1x64());
        let slot = self.txs.insert(Box::new(Tx {
            key: key.clone(),
            kind: if invite { TxKind::ClientInvite } else { TxKind::ClientNonInvite },
            state: if invite { TxState::Calling } else { TxState::Trying },
            peer,
            reliable,
            // Only an INVITE needs its request again (for a CANCEL and
            // the ACK of a non-2xx), and only until its final response;
            // retransmissions use the printed bytes.
            request: invite_request,
            // For retransmissions, which only an unreliable transport has.
            request_bytes: if reliable { Bytes::new() } else { bytes.clone() },
            last_response: None,
            last_status: 0,
            ack_bytes: None,
            interval: t.t1,
            timers,
            cancel_pending: false,
        }));
        self.send(peer, bytes);
        for timer in [retransmit, timeout] {
            if let Some(at) = timers[timer.idx()] {
                self.schedule(slot, timer, at);
            }
        }
        Ok(key)
    }

    /// Cancels a client INVITE transaction (RFC 3261 §9.1): builds the
    /// CANCEL and sends it in its own client transaction, once a provisional
    /// response has arrived (deferred until then). Returns the CANCEL's key
    /// when it was sent now; `Ok(None)` when deferred or when a final
    /// response already arrived (nothing to cancel).
    pub fn cancel(&mut self, now: Instant, invite: &TxKey) -> Result<Option<TxKey>, TransactionError> {
        let tx = self.txs.get_mut(invite).ok_or(TransactionError::NoTransaction)?;
        if tx.kind != TxKind::ClientInvite {
            return Err(TransactionError::NoTransaction);
        }
        match tx.state {
            TxState::Calling => {
                tx.cancel_pending = true;
                Ok(None)
            }
            TxState::Proceeding => {
                let req = tx.request.as_ref().ok_or(TransactionError::NoTransaction)?;
                let (cancel, peer) = (build_cancel(req)?, tx.peer);
                let key = self.send_request(now, cancel, peer)?;
                self.arm_cancel_timeout(now, invite);
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// §9.1: "If there is no final response for the original request in
    /// 64*T1 seconds ..., the client SHOULD then consider the original
    /// transaction cancelled and SHOULD destroy the client transaction
    /// handling the original request." Timer B serves for that.
    fn arm_cancel_timeout(&mut self, now: Instant, invite: &TxKey) {
        let at = now + self.config.timers.t1x64();
        self.arm(invite, Timer::B, at);
    }

    fn client_response(&mut self, now: Instant, key: TxKey, resp: Response) {
        let t = self.config.timers;
        let Some(slot) = self.txs.slot_of(&key) else { return };
        let Some(tx) = self.txs.at_mut(slot) else { return };
        let status = resp.status;
        match (tx.kind, tx.state) {
            (TxKind::ClientInvite, TxState::Calling | TxState::Proceeding) => {
                // Any response stops the retransmissions (Timer A): the
                // printed request is not needed again.
                Self::disarm(tx, Timer::A);
                tx.request_bytes = Bytes::new();
                if status < 200 {
                    // §17.1.1.2: "If the client transaction receives a provisional
                    // response while in the Calling state, it transitions to the
                    // Proceeding state." Timer B only times out the Calling state
                    // ("If the client transaction is still in the Calling state
                    // when timer B fires"): a ringing INVITE may last longer.
                    if tx.state == TxState::Calling {
                        Self::disarm(tx, Timer::B);
                    }
                    tx.state = TxState::Proceeding;
                    // Build the deferred CANCEL only when one was asked for:
                    // no copy of the request on every provisional.
                    let cancel = if std::mem::take(&mut tx.cancel_pending) {
                        tx.request.as_ref().map(build_cancel)
                    } else {
                        None
                    };
                    let peer = tx.peer;
                    self.events.push_back(TxEvent::Response { key: key.clone(), response: resp });
                    if let Some(Ok(cancel)) = cancel
                        && self.send_request(now, cancel, peer).is_ok()
                    {
                        self.arm_cancel_timeout(now, &key);
                    }
                } else if status < 300 {
                    // RFC 6026 §8.4: a 2xx moves the transaction to Accepted and
                    // starts Timer M = 64*T1; the 2xx goes to the TU.
                    tx.state = TxState::Accepted;
                    tx.request = None;
                    Self::disarm(tx, Timer::B);
                    let at = now + t.t1x64();
                    tx.timers[Timer::M.idx()] = Some(at);
                    self.events.push_back(TxEvent::Response { key: key.clone(), response: resp });
                    self.schedule(slot, Timer::M, at);
                } else {
                    // §17.1.1.2: "When in either the Calling or Proceeding states,
                    // reception of a response with status code from 300-699 MUST
                    // cause the client transaction to transition to Completed. The
                    // client transaction MUST pass the received response up to the
                    // TU, and the client transaction MUST generate an ACK request."
                    tx.state = TxState::Completed;
                    Self::disarm(tx, Timer::B);
                    let ack = tx.request.take().map(|r| build_ack(&r, &resp).to_bytes());
                    tx.ack_bytes = ack.clone();
                    let (peer, reliable) = (tx.peer, tx.reliable);
                    if let Some(ack) = ack {
                        self.send(peer, ack);
                    }
                    self.events.push_back(TxEvent::Response { key: key.clone(), response: resp });
                    // "Timer D ... at least 32 seconds for unreliable transports,
                    // and a value of zero seconds for reliable transports."
                    if reliable {
                        self.terminate(&key);
                    } else {
                        self.arm_at(slot, Timer::D, now + t.d);
                    }
                }
            }
            // RFC 6026 §8.4: further 2xx are passed to the TU; others are
            // discarded (by the last arm).
            (TxKind::ClientInvite, TxState::Accepted) if (200..300).contains(&status) => {
                self.events.push_back(TxEvent::Response { key, response: resp });
            }
            // §17.1.1.2: "Any retransmissions of the final response that are
            // received while in the Completed state MUST cause the ACK to be
            // re-passed to the transport layer for retransmission, but the
            // newly received response MUST NOT be passed up to the TU."
            (TxKind::ClientInvite, TxState::Completed) if status >= 300 => {
                if let Some(ack) = tx.ack_bytes.clone() {
                    let peer = tx.peer;
                    self.send(peer, ack);
                }
            }
            (TxKind::ClientNonInvite, TxState::Trying | TxState::Proceeding) => {
                if status < 200 {
                    // §17.1.2.2: provisional → Proceeding, passed up.
                    tx.state = TxState::Proceeding;
                    self.events.push_back(TxEvent::Response { key, response: resp });
                } else {
                    // §17.1.2.2: final → Completed, passed up, Timer K = T4
                    // (unreliable) or zero (reliable). No more retransmissions.
                    tx.state = TxState::Completed;
                    tx.request_bytes = Bytes::new();
                    Self::disarm(tx, Timer::E);
                    Self::disarm(tx, Timer::F);
                    let reliable = tx.reliable;
                    let at = now + t.t4;
                    if !reliable {
                        tx.timers[Timer::K.idx()] = Some(at);
                    }
                    self.events.push_back(TxEvent::Response { key: key.clone(), response: resp });
                    if reliable {
                        self.terminate(&key);
                    } else {
                        self.schedule(slot, Timer::K, at);
                    }
                }
            }
            // Completed non-INVITE: retransmissions absorbed; likewise
            // non-2xx in Accepted and non-finals in Completed (INVITE).
            _ => {}
        }
    }

    // ----- server side -------------------------------------------------

    /// Sends a response in a server transaction. 1xx keep it Proceeding; a
    /// 2xx to an INVITE moves it to Accepted (the TU retransmits the 2xx by
    /// calling this again until the ACK comes, §13.3.1.4); other finals move
    /// it to Completed.
    pub fn send_response(&mut self, now: Instant, key: &TxKey, resp: Response) -> Result<(), TransactionError> {
        self.send_response_bytes(now, key, resp.status, resp.to_bytes())
    }

    /// [`TransactionLayer::send_response`] for a response already printed
    /// (`status` is its status code).
    pub fn send_response_bytes(
        &mut self,
        now: Instant,
        key: &TxKey,
        status: u16,
        bytes: Bytes,
    ) -> Result<(), TransactionError> {
        let t = self.config.timers;
        let slot = self.txs.slot_of(key).ok_or(TransactionError::NoTransaction)?;
        let tx = self.txs.at_mut(slot).ok_or(TransactionError::NoTransaction)?;
        let peer = tx.peer;
        match (tx.kind, tx.state) {
            (TxKind::ServerInvite, TxState::Proceeding) => {
                // Kept for resending on a retransmitted INVITE (§17.2.1) and
                // for Timer G; a 2xx is not (the transaction absorbs
                // retransmissions in Accepted, RFC 6026 §8.7, and the TU
                // retransmits its 2xx itself).
                tx.last_response = (!(200..300).contains(&status)).then(|| bytes.clone());
                tx.last_status = status;
                self.transmits.push_back(Transmit { peer, data: bytes });
                if status < 200 {
                    // §17.2.1: "The TU passes any number of provisional responses
                    // to the server transaction."
                } else if status < 300 {
                    // RFC 6026 §8.5: 2xx → Accepted, Timer L = 64*T1.
                    tx.state = TxState::Accepted;
                    let at = now + t.t1x64();
                    tx.timers[Timer::L.idx()] = Some(at);
                    self.schedule(slot, Timer::L, at);
                } else {
                    // §17.2.1: 300-699 → Completed; Timer G = T1 (unreliable),
                    // Timer H = 64*T1.
                    tx.state = TxState::Completed;
                    tx.interval = t.t1;
                    if !tx.reliable {
                        self.arm_at(slot, Timer::G, now + t.t1);
                    }
                    self.arm_at(slot, Timer::H, now + t.t1x64());
                }
                Ok(())
            }
            (TxKind::ServerInvite, TxState::Accepted) if (200..300).contains(&status) => {
                // RFC 6026 §8.5: 2xx retransmissions from the TU pass through.
                self.transmits.push_back(Transmit { peer, data: bytes });
                Ok(())
            }
            (TxKind::ServerNonInvite, TxState::Trying | TxState::Proceeding) => {
                // Kept for resending on a retransmitted request (§17.2.2),
                // except a final one over a reliable transport, which ends
                // the transaction now.
                tx.last_response = (status < 200 || !tx.reliable).then(|| bytes.clone());
                tx.last_status = status;
                self.transmits.push_back(Transmit { peer, data: bytes });
                if status < 200 {
                    tx.state = TxState::Proceeding;
                } else {
                    // §17.2.2: final → Completed; Timer J = 64*T1 (unreliable) or zero.
                    tx.state = TxState::Completed;
                    if tx.reliable {
                        self.terminate_at(slot);
                    } else {
                        let at = now + t.t1x64();
                        tx.timers[Timer::J.idx()] = Some(at);
                        self.schedule(slot, Timer::J, at);
                    }
                }
                Ok(())
            }
            (_, state) => Err(TransactionError::InvalidState { state, status }),
        }
    }

    fn server_key(req: &Request) -> Option<TxKey> {
        let via = top_via(&req.headers)?;
        let method = if req.method == Method::Ack { Method::Invite } else { req.method.clone() };
        match via.branch() {
            Some(b) if b.starts_with(BRANCH_COOKIE) => {
                Some(TxKey { role: Role::Server, branch: ByteString::from(b), method, sent_by: sent_by(via) })
            }
            _ => {
                // RFC 2543 fallback (§17.2.3): match on Call-ID, From tag, CSeq
                // number and the top Via.
                let h = &req.headers;
                let key =
                    format!("2543:{}:{}:{}", h.call_id()?, h.from().and_then(|f| f.tag()).unwrap_or(""), h.cseq()?.seq);
                Some(TxKey { role: Role::Server, branch: ByteString::from(key), method, sent_by: sent_by(via) })
            }
        }
    }

    fn new_server_tx(&mut self, key: &TxKey, req: &Request, peer: Peer) {
        let invite = req.method == Method::Invite;
        self.txs.insert(Box::new(Tx {
            key: key.clone(),
            kind: if invite { TxKind::ServerInvite } else { TxKind::ServerNonInvite },
            state: if invite { TxState::Proceeding } else { TxState::Trying },
            peer: response_peer(req, peer),
            reliable: peer.transport.is_reliable(),
            request: None,
            request_bytes: Bytes::new(),
            last_response: None,
            last_status: 0,
            ack_bytes: None,
            interval: self.config.timers.t1,
            timers: [None; TIMERS],
            cancel_pending: false,
        }));
    }

    fn server_request(&mut self, now: Instant, mut req: Request, peer: Peer) {
        stamp_via(&mut req, &peer);
        let Some(key) = Self::server_key(&req) else { return };
        let t = self.config.timers;
        if req.method == Method::Ack {
            match self.txs.get_mut(&key) {
                Some(tx) if tx.kind == TxKind::ServerInvite && tx.state == TxState::Completed => {
                    // §17.2.1: "If an ACK is received while the server transaction is
                    // in the Completed state, the server transaction MUST transition
                    // to the Confirmed state. ... timer I is set to fire in T4
                    // seconds for unreliable transports, and zero seconds for
                    // reliable transports."
                    tx.state = TxState::Confirmed;
                    // Confirmed absorbs ACKs and resends nothing.
                    tx.last_response = None;
                    Self::disarm(tx, Timer::G);
                    Self::disarm(tx, Timer::H);
                    if tx.reliable {
                        self.terminate(&key);
                    } else {
                        self.arm(&key, Timer::I, now + t.t4);
                    }
                }
                // Confirmed: "any ACKs that are received are absorbed".
                Some(tx) if tx.kind == TxKind::ServerInvite && tx.state == TxState::Confirmed => {}
                _ => self.events.push_back(TxEvent::Ack { request: req, peer }),
            }
            return;
        }
        if let Some(tx) = self.txs.get(&key) {
            // A retransmission: §17.2.1 / §17.2.2 resend the last response, if
            // any; RFC 6026 §8.7: absorbed in Accepted.
            let resend = match tx.state {
                TxState::Proceeding | TxState::Completed => tx.last_response.clone(),
                _ => None,
            };
            if let Some(bytes) = resend {
                let p = tx.peer;
                self.send(p, bytes);
            }
            return;
        }
        // A new request.
        if req.method == Method::Cancel {
            self.new_server_tx(&key, &req, peer);
            let invite_key = TxKey { method: Method::Invite, ..key.clone() };
            let status = match self.txs.get(&invite_key) {
                Some(inv) if inv.kind == TxKind::ServerInvite => {
                    if inv.state == TxState::Proceeding {
                        self.events.push_back(TxEvent::Cancelled { invite: invite_key.clone(), request: req.clone() });
                    }
                    200
                }
                // §9.2: "If the UAS did not find a matching transaction for the
                // CANCEL ..., it SHOULD respond to the CANCEL with a 481".
                _ => 481,
            };
            let resp = self.layer_response(&req, status);
            let _ = self.send_response(now, &key, resp);
            return;
        }
        // §8.2.2.3: Require with an extension we do not support → 420 listing it.
        let unsupported: Vec<&str> = req
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::Require(tags) => Some(tags.iter()),
                _ => None,
            })
            .flatten()
            .filter(|t| !self.config.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        // §8.2.2.1: an unknown Request-URI scheme → 416.
        let bad_scheme = matches!(req.uri, Uri::Other(_));
        self.new_server_tx(&key, &req, peer);
        if bad_scheme || !unsupported.is_empty() {
            let mut resp = self.layer_response(&req, if bad_scheme { 416 } else { 420 });
            if !bad_scheme {
                resp.headers.push(Header::Unsupported(unsupported.into_iter().collect()));
            }
            let _ = self.send_response(now, &key, resp);
            return;
        }
        if req.method == Method::Invite {
            // §17.2.1: "the server transaction MUST generate a 100 (Trying)
            // response unless it knows that the TU will generate a provisional
            // or final response within 200 ms". We send it at once.
            // Printed straight from the request: nothing else needs it.
            let _ = self.send_response_bytes(now, &key, 100, req.print_response(100, None, |_| {}));
        }
        self.events.push_back(TxEvent::Request { key, request: req, peer });
    }

    fn layer_response(&self, req: &Request, status: u16) -> Response {
        let mut resp = response_for(req, status, Some("sipact-tl"));
        if let Some(s) = &self.config.server {
            resp.headers.push(Header::Server(ByteString::from(s.as_str())));
        }
        resp
    }

    // ----- input -------------------------------------------------------

    /// Feeds a parsed message received from `peer`.
    pub fn handle_message(&mut self, now: Instant, peer: Peer, msg: SipMessage) {
        match msg {
            SipMessage::Request(req) => self.server_request(now, req, peer),
            SipMessage::Response(resp) => {
                let key =
                    top_via(&resp.headers).and_then(|v| v.branch()).zip(resp.headers.cseq()).map(|(b, c)| TxKey {
                        role: Role::Client,
                        branch: ByteString::from(b),
                        method: c.method.clone(),
                        sent_by: ByteString::new(),
                    });
                let tx = key.as_ref().and_then(|k| self.txs.get_mut(k));
                let found = tx.is_some();
                // A response on a connection pins the transaction to it: if
                // that connection closes, the transaction ends.
                if let Some(tx) = tx
                    && tx.peer.flow.is_none()
                    && peer.flow.is_some()
                    && tx.peer.transport == peer.transport
                {
                    tx.peer.flow = peer.flow;
                }
                match key {
                    Some(k) if found => self.client_response(now, k, resp),
                    _ => self.events.push_back(TxEvent::StrayResponse { response: resp, peer }),
                }
            }
        }
    }

    /// Parses and feeds bytes from `peer` (a datagram or a framed stream
    /// message). A request that parses only partly is answered statelessly:
    /// 505 for another SIP version, 400 naming the bad header otherwise
    /// (never for ACK). Responses that do not parse are dropped. The parse
    /// error is returned for logging.
    pub fn handle_bytes(&mut self, now: Instant, peer: Peer, data: Bytes) -> Result<(), ParseError> {
        let (msg, errors) = SipMessage::parse_lenient(data, &self.config.limits)?;
        let Some(err) = errors.into_iter().next() else {
            self.handle_message(now, peer, msg);
            return Ok(());
        };
        if let SipMessage::Request(req) = &msg {
            let h = &req.headers;
            let can_answer = req.method != Method::Ack
                && h.via().is_some()
                && h.from().is_some()
                && h.to().is_some()
                && h.call_id().is_some()
                && h.cseq().is_some();
            if can_answer {
                let mut req = req.clone();
                stamp_via(&mut req, &peer);
                let (status, reason) = match err.kind {
                    ErrorKind::UnsupportedVersion => (505, None),
                    _ => (400, Some(err.reason_phrase())),
                };
                let mut resp = self.layer_response(&req, status);
                if let Some(r) = reason {
                    resp.reason = ByteString::from(r);
                }
                self.send(response_peer(&req, peer), resp.to_bytes());
            }
        }
        Err(err)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(epoch) = self.epoch else { return self.shrink() };
        let now_key = time_key(epoch, now);
        while let Some(d) = self.queues.peek() {
            if d.key > now_key {
                break;
            }
            let Some(d) = self.queues.pop() else { break };
            // Live when the transaction still has this timer armed for this
            // time (a re-armed or disarmed timer leaves a stale entry).
            if let Some(at) = self.armed(&d)
                && let Some(tx) = self.txs.at_mut(d.slot)
            {
                tx.timers[d.timer.idx()] = None;
                self.fire(at, d.timer, d.slot);
            }
        }
        self.shrink();
    }

    /// Gives back memory after a burst: the table of transactions and the
    /// timer queues keep their largest size otherwise.
    fn shrink(&mut self) {
        self.txs.shrink();
        self.queues.shrink();
    }

    fn fire(&mut self, at: Instant, timer: Timer, slot: u32) {
        let t = self.config.timers;
        let Some(tx) = self.txs.at_mut(slot) else { return };
        match timer {
            Timer::A => {
                // §17.1.1.2: "When timer A fires, the client transaction MUST
                // retransmit the request ... and reset the timer with a value of 2*T1."
                if tx.state == TxState::Calling {
                    tx.interval *= 2;
                    let (peer, bytes, next) = (tx.peer, tx.request_bytes.clone(), at + tx.interval);
                    self.send(peer, bytes);
                    self.arm_at(slot, Timer::A, next);
                }
            }
            Timer::E => {
                // §17.1.2.2: retransmit; in Trying the interval doubles up to
                // T2; in Proceeding it is T2.
                if matches!(tx.state, TxState::Trying | TxState::Proceeding) {
                    tx.interval = if tx.state == TxState::Trying { (tx.interval * 2).min(t.t2) } else { t.t2 };
                    let (peer, bytes, next) = (tx.peer, tx.request_bytes.clone(), at + tx.interval);
                    self.send(peer, bytes);
                    self.arm_at(slot, Timer::E, next);
                }
            }
            Timer::G => {
                // §17.2.1: "If timer G fires, the response is passed to the
                // transport layer once more for retransmission, and timer G is
                // set to fire in MIN(2*T1, T2) seconds."
                if tx.state == TxState::Completed {
                    tx.interval = (tx.interval * 2).min(t.t2);
                    let next = at + tx.interval;
                    if let Some(bytes) = tx.last_response.clone() {
                        let peer = tx.peer;
                        self.send(peer, bytes);
                    }
                    self.arm_at(slot, Timer::G, next);
                }
            }
            Timer::B | Timer::F => {
                // §17.1.1.2 / §17.1.2.2: timeout reported to the TU, transaction terminated.
                self.events.push_back(TxEvent::Timeout { key: tx.key.clone() });
                self.terminate_at(slot);
            }
            Timer::H => {
                // §17.2.1: "If timer H fires while in the Completed state, ...
                // the server transaction MUST transition to the Terminated
                // state, and MUST indicate to the TU that a transaction failure
                // has occurred."
                self.events.push_back(TxEvent::NoAck { key: tx.key.clone() });
                self.terminate_at(slot);
            }
            Timer::D | Timer::I | Timer::J | Timer::K | Timer::L | Timer::M => self.terminate_at(slot),
        }
    }

    /// A send to `key`'s destination failed: the transaction ends and the
    /// TU hears [`TxEvent::TransportError`] (§17.1.4, §17.2.4).
    pub fn handle_send_error(&mut self, key: &TxKey) {
        if self.txs.contains_key(key) {
            self.events.push_back(TxEvent::TransportError { key: key.clone() });
            self.terminate(key);
        }
    }

    /// The transport opened connection `flow` to carry messages to
    /// `transport`/`addr` that named no flow: the client transactions towards
    /// that destination not pinned to a connection yet are pinned to it.
    pub fn handle_flow_assigned(&mut self, transport: crate::TransportKind, addr: std::net::SocketAddr, flow: FlowId) {
        for tx in self.txs.iter_mut() {
            if tx.key.role == Role::Client
                && tx.peer.flow.is_none()
                && tx.peer.transport == transport
                && tx.peer.addr == addr
            {
                tx.peer.flow = Some(flow);
            }
        }
    }

    /// A connection closed: client transactions pinned to it end with
    /// [`TxEvent::TransportError`]; server transactions on it can no longer
    /// answer and end too. Dialogs are not touched.
    pub fn handle_flow_closed(&mut self, flow: FlowId) {
        let mut dead: Vec<TxKey> =
            self.txs.iter().filter(|tx| tx.peer.flow == Some(flow)).map(|tx| tx.key.clone()).collect();
        dead.sort_by(|a, b| a.branch.cmp(&b.branch));
        for key in dead {
            self.handle_send_error(&key);
        }
    }

    /// Runs a command of a transaction user that does not hold the layer
    /// (see [`TxCommand`]). A refused request is reported as
    /// [`TxEvent::Refused`] (the user already counts on its key); refused
    /// responses and cancels are returned, as the direct calls return them.
    pub fn handle_command(&mut self, now: Instant, command: TxCommand) -> Result<(), TransactionError> {
        match command {
            TxCommand::SendRequest { request, peer } => {
                let key = client_key(&request)?;
                if let Err(error) = self.send_request(now, request, peer) {
                    self.events.push_back(TxEvent::Refused { key, error: error.clone() });
                    return Err(error);
                }
                Ok(())
            }
            TxCommand::SendRequestBytes { key, data, peer } => {
                if let Err(error) = self.send_request_bytes(now, key.clone(), data, peer) {
                    self.events.push_back(TxEvent::Refused { key, error: error.clone() });
                    return Err(error);
                }
                Ok(())
            }
            TxCommand::SendResponse { key, response } => self.send_response(now, &key, response),
            TxCommand::SendResponseBytes { key, status, data } => self.send_response_bytes(now, &key, status, data),
            TxCommand::Cancel { invite } => self.cancel(now, &invite).map(|_| ()),
            TxCommand::SendStateless { peer, message } => {
                self.send_stateless(peer, &message);
                Ok(())
            }
            TxCommand::SendBytes { peer, data } => {
                self.send_bytes(peer, data);
                Ok(())
            }
            TxCommand::FlowClosed { flow } => {
                self.handle_flow_closed(flow);
                Ok(())
            }
            TxCommand::FlowAssigned { transport, addr, flow } => {
                self.handle_flow_assigned(transport, addr, flow);
                Ok(())
            }
        }
    }
}

/// A command for a transaction layer, from a transaction user that does
/// not hold it (a [`UserAgentCore`](crate::ua::UserAgentCore) made with
/// [`new_external`](crate::ua::UserAgentCore::new_external)): each variant
/// is one call of the layer's API, run by [`TransactionLayer::handle_command`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TxCommand {
    /// [`TransactionLayer::send_request`]; the transaction's key is
    /// [`client_key`] of the request.
    SendRequest {
        /// The request, with its top Via and branch.
        request: Request,
        /// Where to send it.
        peer: Peer,
    },
    /// [`TransactionLayer::send_request_bytes`].
    SendRequestBytes {
        /// The transaction's key.
        key: TxKey,
        /// The printed request.
        data: Bytes,
        /// Where to send it.
        peer: Peer,
    },
    /// [`TransactionLayer::send_response`].
    SendResponse {
        /// The server transaction.
        key: TxKey,
        /// The response.
        response: Response,
    },
    /// [`TransactionLayer::send_response_bytes`].
    SendResponseBytes {
        /// The server transaction.
        key: TxKey,
        /// The status code.
        status: u16,
        /// The printed response.
        data: Bytes,
    },
    /// [`TransactionLayer::cancel`]; the CANCEL's key, once sent, is
    /// [`cancel_key`] of the INVITE's.
    Cancel {
        /// The client INVITE transaction.
        invite: TxKey,
    },
    /// [`TransactionLayer::send_stateless`].
    SendStateless {
        /// Where to send it.
        peer: Peer,
        /// The message.
        message: SipMessage,
    },
    /// [`TransactionLayer::send_bytes`].
    SendBytes {
        /// Where to send it.
        peer: Peer,
        /// The printed message.
        data: Bytes,
    },
    /// [`TransactionLayer::handle_flow_closed`].
    FlowClosed {
        /// The connection.
        flow: FlowId,
    },
    /// [`TransactionLayer::handle_flow_assigned`].
    FlowAssigned {
        /// Transport of the destination.
        transport: crate::TransportKind,
        /// Address of the destination.
        addr: SocketAddr,
        /// The new connection.
        flow: FlowId,
    },
}

/// The key of the client transaction that sending `req` starts: its top
/// Via branch (which must start with `z9hG4bK`) and its method. The layer
/// keys its client transactions with it, so a transaction user can know
/// the key before the layer has seen the request.
pub fn client_key(req: &Request) -> Result<TxKey, TransactionError> {
    if req.method == Method::Ack {
        return Err(TransactionError::AckNotAllowed);
    }
    let branch = top_via(&req.headers)
        .and_then(|v| v.branch())
        .filter(|b| b.starts_with(BRANCH_COOKIE))
        .ok_or(TransactionError::MissingBranch)?;
    Ok(TxKey {
        role: Role::Client,
        branch: ByteString::from(branch),
        method: req.method.clone(),
        sent_by: ByteString::new(),
    })
}

/// The key of the CANCEL of client INVITE transaction `invite` (RFC 3261
/// §9.1: the CANCEL has the INVITE's top Via, so its branch).
pub fn cancel_key(invite: &TxKey) -> TxKey {
    TxKey { method: Method::Cancel, ..invite.clone() }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same
/// Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, the To
/// of the response, the INVITE's Route headers.
pub fn build_ack(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    let h = &invite.headers;
    if let Some(v) = h.via() {
        ack.headers.push(Header::Via(v.clone()));
    }
    ack.headers.push(Header::MaxForwards(70));
    for hdr in h.iter() {
        match hdr {
            Header::From(_) | Header::CallId(_) | Header::Route(_) => ack.headers.push(hdr.clone()),
            Header::CSeq(c) => ack.headers.push(Header::CSeq(CSeq { seq: c.seq, method: Method::Ack })),
            _ => {}
        }
    }
    if let Some(to) = resp.headers.to() {
        ack.headers.push(Header::To(to.clone()));
    }
    ack
}

/// A CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, Call-ID, To,
/// From, CSeq number and top Via (so the same branch), and its Route headers.
pub fn build_cancel(invite: &Request) -> Result<Request, TransactionError> {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    let h = &invite.headers;
    let via = h.via().ok_or(TransactionError::MissingBranch)?;
    c.headers.push(Header::Via(via.clone()));
    c.headers.push(Header::MaxForwards(70));
    let mut has_cseq = false;
    for hdr in h.iter() {
        match hdr {
            Header::From(_) | Header::To(_) | Header::CallId(_) | Header::Route(_) => c.headers.push(hdr.clone()),
            Header::CSeq(cs) => {
                has_cseq = true;
                c.headers.push(Header::CSeq(CSeq { seq: cs.seq, method: Method::Cancel }))
            }
            _ => {}
        }
    }
    if !has_cseq {
        return Err(TransactionError::MissingHeader("CSeq"));
    }
    Ok(c)
}

/// A new branch: the magic cookie and `len` random characters.
pub fn new_branch(rng: &mut dyn crate::Rng) -> ByteString {
    // The cookie and 16 characters: 23 bytes, held inline.
    let mut buf = [0u8; BRANCH_COOKIE.len() + 16];
    buf[..BRANCH_COOKIE.len()].copy_from_slice(BRANCH_COOKIE.as_bytes());
    rng.fill_token(&mut buf[BRANCH_COOKIE.len()..]);
    crate::rand::token_text(&buf)
}

/// A Via for a request we send.
pub fn local_via(transport: crate::TransportKind, host: Host, port: u16, branch: &str) -> Via {
    let mut v = Via::new(transport.via_token(), host, Some(port), branch);
    v.params.set("rport", None);
    v
}

#[cfg(test)]
mod timer_queue_tests {
    use super::{Deadline, Timer, TimerQueues};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    const LETTERS: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    /// Deadlines armed and popped in a random interleaving come out of the
    /// queues in the order a binary heap gives them (time, then arming
    /// order), including doubling timers armed out of order, equal times,
    /// times before the epoch and the saturated far future.
    #[test]
    fn queues_pop_in_heap_order() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for round in 0..200 {
            let mut q = TimerQueues::default();
            let mut heap = BinaryHeap::new();
            let mut now = 0i64;
            for seq in 1..=300u64 {
                if next(3) == 0 {
                    assert_eq!(q.pop(), heap.pop().map(|Reverse(d)| d), "round {round}");
                    assert_eq!(q.peek(), heap.peek().map(|Reverse(d)| d));
                    continue;
                }
                now += next(50) as i64;
                let timer = LETTERS[next(12) as usize];
                // Fixed durations for most letters, doubling steps for A, E, G.
                let dur = match timer {
                    Timer::A | Timer::E | Timer::G => 500 << next(6),
                    Timer::I | Timer::K => 5_000,
                    _ => 32_000,
                };
                let key = match next(40) {
                    0 => i64::MAX,
                    1 => -now,
                    _ => now + dur,
                };
                let slot = next(8) as u32;
                q.push(Deadline { key, seq, slot, timer });
                heap.push(Reverse(Deadline { key, seq, slot, timer }));
                assert_eq!(q.peek(), heap.peek().map(|Reverse(d)| d));
            }
            while let Some(Reverse(d)) = heap.pop() {
                assert_eq!(q.pop(), Some(d), "round {round}");
            }
            assert_eq!(q.pop(), None);
            assert_eq!(q.peek(), None);
        }
    }
}
