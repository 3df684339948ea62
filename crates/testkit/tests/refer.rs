//! Scenario: call transfer with REFER (RFC 3515): blind, and attended with
//! Replaces (RFC 3891); a Replaces that matches no dialog gets 481.

use std::time::Duration;

use sipact_message::{Header, Method, Param, Params, Request, SipMessage, TokenParams};
use sipact_proto::ua::{InviteOptions, UaEvent};
use sipact_proto::{Cause, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

const ALICE: usize = 0;
const BOB: usize = 1;

fn add_carol(p: &mut Pair) -> usize {
    p.add("carol", "127.0.0.3:5060".parse().expect("addr"), 33)
}

fn accepted(p: &Pair, side: usize, id: u64) -> bool {
    p.sides[side].session_events(id).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
}

/// `from` calls `to` (its `n`th incoming call), which rings then answers.
/// Returns (caller's id, callee's id).
fn call(p: &mut Pair, from: usize, to: usize, n: usize) -> (u64, u64) {
    let target = p.sides[to].uri();
    let now = p.now;
    let x = p.sides[from].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[to].incoming(n).is_some()), "INVITE never arrived");
    let y = p.sides[to].incoming(n).expect("incoming");
    let now = p.now;
    p.sides[to].ua.accept(now, y).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| accepted(p, from, x) && accepted(p, to, y)),
        "call never established: {:?}",
        p.ladder()
    );
    p.run_for(Duration::from_millis(500));
    (x, y)
}

fn refer_request(p: &Pair, side: usize, id: u64) -> Option<Request> {
    p.sides[side].session_events(id).into_iter().find_map(|e| match e {
        SessionEvent::Refer { request } => Some((**request).clone()),
        _ => None,
    })
}

fn refer_progress(p: &Pair, side: usize, id: u64) -> Vec<(u16, bool)> {
    p.sides[side]
        .session_events(id)
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::ReferProgress { status, terminated } => Some((*status, *terminated)),
            _ => None,
        })
        .collect()
}

fn requests(p: &Pair, method: Method) -> Vec<(std::net::SocketAddr, Request)> {
    p.wire()
        .into_iter()
        .filter_map(|(from, m)| match m {
            SipMessage::Request(r) if r.method == method => Some((from, r)),
            _ => None,
        })
        .collect()
}

fn replaces_of(r: &Request) -> Option<TokenParams> {
    r.headers.iter().find_map(|h| match h {
        Header::Replaces(t) => Some(t.clone()),
        _ => None,
    })
}

fn terminated_once_last(p: &Pair, side: usize, id: u64) -> Cause {
    let evs = p.sides[side].session_events(id);
    let n = evs.iter().filter(|e| matches!(e, SessionEvent::Terminated { .. })).count();
    assert_eq!(n, 1, "side {side} session {id}: {evs:?}");
    match evs.last() {
        Some(SessionEvent::Terminated { cause }) => *cause,
        other => panic!("side {side} session {id}: last event {other:?}"),
    }
}

#[test]
fn blind_transfer() {
    let mut p = Pair::new(NetConfig::default(), 21);
    let carol = add_carol(&mut p);
    let (a, b) = call(&mut p, ALICE, BOB, 0);
    let carol_uri = p.sides[carol].uri();

    let now = p.now;
    p.sides[BOB].ua.refer(now, b, &carol_uri, None).expect("refer");
    assert!(p.run_until(Duration::from_secs(10), |p| refer_request(p, ALICE, a).is_some()), "{:?}", p.ladder());
    let refer = refer_request(&p, ALICE, a).expect("REFER");
    // The REFER names Carol and Bob as the referrer.
    let refer_to = refer.headers.iter().find_map(|h| match h {
        Header::ReferTo(t) => Some(t.uri.to_string()),
        _ => None,
    });
    assert_eq!(refer_to.as_deref(), Some(carol_uri.as_str()));
    assert!(
        refer.headers.iter().any(|h| matches!(h, Header::ReferredBy(b) if b.uri.to_string() == p.sides[BOB].uri()))
    );

    let now = p.now;
    let a2 = p.sides[ALICE].ua.follow_refer(now, a, &refer).expect("follow");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[carol].incoming(0).is_some()), "{:?}", p.ladder());
    let c = p.sides[carol].incoming(0).expect("carol's call");
    let now = p.now;
    p.sides[carol].ua.progress(now, c, 180, false, false).expect("ring");
    p.run_for(Duration::from_millis(300));
    let now = p.now;
    p.sides[carol].ua.accept(now, c).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(10), |p| refer_progress(p, BOB, b).last() == Some(&(200, true))),
        "{:?} {:?}",
        refer_progress(&p, BOB, b),
        p.ladder()
    );
    assert!(accepted(&p, ALICE, a2) && accepted(&p, carol, c));

    // The INVITE to Carol carries Referred-By (Bob) and no Replaces.
    let invites = requests(&p, Method::Invite);
    let (from, to_carol) = invites.iter().find(|(_, r)| r.uri.to_string() == carol_uri).expect("INVITE to Carol");
    assert_eq!(*from, p.sides[ALICE].addr);
    let by = to_carol.headers.iter().find_map(|h| match h {
        Header::ReferredBy(b) => Some(b.clone()),
        _ => None,
    });
    let by = by.expect("Referred-By");
    assert_eq!(by.uri.to_string(), p.sides[BOB].uri());
    assert!(by.tag().is_none(), "Referred-By carries no tag");
    assert!(replaces_of(to_carol).is_none());
    // Carol's Incoming names no replaced session.
    assert!(
        p.sides[carol]
            .events
            .iter()
            .any(|(_, e)| matches!(e, UaEvent::Incoming { session, replaces: None, .. } if *session == c))
    );

    // Bob: 202 to the REFER, then NOTIFYs 100, 180 and the final 200.
    assert_eq!(refer_progress(&p, BOB, b), [(202, false), (100, false), (180, false), (200, true)]);
    let notifies = requests(&p, Method::Notify);
    assert_eq!(notifies.len(), 3, "{:?}", p.ladder());
    for (i, (from, n)) in notifies.iter().enumerate() {
        assert_eq!(*from, p.sides[ALICE].addr);
        assert!(n.headers.iter().any(|h| matches!(h, Header::Event(e) if e.value == "refer")));
        assert!(n.headers.content_type().is_some_and(|c| c.is("message", "sipfrag")));
        let state = n.headers.iter().find_map(|h| match h {
            Header::SubscriptionState(s) => Some(s.value.to_string()),
            _ => None,
        });
        let want = if i == 2 { "terminated" } else { "active" };
        assert_eq!(state.as_deref(), Some(want), "NOTIFY {i}");
    }
    assert!(notifies[0].1.body.starts_with(b"SIP/2.0 100 "));
    assert!(notifies[1].1.body.starts_with(b"SIP/2.0 180 "));
    assert!(notifies[2].1.body.starts_with(b"SIP/2.0 200 "));

    // Bob, transfer done, hangs up on Alice; Alice keeps talking to Carol.
    let now = p.now;
    p.sides[BOB].ua.bye(now, b).expect("bye");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[BOB].ua.session_ids().is_empty()));
    assert_eq!(terminated_once_last(&p, BOB, b), Cause::Bye);
    assert_eq!(terminated_once_last(&p, ALICE, a), Cause::Bye);
    assert_eq!(p.sides[ALICE].ua.session_ids(), [a2]);
    assert_eq!(p.sides[carol].ua.session_ids(), [c]);
    // Order on Alice's old session: Refer before its Bye.
    let names: Vec<&str> = p.sides[ALICE]
        .session_events(a)
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Refer { .. } => Some("refer"),
            SessionEvent::Bye { .. } => Some("bye"),
            SessionEvent::Terminated { .. } => Some("terminated"),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["refer", "bye", "terminated"]);
}

#[test]
fn attended_transfer_with_replaces() {
    let mut p = Pair::new(NetConfig::default(), 22);
    let carol = add_carol(&mut p);
    // Alice calls Bob (b1); Bob calls Carol (b2).
    let (a1, b1) = call(&mut p, ALICE, BOB, 0);
    let (b2, c1) = call(&mut p, BOB, carol, 0);
    let d2 = p.sides[BOB].ua.session(b2).and_then(|s| s.dialog()).map(|d| d.id.clone()).expect("b2 dialog");
    let carol_uri = p.sides[carol].uri();

    let now = p.now;
    p.sides[BOB].ua.refer(now, b1, &carol_uri, Some(b2)).expect("refer");
    assert!(p.run_until(Duration::from_secs(10), |p| refer_request(p, ALICE, a1).is_some()), "{:?}", p.ladder());
    let refer = refer_request(&p, ALICE, a1).expect("REFER");
    // RFC 3891 §5: the Refer-To URI carries the escaped Replaces header.
    let refer_to = refer.headers.iter().find_map(|h| match h {
        Header::ReferTo(t) => Some(t.uri.to_string()),
        _ => None,
    });
    let want = format!(
        "{carol_uri}?Replaces={}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        d2.call_id.replace('@', "%40"),
        d2.remote_tag,
        d2.local_tag
    );
    assert_eq!(refer_to.as_deref(), Some(want.as_str()));
    let now = p.now;
    let a2 = p.sides[ALICE].ua.follow_refer(now, a1, &refer).expect("follow");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[carol].incoming(1).is_some()), "{:?}", p.ladder());
    let c2 = p.sides[carol].incoming(1).expect("the replacing call");
    // Carol learns which of her sessions the new call replaces.
    let replaces = p.sides[carol].events.iter().find_map(|(_, e)| match e {
        UaEvent::Incoming { session, replaces, .. } if *session == c2 => Some(*replaces),
        _ => None,
    });
    assert_eq!(replaces, Some(Some(c1)));

    // On the wire: Alice's INVITE to Carol names Carol's dialog with Bob.
    let invites = requests(&p, Method::Invite);
    let (from, inv) = invites.iter().find(|(_, r)| replaces_of(r).is_some()).expect("INVITE with Replaces");
    assert_eq!(*from, p.sides[ALICE].addr);
    assert_eq!(inv.uri.to_string(), carol_uri, "the Replaces header moved out of the Request-URI");
    let rep = replaces_of(inv).expect("Replaces");
    assert_eq!(*rep.value, *d2.call_id);
    // to-tag is Carol's (the recipient's) tag, from-tag Bob's.
    assert_eq!(rep.params.value("to-tag"), Some(&*d2.remote_tag));
    assert_eq!(rep.params.value("from-tag"), Some(&*d2.local_tag));
    let carol_dialog = p.sides[carol].ua.session(c1).and_then(|s| s.dialog()).map(|d| d.id.clone()).expect("c1");
    assert_eq!(carol_dialog.local_tag, d2.remote_tag);
    assert_eq!(carol_dialog.call_id, d2.call_id);
    assert!(inv.headers.iter().any(|h| matches!(h, Header::ReferredBy(_))));

    let now = p.now;
    p.sides[carol].ua.accept(now, c2).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(20), |p| accepted(p, ALICE, a2)
            && p.sides[carol].ua.session(c1).is_none()
            && p.sides[BOB].ua.session(b2).is_none()),
        "{:?}",
        p.ladder()
    );
    // Carol's old session: Replaced, then over by BYE; Bob's b2 got that BYE.
    let names: Vec<&str> = p.sides[carol]
        .session_events(c1)
        .iter()
        .map(|e| match e {
            SessionEvent::Replaced { new_session } if *new_session == c2 => "replaced",
            SessionEvent::Terminated { .. } => "terminated",
            SessionEvent::Accepted { .. } => "accepted",
            _ => "other",
        })
        .collect();
    assert_eq!(names, ["accepted", "replaced", "terminated"]);
    assert_eq!(terminated_once_last(&p, carol, c1), Cause::Bye);
    assert_eq!(terminated_once_last(&p, BOB, b2), Cause::Bye);
    assert!(p.sides[BOB].session_events(b2).iter().any(|e| matches!(e, SessionEvent::Bye { .. })));
    let byes = requests(&p, Method::Bye);
    let (from, bye) = byes.first().expect("BYE");
    assert_eq!(*from, p.sides[carol].addr);
    assert_eq!(bye.headers.call_id(), Some(&*d2.call_id));
    // Bob hears the transfer succeeded.
    assert!(
        p.run_until(Duration::from_secs(10), |p| refer_progress(p, BOB, b1).last() == Some(&(200, true))),
        "{:?}",
        refer_progress(&p, BOB, b1)
    );
    // Alice and Carol talk; Bob hangs up his leg to Alice.
    let now = p.now;
    p.sides[BOB].ua.bye(now, b1).expect("bye");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[BOB].ua.session_ids().is_empty()));
    assert_eq!(p.sides[ALICE].ua.session_ids(), [a2]);
    assert_eq!(p.sides[carol].ua.session_ids(), [c2]);
    assert!(accepted(&p, carol, c2));
}

#[test]
fn replaces_matching_nothing_gets_481() {
    let mut p = Pair::new(NetConfig::default(), 23);
    let target = p.sides[BOB].uri();
    let mut params = Params::new();
    params.push(Param::new("to-tag", "nosuchtag"));
    params.push(Param::new("from-tag", "other"));
    let rep = Header::Replaces(TokenParams { value: "nosuchcall@example".into(), params });
    let now = p.now;
    let a = p.sides[ALICE]
        .ua
        .invite(now, &target, InviteOptions { extra_headers: vec![rep], ..Default::default() })
        .expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[ALICE].ua.session_ids().is_empty()), "{:?}", p.ladder());
    assert_eq!(p.ladder(), ["alice INVITE", "bob 100 INVITE", "bob 481 INVITE", "alice ACK"]);
    assert!(p.sides[BOB].incoming(0).is_none(), "no session for Bob");
    let evs = p.sides[ALICE].session_events(a);
    assert!(matches!(evs.first(), Some(SessionEvent::Rejected { response, .. }) if response.status == 481), "{evs:?}");
    assert_eq!(terminated_once_last(&p, ALICE, a), Cause::SipFailureCode);
    p.run_for(Duration::from_secs(40));
    assert!(p.sides[BOB].transaction_count() == 0 && p.sides[ALICE].transaction_count() == 0);
}
