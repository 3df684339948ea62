//! Scenario: CANCEL (RFC 3261 §9) before any provisional, after a 180, and
//! racing the 2xx.

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

fn terminated(evs: &[&SessionEvent]) -> Vec<Cause> {
    evs.iter()
        .filter_map(|e| match e {
            SessionEvent::Terminated { cause } => Some(*cause),
            _ => None,
        })
        .collect()
}

fn position(ladder: &[String], line: &str) -> usize {
    ladder.iter().position(|l| l == line).unwrap_or_else(|| panic!("{line:?} not in {ladder:?}"))
}

/// Runs until both sessions are gone.
fn settle(p: &mut Pair, a: u64, b: u64) {
    assert!(
        p.run_until(Duration::from_secs(60), |p| p.sides[0].ua.session(a).is_none()
            && p.sides[1].ua.session(b).is_none()),
        "sessions never ended: {:?}",
        p.ladder()
    );
}

#[test]
fn cancel_before_any_provisional_waits_for_the_100() {
    let mut p = Pair::new(NetConfig::default(), 7);
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    // Same instant: nothing has come back yet, so the CANCEL must wait (§9.1).
    p.sides[0].ua.cancel(now, a).expect("cancel");
    p.run_for(Duration::from_millis(5));
    assert_eq!(p.ladder(), ["alice INVITE"], "CANCEL sent before any provisional");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[1].incoming(0).is_some()));
    let b = p.sides[1].incoming(0).expect("incoming");
    settle(&mut p, a, b);
    let ladder = p.ladder();
    assert_eq!(
        ladder,
        ["alice INVITE", "bob 100 INVITE", "alice CANCEL", "bob 200 CANCEL", "bob 487 INVITE", "alice ACK"],
    );
    assert!(position(&ladder, "alice CANCEL") > position(&ladder, "bob 100 INVITE"));

    // The CANCEL matches the INVITE: same branch, Call-ID, From, CSeq number (§9.1).
    let wire = p.wire();
    let req = |m: Method| {
        wire.iter()
            .find_map(|(_, w)| match w {
                SipMessage::Request(r) if r.method == m => Some(r.clone()),
                _ => None,
            })
            .expect("request on the wire")
    };
    let (invite, cancel) = (req(Method::Invite), req(Method::Cancel));
    assert_eq!(invite.headers.via().and_then(|v| v.branch()), cancel.headers.via().and_then(|v| v.branch()));
    assert_eq!(invite.headers.call_id(), cancel.headers.call_id());
    assert_eq!(invite.headers.cseq().map(|c| c.seq), cancel.headers.cseq().map(|c| c.seq));
    assert_eq!(cancel.headers.cseq().map(|c| c.method.clone()), Some(Method::Cancel));
    assert_eq!(invite.uri, cancel.uri);

    let ea = p.sides[0].session_events(a);
    assert_eq!(names(&ea), ["rejected", "failed", "terminated"]);
    assert!(matches!(ea[0], SessionEvent::Rejected { response, cause: Cause::Canceled } if response.status == 487));
    assert!(matches!(ea[1], SessionEvent::Failed { cause: Cause::Canceled, .. }));
    assert_eq!(terminated(&ea), [Cause::Canceled]);
    let eb = p.sides[1].session_events(b);
    assert_eq!(names(&eb), ["cancel", "failed", "terminated"]);
    assert_eq!(terminated(&eb), [Cause::Canceled]);
}

#[test]
fn cancel_after_180() {
    let mut p = Pair::new(NetConfig::default(), 8);
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[1].incoming(0).is_some()));
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("180");
    assert!(p.run_until(Duration::from_secs(5), |p| !p.sides[0].session_events(a).is_empty()));
    let now = p.now;
    p.sides[0].ua.cancel(now, a).expect("cancel");
    settle(&mut p, a, b);
    assert_eq!(
        p.ladder(),
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 180 INVITE",
            "alice CANCEL",
            "bob 200 CANCEL",
            "bob 487 INVITE",
            "alice ACK"
        ]
    );
    let ea = p.sides[0].session_events(a);
    assert_eq!(names(&ea), ["progress", "rejected", "failed", "terminated"]);
    assert_eq!(terminated(&ea), [Cause::Canceled]);
    let eb = p.sides[1].session_events(b);
    assert_eq!(names(&eb), ["progress", "cancel", "failed", "terminated"]);
    assert_eq!(terminated(&eb), [Cause::Canceled]);
    // Nothing left behind: no transaction retransmits once Timer D etc. fire.
    p.run_for(Duration::from_secs(40));
    assert_eq!(p.ladder().len(), 7, "late traffic: {:?}", p.ladder());
}

#[test]
fn cancel_racing_the_2xx_acks_then_byes() {
    let mut p = Pair::new(NetConfig::default(), 9);
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[1].incoming(0).is_some()));
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("180");
    assert!(p.run_until(Duration::from_secs(5), |p| !p.sides[0].session_events(a).is_empty()));
    // Same synthetic instant: the callee answers while the caller cancels;
    // the 200 and the CANCEL cross on the wire.
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("accept");
    p.sides[0].ua.cancel(now, a).expect("cancel");
    settle(&mut p, a, b);
    let ladder = p.ladder();
    assert_eq!(
        ladder,
        [
            "alice INVITE",
            "bob 100 INVITE",
            "bob 180 INVITE",
            "alice CANCEL",
            "bob 200 INVITE",
            "alice ACK",
            "alice BYE",
            "bob 200 CANCEL",
            "bob 200 BYE"
        ]
    );
    assert!(position(&ladder, "alice ACK") < position(&ladder, "alice BYE"));
    // The BYE goes in the dialog the 2xx made.
    let wire = p.wire();
    let ok = wire
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r)
                if r.status == 200 && r.headers.cseq().is_some_and(|c| c.method == Method::Invite) =>
            {
                Some(r.clone())
            }
            _ => None,
        })
        .expect("200 INVITE");
    let bye = wire
        .iter()
        .find_map(|(_, m)| match m {
            SipMessage::Request(r) if r.method == Method::Bye => Some(r.clone()),
            _ => None,
        })
        .expect("BYE");
    assert_eq!(bye.headers.to().and_then(|t| t.tag()), ok.headers.to().and_then(|t| t.tag()));

    let ea = p.sides[0].session_events(a);
    let eb = p.sides[1].session_events(b);
    assert_eq!(terminated(&ea).len(), 1, "caller: {:?}", names(&ea));
    assert_eq!(terminated(&eb).len(), 1, "callee: {:?}", names(&eb));
    assert_eq!(names(&ea).last(), Some(&"terminated"));
    assert_eq!(names(&eb), ["progress", "accepted", "bye", "terminated"]);
    assert_eq!(terminated(&eb), [Cause::Bye]);
    // SIP.js: "if the remote end has already accepted the Invite, a BYE
    // must be sent, resulting in accepted, bye, and terminated events"; the
    // Bye event carries the BYE the caller sent, and the end is reported
    // as Canceled (the user canceled the call).
    assert_eq!(names(&ea), ["progress", "accepted", "bye", "terminated"]);
    assert!(matches!(ea[1], SessionEvent::Accepted { response, ack: None } if response.status == 200));
    match ea[2] {
        SessionEvent::Bye { request } => {
            assert_eq!(request.method, Method::Bye);
            assert_eq!(request.headers.cseq(), bye.headers.cseq());
            assert_eq!(request.headers.call_id(), bye.headers.call_id());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(terminated(&ea), [Cause::Canceled]);
}

#[test]
fn cancel_under_loss_ends_both_sides_once() {
    for seed in 1..=20u64 {
        let net = NetConfig { loss: 0.3, duplicate: 0.05, reorder: 0.1, ..NetConfig::default() };
        let mut p = Pair::new(net, seed);
        let target = p.sides[1].uri();
        let now = p.now;
        let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
        // Cancel at a seed-dependent moment: before, around or after the 180.
        p.run_for(Duration::from_millis(seed * 37 % 700));
        if let Some(b) = p.sides[1].incoming(0) {
            let now = p.now;
            let _ = p.sides[1].ua.progress(now, b, 180, false, false);
        }
        let now = p.now;
        p.sides[0].ua.cancel(now, a).expect("cancel");
        for _ in 0..40 {
            p.run_for(Duration::from_millis(250));
            if let Some(b) = p.sides[1].incoming(0) {
                let now = p.now;
                let _ = p.sides[1].ua.progress(now, b, 180, false, false);
            }
        }
        p.run_for(Duration::from_secs(200));
        let ea = p.sides[0].session_events(a);
        assert_eq!(terminated(&ea), [Cause::Canceled], "seed {seed}: {:?}\n{:?}", names(&ea), p.ladder());
        if let Some(b) = p.sides[1].incoming(0) {
            let eb = p.sides[1].session_events(b);
            assert_eq!(terminated(&eb), [Cause::Canceled], "seed {seed}: {:?}\n{:?}", names(&eb), p.ladder());
        }
        for s in &mut p.sides {
            assert!(s.ua.session_ids().is_empty(), "seed {seed}");
            assert_eq!(s.transaction_count(), 0, "seed {seed}: transactions left\n{:?}", p.net.sent.len());
            assert_eq!(s.ua.poll_timeout(), None, "seed {seed}");
        }
    }
}
