//! # sipact-testkit
//!
//! Development-only helpers for testing the sans-IO core:
//! - [`NetSim`]: a seeded, deterministic network with loss, duplication,
//!   reordering and delay;
//! - [`Pair`]: two [`UserAgentCore`]s joined by a `NetSim`, driven in
//!   synthetic time;
//! - [`FakeSdp`]: description hooks that write small SDP bodies and record
//!   what they saw.
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipact_message::{SipMessage, Uri};
use sipact_proto::session::{Body, DescriptionHooks};
use sipact_proto::transaction::TransactionLayer;
use sipact_proto::transport::{Peer, TransportKind};
use sipact_proto::ua::{CoreConfig, UaEvent, UserAgentCore};
use sipact_proto::{Rng, SplitMix64};

pub use sipact_message as message;
pub use sipact_proto as proto;

/// Network behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet gets extra delay (and so may overtake or be overtaken).
    pub reorder: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Largest extra delay of a reordered packet.
    pub jitter: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(50),
        }
    }
}

/// A packet in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sender address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// Bytes.
    pub data: Bytes,
}

/// A deterministic network: the same seed gives the same losses.
#[derive(Debug)]
pub struct NetSim {
    config: NetConfig,
    rng: SplitMix64,
    queue: BTreeMap<(Instant, u64), Packet>,
    seq: u64,
    /// Every packet handed to the network, in order (for wire assertions).
    pub sent: Vec<Packet>,
    /// When each packet of `sent` was handed to the network (same index).
    pub sent_at: Vec<Instant>,
    /// Packets dropped.
    pub lost: usize,
    /// Forking: an out-of-dialog request (no To tag: INVITE, its CANCEL,
    /// their retransmissions) sent to a key is also delivered to each
    /// address listed, as a forking proxy in front of the key would do.
    /// Each copy meets loss and delay on its own; `sent` records it once.
    pub fork: HashMap<SocketAddr, Vec<SocketAddr>>,
}

impl NetSim {
    /// A network with `config`, seeded with `seed`.
    pub fn new(config: NetConfig, seed: u64) -> Self {
        NetSim {
            config,
            rng: SplitMix64::new(seed),
            queue: BTreeMap::new(),
            seq: 0,
            sent: Vec::new(),
            sent_at: Vec::new(),
            lost: 0,
            fork: HashMap::new(),
        }
    }

    /// The network behaviour, to change it mid-run (for instance, a
    /// partition: `loss = 1.0`).
    pub fn config_mut(&mut self) -> &mut NetConfig {
        &mut self.config
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// Hands a packet to the network at `now`.
    pub fn send(&mut self, now: Instant, packet: Packet) {
        self.sent.push(packet.clone());
        self.sent_at.push(now);
        let forks = match self.fork.get(&packet.to) {
            Some(targets) if is_initial_request(&packet.data) => targets.clone(),
            _ => Vec::new(),
        };
        self.transmit(now, packet.clone());
        for to in forks {
            self.transmit(now, Packet { to, ..packet.clone() });
        }
    }

    fn transmit(&mut self, now: Instant, packet: Packet) {
        if self.chance(self.config.loss) {
            self.lost += 1;
            return;
        }
        let copies = if self.chance(self.config.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let mut at = now + self.config.delay;
            if self.chance(self.config.reorder) {
                let j = self.config.jitter.as_micros().max(1) as u64;
                at += Duration::from_micros(self.rng.below(j));
            }
            self.seq += 1;
            self.queue.insert((at, self.seq), packet.clone());
        }
    }

    /// When the next packet arrives.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next packet due at or before `now`.
    pub fn deliver(&mut self, now: Instant) -> Option<Packet> {
        let key = *self.queue.keys().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// Packets still in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

/// What a [`FakeSdp`] saw, shared with the test.
#[derive(Debug, Default, Clone)]
pub struct SdpLog {
    /// Offers made (`hold` flag).
    pub offers: Vec<bool>,
    /// Offers answered (the direction attribute of the offer).
    pub answered: Vec<String>,
    /// Answers applied (their direction attribute).
    pub applied: Vec<String>,
}

/// Description hooks writing a minimal audio SDP: `a=sendrecv`, or
/// `a=sendonly` when holding; answers mirror the offer's direction.
#[derive(Debug, Clone)]
pub struct FakeSdp {
    name: String,
    version: u32,
    /// The shared log.
    pub log: Arc<Mutex<SdpLog>>,
}

impl FakeSdp {
    /// Hooks for a party called `name`.
    pub fn new(name: &str) -> Self {
        FakeSdp { name: name.to_owned(), version: 0, log: Arc::new(Mutex::new(SdpLog::default())) }
    }

    fn body(&mut self, dir: &str) -> Body {
        self.version += 1;
        Body::sdp(format!(
            "v=0\r\no={} 1 {} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na={dir}\r\n",
            self.name, self.version
        ))
    }

    /// The direction attribute of an SDP body.
    pub fn direction(b: &[u8]) -> String {
        let text = String::from_utf8_lossy(b);
        for d in ["sendrecv", "sendonly", "recvonly", "inactive"] {
            if text.contains(&format!("a={d}")) {
                return d.to_owned();
            }
        }
        "sendrecv".to_owned()
    }
}

impl DescriptionHooks for FakeSdp {
    fn offer(&mut self, hold: bool) -> Result<Body, u16> {
        if let Ok(mut l) = self.log.lock() {
            l.offers.push(hold);
        }
        Ok(self.body(if hold { "sendonly" } else { "sendrecv" }))
    }

    fn answer(&mut self, offer: &Body, hold: bool) -> Result<Body, u16> {
        let d = FakeSdp::direction(&offer.data);
        if let Ok(mut l) = self.log.lock() {
            l.answered.push(d.clone());
        }
        if !String::from_utf8_lossy(&offer.data).contains("m=audio") {
            return Err(488);
        }
        let ans = match (d.as_str(), hold) {
            ("sendonly", _) => "recvonly",
            ("inactive", _) => "inactive",
            ("recvonly", _) => "sendonly",
            (_, true) => "sendonly",
            _ => "sendrecv",
        };
        Ok(self.body(ans))
    }

    fn apply_answer(&mut self, answer: &Body) -> Result<(), u16> {
        if let Ok(mut l) = self.log.lock() {
            l.applied.push(FakeSdp::direction(&answer.data));
        }
        Ok(())
    }
}

/// One side of a [`Pair`].
pub struct Side {
    /// The UA core.
    pub ua: UserAgentCore,
    /// The transaction layer serving `ua` when it was made with
    /// [`UserAgentCore::new_external`] (as the actors run it): commands
    /// and events cross between the two at once, in order.
    pub tl: Option<TransactionLayer>,
    /// Its address.
    pub addr: SocketAddr,
    /// Events seen so far, with the time they were seen.
    pub events: Vec<(Instant, UaEvent)>,
    /// The SDP log of the sessions it made.
    pub sdp: Arc<Mutex<Vec<Arc<Mutex<SdpLog>>>>>,
}

impl Side {
    /// A UA named `user` at `addr` over UDP with default settings tweaked by `f`.
    pub fn new(user: &str, addr: SocketAddr, seed: u64, f: impl FnOnce(&mut CoreConfig)) -> Side {
        Side::build(user, addr, seed, f, false)
    }

    /// Like [`Side::new`], with the transaction layer outside the core
    /// ([`UserAgentCore::new_external`]), held by the side.
    pub fn external(user: &str, addr: SocketAddr, seed: u64, f: impl FnOnce(&mut CoreConfig)) -> Side {
        Side::build(user, addr, seed, f, true)
    }

    fn build(user: &str, addr: SocketAddr, seed: u64, f: impl FnOnce(&mut CoreConfig), external: bool) -> Side {
        let mut cfg = CoreConfig::new(TransportKind::Udp, addr, user);
        f(&mut cfg);
        let logs: Arc<Mutex<Vec<Arc<Mutex<SdpLog>>>>> = Arc::default();
        let logs2 = logs.clone();
        let name = user.to_owned();
        let hooks = Box::new(move |_: &sipact_proto::ua::HooksContext| {
            let s = FakeSdp::new(&name);
            if let Ok(mut l) = logs2.lock() {
                l.push(s.log.clone());
            }
            Box::new(s) as Box<dyn DescriptionHooks>
        });
        let rng = Box::new(SplitMix64::new(seed));
        let (ua, tl) = if external {
            let tl = TransactionLayer::new(cfg.tx.clone());
            (UserAgentCore::new_external(cfg, rng, hooks), Some(tl))
        } else {
            (UserAgentCore::new(cfg, rng, hooks), None)
        };
        Side { ua, tl, addr, events: Vec::new(), sdp: logs }
    }

    /// Runs the core's transaction commands on the side's layer and hands
    /// the layer's events to the core, until neither has more.
    fn shuttle(&mut self, now: Instant) {
        let Some(tl) = self.tl.as_mut() else { return };
        loop {
            let mut moved = false;
            while let Some(c) = self.ua.poll_tx_command() {
                moved = true;
                let _ = tl.handle_command(now, c);
            }
            while let Some(e) = tl.poll_event() {
                moved = true;
                self.ua.handle_tx_event(now, e);
            }
            if !moved {
                return;
            }
        }
    }

    /// Bytes from the network.
    pub fn handle_bytes(&mut self, now: Instant, peer: Peer, data: Bytes) {
        match self.tl.as_mut() {
            Some(tl) => {
                let _ = tl.handle_bytes(now, peer, data);
                self.shuttle(now);
            }
            None => {
                let _ = self.ua.handle_bytes(now, peer, data);
            }
        }
    }

    /// Next bytes for the network.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<sipact_proto::Transmit> {
        self.shuttle(now);
        match self.tl.as_mut() {
            Some(tl) => tl.poll_transmit(),
            None => self.ua.poll_transmit(),
        }
    }

    /// The earliest deadline of the core and of its external layer.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let a = self.ua.poll_timeout();
        let b = self.tl.as_mut().and_then(TransactionLayer::poll_timeout);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires what is due at `now`: the external layer's timers first, as
    /// the core fires its own layer's first.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tl) = self.tl.as_mut()
            && tl.poll_timeout().is_some_and(|t| t <= now)
        {
            tl.handle_timeout(now);
            self.shuttle(now);
        }
        if self.ua.poll_timeout().is_some_and(|t| t <= now) {
            self.ua.handle_timeout(now);
            self.shuttle(now);
        }
    }

    /// Live transactions, in the core's layer or the external one.
    pub fn transaction_count(&self) -> usize {
        self.tl.as_ref().or(self.ua.transactions()).map_or(0, TransactionLayer::len)
    }

    /// This side's SIP URI.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.ua.config().user, self.addr)
    }

    /// Session events of `id`, in order.
    pub fn session_events(&self, id: u64) -> Vec<&sipact_proto::SessionEvent> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                UaEvent::Session { session, event } if *session == id => Some(event),
                _ => None,
            })
            .collect()
    }

    /// The id of the `n`th incoming session.
    pub fn incoming(&self, n: usize) -> Option<u64> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                UaEvent::Incoming { session, .. } => Some(*session),
                _ => None,
            })
            .nth(n)
    }
}

/// Several UAs on one simulated network, driven in synthetic time.
pub struct Pair {
    /// The parties (index 0 is usually the caller).
    pub sides: Vec<Side>,
    /// The network.
    pub net: NetSim,
    /// Current synthetic time.
    pub now: Instant,
    /// When the run started.
    pub t0: Instant,
}

impl Pair {
    /// Alice at 127.0.0.1:5060 and Bob at 127.0.0.2:5060 over `net`.
    pub fn new(net: NetConfig, seed: u64) -> Pair {
        Pair::with(net, seed, |_| {}, |_| {})
    }

    /// Like [`Pair::new`], with configuration tweaks for each side.
    pub fn with(net: NetConfig, seed: u64, fa: impl FnOnce(&mut CoreConfig), fb: impl FnOnce(&mut CoreConfig)) -> Pair {
        let t0 = Instant::now();
        let a = Side::new("alice", "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable_addr()), seed, fa);
        let b = Side::new("bob", "127.0.0.2:5060".parse().unwrap_or_else(|_| unreachable_addr()), seed ^ 0x5555, fb);
        Pair { sides: vec![a, b], net: NetSim::new(net, seed ^ 0xabcdef), now: t0, t0 }
    }

    /// Like [`Pair::with`], with both transaction layers outside their
    /// cores ([`Side::external`]), as the actors run them.
    pub fn external(
        net: NetConfig,
        seed: u64,
        fa: impl FnOnce(&mut CoreConfig),
        fb: impl FnOnce(&mut CoreConfig),
    ) -> Pair {
        let mut p = Pair::with(net, seed, |_| {}, |_| {});
        let a = p.sides[0].addr;
        let b = p.sides[1].addr;
        p.sides[0] = Side::external("alice", a, seed, fa);
        p.sides[1] = Side::external("bob", b, seed ^ 0x5555, fb);
        p
    }

    /// Adds a third party (Carol at 127.0.0.3:5060); returns its index.
    pub fn add(&mut self, user: &str, addr: SocketAddr, seed: u64) -> usize {
        self.sides.push(Side::new(user, addr, seed, |_| {}));
        self.sides.len() - 1
    }

    /// Moves every transmit into the network and every due packet into its UA.
    fn exchange(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.sides.len() {
            let now = self.now;
            while let Some(t) = self.sides[i].poll_transmit(now) {
                moved = true;
                let from = self.sides[i].addr;
                self.net.send(self.now, Packet { from, to: t.peer.addr, data: t.data });
            }
        }
        while let Some(p) = self.net.deliver(self.now) {
            moved = true;
            if let Some(side) = self.sides.iter_mut().find(|s| s.addr == p.to) {
                side.handle_bytes(self.now, Peer::udp(p.from), p.data);
            }
        }
        for s in &mut self.sides {
            while let Some(e) = s.ua.poll_event() {
                s.events.push((self.now, e));
            }
        }
        moved
    }

    /// Runs until nothing is due before `self.now + d`; fires timers on the way.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            while self.exchange() {}
            let mut next = self.net.next_delivery();
            for s in &mut self.sides {
                if let Some(t) = s.poll_timeout() {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            }
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for s in &mut self.sides {
                        s.handle_timeout(self.now);
                    }
                }
                _ => {
                    self.now = end;
                    while self.exchange() {}
                    return;
                }
            }
        }
    }

    /// Runs until `pred` holds (checked after each step) or `limit` passes.
    /// Returns whether `pred` held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            let step = self.step_once(end);
            if !step {
                break;
            }
        }
        pred(self)
    }

    fn step_once(&mut self, end: Instant) -> bool {
        while self.exchange() {}
        let mut next = self.net.next_delivery();
        for s in &mut self.sides {
            if let Some(t) = s.poll_timeout() {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        match next {
            Some(t) if t <= end => {
                self.now = self.now.max(t);
                for s in &mut self.sides {
                    s.handle_timeout(self.now);
                }
                while self.exchange() {}
                true
            }
            _ => false,
        }
    }

    /// Every SIP message handed to the network, parsed, with sender.
    pub fn wire(&self) -> Vec<(SocketAddr, SipMessage)> {
        self.net.sent.iter().filter_map(|p| SipMessage::parse(p.data.clone()).ok().map(|m| (p.from, m))).collect()
    }

    /// Like [`Pair::wire`], with the synthetic time each message was sent.
    pub fn wire_at(&self) -> Vec<(Instant, SocketAddr, SipMessage)> {
        self.net
            .sent
            .iter()
            .zip(&self.net.sent_at)
            .filter_map(|(p, t)| SipMessage::parse(p.data.clone()).ok().map(|m| (*t, p.from, m)))
            .collect()
    }

    /// A one-line summary per message on the wire (`alice > INVITE`, `bob < 200 INVITE`).
    pub fn ladder(&self) -> Vec<String> {
        self.wire()
            .iter()
            .map(|(from, m)| {
                let who =
                    self.sides.iter().find(|s| s.addr == *from).map(|s| s.ua.config().user.clone()).unwrap_or_default();
                match m {
                    SipMessage::Request(r) => format!("{who} {}", r.method),
                    SipMessage::Response(r) => format!(
                        "{who} {} {}",
                        r.status,
                        r.headers.cseq().map(|c| c.method.to_string()).unwrap_or_default()
                    ),
                }
            })
            .collect()
    }
}

/// A request without a To tag (what a forking proxy forks).
fn is_initial_request(data: &Bytes) -> bool {
    matches!(SipMessage::parse(data.clone()), Ok(SipMessage::Request(r)) if r.headers.to().is_some_and(|t| t.tag().is_none()))
}

fn unreachable_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5060))
}

/// Parses a URI, for tests.
pub fn uri(s: &str) -> Option<Uri> {
    Uri::parse(s).ok()
}
