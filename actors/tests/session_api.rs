//! Tier 4: the Session API between two user agents in one process over UDP
//! on 127.0.0.1, checked on the wire (each UA's tap, parsed) and by the
//! order of the events on both sides.
//!
//! Transfers are in `session_transfer.rs`, races (CANCEL against 200, 491
//! glare) in `session_races.rs`.

mod common;

use std::time::{Duration, SystemTime};

use actix::prelude::*;
use common::*;
use sipact_actors::proto::{SessionError, SessionState};
use sipact_actors::session::Deliver;
use sipact_actors::{Cause, DtmfOptions, InviteOptions, ProgressOptions, SessionEvent, UaConfig, UaError, UserAgent};
use sipact_message::{Header, Method};

fn invalid_state(r: Result<(), UaError>) -> (&'static str, SessionState) {
    match r {
        Err(UaError::Session(SessionError::InvalidState { op, state })) => (op, state),
        other => panic!("expected InvalidState, got {other:?}"),
    }
}

// ----- dtmf -------------------------------------------------------------

#[actix_rt::test]
async fn dtmf_sends_one_info_per_tone_with_gaps() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&alice);
    let mut call = establish(&alice, &bob, &mut inc).await;

    let opts = DtmfOptions { duration: 120, inter_tone_gap: 180 };
    call.a.dtmf("1*#", opts).await.unwrap();
    for _ in 0..3 {
        events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
    }
    tap.wait_count("3 INFO 200s", 3, |w| w.is_response(false, 200, &Method::Info)).await;
    let infos = tap.requests(true, &Method::Info);
    assert_eq!(infos.len(), 3, "{:?}", tap.labels());
    for ((req, _), tone) in infos.iter().zip(['1', '*', '#']) {
        let ct = req.headers.content_type().expect("Content-Type");
        assert!(ct.is("application", "dtmf-relay"), "{ct:?}");
        assert_eq!(body_str(&req.body), format!("Signal={tone}\r\nDuration=120\r\n"));
    }
    // Each INFO goes out at least duration + interToneGap after the one
    // before (real time: a lower bound only; a little slack for the clock
    // read after the timer fired).
    for w in infos.windows(2) {
        let gap = w[1].1.duration_since(w[0].1).unwrap();
        assert!(gap >= Duration::from_millis(300 - 5), "gap {gap:?}");
    }
    assert_eq!(tap.responses(false, &Method::Info).iter().filter(|r| r.status == 200).count(), 3);

    // Both sides report the tones, in order; Alice's are outgoing.
    let tones = |evs: &[SessionEvent], outgoing: bool| -> String {
        evs.iter()
            .filter_map(|e| match e {
                SessionEvent::Dtmf { tone, duration, outgoing: o, .. } if *o == outgoing => {
                    assert_eq!(*duration, 120);
                    Some(*tone)
                }
                _ => None,
            })
            .collect()
    };
    call.hang_up().await;
    assert_eq!(tones(&call.b_seen, false), "1*#");
    assert_eq!(tones(&call.a_seen, true), "1*#");
    assert_eq!(names(&call.b_seen), ["accepted", "dtmf", "dtmf", "dtmf", "bye", "terminated"]);
}

#[actix_rt::test]
async fn dtmf_pause_and_errors() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&alice);

    // Before acceptance: InvalidState.
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    let (op, state) = invalid_state(a.dtmf("1", DtmfOptions::default()).await);
    assert_eq!(op, "dtmf");
    assert!(matches!(state, SessionState::Calling | SessionState::Early), "{state:?}");
    let (op, _) = invalid_state(b.dtmf("1", DtmfOptions::default()).await);
    assert_eq!(op, "dtmf");

    b.accept().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;

    // Invalid tones and durations: errors, and nothing on the wire.
    for bad in ["x", "12E", "", "1 2"] {
        match a.dtmf(bad, DtmfOptions::default()).await {
            Err(UaError::Session(SessionError::InvalidDtmf(_))) => {}
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    match a.dtmf("1", DtmfOptions { duration: 5, inter_tone_gap: 500 }).await {
        Err(UaError::Session(SessionError::InvalidDtmf(_))) => {}
        other => panic!("short duration: {other:?}"),
    }
    tap.drain();
    assert!(tap.requests(true, &Method::Info).is_empty());

    // Lower case is accepted (sent upper case); `,` pauses 2 s.
    a.dtmf("a,B", DtmfOptions { duration: 100, inter_tone_gap: 100 }).await.unwrap();
    for _ in 0..2 {
        events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
    }
    tap.drain();
    let infos = tap.requests(true, &Method::Info);
    assert_eq!(infos.len(), 2);
    assert!(body_str(&infos[0].0.body).starts_with("Signal=A\r\n"));
    assert!(body_str(&infos[1].0.body).starts_with("Signal=B\r\n"));
    let gap = infos[1].1.duration_since(infos[0].1).unwrap();
    assert!(gap >= Duration::from_millis(2200 - 5), "pause {gap:?}");

    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    // After the end: InvalidState in Terminated.
    let (_, state) = invalid_state(a.dtmf("1", DtmfOptions::default()).await);
    assert_eq!(state, SessionState::Terminated);
}

// ----- terminate ----------------------------------------------------------

fn cause_of_end(evs: &[SessionEvent]) -> Cause {
    match evs.last() {
        Some(SessionEvent::Terminated { cause }) => *cause,
        other => panic!("last event {other:?}"),
    }
}

#[actix_rt::test]
async fn terminate_outbound_before_any_response_cancels_after_the_100() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&alice);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    // Nothing has come back yet: the CANCEL waits for a provisional.
    a.terminate().await.unwrap();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    tap.wait_for("ACK of the 487", |w| w.is_request(true, &Method::Ack)).await;
    let l = tap.labels();
    let pos = |s: &str| tap.position(s).unwrap_or_else(|| panic!("{s} missing: {l:?}"));
    assert!(pos("< 100 INVITE") < pos("> CANCEL"), "{l:?}");
    assert!(pos("> CANCEL") < pos("< 487 INVITE"), "{l:?}");
    assert!(pos("< 487 INVITE") < pos("> ACK"), "{l:?}");
    assert!(tap.position("< 200 CANCEL").is_some(), "{l:?}");
    assert_eq!(names(&a_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(cause_of_end(&a_seen), Cause::Canceled);
    assert_eq!(names(&b_seen), ["cancel", "failed", "terminated"]);
    assert_eq!(cause_of_end(&b_seen), Cause::Canceled);
}

#[actix_rt::test]
async fn terminate_outbound_after_180_cancels_then_487() {
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
    let p = events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Progress { .. })).await;
    assert!(matches!(p, SessionEvent::Progress { response } if response.status == 180));
    a.terminate().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    tap.wait_for("ACK of the 487", |w| w.is_request(true, &Method::Ack)).await;
    let l = tap.labels();
    let pos = |s: &str| tap.position(s).unwrap_or_else(|| panic!("{s} missing: {l:?}"));
    assert!(pos("< 180 INVITE") < pos("> CANCEL"), "{l:?}");
    assert!(pos("> CANCEL") < pos("< 487 INVITE"), "{l:?}");
    assert_eq!(names(&a_seen), ["progress", "rejected", "failed", "terminated"]);
    assert!(
        matches!(&a_seen[1], SessionEvent::Rejected { response, cause: Cause::Canceled } if response.status == 487)
    );
    assert_eq!(names(&b_seen), ["progress", "cancel", "failed", "terminated"]);
    // Already over: InvalidState, for terminate and cancel alike.
    assert_eq!(invalid_state(a.terminate().await), ("terminate", SessionState::Terminated));
    assert_eq!(invalid_state(a.cancel().await), ("cancel", SessionState::Terminated));
    assert_eq!(invalid_state(b.terminate().await), ("terminate", SessionState::Terminated));
}

#[actix_rt::test]
async fn terminate_inbound_unanswered_sends_480() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    b.terminate().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    tap.wait_for("ACK of the 480", |w| w.is_request(false, &Method::Ack)).await;
    let l = tap.labels();
    assert!(tap.position("> 480 INVITE").unwrap() < tap.position("< ACK").unwrap(), "{l:?}");
    assert!(tap.seen.iter().all(|w| !w.is_response(true, 200, &Method::Invite)), "{l:?}");
    assert_eq!(names(&a_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(cause_of_end(&a_seen), Cause::Unavailable);
    assert_eq!(names(&b_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(invalid_state(b.terminate().await), ("terminate", SessionState::Terminated));
}

#[actix_rt::test]
async fn terminate_inbound_answered_before_the_ack_byes_once_acked() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    // Both commands reach Bob's core before it can read the ACK: terminate
    // finds the session answered and waiting for its ACK.
    let (acc, term) = tokio::join!(b.accept(), b.terminate());
    acc.unwrap();
    term.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    tap.wait_for("200 to the BYE", |w| w.is_response(false, 200, &Method::Bye)).await;
    let l = tap.labels();
    let pos = |s: &str| tap.position(s).unwrap_or_else(|| panic!("{s} missing: {l:?}"));
    // RFC 3261 §15: no BYE before the ACK of the 2xx.
    assert!(pos("> 200 INVITE") < pos("< ACK"), "{l:?}");
    assert!(pos("< ACK") < pos("> BYE"), "{l:?}");
    assert_eq!(names(&a_seen), ["accepted", "bye", "terminated"]);
    assert_eq!(names(&b_seen), ["accepted", "terminated"]);
    assert_eq!(cause_of_end(&b_seen), Cause::Bye);
}

#[actix_rt::test]
async fn terminate_confirmed_sends_bye() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&bob);
    let mut call = establish(&alice, &bob, &mut inc).await;
    call.b.terminate().await.unwrap();
    call.finish().await;
    tap.wait_for("200 to the BYE", |w| w.is_response(false, 200, &Method::Bye)).await;
    assert!(tap.position("> BYE").unwrap() < tap.position("< 200 BYE").unwrap());
    assert_eq!(names(&call.a_seen), ["accepted", "bye", "terminated"]);
    assert_eq!(names(&call.b_seen), ["accepted", "terminated"]);
    assert_eq!(cause_of_end(&call.a_seen), Cause::Bye);
    assert_eq!(invalid_state(call.b.terminate().await), ("terminate", SessionState::Terminated));
    assert_eq!(invalid_state(call.a.terminate().await), ("terminate", SessionState::Terminated));
    assert_eq!(invalid_state(call.a.bye().await), ("bye", SessionState::Terminated));
}
