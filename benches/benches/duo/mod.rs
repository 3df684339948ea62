//! Two `UserAgentCore`s joined in memory, driven in synthetic time: every
//! transmit of one core is handed, as printed bytes, to the other core's
//! `handle_bytes` (so each message is printed once and parsed once), and
//! every event is drained after each input. Used by the `call` and
//! `call_mem` benches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipact_proto::SplitMix64;
use sipact_proto::session::{Body, DescriptionHooks, SessionEvent};
use sipact_proto::transport::{Peer, TransportKind};
use sipact_proto::ua::{CoreConfig, InviteOptions, UaEvent, UserAgentCore};

const OFFER: &[u8] = b"v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
const ANSWER: &[u8] = b"v=0\r\no=bob 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\na=sendrecv\r\n";

/// Description hooks with fixed SDP bodies (static bytes: no allocation,
/// no logging), so the bench measures the SIP core only.
struct StaticSdp;

impl DescriptionHooks for StaticSdp {
    fn offer(&mut self, _hold: bool) -> Result<Body, u16> {
        Ok(Body::sdp(Bytes::from_static(OFFER)))
    }
    fn answer(&mut self, _offer: &Body, _hold: bool) -> Result<Body, u16> {
        Ok(Body::sdp(Bytes::from_static(ANSWER)))
    }
    fn apply_answer(&mut self, _answer: &Body) -> Result<(), u16> {
        Ok(())
    }
}

fn core(user: &str, addr: SocketAddr, seed: u64) -> UserAgentCore {
    let cfg = CoreConfig::new(TransportKind::Udp, addr, user);
    UserAgentCore::new(
        cfg,
        Box::new(SplitMix64::new(seed)),
        Box::new(|_: &sipact_proto::ua::HooksContext| Box::new(StaticSdp) as Box<dyn DescriptionHooks>),
    )
}

/// Counters of one run, to check that every call did what it should.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Messages carried from alice to bob.
    pub a_to_b: u64,
    /// Messages carried from bob to alice.
    pub b_to_a: u64,
    /// Events drained from alice.
    pub a_events: u64,
    /// Events drained from bob.
    pub b_events: u64,
    /// Sessions alice saw accepted (2xx received).
    pub a_accepted: u64,
    /// Sessions bob saw accepted (ACK received).
    pub b_accepted: u64,
    /// Sessions terminated (both sides).
    pub terminated: u64,
}

/// Alice (caller, 127.0.0.1:5060) and Bob (callee, 127.0.0.2:5060) over UDP.
pub struct Duo {
    /// The caller.
    pub a: UserAgentCore,
    /// The callee.
    pub b: UserAgentCore,
    /// Synthetic time.
    pub now: Instant,
    a_peer: Peer,
    b_peer: Peer,
    target: String,
    /// Whether alice hangs up as soon as the call is accepted.
    pub hangup: bool,
    /// Whether the receiving core is asked for its next deadline after
    /// every message, as the dialog actor does to arm its timer.
    pub poll_after_input: bool,
    /// Counters.
    pub counts: Counts,
}

impl Duo {
    /// A fresh pair.
    pub fn new() -> Duo {
        let a_addr: SocketAddr = ([127, 0, 0, 1], 5060).into();
        let b_addr: SocketAddr = ([127, 0, 0, 2], 5060).into();
        Duo {
            a: core("alice", a_addr, 1),
            b: core("bob", b_addr, 2),
            now: Instant::now(),
            a_peer: Peer::udp(a_addr),
            b_peer: Peer::udp(b_addr),
            target: format!("sip:bob@{b_addr}"),
            hangup: true,
            poll_after_input: false,
            counts: Counts::default(),
        }
    }

    /// One call: INVITE, 100, 180, 200, ACK and, with `hangup`, BYE and 200,
    /// every message printed by one core and parsed by the other.
    pub fn call(&mut self) {
        let r = self.a.invite(self.now, &self.target, InviteOptions::default());
        debug_assert!(r.is_ok());
        let _ = r;
        self.pump();
    }

    /// Sets up `n` calls that stay established (no BYE) and lets their
    /// transactions end: `n` confirmed dialogs on each side, as under a
    /// load test holding calls open.
    pub fn open_dialogs(&mut self, n: usize) {
        let hangup = std::mem::replace(&mut self.hangup, false);
        for i in 0..n {
            self.call();
            if (i + 1) % 256 == 0 {
                self.advance(Duo::SETTLE);
            }
        }
        self.advance(Duo::SETTLE);
        self.hangup = hangup;
    }

    /// Carries messages and drains events until both cores are quiet.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.counts.a_to_b += 1;
                let _ = self.b.handle_bytes(self.now, self.a_peer, t.data);
                self.drain_b();
                if self.poll_after_input {
                    std::hint::black_box(self.b.poll_timeout());
                }
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.counts.b_to_a += 1;
                let _ = self.a.handle_bytes(self.now, self.b_peer, t.data);
                self.drain_a();
                if self.poll_after_input {
                    std::hint::black_box(self.a.poll_timeout());
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn drain_a(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.counts.a_events += 1;
            if let UaEvent::Session { session, event } = e {
                match event {
                    SessionEvent::Accepted { .. } => {
                        self.counts.a_accepted += 1;
                        if self.hangup {
                            let _ = self.a.bye(self.now, session);
                        }
                    }
                    SessionEvent::Terminated { .. } => self.counts.terminated += 1,
                    _ => {}
                }
            }
        }
    }

    fn drain_b(&mut self) {
        while let Some(e) = self.b.poll_event() {
            self.counts.b_events += 1;
            match e {
                UaEvent::Incoming { session, .. } => {
                    let _ = self.b.progress(self.now, session, 180, false, false);
                    let _ = self.b.accept(self.now, session);
                }
                UaEvent::Session { event: SessionEvent::Accepted { .. }, .. } => self.counts.b_accepted += 1,
                UaEvent::Session { event: SessionEvent::Terminated { .. }, .. } => self.counts.terminated += 1,
                _ => {}
            }
        }
    }

    /// Advances synthetic time by `d` and fires every timer due on the way
    /// (in deadline order), carrying whatever the timers send.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = match (self.a.poll_timeout(), self.b.poll_timeout()) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.drain_a();
                    self.b.handle_timeout(self.now);
                    self.drain_b();
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Long enough for every transaction of a finished exchange to end
    /// (Timers B/F/H/J/L/M = 64*T1 = 32 s, D = 32 s, K/I = T4 = 5 s).
    pub const SETTLE: Duration = Duration::from_secs(40);
}
