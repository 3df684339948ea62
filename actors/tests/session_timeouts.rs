//! Tier 4: the callee's timeouts over UDP on 127.0.0.1, with T1 = 50 ms
//! (64*T1 = 3.2 s): a 2xx never ACKed (RFC 3261 §13.3.1.4: BYE, cause
//! `NoAck`) and a reliable provisional never PRACKed (RFC 3262 §3: a 5xx
//! to the INVITE, cause `NoPrack`). The caller goes deaf right after its
//! INVITE was answered with 100: its UDP transport is closed.

mod common;

use std::time::Duration;

use common::*;
use sipact_actors::messages::Close;
use sipact_actors::{Cause, InviteOptions, ProgressOptions, SessionEvent, SessionEvents, UaConfig, UserAgent};
use sipact_message::Method;

/// 64*T1 with T1 = 50 ms.
const T1X64: Duration = Duration::from_millis(3200);
/// Longest wait for an end driven by 64*T1.
const LONG: Duration = Duration::from_secs(10);

fn fast(user: &str, rel100: &str) -> UserAgent {
    UserAgent::start(UaConfig { t1_ms: 50, rel100: rel100.into(), ..cfg(user) }).unwrap()
}

async fn to_end_within(ev: &mut SessionEvents, seen: &mut Vec<SessionEvent>, within: Duration) {
    tokio::time::timeout(within, async {
        while let Some(e) = ev.next().await {
            seen.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("session did not end; seen {:?}", names(seen)));
}

fn cause_of_end(evs: &[SessionEvent]) -> Cause {
    match evs.last() {
        Some(SessionEvent::Terminated { cause }) => *cause,
        other => panic!("last event {other:?}"),
    }
}

/// Alice calls Bob; once her INVITE got its 100, her transport is closed.
async fn deaf_caller(
    alice: &UserAgent,
    bob: &UserAgent,
) -> (sipact_actors::Session, SessionEvents, sipact_actors::Session, SessionEvents, Tap) {
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(alice);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let b_ev = b.events();
    a_tap.wait_for("100 Trying", |w| w.is_response(false, 100, &Method::Invite)).await;
    alice.udp().send(Close).await.unwrap();
    (a, a_ev, b, b_ev, a_tap)
}

/// The deaf caller gives up: CANCEL (lost), then the INVITE transaction
/// times out 64*T1 later.
async fn caller_gives_up(a: &sipact_actors::Session, a_ev: &mut SessionEvents, a_tap: &mut Tap) {
    a.terminate().await.unwrap();
    let mut a_seen = Vec::new();
    to_end_within(a_ev, &mut a_seen, LONG).await;
    assert_eq!(names(&a_seen), ["failed", "terminated"]);
    assert_eq!(cause_of_end(&a_seen), Cause::RequestTimeout);
    a_tap.drain();
    // Nothing reached it after the close: no 200, no 183.
    assert!(a_tap.seen.iter().filter(|w| !w.outgoing).all(|w| w.is_response(false, 100, &Method::Invite)));
}

#[actix_rt::test]
async fn no_ack_ends_the_callee_with_bye_after_64_t1() {
    let alice = fast("alice", "supported");
    let bob = fast("bob", "supported");
    let mut b_tap = Tap::new(&bob);
    let (a, mut a_ev, b, mut b_ev, mut a_tap) = deaf_caller(&alice, &bob).await;
    b.accept().await.unwrap();
    let mut b_seen = Vec::new();
    to_end_within(&mut b_ev, &mut b_seen, LONG).await;
    // Never ACKed: never accepted either; the end says why.
    assert_eq!(names(&b_seen), ["terminated"]);
    assert_eq!(cause_of_end(&b_seen), Cause::NoAck);
    assert!(b.start_time().is_none());

    b_tap.wait_for("BYE", |w| w.is_request(true, &Method::Bye)).await;
    let l = b_tap.labels();
    assert!(b_tap.position("< ACK").is_none(), "{l:?}");
    let oks: Vec<_> = b_tap.seen.iter().filter(|w| w.is_response(true, 200, &Method::Invite)).collect();
    // §13.3.1.4: retransmitted from T1, doubling up to T2, for 64*T1.
    assert!(oks.len() >= 5, "{} 200s: {l:?}", oks.len());
    let first = oks[0].at;
    let last_ok = oks[oks.len() - 1];
    let (bye, bye_at) = b_tap.requests(true, &Method::Bye).remove(0);
    let waited = bye_at.duration_since(first).unwrap();
    assert!(waited >= T1X64 - Duration::from_millis(20), "BYE after {waited:?}");
    assert!(waited < T1X64 + Duration::from_secs(2), "BYE after {waited:?}");
    assert!(last_ok.at <= bye_at, "{l:?}");
    // The BYE is in the dialog the 2xx made.
    let ok = oks[0].response().unwrap();
    assert_eq!(bye.headers.call_id(), ok.headers.call_id());
    assert_eq!(bye.headers.from().and_then(|f| f.tag()), ok.headers.to().and_then(|t| t.tag()));

    caller_gives_up(&a, &mut a_ev, &mut a_tap).await;
}

#[actix_rt::test]
async fn no_prack_fails_the_invite_with_a_5xx_after_64_t1() {
    let alice = fast("alice", "supported");
    let bob = fast("bob", "required");
    let mut b_tap = Tap::new(&bob);
    let (a, mut a_ev, b, mut b_ev, mut a_tap) = deaf_caller(&alice, &bob).await;
    b.progress(ProgressOptions { status: 183, early_media: true, reliable: true }).await.unwrap();
    let mut b_seen = Vec::new();
    to_end_within(&mut b_ev, &mut b_seen, LONG).await;
    assert_eq!(names(&b_seen), ["progress", "failed", "terminated"]);
    assert!(matches!(&b_seen[1], SessionEvent::Failed { cause: Cause::NoPrack, .. }));
    assert_eq!(cause_of_end(&b_seen), Cause::NoPrack);

    b_tap.wait_for("5xx", |w| w.outgoing && w.response().is_some_and(|r| r.status >= 500)).await;
    let l = b_tap.labels();
    assert!(b_tap.position("< PRACK").is_none(), "{l:?}");
    let p183: Vec<_> = b_tap.seen.iter().filter(|w| w.is_response(true, 183, &Method::Invite)).collect();
    // RFC 3262 §3: retransmitted with T1 doubling, same RSeq each time.
    assert!(p183.len() >= 4, "{} 183s: {l:?}", p183.len());
    let rseq = p183[0].response().unwrap().headers.rseq().expect("RSeq");
    assert!(p183.iter().all(|w| w.response().unwrap().headers.rseq() == Some(rseq)));
    assert!(p183.iter().all(|w| w.response().unwrap().headers.requires("100rel")));
    let fail = b_tap.seen.iter().find(|w| w.outgoing && w.response().is_some_and(|r| r.status >= 500)).unwrap();
    let r = fail.response().unwrap();
    assert!((500..600).contains(&r.status), "{r:?}");
    assert_eq!(r.headers.cseq().map(|c| c.method.clone()), Some(Method::Invite));
    let waited = fail.at.duration_since(p183[0].at).unwrap();
    assert!(waited >= T1X64 - Duration::from_millis(20), "5xx after {waited:?}");
    assert!(waited < T1X64 + Duration::from_secs(2), "5xx after {waited:?}");
    assert!(b_tap.position("> 183 INVITE").unwrap() < b_tap.seen.iter().position(|w| std::ptr::eq(w, fail)).unwrap());

    caller_gives_up(&a, &mut a_ev, &mut a_tap).await;
}
