//! Tier 4: races over real UDP on 127.0.0.1: a CANCEL crossing the 200,
//! and 491 glare when both sides hold at once.

mod common;

use std::time::Duration;

use common::*;
use sipact_actors::{Cause, InviteOptions, ProgressOptions, SessionEvent};
use sipact_message::Method;

/// Callee accepts while the caller cancels; whichever wins, each side ends
/// exactly once, and a 200 that won is ACKed then hung up with BYE.
async fn cancel_races_accept(cancel_first: bool) {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&alice);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    b.progress(ProgressOptions::default()).await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Progress { .. })).await;
    let (acc, can) = if cancel_first {
        let (c, a) = tokio::join!(a.cancel(), b.accept());
        (a, c)
    } else {
        tokio::join!(b.accept(), a.cancel())
    };
    can.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    assert_one_terminated(&a_seen, "caller");
    assert_one_terminated(&b_seen, "callee");
    tap.settle(Duration::from_millis(200)).await;
    let l = tap.labels();
    let ok_won = tap.seen.iter().any(|w| w.is_response(false, 200, &Method::Invite));
    eprintln!("cancel_first={cancel_first}: the {} won: {l:?}", if ok_won { "200" } else { "CANCEL" });
    if ok_won {
        acc.unwrap();
        let ok = tap.position("< 200 INVITE").unwrap();
        let ack = tap.position("> ACK").unwrap_or_else(|| panic!("no ACK: {l:?}"));
        let bye = tap.position("> BYE").unwrap_or_else(|| panic!("no BYE: {l:?}"));
        assert!(ok < ack && ack < bye, "{l:?}");
        assert!(tap.position("< 487 INVITE").is_none(), "{l:?}");
        // SESSION-API.md: "if the 2xx crossed the CANCEL, with ACK + BYE
        // (accepted, bye, terminated)"; the end is reported as Canceled.
        assert_eq!(names(&a_seen), ["progress", "accepted", "bye", "terminated"]);
        assert!(matches!(&a_seen[1], SessionEvent::Accepted { response, .. } if response.status == 200));
        let (sent_bye, _) = tap.requests(true, &Method::Bye).remove(0);
        match &a_seen[2] {
            SessionEvent::Bye { request } => assert_eq!(request.headers.cseq(), sent_bye.headers.cseq()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(a_seen.last(), Some(SessionEvent::Terminated { cause: Cause::Canceled })));
        assert!(a.start_time().is_some());
        assert_eq!(names(&b_seen), ["progress", "accepted", "bye", "terminated"]);
    } else {
        // The CANCEL won: 487, and accept found the call gone.
        assert!(acc.is_err());
        assert!(tap.position("< 487 INVITE").is_some(), "{l:?}");
        assert!(tap.position("> BYE").is_none(), "{l:?}");
        assert_eq!(names(&a_seen), ["progress", "rejected", "failed", "terminated"]);
        assert_eq!(names(&b_seen), ["progress", "cancel", "failed", "terminated"]);
    }
}

#[actix_rt::test]
async fn cancel_racing_the_200_accept_first() {
    cancel_races_accept(false).await;
}

#[actix_rt::test]
async fn cancel_racing_the_200_cancel_first() {
    cancel_races_accept(true).await;
}

#[actix_rt::test]
async fn glare_491_then_both_hold_after_the_back_off() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut b_tap = Tap::new(&bob);
    let mut call = establish(&alice, &bob, &mut inc).await;
    // Both re-INVITE at once: each gets the other's while its own is pending.
    let (ha, hb) = tokio::join!(call.a.hold(), call.b.hold());
    ha.unwrap();
    hb.unwrap();
    a_tap.wait_for("491 sent by Alice", |w| w.is_response(true, 491, &Method::Invite)).await;
    b_tap.wait_for("491 sent by Bob", |w| w.is_response(true, 491, &Method::Invite)).await;
    // RFC 3261 §14.1: retries after 0-2 s (Bob) and 2.1-4 s (Alice, who owns the Call-ID).
    let back_off = Duration::from_secs(10);
    let wait_hold = async |ev: &mut sipact_actors::SessionEvents, seen: &mut Vec<SessionEvent>| {
        tokio::time::timeout(back_off, async {
            loop {
                let e = ev.next().await.expect("stream ended");
                seen.push(e.clone());
                if matches!(e, SessionEvent::HoldChanged { local_hold: true }) {
                    break;
                }
            }
        })
        .await
        .expect("no HoldChanged after the back-off");
    };
    wait_hold(&mut call.a_ev, &mut call.a_seen).await;
    wait_hold(&mut call.b_ev, &mut call.b_seen).await;
    a_tap.wait_count("Alice's retry answered", 2, |w| w.is_response(false, 200, &Method::Invite)).await;
    b_tap.wait_count("Bob's retry answered", 1, |w| w.is_response(false, 200, &Method::Invite)).await;
    a_tap.drain();
    b_tap.drain();
    // On the wire: Alice sent 2 re-INVITEs (the first got a 491), Bob too.
    let reinvites = |t: &Tap| t.requests(true, &Method::Invite).len();
    assert_eq!(reinvites(&a_tap), 1 + 2, "{:?}", a_tap.labels());
    assert_eq!(reinvites(&b_tap), 2, "{:?}", b_tap.labels());
    assert_eq!(a_tap.responses(false, &Method::Invite).iter().filter(|r| r.status == 491).count(), 1);
    assert_eq!(b_tap.responses(false, &Method::Invite).iter().filter(|r| r.status == 491).count(), 1);
    call.hang_up().await;
    for (who, seen) in [("alice", &call.a_seen), ("bob", &call.b_seen)] {
        let n = names(seen);
        assert_eq!(n.iter().filter(|x| **x == "hold").count(), 1, "{who}: {n:?}");
        assert_eq!(n.iter().filter(|x| **x == "reinvited").count(), 1, "{who}: {n:?}");
        assert!(!n.contains(&"reneg-failed"), "{who}: {n:?}");
    }
}
