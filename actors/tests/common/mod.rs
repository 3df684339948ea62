//! Helpers shared by the tier-4 tests: user agents on 127.0.0.1 (port 0),
//! a parsed tap of the wire, event collection with timeouts.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use sipact_actors::core::WireRecord;
use sipact_actors::{InviteOptions, Session, SessionEvent, SessionEvents, UaConfig, UserAgent};
use sipact_message::{Method, Request, Response, SipMessage};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn cfg(user: &str) -> UaConfig {
    UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..UaConfig::default() }
}

pub fn start(user: &str) -> UserAgent {
    UserAgent::start(cfg(user)).unwrap()
}

/// A short name per event, for order assertions.
pub fn name(e: &SessionEvent) -> &'static str {
    match e {
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
        SessionEvent::HoldChanged { .. } => "hold",
        SessionEvent::Reinvited { .. } => "reinvited",
        SessionEvent::RenegotiationFailed { .. } => "reneg-failed",
        SessionEvent::Refreshed => "refreshed",
        SessionEvent::Replaced { .. } => "replaced",
        _ => "other",
    }
}

pub fn names(evs: &[SessionEvent]) -> Vec<&'static str> {
    evs.iter().map(name).collect()
}

/// Events until (and including) the first one `until` accepts.
pub async fn events_until(
    ev: &mut SessionEvents,
    seen: &mut Vec<SessionEvent>,
    until: impl Fn(&SessionEvent) -> bool,
) -> SessionEvent {
    loop {
        let e = tokio::time::timeout(WAIT, ev.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting; seen {:?}", names(seen)))
            .unwrap_or_else(|| panic!("stream ended; seen {:?}", names(seen)));
        seen.push(e.clone());
        if until(&e) {
            return e;
        }
    }
}

/// Every remaining event, until the stream ends (after `Terminated`).
pub async fn events_to_end(ev: &mut SessionEvents, seen: &mut Vec<SessionEvent>) {
    loop {
        match tokio::time::timeout(WAIT, ev.next()).await {
            Ok(Some(e)) => seen.push(e),
            Ok(None) => return,
            Err(_) => panic!("session did not end; seen {:?}", names(seen)),
        }
    }
}

/// One message seen on the wire, parsed.
#[derive(Debug, Clone)]
pub struct Wired {
    pub outgoing: bool,
    pub msg: SipMessage,
    pub at: SystemTime,
}

impl Wired {
    pub fn request(&self) -> Option<&Request> {
        match &self.msg {
            SipMessage::Request(r) => Some(r),
            _ => None,
        }
    }
    pub fn response(&self) -> Option<&Response> {
        match &self.msg {
            SipMessage::Response(r) => Some(r),
            _ => None,
        }
    }
    /// `"> INVITE"`, `"< 200 INVITE"`: direction (`>` sent, `<` received),
    /// method or status and CSeq method.
    pub fn label(&self) -> String {
        let d = if self.outgoing { ">" } else { "<" };
        match &self.msg {
            SipMessage::Request(r) => format!("{d} {}", r.method),
            SipMessage::Response(r) => {
                let m = r.headers.cseq().map(|c| c.method.to_string()).unwrap_or_default();
                format!("{d} {} {m}", r.status)
            }
        }
    }
    pub fn is_request(&self, outgoing: bool, m: &Method) -> bool {
        self.outgoing == outgoing && self.request().is_some_and(|r| r.method == *m)
    }
    pub fn is_response(&self, outgoing: bool, status: u16, m: &Method) -> bool {
        self.outgoing == outgoing
            && self.response().is_some_and(|r| r.status == status && r.headers.cseq().is_some_and(|c| c.method == *m))
    }
}

/// A UA's wire tap, parsed, with everything seen so far kept.
pub struct Tap {
    rx: UnboundedReceiver<WireRecord>,
    pub seen: Vec<Wired>,
}

impl Tap {
    pub fn new(ua: &UserAgent) -> Tap {
        Tap { rx: ua.wire(), seen: Vec::new() }
    }

    fn push(&mut self, r: WireRecord) {
        let msg = SipMessage::parse(r.data.clone())
            .unwrap_or_else(|e| panic!("unparseable on the wire: {e:?}\n{}", String::from_utf8_lossy(&r.data)));
        self.seen.push(Wired { outgoing: r.outgoing, msg, at: r.at });
    }

    /// Takes in what has arrived without waiting.
    pub fn drain(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            self.push(r);
        }
    }

    /// Waits (at most `within`) until `done` holds of everything seen.
    pub async fn wait_until(&mut self, within: Duration, what: &str, done: impl Fn(&[Wired]) -> bool) {
        self.drain();
        let deadline = tokio::time::Instant::now() + within;
        while !done(&self.seen) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(r)) => self.push(r),
                Ok(None) => panic!("wire tap closed waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; wire: {:?}", self.labels()),
            }
        }
    }

    /// Waits (at most `within`) until a message matching `pred` is seen;
    /// returns the index of the first one in `seen`.
    pub async fn wait_for_within(&mut self, within: Duration, what: &str, pred: impl Fn(&Wired) -> bool) -> usize {
        self.wait_until(within, what, |s| s.iter().any(&pred)).await;
        self.seen.iter().position(&pred).unwrap()
    }

    /// Waits until `n` messages match `pred`.
    pub async fn wait_count(&mut self, what: &str, n: usize, pred: impl Fn(&Wired) -> bool) {
        self.wait_until(WAIT, what, |s| s.iter().filter(|w| pred(w)).count() >= n).await;
    }

    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Wired) -> bool) -> usize {
        self.wait_for_within(WAIT, what, pred).await
    }

    /// Lets late traffic arrive for `d`, then drains.
    pub async fn settle(&mut self, d: Duration) {
        tokio::time::sleep(d).await;
        self.drain();
    }

    pub fn labels(&self) -> Vec<String> {
        self.seen.iter().map(Wired::label).collect()
    }

    pub fn position(&self, label: &str) -> Option<usize> {
        self.seen.iter().position(|w| w.label() == label)
    }

    pub fn requests(&self, outgoing: bool, m: &Method) -> Vec<(Request, SystemTime)> {
        self.seen
            .iter()
            .filter(|w| w.is_request(outgoing, m))
            .filter_map(|w| w.request().map(|r| (r.clone(), w.at)))
            .collect()
    }

    pub fn responses(&self, outgoing: bool, m: &Method) -> Vec<Response> {
        self.seen
            .iter()
            .filter(|w| w.outgoing == outgoing)
            .filter_map(Wired::response)
            .filter(|r| r.headers.cseq().is_some_and(|c| c.method == *m))
            .cloned()
            .collect()
    }
}

pub async fn next_incoming(inc: &mut sipact_actors::Incoming) -> Session {
    tokio::time::timeout(WAIT, inc.next()).await.expect("no incoming call in time").expect("incoming stream ended")
}

/// An established call from `caller` to `callee`, with both event streams
/// and what they have seen so far (`progress`, `accepted` on each side).
pub struct Call {
    pub a: Session,
    pub b: Session,
    pub a_ev: SessionEvents,
    pub b_ev: SessionEvents,
    pub a_seen: Vec<SessionEvent>,
    pub b_seen: Vec<SessionEvent>,
}

pub async fn establish(caller: &UserAgent, callee: &UserAgent, incoming: &mut sipact_actors::Incoming) -> Call {
    let a = caller.invite(&callee.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(incoming).await;
    let mut b_ev = b.events();
    b.accept().await.unwrap();
    let mut a_seen = Vec::new();
    let mut b_seen = Vec::new();
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    Call { a, b, a_ev, b_ev, a_seen, b_seen }
}

impl Call {
    /// Alice hangs up; both streams are drained to their end.
    pub async fn hang_up(&mut self) {
        self.a.bye().await.unwrap();
        self.finish().await;
    }

    pub async fn finish(&mut self) {
        events_to_end(&mut self.a_ev, &mut self.a_seen).await;
        events_to_end(&mut self.b_ev, &mut self.b_seen).await;
    }
}

pub fn body_str(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exactly one `Terminated`, and last.
pub fn assert_one_terminated(evs: &[SessionEvent], who: &str) {
    let n = evs.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count();
    assert_eq!(n, 1, "{who}: {:?}", names(evs));
    assert!(matches!(evs.last(), Some(SessionEvent::Terminated { .. })), "{who}: {:?}", names(evs));
}
