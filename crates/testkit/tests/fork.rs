//! Scenario: a forked INVITE (RFC 3261 §13.2.2.4, §19.3): the network
//! delivers Alice's INVITE to both Bob and Carol; both ring (two early
//! dialogs), both answer; Alice keeps the first 2xx and ACKs then BYEs the
//! second dialog.

use std::net::SocketAddr;
use std::time::Duration;

use sipact_message::{Method, SipMessage};
use sipact_proto::ua::InviteOptions;
use sipact_proto::{Cause, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

fn names(evs: &[&SessionEvent]) -> Vec<&'static str> {
    evs.iter()
        .map(|e| match e {
            SessionEvent::Progress { .. } => "progress",
            SessionEvent::Accepted { .. } => "accepted",
            SessionEvent::Rejected { .. } => "rejected",
            SessionEvent::Failed { .. } => "failed",
            SessionEvent::Terminated { .. } => "terminated",
            SessionEvent::Bye { .. } => "bye",
            SessionEvent::Cancel => "cancel",
            _ => "other",
        })
        .collect()
}

/// `from > to: summary` for every message on the wire.
fn routed(p: &Pair) -> Vec<(SocketAddr, SocketAddr, SipMessage)> {
    p.net.sent.iter().filter_map(|pk| SipMessage::parse(pk.data.clone()).ok().map(|m| (pk.from, pk.to, m))).collect()
}

fn to_tag(m: &SipMessage) -> Option<String> {
    let h = match m {
        SipMessage::Request(r) => &r.headers,
        SipMessage::Response(r) => &r.headers,
    };
    h.to().and_then(|t| t.tag()).map(str::to_owned)
}

#[test]
fn forked_invite_keeps_the_first_answer_and_byes_the_other() {
    let mut p = Pair::new(NetConfig::default(), 21);
    let carol_addr: SocketAddr = "127.0.0.3:5060".parse().expect("addr");
    let c = p.add("carol", carol_addr, 99);
    let (alice, bob) = (p.sides[0].addr, p.sides[1].addr);
    p.net.fork.insert(bob, vec![carol_addr]);

    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(
        p.run_until(Duration::from_secs(5), |p| p.sides[1].incoming(0).is_some() && p.sides[c].incoming(0).is_some())
    );
    let b = p.sides[1].incoming(0).expect("bob incoming");
    let cs = p.sides[c].incoming(0).expect("carol incoming");

    // Both ring: two early dialogs at the caller.
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("bob 180");
    p.sides[c].ua.progress(now, cs, 180, false, false).expect("carol 180");
    assert!(p.run_until(Duration::from_secs(5), |p| {
        p.sides[0].ua.session(a).is_some_and(|s| s.early_dialogs().len() == 2)
    }));
    let s = p.sides[0].ua.session(a).expect("session");
    let mut early_tags: Vec<String> = s.early_dialogs().iter().map(|d| d.id.remote_tag.to_string()).collect();
    early_tags.sort();
    let bob_tag = p.sides[1].ua.session(b).expect("bob session").local_tag().to_owned();
    let carol_tag = p.sides[c].ua.session(cs).expect("carol session").local_tag().to_owned();
    assert_ne!(bob_tag, carol_tag);
    let mut expected = vec![bob_tag.clone(), carol_tag.clone()];
    expected.sort();
    assert_eq!(early_tags, expected);
    assert_eq!(names(&p.sides[0].session_events(a)), ["progress", "progress"]);

    // Both answer at the same instant; Bob's 2xx reaches Alice first.
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("bob 200");
    p.sides[c].ua.accept(now, cs).expect("carol 200");
    assert!(
        p.run_until(Duration::from_secs(10), |p| p.sides[c].ua.session(cs).is_none()
            && p.sides[1].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))),
        "fork never settled: {:?}",
        p.ladder()
    );
    p.run_for(Duration::from_millis(500));

    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "carol 100 INVITE",
            "bob 180 INVITE",
            "carol 180 INVITE",
            "bob 200 INVITE",
            "carol 200 INVITE",
            "alice ACK",
            "alice ACK",
            "alice BYE",
            "carol 200 BYE"
        ]
    );

    // One call at Alice, with Bob.
    assert_eq!(p.sides[0].ua.session_ids(), [a]);
    let s = p.sides[0].ua.session(a).expect("session");
    assert_eq!(s.dialog().map(|d| d.id.remote_tag.to_string()), Some(bob_tag.clone()));
    assert!(s.early_dialogs().is_empty());

    // On the wire: one INVITE (delivered twice), a 100/180/200 from each,
    // an ACK to each, and a BYE to Carol only.
    let w = routed(&p);
    let count = |f: &dyn Fn(&(SocketAddr, SocketAddr, SipMessage)) -> bool| w.iter().filter(|x| f(x)).count();
    assert_eq!(count(&|(f, _, m)| *f == alice && matches!(m, SipMessage::Request(r) if r.method == Method::Invite)), 1);
    for from in [bob, carol_addr] {
        for status in [100, 180, 200] {
            assert_eq!(
                count(&|(f, t, m)| *f == from
                    && *t == alice
                    && matches!(m, SipMessage::Response(r) if r.status == status
                        && r.headers.cseq().is_some_and(|c| c.method == Method::Invite))),
                1,
                "{from} {status}: {:?}",
                p.ladder()
            );
        }
    }
    let acks: Vec<_> =
        w.iter().filter(|(_, _, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Ack)).collect();
    assert_eq!(acks.len(), 2, "{:?}", p.ladder());
    assert!(acks.iter().any(|(_, t, m)| *t == bob && to_tag(m).as_deref() == Some(bob_tag.as_str())));
    assert!(acks.iter().any(|(_, t, m)| *t == carol_addr && to_tag(m).as_deref() == Some(carol_tag.as_str())));
    let byes: Vec<_> =
        w.iter().filter(|(_, _, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Bye)).collect();
    assert_eq!(byes.len(), 1, "{:?}", p.ladder());
    assert_eq!(byes[0].0, alice);
    assert_eq!(byes[0].1, carol_addr);
    assert_eq!(to_tag(&byes[0].2).as_deref(), Some(carol_tag.as_str()));
    // The ACK to Carol precedes the BYE to her.
    let ack_i = w
        .iter()
        .position(|(_, t, m)| *t == carol_addr && matches!(m, SipMessage::Request(r) if r.method == Method::Ack));
    let bye_i = w
        .iter()
        .position(|(_, t, m)| *t == carol_addr && matches!(m, SipMessage::Request(r) if r.method == Method::Bye));
    assert!(ack_i < bye_i);
    assert_eq!(
        count(&|(f, t, m)| *f == carol_addr
            && *t == alice
            && matches!(m, SipMessage::Response(r) if r.status == 200 && r.headers.cseq().is_some_and(|c| c.method == Method::Bye))),
        1
    );

    // Events: Alice sees one call accepted; Carol's call ends by BYE.
    assert_eq!(names(&p.sides[0].session_events(a)), ["progress", "progress", "accepted"]);
    assert_eq!(names(&p.sides[c].session_events(cs)), ["progress", "accepted", "bye", "terminated"]);
    assert!(matches!(p.sides[c].session_events(cs).last(), Some(SessionEvent::Terminated { cause: Cause::Bye })));

    // Alice hangs up the call she kept.
    let now = p.now;
    p.sides[0].ua.bye(now, a).expect("bye");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[0].ua.session(a).is_none()
        && p.sides[1].ua.session(b).is_none()));
    assert_eq!(names(&p.sides[0].session_events(a)), ["progress", "progress", "accepted", "terminated"]);
    assert_eq!(names(&p.sides[1].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
    let byes = routed(&p)
        .into_iter()
        .filter(|(_, _, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Bye))
        .map(|(_, t, _)| t)
        .collect::<Vec<_>>();
    assert_eq!(byes, [carol_addr, bob], "the BYE to Bob is not forked");
}
