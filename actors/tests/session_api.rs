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

    let opts = DtmfOptions { duration: 120, inter_tone_gap: 180, ..Default::default() };
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
    match a.dtmf("1", DtmfOptions { duration: 5, inter_tone_gap: 500, ..Default::default() }).await {
        Err(UaError::Session(SessionError::InvalidDtmf(_))) => {}
        other => panic!("short duration: {other:?}"),
    }
    tap.drain();
    assert!(tap.requests(true, &Method::Info).is_empty());

    // Lower case is accepted (sent upper case); `,` pauses 2 s.
    a.dtmf("a,B", DtmfOptions { duration: 100, inter_tone_gap: 100, ..Default::default() }).await.unwrap();
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

// ----- rel100, delayed offer, anonymous -----------------------------------

#[actix_rt::test]
async fn reliable_183_is_pracked() {
    let alice = start("alice");
    let bob = UserAgent::start(UaConfig { rel100: "required".into(), ..cfg("bob") }).unwrap();
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut b_tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    assert!(b.request().unwrap().headers.supports("100rel"));
    b.progress(ProgressOptions { status: 183, early_media: true, reliable: true }).await.unwrap();
    b_tap.wait_for("200 PRACK", |w| w.is_response(true, 200, &Method::Prack)).await;

    let p183 = b_tap.responses(true, &Method::Invite).into_iter().find(|r| r.status == 183).unwrap();
    assert!(p183.headers.requires("100rel"), "{p183:?}");
    let rseq = p183.headers.rseq().expect("RSeq");
    assert!(p183.headers.content_type().is_some_and(|c| c.is("application", "sdp")));
    assert!(!p183.body.is_empty());
    let (prack, _) = b_tap.requests(false, &Method::Prack).remove(0);
    let rack = prack.headers.rack().expect("RAck");
    let invite_cseq = b.request().unwrap().headers.cseq().unwrap().seq;
    assert_eq!((rack.rseq, rack.cseq, &rack.method), (rseq, invite_cseq, &Method::Invite));
    let l = b_tap.labels();
    let pos = |s: &str| b_tap.position(s).unwrap_or_else(|| panic!("{s}: {l:?}"));
    assert!(pos("> 183 INVITE") < pos("< PRACK") && pos("< PRACK") < pos("> 200 PRACK"), "{l:?}");
    // Alice sent the PRACK once: the 183 was not retransmitted after it.
    a_tap.drain();
    assert_eq!(a_tap.requests(true, &Method::Prack).len(), 1);

    b.accept().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    assert!(matches!(&a_seen[0], SessionEvent::Progress { response } if response.status == 183));
    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    assert_eq!(names(&a_seen), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&b_seen), ["progress", "accepted", "bye", "terminated"]);
}

#[actix_rt::test]
async fn invite_without_sdp_offers_in_the_200_and_answers_in_the_ack() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&alice);
    let a = alice.invite(&bob.uri(), InviteOptions { without_sdp: true, ..Default::default() }).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    assert!(b.request().unwrap().body.is_empty());
    b.accept().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    let acc = events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    tap.wait_for("ACK", |w| w.is_request(true, &Method::Ack)).await;

    let (invite, _) = tap.requests(true, &Method::Invite).remove(0);
    assert!(invite.body.is_empty() && invite.headers.content_type().is_none(), "{invite:?}");
    let ok = tap.responses(false, &Method::Invite).into_iter().find(|r| r.status == 200).unwrap();
    assert!(ok.headers.content_type().is_some_and(|c| c.is("application", "sdp")));
    let offer = body_str(&ok.body);
    assert!(offer.starts_with("v=0") && offer.contains("m=audio"), "{offer}");
    let (ack, _) = tap.requests(true, &Method::Ack).remove(0);
    assert!(ack.headers.content_type().is_some_and(|c| c.is("application", "sdp")));
    let answer = body_str(&ack.body);
    assert!(answer.starts_with("v=0") && answer.contains("m=audio"), "{answer}");
    // Bob's Accepted carries the 2xx it sent and the ACK with the answer.
    match acc {
        SessionEvent::Accepted { response, ack: Some(ack) } => {
            assert_eq!(response.status, 200);
            assert_eq!(body_str(&ack.body), answer);
        }
        other => panic!("{other:?}"),
    }
    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
}

#[actix_rt::test]
async fn anonymous_invite_hides_the_caller() {
    let alice = UserAgent::start(UaConfig { display_name: Some("Alice".into()), ..cfg("alice") }).unwrap();
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions { anonymous: true, ..Default::default() }).await.unwrap();
    let b = next_incoming(&mut inc).await;
    tap.wait_for("INVITE", |w| w.is_request(false, &Method::Invite)).await;
    let (invite, _) = tap.requests(false, &Method::Invite).remove(0);
    let from = invite.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("Anonymous"));
    assert_eq!(from.uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert!(from.tag().is_some());
    let privacy: Vec<String> = invite
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Privacy(v) => Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(";")),
            _ => None,
        })
        .collect();
    assert_eq!(privacy, ["id"]);
    let raw = tap.seen.iter().find(|w| w.is_request(false, &Method::Invite)).unwrap();
    assert!(!format!("{:?}", raw.msg).contains("Alice"), "identity leaked");
    assert_eq!(b.remote_identity().unwrap().uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(a.local_identity().unwrap().display.as_deref(), Some("Anonymous"));
    // The call still works both ways.
    let mut a_ev = a.events();
    let mut b_ev = b.events();
    b.accept().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    b.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    assert_eq!(names(&a_seen), ["accepted", "bye", "terminated"]);
}

// ----- properties, data, subscribers, direction --------------------------

/// An application actor that receives a session's events.
struct Collector(tokio::sync::mpsc::UnboundedSender<Deliver>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Deliver> for Collector {
    type Result = ();
    fn handle(&mut self, m: Deliver, _: &mut Self::Context) {
        let _ = self.0.send(m);
    }
}

async fn delivered_to_end(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Deliver>) -> Vec<Deliver> {
    let mut v: Vec<Deliver> = Vec::new();
    while !v.last().is_some_and(|d| matches!(d.event, SessionEvent::Terminated { .. })) {
        let d = tokio::time::timeout(WAIT, rx.recv()).await.expect("delivery timed out").expect("recipient gone");
        v.push(d);
    }
    v
}

#[actix_rt::test]
async fn properties_data_subscribers_and_direction() {
    let alice = UserAgent::start(UaConfig { display_name: Some("Alice".into()), ..cfg("alice") }).unwrap();
    let bob = start("bob");
    let mut inc = bob.incoming();
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    a.subscribe(Collector(a_tx).start().recipient());
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let (b_tx, mut b_rx) = tokio::sync::mpsc::unbounded_channel();
    b.subscribe(Collector(b_tx).start().recipient());
    let mut b_ev = b.events();

    assert_eq!(a.method(), Method::Invite);
    assert_eq!(a.direction(), sipact_actors::proto::Direction::Outbound);
    assert_eq!(b.direction(), sipact_actors::proto::Direction::Inbound);
    assert_eq!(a.request().unwrap().method, Method::Invite);
    assert_eq!(b.request().unwrap().headers.call_id(), a.request().unwrap().headers.call_id());
    assert!(a.start_time().is_none() && a.end_time().is_none() && !a.is_terminated());

    // data: one value per type, shared by every clone of the handle.
    a.set_data(42u32);
    a.set_data(String::from("ticket-7"));
    let a2 = a.clone();
    assert_eq!(a2.data::<u32>(), Some(42));
    assert_eq!(a2.data::<String>().as_deref(), Some("ticket-7"));
    assert_eq!(a2.data::<i64>(), None);
    a2.set_data(43u32);
    assert_eq!(a.data::<u32>(), Some(43));
    assert_eq!(b.data::<u32>(), None);

    // Methods of the other direction.
    assert_eq!(invalid_state(a.accept().await).0, "accept");
    assert_eq!(invalid_state(a.progress(ProgressOptions::default()).await).0, "progress");
    assert_eq!(invalid_state(a.reject(486).await).0, "reject");
    assert_eq!(invalid_state(b.cancel().await).0, "cancel");
    // Methods of a confirmed session, too early.
    assert_eq!(invalid_state(a.bye().await).0, "bye");
    assert_eq!(invalid_state(b.hold().await).0, "hold");
    assert_eq!(invalid_state(a.refer(&bob.uri()).await).0, "refer");

    let before = SystemTime::now();
    b.progress(ProgressOptions::default()).await.unwrap();
    b.accept().await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    let (a_start, b_start) = (a.start_time().unwrap(), b.start_time().unwrap());
    assert!(a_start >= before && b_start >= before);
    assert!(a.end_time().is_none());
    // Accepted, then the other direction's methods still fail.
    assert_eq!(invalid_state(a.accept().await).0, "accept");
    assert_eq!(invalid_state(b.accept().await).0, "accept");

    // Identities, with both tags once the dialog exists.
    let (al, ar) = (a.local_identity().unwrap(), a.remote_identity().unwrap());
    let (bl, br) = (b.local_identity().unwrap(), b.remote_identity().unwrap());
    assert_eq!(al.display.as_deref(), Some("Alice"));
    assert_eq!(al.uri.to_string(), alice.uri());
    assert_eq!(ar.uri.to_string(), bob.uri());
    assert_eq!(bl.uri.to_string(), bob.uri());
    assert_eq!(br.uri.to_string(), alice.uri());
    assert!(al.tag().is_some() && bl.tag().is_some());
    assert_eq!(al.tag(), br.tag());
    assert_eq!(ar.tag(), bl.tag());

    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    let (a_end, b_end) = (a.end_time().unwrap(), b.end_time().unwrap());
    assert!(a_end >= a_start && b_end >= b_start);
    assert!(a.is_terminated() && b.is_terminated());

    // The recipients got the same events as the streams, in the same order,
    // stamped with the times the session reports.
    let a_del = delivered_to_end(&mut a_rx).await;
    let b_del = delivered_to_end(&mut b_rx).await;
    assert_eq!(a_del.iter().map(|d| d.event.clone()).collect::<Vec<_>>(), a_seen);
    assert_eq!(b_del.iter().map(|d| d.event.clone()).collect::<Vec<_>>(), b_seen);
    assert_eq!(names(&a_seen), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&b_seen), ["progress", "accepted", "bye", "terminated"]);
    let at = |v: &[Deliver], n: &str| v.iter().find(|d| name(&d.event) == n).unwrap().at;
    assert_eq!(at(&a_del, "accepted"), a_start);
    assert_eq!(at(&a_del, "terminated"), a_end);
    assert_eq!(at(&b_del, "accepted"), b_start);
    assert_eq!(at(&b_del, "terminated"), b_end);
    // A stream opened after the end replays the whole history, then ends.
    let mut late = a.events();
    let mut replay = Vec::new();
    events_to_end(&mut late, &mut replay).await;
    assert_eq!(replay, a_seen);
    assert!(alice.sessions().await.is_empty() && bob.sessions().await.is_empty());
}
