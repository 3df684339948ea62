//! Scenario: a basic call over a clean network and over 30 % loss.

use std::time::Duration;

use sipact_message::SipMessage;
use sipact_proto::ua::{InviteOptions, UaEvent};
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

fn basic_call(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "INVITE never arrived");
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("180");
    p.run_for(Duration::from_millis(200));
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
    let now = p.now;
    p.sides[0].ua.bye(now, a).expect("bye");
    assert!(
        p.run_until(Duration::from_secs(60), |p| p.sides[0].ua.session(a).is_none()
            && p.sides[1].ua.session(b).is_none()),
        "call never ended: {:?}",
        p.ladder()
    );
    (a, b)
}

#[test]
fn basic_call_ladder_and_events() {
    let mut p = Pair::new(NetConfig::default(), 1);
    let (a, b) = basic_call(&mut p);
    assert_eq!(
        p.ladder(),
        ["alice INVITE", "bob 100 INVITE", "bob 180 INVITE", "bob 200 INVITE", "alice ACK", "alice BYE", "bob 200 BYE"]
    );
    assert_eq!(names(&p.sides[0].session_events(a)), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&p.sides[1].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
    assert!(matches!(p.sides[1].session_events(b).last(), Some(SessionEvent::Terminated { cause: Cause::Bye })));
    assert!(matches!(p.sides[1].events.first(), Some((_, UaEvent::Incoming { .. }))));
}

#[test]
fn basic_call_completes_under_30_percent_loss() {
    for seed in 1..=20 {
        let net = NetConfig { loss: 0.3, duplicate: 0.05, reorder: 0.1, ..NetConfig::default() };
        let mut p = Pair::new(net, seed);
        let (a, b) = basic_call(&mut p);
        let ea = p.sides[0].session_events(a);
        let eb = p.sides[1].session_events(b);
        assert_eq!(ea.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1, "seed {seed}");
        assert_eq!(eb.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count(), 1, "seed {seed}");
        assert!(p.net.lost > 0, "seed {seed}: nothing was lost");
    }
}

#[test]
fn the_ack_and_the_200_to_bye_on_the_wire() {
    // Both are printed without being built (the ACK from alice's dialog,
    // the 200 from bob's BYE): what RFC 3261 §13.2.2.4 and §8.2.6.2 ask of
    // them, checked on the parsed wire, over the embedded and the external
    // transaction layer.
    use sipact_message::{Header, Method};
    for external in [false, true] {
        let mut p = if external {
            Pair::external(NetConfig::default(), 1, |_| {}, |_| {})
        } else {
            Pair::new(NetConfig::default(), 1)
        };
        basic_call(&mut p);
        let wire: Vec<_> = p.wire().into_iter().map(|(_, m)| m).collect();
        let find_req = |m: Method| {
            wire.iter()
                .find_map(|w| match w {
                    SipMessage::Request(r) if r.method == m => Some(r.clone()),
                    _ => None,
                })
                .expect("sent")
        };
        let invite = find_req(Method::Invite);
        let ack = find_req(Method::Ack);
        let bye = find_req(Method::Bye);
        let ok_invite = wire
            .iter()
            .find_map(|w| match w {
                SipMessage::Response(r)
                    if r.status == 200 && r.headers.cseq().map(|c| &c.method) == Some(&Method::Invite) =>
                {
                    Some(r.clone())
                }
                _ => None,
            })
            .expect("200 to the INVITE");
        let ok_bye = wire
            .iter()
            .find_map(|w| match w {
                SipMessage::Response(r) if r.headers.cseq().map(|c| &c.method) == Some(&Method::Bye) => Some(r.clone()),
                _ => None,
            })
            .expect("200 to the BYE");
        // The ACK: to the callee's Contact, the INVITE's CSeq number, the
        // dialog's tags and Call-ID, a branch of its own, no body.
        let contact = ok_invite.headers.iter().find_map(|h| match h {
            Header::Contact(sipact_message::Contact::Addr(a)) => Some(a.uri.clone()),
            _ => None,
        });
        assert_eq!(Some(ack.uri.clone()), contact, "external={external}");
        let ih = &invite.headers;
        let ah = &ack.headers;
        assert_eq!(ah.cseq().map(|c| (c.seq, c.method.clone())), Some((ih.cseq().unwrap().seq, Method::Ack)));
        assert_eq!(ah.call_id(), ih.call_id());
        assert_eq!(ah.from(), ih.from());
        assert_eq!(ah.to(), ok_invite.headers.to());
        assert_eq!(ah.max_forwards(), Some(70));
        let branch = |r: &sipact_message::Request| r.headers.via().and_then(|v| v.branch()).map(str::to_owned);
        assert_ne!(branch(&ack), branch(&invite));
        assert!(branch(&ack).is_some_and(|b| b.starts_with("z9hG4bK")));
        assert!(ack.body.is_empty() && ah.content_length() == Some(0));
        // The BYE (printed from alice's dialog too): the next CSeq number,
        // the dialog's tags and Call-ID, a branch of its own, alice's
        // User-Agent, no body.
        let bh = &bye.headers;
        assert_eq!(bye.uri, ack.uri);
        assert_eq!(bh.cseq().map(|c| (c.seq, c.method.clone())), Some((ih.cseq().unwrap().seq + 1, Method::Bye)));
        assert_eq!((bh.call_id(), bh.from(), bh.to()), (ah.call_id(), ah.from(), ah.to()));
        assert_eq!(bh.max_forwards(), Some(70));
        assert!(branch(&bye).is_some_and(|b| b.starts_with("z9hG4bK")) && branch(&bye) != branch(&ack));
        assert!(bh.iter().any(|h| matches!(h, Header::UserAgent(s) if s.starts_with("sipact/"))), "{bh:?}");
        assert!(bye.body.is_empty() && bh.content_length() == Some(0));
        // The 200 to the BYE: the BYE's Via, From, To (with bob's tag),
        // Call-ID and CSeq, bob's Server, no body.
        let oh = &ok_bye.headers;
        // The Via as bob received it: stamped with the source (RFC 3581).
        let mut stamped = bh.via().cloned().expect("a Via");
        stamped.params.set("rport", Some("5060"));
        stamped.params.set("received", Some("127.0.0.1"));
        assert_eq!(oh.via(), Some(&stamped));
        assert_eq!((oh.from(), oh.to(), oh.call_id(), oh.cseq()), (bh.from(), bh.to(), bh.call_id(), bh.cseq()));
        assert!(oh.to().and_then(|t| t.tag()).is_some());
        assert!(oh.iter().any(|h| matches!(h, Header::Server(s) if s.starts_with("sipact/"))), "{oh:?}");
        assert!(ok_bye.body.is_empty() && oh.content_length() == Some(0));
    }
}
