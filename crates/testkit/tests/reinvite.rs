//! Scenario: a re-INVITE without offer (RFC 3261 §14.1: the offer comes in
//! the 2xx, the answer in the ACK) over a clean network and under loss,
//! and the session descriptions both sides report.

use std::time::Duration;

use sipact_message::{Method, SipMessage};
use sipact_proto::ua::{InviteOptions, UaEvent};
use sipact_proto::{Body, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

fn establish(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "INVITE never arrived");
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| {
            p.sides[1].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
                && p.sides[0].session_events(a).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
        }),
        "call never established: {:?}",
        p.ladder()
    );
    (a, b)
}

/// The last descriptions a side reported for a session.
/// The latest description sent and received by a session: each
/// `Descriptions` event carries only what changed.
fn last_descriptions(p: &Pair, side: usize, id: u64) -> (Option<Body>, Option<Body>) {
    let mut out = (None, None);
    let mut seen = false;
    for (_, e) in &p.sides[side].events {
        if let UaEvent::Descriptions { session, local, remote } = e
            && *session == id
        {
            seen = true;
            if local.is_some() {
                out.0 = local.as_deref().cloned();
            }
            if remote.is_some() {
                out.1 = remote.as_deref().cloned();
            }
        }
    }
    assert!(seen, "no descriptions reported");
    out
}

#[test]
fn reinvite_without_offer_answers_in_the_ack() {
    for (seed, loss) in [(1u64, 0.0), (2, 0.3), (3, 0.3), (4, 0.3), (5, 0.3)] {
        let net = NetConfig { loss, ..NetConfig::default() };
        let mut p = Pair::new(net, seed);
        let (a, b) = establish(&mut p);
        p.run_for(Duration::from_secs(2));
        let now = p.now;
        p.sides[0].ua.renegotiate_with(now, a, "reinvite", None, false, true, &[]).expect("reinvite");
        assert!(
            p.run_until(Duration::from_secs(60), |p| {
                p.sides[1].session_events(b).iter().filter(|e| matches!(e, SessionEvent::Reinvited { .. })).count() == 1
            }),
            "seed {seed}: re-INVITE never arrived: {:?}",
            p.ladder()
        );
        // Long enough for the 2xx retransmissions and their ACKs to settle.
        p.run_for(Duration::from_secs(40));
        let wire = p.wire();
        let reinvite = wire
            .iter()
            .find_map(|(_, m)| match m {
                SipMessage::Request(r) if r.method == Method::Invite && r.headers.cseq().is_some_and(|c| c.seq > 1) => {
                    Some(r.clone())
                }
                _ => None,
            })
            .expect("re-INVITE");
        assert!(reinvite.body.is_empty(), "seed {seed}: the re-INVITE has an offer");
        let seq = reinvite.headers.cseq().map(|c| c.seq);
        let acks: Vec<_> = wire
            .iter()
            .filter_map(|(_, m)| match m {
                SipMessage::Request(r) if r.method == Method::Ack && r.headers.cseq().map(|c| c.seq) == seq => {
                    Some(r.clone())
                }
                _ => None,
            })
            .collect();
        assert!(!acks.is_empty(), "seed {seed}: no ACK: {:?}", p.ladder());
        // Every ACK of that 2xx, the retransmitted ones too, carries the answer.
        assert!(acks.iter().all(|k| !k.body.is_empty() && k.body == acks[0].body), "seed {seed}");
        // The two sides agree on what was sent and received.
        let (a_local, a_remote) = last_descriptions(&p, 0, a);
        let (b_local, b_remote) = last_descriptions(&p, 1, b);
        assert_eq!(a_local.as_ref().map(|b| &b.data), Some(&acks[0].body), "seed {seed}");
        assert_eq!(a_local, b_remote, "seed {seed}");
        assert_eq!(a_remote, b_local, "seed {seed}");
        for (side, id) in [(0, a), (1, b)] {
            let evs = p.sides[side].session_events(id);
            assert!(
                !evs.iter()
                    .any(|e| matches!(e, SessionEvent::Terminated { .. } | SessionEvent::RenegotiationFailed { .. })),
                "seed {seed}: side {side}: {evs:?}"
            );
        }
    }
}

/// Carries every message `from` has to send to `to`, except those `drop`
/// refuses; returns each message with whether it was dropped.
fn carry(p: &mut Pair, from: usize, to: usize, drop: impl Fn(&SipMessage) -> bool) -> Vec<(bool, SipMessage)> {
    let now = p.now;
    let peer = sipact_proto::transport::Peer::udp(p.sides[from].addr);
    let mut out = Vec::new();
    while let Some(t) = p.sides[from].poll_transmit(now) {
        let m = SipMessage::parse(t.data.clone()).expect("own message parses");
        let dropped = drop(&m);
        if !dropped {
            p.sides[to].handle_bytes(now, peer, t.data);
        }
        out.push((dropped, m));
    }
    out
}

/// The first request of `method` among carried messages.
fn request_in(msgs: &[(bool, SipMessage)], method: &Method) -> Option<sipact_message::Request> {
    msgs.iter().find_map(|(_, m)| match m {
        SipMessage::Request(r) if r.method == *method => Some(r.clone()),
        _ => None,
    })
}

/// RFC 3261 §9.1 and §15: a session that ends (BYE) while its re-INVITE
/// is in Proceeding, its 2xx lost, cancels that re-INVITE. Otherwise the
/// client transaction would wait in Proceeding for ever: no timer runs
/// there and nobody retransmits that 2xx any more.
#[test]
fn session_end_cancels_a_pending_reinvite() {
    let mut p = Pair::new(NetConfig::default(), 7);
    let (a, _b) = establish(&mut p);
    p.run_for(Duration::from_secs(40));
    let now = p.now;
    p.sides[0].ua.renegotiate_with(now, a, "reinvite", None, false, true, &[]).expect("reinvite");
    let sent = carry(&mut p, 0, 1, |_| false);
    let reinvite = request_in(&sent, &Method::Invite).expect("re-INVITE sent");
    // Bob answers 100 and 200; the 200 is lost, the 100 puts Alice's
    // transaction in Proceeding.
    let back = carry(&mut p, 1, 0, |m| matches!(m, SipMessage::Response(r) if r.status == 200));
    assert!(back.iter().any(|(d, m)| !d && matches!(m, SipMessage::Response(r) if r.status == 100)), "{back:?}");
    assert!(back.iter().any(|(d, m)| *d && matches!(m, SipMessage::Response(r) if r.status == 200)), "{back:?}");
    // Alice hangs up before Bob retransmits his 2xx.
    let now = p.now;
    p.sides[0].ua.bye(now, a).expect("bye");
    let out = carry(&mut p, 0, 1, |_| false);
    assert!(out.iter().any(|(_, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Bye)), "{out:?}");
    let _ = carry(&mut p, 1, 0, |_| false);
    let out = carry(&mut p, 0, 1, |_| false);
    let cancel =
        request_in(&out, &Method::Cancel).unwrap_or_else(|| panic!("no CANCEL after the session ended: {out:?}"));
    // §9.1: the CANCEL matches the re-INVITE: same Request-URI, Call-ID,
    // CSeq number and top Via branch.
    assert_eq!(cancel.uri, reinvite.uri);
    assert_eq!(cancel.headers.call_id(), reinvite.headers.call_id());
    assert_eq!(cancel.headers.cseq().map(|c| c.seq), reinvite.headers.cseq().map(|c| c.seq));
    assert_eq!(cancel.headers.via().and_then(|v| v.branch()), reinvite.headers.via().and_then(|v| v.branch()));
    // Everything ends within 64*T1 of the CANCEL.
    p.run_for(Duration::from_secs(40));
    assert_eq!(p.sides[0].transaction_count(), 0, "{:?}", p.ladder());
}
