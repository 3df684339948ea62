//! Scenario: hold and unhold by re-INVITE and UPDATE, and re-INVITE glare
//! (RFC 3261 §14.1): both sides hold at once, both get 491, each retries
//! after its back-off window, and both holds succeed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipact_message::{Method, SipMessage};
use sipact_proto::SessionEvent;
use sipact_proto::ua::InviteOptions;
use sipact_testkit::{FakeSdp, NetConfig, Pair};

/// Alice calls Bob, Bob answers; returns (alice's id, bob's id).
fn establish(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "INVITE never arrived");
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| { accepted(p, 0, a) && accepted(p, 1, b) }),
        "call never established: {:?}",
        p.ladder()
    );
    // Let the ACK land and the transactions settle.
    p.run_for(Duration::from_secs(1));
    (a, b)
}

fn accepted(p: &Pair, side: usize, id: u64) -> bool {
    p.sides[side].session_events(id).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
}

fn hold_changes(p: &Pair, side: usize, id: u64) -> Vec<bool> {
    p.sides[side]
        .session_events(id)
        .iter()
        .filter_map(|e| match e {
            SessionEvent::HoldChanged { local_hold } => Some(*local_hold),
            _ => None,
        })
        .collect()
}

/// Requests of `method` with a To tag (in-dialog), with send time and sender.
fn in_dialog(p: &Pair, method: Method) -> Vec<(Instant, SocketAddr, sipact_message::Request)> {
    p.wire_at()
        .into_iter()
        .filter_map(|(t, from, m)| match m {
            SipMessage::Request(r) if r.method == method && r.headers.to().and_then(|t| t.tag()).is_some() => {
                Some((t, from, r))
            }
            _ => None,
        })
        .collect()
}

/// Responses with `status` to `method`, with send time and sender.
fn responses(p: &Pair, status: u16, method: Method) -> Vec<(Instant, SocketAddr, sipact_message::Response)> {
    p.wire_at()
        .into_iter()
        .filter_map(|(t, from, m)| match m {
            SipMessage::Response(r) if r.status == status && r.headers.cseq().is_some_and(|c| c.method == method) => {
                Some((t, from, r))
            }
            _ => None,
        })
        .collect()
}

fn direction(body: &[u8]) -> String {
    FakeSdp::direction(body)
}

#[test]
fn hold_then_unhold_by_reinvite() {
    let mut p = Pair::new(NetConfig::default(), 7);
    let (a, b) = establish(&mut p);
    let now = p.now;
    p.sides[0].ua.hold(now, a, true, false).expect("hold");
    assert!(p.run_until(Duration::from_secs(10), |p| hold_changes(p, 0, a) == [true]), "hold: {:?}", p.ladder());
    assert!(p.sides[0].ua.session(a).expect("session").is_on_hold());
    p.run_for(Duration::from_secs(1));
    let now = p.now;
    p.sides[0].ua.hold(now, a, false, false).expect("unhold");
    assert!(
        p.run_until(Duration::from_secs(10), |p| hold_changes(p, 0, a) == [true, false]),
        "unhold: {:?}",
        p.ladder()
    );
    p.run_for(Duration::from_secs(1));
    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 200 INVITE",
            "alice ACK",
            "alice INVITE",
            "bob 100 INVITE",
            "bob 200 INVITE",
            "alice ACK",
            "alice INVITE",
            "bob 100 INVITE",
            "bob 200 INVITE",
            "alice ACK",
        ]
    );
    let reinvites = in_dialog(&p, Method::Invite);
    assert_eq!(reinvites.len(), 2);
    assert_eq!(direction(&reinvites[0].2.body), "sendonly");
    assert_eq!(direction(&reinvites[1].2.body), "sendrecv");
    let oks = responses(&p, 200, Method::Invite);
    assert_eq!(oks.len(), 3);
    assert_eq!(direction(&oks[1].2.body), "recvonly");
    assert_eq!(direction(&oks[2].2.body), "sendrecv");
    // CSeq grows within the dialog.
    let seqs: Vec<u32> = reinvites.iter().filter_map(|(_, _, r)| r.headers.cseq().map(|c| c.seq)).collect();
    assert_eq!(seqs, [2, 3]);
    // Bob saw two re-offers, answered each; Alice's hooks applied both answers.
    let bob_reinvited =
        p.sides[1].session_events(b).iter().filter(|e| matches!(e, SessionEvent::Reinvited { .. })).count();
    assert_eq!(bob_reinvited, 2);
    let alice_log = p.sides[0].sdp.lock().expect("log")[0].lock().expect("log").clone();
    assert_eq!(alice_log.offers, [false, true, false]);
    assert_eq!(alice_log.applied, ["sendrecv", "recvonly", "sendrecv"]);
    let bob_log = p.sides[1].sdp.lock().expect("log")[0].lock().expect("log").clone();
    assert_eq!(bob_log.answered, ["sendrecv", "sendonly", "sendrecv"]);
    // Bob's hold state is untouched: he did not hold anybody.
    assert!(hold_changes(&p, 1, b).is_empty());
}

#[test]
fn hold_by_update() {
    let mut p = Pair::new(NetConfig::default(), 8);
    let (a, b) = establish(&mut p);
    let now = p.now;
    p.sides[1].ua.hold(now, b, true, true).expect("hold by UPDATE");
    assert!(p.run_until(Duration::from_secs(10), |p| hold_changes(p, 1, b) == [true]), "hold: {:?}", p.ladder());
    p.run_for(Duration::from_secs(1));
    let now = p.now;
    p.sides[1].ua.hold(now, b, false, true).expect("unhold by UPDATE");
    assert!(
        p.run_until(Duration::from_secs(10), |p| hold_changes(p, 1, b) == [true, false]),
        "unhold: {:?}",
        p.ladder()
    );
    p.run_for(Duration::from_secs(1));
    assert_eq!(
        p.ladder()[4..],
        ["bob UPDATE", "alice 200 UPDATE", "bob UPDATE", "alice 200 UPDATE"],
        "{:?}",
        p.ladder()
    );
    let updates = in_dialog(&p, Method::Update);
    assert_eq!(direction(&updates[0].2.body), "sendonly");
    assert_eq!(direction(&updates[1].2.body), "sendrecv");
    let oks = responses(&p, 200, Method::Update);
    assert_eq!(direction(&oks[0].2.body), "recvonly");
    assert_eq!(direction(&oks[1].2.body), "sendrecv");
    // Bob (the callee) sends in the dialog with From = his tag.
    let alice_tag = p.sides[0].ua.session(a).expect("a").local_tag().to_owned();
    assert_eq!(updates[0].2.headers.to().and_then(|t| t.tag()), Some(alice_tag.as_str()));
    assert!(p.sides[0].session_events(a).iter().filter(|e| matches!(e, SessionEvent::Reinvited { .. })).count() == 2);
}

#[test]
fn reinvite_glare_both_hold_at_once() {
    for seed in 1..=10u64 {
        let mut p = Pair::new(NetConfig::default(), seed);
        let (a, b) = establish(&mut p);
        let now = p.now;
        p.sides[0].ua.hold(now, a, true, false).expect("alice hold");
        p.sides[1].ua.hold(now, b, true, false).expect("bob hold");
        assert!(
            p.run_until(Duration::from_secs(30), |p| hold_changes(p, 0, a) == [true]
                && hold_changes(p, 1, b) == [true]),
            "seed {seed}: holds never both succeeded: {:?}",
            p.ladder()
        );
        p.run_for(Duration::from_secs(2));
        let alice = p.sides[0].addr;
        let bob = p.sides[1].addr;

        // Both re-INVITEs crossed and were refused with 491.
        let r491 = responses(&p, 491, Method::Invite);
        assert_eq!(r491.len(), 2, "seed {seed}: {:?}", p.ladder());
        assert!(r491.iter().any(|(_, from, _)| *from == alice) && r491.iter().any(|(_, from, _)| *from == bob));

        let reinvites = in_dialog(&p, Method::Invite);
        let by = |who: SocketAddr| reinvites.iter().filter(move |(_, f, _)| *f == who).map(|(t, _, r)| (*t, r.clone()));
        let alice_inv: Vec<_> = by(alice).collect();
        let bob_inv: Vec<_> = by(bob).collect();
        assert_eq!(alice_inv.len(), 2, "seed {seed}: {:?}", p.ladder());
        assert_eq!(bob_inv.len(), 2, "seed {seed}: {:?}", p.ladder());
        // First attempts at the same instant.
        assert_eq!(alice_inv[0].0, now);
        assert_eq!(bob_inv[0].0, now);

        // Back-off measured from the 491 each side received (the instant its
        // peer sent it plus the 10 ms one-way delay).
        let delay = Duration::from_millis(10);
        let got_491 = |sender: SocketAddr| r491.iter().find(|(_, f, _)| *f == sender).map(|(t, _, _)| *t + delay);
        let alice_wait = alice_inv[1].0 - got_491(bob).expect("491 to alice");
        let bob_wait = bob_inv[1].0 - got_491(alice).expect("491 to bob");
        // Alice owns the Call-ID (she sent the INVITE): 2.1–4 s; Bob: 0–2 s.
        assert!(
            alice_wait >= Duration::from_millis(2100) && alice_wait <= Duration::from_secs(4),
            "seed {seed}: alice waited {alice_wait:?}"
        );
        assert!(bob_wait <= Duration::from_secs(2), "seed {seed}: bob waited {bob_wait:?}");
        // So Bob goes first and Alice retries after Bob's exchange is done.
        assert!(bob_inv[1].0 < alice_inv[1].0);

        // Each retried offer is a hold offer; each answer mirrors it.
        for (_, r) in alice_inv.iter().chain(&bob_inv) {
            assert_eq!(direction(&r.body), "sendonly", "seed {seed}");
        }
        let oks: Vec<_> = responses(&p, 200, Method::Invite).into_iter().skip(1).collect();
        assert_eq!(oks.len(), 2, "seed {seed}: {:?}", p.ladder());
        for (_, _, r) in &oks {
            assert_eq!(direction(&r.body), "recvonly", "seed {seed}");
        }
        // The retries use fresh CSeqs: 491'd CSeq 2, retry 3 (per side).
        assert_eq!(
            alice_inv.iter().map(|(_, r)| r.headers.cseq().map(|c| c.seq)).collect::<Vec<_>>(),
            [Some(2), Some(3)]
        );
        assert_eq!(
            bob_inv.iter().map(|(_, r)| r.headers.cseq().map(|c| c.seq)).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
        // Events: no failure reported for the glare, holds on both sides.
        for (side, id) in [(0, a), (1, b)] {
            let evs = p.sides[side].session_events(id);
            assert!(!evs.iter().any(|e| matches!(e, SessionEvent::RenegotiationFailed { .. })), "seed {seed}");
            assert!(p.sides[side].ua.session(id).expect("live").is_on_hold());
            // Each side answered exactly one re-offer: the peer's retry.
            assert_eq!(evs.iter().filter(|e| matches!(e, SessionEvent::Reinvited { .. })).count(), 1, "seed {seed}");
        }
        // And the call still hangs up cleanly.
        let now = p.now;
        p.sides[0].ua.bye(now, a).expect("bye");
        assert!(p.run_until(Duration::from_secs(40), |p| p.sides[0].ua.session_ids().is_empty()
            && p.sides[1].ua.session_ids().is_empty()));
    }
}

#[test]
fn update_glare_both_hold_at_once() {
    let mut p = Pair::new(NetConfig::default(), 3);
    let (a, b) = establish(&mut p);
    let now = p.now;
    p.sides[0].ua.hold(now, a, true, true).expect("alice hold");
    p.sides[1].ua.hold(now, b, true, true).expect("bob hold");
    assert!(
        p.run_until(Duration::from_secs(30), |p| hold_changes(p, 0, a) == [true] && hold_changes(p, 1, b) == [true]),
        "holds never both succeeded: {:?}",
        p.ladder()
    );
    p.run_for(Duration::from_secs(2));
    assert_eq!(responses(&p, 491, Method::Update).len(), 2, "{:?}", p.ladder());
    let updates = in_dialog(&p, Method::Update);
    assert_eq!(updates.len(), 4, "{:?}", p.ladder());
    assert!(updates.iter().all(|(_, _, r)| direction(&r.body) == "sendonly"));
    let oks = responses(&p, 200, Method::Update);
    assert_eq!(oks.len(), 2);
    assert!(oks.iter().all(|(_, _, r)| direction(&r.body) == "recvonly"));
    assert!(in_dialog(&p, Method::Invite).is_empty(), "no re-INVITE when holding by UPDATE");
}
