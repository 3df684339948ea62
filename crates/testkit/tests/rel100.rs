//! Scenario: reliable provisional responses (RFC 3262) and delayed offers
//! (RFC 3261 §13.2.1, RFC 3262 §5).

use std::time::Duration;

use sipact_message::{Method, Request, Response, SipMessage};
use sipact_proto::ua::InviteOptions;
use sipact_proto::{Rel100, SessionEvent};
use sipact_testkit::{FakeSdp, NetConfig, Pair, SdpLog};

const ALICE: usize = 0;
const BOB: usize = 1;

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

fn requests(p: &Pair, m: Method) -> Vec<Request> {
    p.wire()
        .into_iter()
        .filter_map(|(_, w)| match w {
            SipMessage::Request(r) if r.method == m => Some(r),
            _ => None,
        })
        .collect()
}

fn responses(p: &Pair, status: u16, m: Method) -> Vec<Response> {
    p.wire()
        .into_iter()
        .filter_map(|(_, w)| match w {
            SipMessage::Response(r) if r.status == status && r.headers.cseq().is_some_and(|c| c.method == m) => Some(r),
            _ => None,
        })
        .collect()
}

fn sdp_log(p: &Pair, side: usize) -> SdpLog {
    let logs = p.sides[side].sdp.lock().expect("lock");
    assert_eq!(logs.len(), 1, "one session, one set of hooks");
    logs[0].lock().expect("lock").clone()
}

fn is_sdp(body: &[u8], headers: &sipact_message::Headers) -> bool {
    !body.is_empty() && headers.content_type().is_some_and(|c| c.is("application", "sdp"))
}

fn rel100_pair(net: NetConfig, seed: u64) -> Pair {
    Pair::with(net, seed, |a| a.rel100 = Rel100::Supported, |b| b.rel100 = Rel100::Required)
}

/// Invites Bob and waits until the INVITE is in.
fn start(p: &mut Pair, opts: InviteOptions) -> (u64, u64) {
    let target = p.sides[BOB].uri();
    let now = p.now;
    let a = p.sides[ALICE].ua.invite(now, &target, opts).expect("invite");
    assert!(p.run_until(Duration::from_secs(10), |p| p.sides[BOB].incoming(0).is_some()));
    (a, p.sides[BOB].incoming(0).expect("incoming"))
}

/// Bob answers, the call is set up, Alice hangs up.
fn finish(p: &mut Pair, a: u64, b: u64) {
    let now = p.now;
    p.sides[BOB].ua.accept(now, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(20), |p| {
            p.sides[ALICE].session_events(a).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
                && p.sides[BOB].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
        }),
        "never accepted: {:?}",
        p.ladder()
    );
    let now = p.now;
    p.sides[ALICE].ua.bye(now, a).expect("bye");
    assert!(p.run_until(Duration::from_secs(20), |p| p.sides[ALICE].ua.session(a).is_none()
        && p.sides[BOB].ua.session(b).is_none()));
}

#[test]
fn reliable_183_is_pracked_with_matching_rack() {
    let mut p = rel100_pair(NetConfig::default(), 31);
    let (a, b) = start(&mut p, InviteOptions::default());
    let invite = requests(&p, Method::Invite).remove(0);
    assert!(invite.headers.supports("100rel"), "the caller supports 100rel");
    let now = p.now;
    p.sides[BOB].ua.progress(now, b, 183, false, false).expect("183");
    assert!(p.run_until(Duration::from_secs(5), |p| !responses(p, 200, Method::Prack).is_empty()));

    let r183 = responses(&p, 183, Method::Invite);
    assert_eq!(r183.len(), 1);
    let r183 = &r183[0];
    assert!(r183.headers.requires("100rel"), "reliable 183 carries Require: 100rel");
    let rseq = r183.headers.rseq().expect("RSeq");
    assert!((1..=0x7fff_ffff).contains(&rseq));
    // Bob's policy made it reliable; the INVITE carried an offer, so the 183 answers it.
    assert!(is_sdp(&r183.body, &r183.headers));
    assert_eq!(FakeSdp::direction(&r183.body), "sendrecv");

    let pracks = requests(&p, Method::Prack);
    assert_eq!(pracks.len(), 1);
    let prack = &pracks[0];
    let rack = prack.headers.rack().expect("RAck");
    assert_eq!(rack.rseq, rseq);
    assert_eq!(rack.cseq, invite.headers.cseq().expect("cseq").seq);
    assert_eq!(rack.method, Method::Invite);
    // In the early dialog: the 183's To tag, a new CSeq.
    assert_eq!(prack.headers.to().and_then(|t| t.tag()), r183.headers.to().and_then(|t| t.tag()));
    assert_eq!(prack.headers.call_id(), invite.headers.call_id());
    assert!(prack.headers.cseq().expect("cseq").seq > invite.headers.cseq().expect("cseq").seq);
    assert!(prack.body.is_empty(), "the offer was answered in the 183: no body in the PRACK");

    finish(&mut p, a, b);
    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 183 INVITE",
            "alice PRACK",
            "bob 200 PRACK",
            "bob 200 INVITE",
            "alice ACK",
            "alice BYE",
            "bob 200 BYE"
        ]
    );
    let ok = &responses(&p, 200, Method::Invite)[0];
    assert!(ok.body.is_empty(), "offer/answer finished in the 183: no SDP in the 200");
    assert_eq!(names(&p.sides[ALICE].session_events(a)), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&p.sides[BOB].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
    let (la, lb) = (sdp_log(&p, ALICE), sdp_log(&p, BOB));
    assert_eq!(la.offers, [false]);
    assert_eq!(la.applied, ["sendrecv"]);
    assert_eq!(lb.answered, ["sendrecv"]);
}

#[test]
fn reliable_provisional_is_retransmitted_at_t1_doubling_until_pracked() {
    let mut p = rel100_pair(NetConfig::default(), 32);
    let (a, b) = start(&mut p, InviteOptions::default());
    // Partition: the 183 and its retransmissions are lost until we heal.
    p.net.config_mut().loss = 1.0;
    let t = p.now;
    p.sides[BOB].ua.progress(t, b, 183, false, false).expect("183");
    p.run_for(Duration::from_secs(4));
    p.net.config_mut().loss = 0.0;
    assert!(p.run_until(Duration::from_secs(10), |p| !responses(p, 200, Method::Prack).is_empty()));
    p.run_for(Duration::from_secs(20));

    let sent: Vec<Duration> = p
        .wire_at()
        .into_iter()
        .filter(|(_, _, m)| matches!(m, SipMessage::Response(r) if r.status == 183))
        .map(|(at, _, _)| at - t)
        .collect();
    let ms = |x: u64| Duration::from_millis(x);
    // RFC 3262 §3: first retransmission after T1, the interval doubling each time.
    assert_eq!(sent, [ms(0), ms(500), ms(1500), ms(3500), ms(7500)], "183 send instants");
    // Every copy is the same reliable response (same RSeq).
    let r183 = responses(&p, 183, Method::Invite);
    assert!(r183.windows(2).all(|w| w[0].headers.rseq() == w[1].headers.rseq()));
    // Once PRACKed, no more: the next one would have gone at 15.5 s.
    assert_eq!(requests(&p, Method::Prack).len(), 1);
    finish(&mut p, a, b);
}

#[test]
fn duplicated_reliable_provisional_is_pracked_once() {
    // Every packet arrives twice: the UAC must drop the second 183 (RFC 3262
    // §4: an RSeq not one higher than the last is not PRACKed again).
    let net = NetConfig { duplicate: 1.0, ..NetConfig::default() };
    let mut p = rel100_pair(net, 33);
    let (a, b) = start(&mut p, InviteOptions::default());
    let now = p.now;
    p.sides[BOB].ua.progress(now, b, 183, false, false).expect("183");
    p.run_for(Duration::from_secs(1));
    assert_eq!(requests(&p, Method::Prack).len(), 1, "{:?}", p.ladder());
    assert!(responses(&p, 481, Method::Prack).is_empty());
    let progress = p.sides[ALICE]
        .session_events(a)
        .iter()
        .filter(|e| matches!(e, SessionEvent::Progress { response } if response.status == 183))
        .count();
    assert_eq!(progress, 1, "the duplicate 183 is not reported again");
    finish(&mut p, a, b);
}

#[test]
fn delayed_offer_with_100rel_offer_in_183_answer_in_prack() {
    let mut p = rel100_pair(NetConfig::default(), 34);
    let (a, b) = start(&mut p, InviteOptions { without_sdp: true, ..Default::default() });
    let now = p.now;
    // RFC 3262 §5: the INVITE had no offer, so the first reliable
    // provisional must carry one.
    p.sides[BOB].ua.progress(now, b, 183, false, false).expect("183");
    assert!(p.run_until(Duration::from_secs(5), |p| !responses(p, 200, Method::Prack).is_empty()));
    finish(&mut p, a, b);
    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 183 INVITE",
            "alice PRACK",
            "bob 200 PRACK",
            "bob 200 INVITE",
            "alice ACK",
            "alice BYE",
            "bob 200 BYE"
        ]
    );
    let invite = &requests(&p, Method::Invite)[0];
    assert!(invite.body.is_empty() && invite.headers.content_type().is_none(), "delayed offer: no SDP");
    let r183 = &responses(&p, 183, Method::Invite)[0];
    assert!(r183.headers.rseq().is_some());
    assert!(is_sdp(&r183.body, &r183.headers), "the offer is in the reliable 183");
    assert_eq!(FakeSdp::direction(&r183.body), "sendrecv");
    let prack = &requests(&p, Method::Prack)[0];
    assert!(is_sdp(&prack.body, &prack.headers), "the answer is in the PRACK");
    assert_eq!(FakeSdp::direction(&prack.body), "sendrecv");
    assert!(responses(&p, 200, Method::Prack)[0].body.is_empty());
    assert!(responses(&p, 200, Method::Invite)[0].body.is_empty(), "no second offer in the 200");
    assert!(requests(&p, Method::Ack)[0].body.is_empty());

    let (la, lb) = (sdp_log(&p, ALICE), sdp_log(&p, BOB));
    assert!(la.offers.is_empty(), "the caller made no offer");
    assert_eq!(la.answered, ["sendrecv"]);
    assert_eq!(lb.offers, [false]);
    assert_eq!(lb.applied, ["sendrecv"]);
    assert!(lb.answered.is_empty());
}

#[test]
fn delayed_offer_without_100rel_offer_in_200_answer_in_ack() {
    let mut p = Pair::with(NetConfig::default(), 35, |a| a.rel100 = Rel100::Unsupported, |_| {});
    let (a, b) = start(&mut p, InviteOptions { without_sdp: true, ..Default::default() });
    let invite = &requests(&p, Method::Invite)[0];
    assert!(!invite.headers.supports("100rel"));
    let now = p.now;
    p.sides[BOB].ua.progress(now, b, 180, false, false).expect("180");
    p.run_for(Duration::from_millis(100));
    finish(&mut p, a, b);
    assert_eq!(
        p.ladder(),
        ["alice INVITE", "bob 100 INVITE", "bob 180 INVITE", "bob 200 INVITE", "alice ACK", "alice BYE", "bob 200 BYE"]
    );
    let invite = &requests(&p, Method::Invite)[0];
    assert!(invite.body.is_empty());
    let r180 = &responses(&p, 180, Method::Invite)[0];
    assert!(r180.headers.rseq().is_none() && r180.body.is_empty());
    let ok = &responses(&p, 200, Method::Invite)[0];
    assert!(is_sdp(&ok.body, &ok.headers), "the offer is in the 200");
    assert_eq!(FakeSdp::direction(&ok.body), "sendrecv");
    let ack = &requests(&p, Method::Ack)[0];
    assert!(is_sdp(&ack.body, &ack.headers), "the answer is in the ACK");
    assert_eq!(FakeSdp::direction(&ack.body), "sendrecv");

    let (la, lb) = (sdp_log(&p, ALICE), sdp_log(&p, BOB));
    assert!(la.offers.is_empty());
    assert_eq!(la.answered, ["sendrecv"]);
    assert_eq!(lb.offers, [false]);
    assert_eq!(lb.applied, ["sendrecv"]);
    assert_eq!(names(&p.sides[BOB].session_events(b)), ["progress", "accepted", "bye", "terminated"]);
}
