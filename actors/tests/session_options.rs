//! Tier 4: `reply`, `reinvite`, the options of `bye`, `terminate`, `dtmf`,
//! `hold`/`unhold` and `refer`, `Session::ua` and the description view,
//! between two user agents over UDP on 127.0.0.1, checked on the wire and
//! by the order of the events on both sides.

mod common;

use std::time::Duration;

use common::*;
use sipact_actors::proto::{SessionError, SessionState};
use sipact_actors::{
    Body, ByeOptions, Cause, DtmfOptions, HoldOptions, InviteOptions, ReferOptions, ReinviteOptions, ReplyOptions,
    SessionEvent, TerminateOptions, UaError, extra_header,
};
use sipact_message::{Header, Headers, MediaType, Method, Request};

fn text(s: &str) -> Body {
    Body { content_type: MediaType::new("text", "plain"), data: bytes::Bytes::copy_from_slice(s.as_bytes()) }
}

/// The value of an extension header.
fn ext(h: &Headers, name: &str) -> Option<String> {
    h.other(name).next().map(str::to_owned)
}

/// The `Reason` header as written.
fn reason(r: &Request) -> Option<String> {
    r.headers.iter().find(|h| matches!(h, Header::Reason(_))).map(|h| {
        let mut out = Vec::new();
        h.write_value(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

fn is_sdp(h: &Headers) -> bool {
    h.content_type().is_some_and(|c| c.is("application", "sdp"))
}

fn cause_of_end(evs: &[SessionEvent]) -> Cause {
    match evs.last() {
        Some(SessionEvent::Terminated { cause }) => *cause,
        other => panic!("last event {other:?}"),
    }
}

// ----- reply ----------------------------------------------------------------

#[actix_rt::test]
async fn reply_provisional_then_2xx_accepts() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut b_tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    // The handles know their user agents.
    assert_eq!(a.ua().uri(), alice.uri());
    assert_eq!(b.ua().uri(), bob.uri());
    assert_eq!(b.ua().local_addr(), bob.local_addr());

    b.reply(ReplyOptions {
        status: 181,
        reason_phrase: Some("Forwarding You".into()),
        extra_headers: vec![extra_header("X-Step", "one")],
        body: None,
    })
    .await
    .unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    let p = events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Progress { .. })).await;
    match p {
        SessionEvent::Progress { response } => {
            assert_eq!((response.status, &*response.reason), (181, "Forwarding You"));
            assert_eq!(ext(&response.headers, "X-Step").as_deref(), Some("one"));
        }
        other => panic!("{other:?}"),
    }
    b.reply(ReplyOptions { status: 200, extra_headers: vec![extra_header("X-Step", "two")], ..ReplyOptions::new(200) })
        .await
        .unwrap();
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    let acc = events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    assert!(matches!(acc, SessionEvent::Accepted { ack: Some(_), .. }));
    b_tap.wait_for("ACK", |w| w.is_request(false, &Method::Ack)).await;

    let sent = b_tap.responses(true, &Method::Invite);
    let r181 = sent.iter().find(|r| r.status == 181).expect("181 sent");
    assert_eq!(&*r181.reason, "Forwarding You");
    let ok = sent.iter().find(|r| r.status == 200).expect("200 sent");
    assert_eq!(ext(&ok.headers, "X-Step").as_deref(), Some("two"));
    // A 2xx reply carries the answer, as accept does.
    assert!(is_sdp(&ok.headers) && body_str(&ok.body).contains("m=audio"), "{ok:?}");
    let l = b_tap.labels();
    let pos = |s: &str| b_tap.position(s).unwrap_or_else(|| panic!("{s}: {l:?}"));
    assert!(pos("> 181 INVITE") < pos("> 200 INVITE") && pos("> 200 INVITE") < pos("< ACK"), "{l:?}");

    // The description views: offer and answer, each seen from its side.
    let (invite, _) = b_tap.requests(false, &Method::Invite).remove(0);
    let (ad, bd) = (a.description_handler(), b.description_handler());
    assert_eq!(ad.local_description().map(|b| b.data), Some(invite.body.clone()));
    assert_eq!(ad.remote_description().map(|b| b.data), Some(ok.body.clone()));
    assert_eq!(bd.remote_description().map(|b| b.data), Some(invite.body.clone()));
    assert_eq!(bd.local_description().map(|b| b.data), Some(ok.body.clone()));
    assert!(bd.local_description().is_some_and(|b| b.content_type.is("application", "sdp")));

    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    assert_eq!(names(&a_seen), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&b_seen), ["progress", "accepted", "bye", "terminated"]);
    // Over: reply is refused.
    match b.reply(ReplyOptions::new(200)).await {
        Err(UaError::Session(SessionError::InvalidState { op: "reply", state: SessionState::Terminated })) => {}
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn reply_final_failure_ends_like_reject() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut b_tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    // Not for outbound sessions; no status outside 101-699.
    match a.reply(ReplyOptions::new(200)).await {
        Err(UaError::Session(SessionError::InvalidState { op: "reply", .. })) => {}
        other => panic!("{other:?}"),
    }
    for bad in [100, 700, 42] {
        match b.reply(ReplyOptions::new(bad)).await {
            Err(UaError::Session(SessionError::InvalidStatus(s))) if s == bad => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    b.reply(ReplyOptions {
        status: 486,
        reason_phrase: Some("Busy With Another".into()),
        extra_headers: vec![extra_header("X-Why", "meeting")],
        body: Some(text("call me later")),
    })
    .await
    .unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    b_tap.wait_for("ACK of the 486", |w| w.is_request(false, &Method::Ack)).await;
    let r = b_tap.responses(true, &Method::Invite).into_iter().find(|r| r.status == 486).expect("486");
    assert_eq!(&*r.reason, "Busy With Another");
    assert_eq!(ext(&r.headers, "X-Why").as_deref(), Some("meeting"));
    assert!(r.headers.content_type().is_some_and(|c| c.is("text", "plain")));
    assert_eq!(body_str(&r.body), "call me later");
    assert!(b_tap.seen.iter().all(|w| !w.is_response(true, 200, &Method::Invite)));
    assert_eq!(names(&a_seen), ["rejected", "failed", "terminated"]);
    assert!(matches!(&a_seen[0], SessionEvent::Rejected { response, cause: Cause::Busy } if response.status == 486));
    assert_eq!(cause_of_end(&a_seen), Cause::Busy);
    assert_eq!(names(&b_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(cause_of_end(&b_seen), Cause::Busy);
    assert!(b.start_time().is_none() && b.end_time().is_some());
}

// ----- reinvite -------------------------------------------------------------

#[actix_rt::test]
async fn reinvite_with_a_fresh_offer_then_without_one() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut call = establish(&alice, &bob, &mut inc).await;
    a_tap.wait_for("first ACK", |w| w.is_request(true, &Method::Ack)).await;
    let a_desc = call.a.description_handler();
    let first_local = a_desc.local_description().expect("offer sent");

    // With an offer: the re-INVITE carries a new version of ours.
    call.a
        .reinvite(ReinviteOptions { extra_headers: vec![extra_header("X-Why", "refresh")], ..Default::default() })
        .await
        .unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Reinvited { .. })).await;
    a_tap.wait_count("ACK of the re-INVITE", 2, |w| w.is_request(true, &Method::Ack)).await;
    let invites = a_tap.requests(true, &Method::Invite);
    let (re1, _) = &invites[1];
    assert_eq!(ext(&re1.headers, "X-Why").as_deref(), Some("refresh"));
    assert!(is_sdp(&re1.headers));
    let offer = body_str(&re1.body);
    // RFC 3264 §8: same origin; the version grows only if the description changed.
    let origin = |sdp: &str| -> Vec<String> {
        let o = sdp.lines().find(|l| l.starts_with("o=")).unwrap_or_default();
        o.split_whitespace().map(str::to_owned).collect()
    };
    let (o1, o2) = (origin(&body_str(&first_local.data)), origin(&offer));
    assert_eq!(o1[1], o2[1], "{offer}");
    assert!(o1[2].parse::<u64>().unwrap() <= o2[2].parse::<u64>().unwrap(), "{offer}");
    assert!(offer.contains("a=sendrecv"), "{offer}");
    let oks: Vec<_> = a_tap.responses(false, &Method::Invite).into_iter().filter(|r| r.status == 200).collect();
    assert!(is_sdp(&oks[1].headers) && body_str(&oks[1].body).contains("m=audio"));
    let acks = a_tap.requests(true, &Method::Ack);
    assert!(acks[1].0.body.is_empty(), "answer came in the 2xx: the ACK has no body");
    assert_eq!(a_desc.local_description().map(|b| b.data), Some(re1.body.clone()));
    assert_eq!(a_desc.remote_description().map(|b| b.data), Some(oks[1].body.clone()));

    // Without an offer: the 2xx brings Bob's, the ACK our answer.
    call.a.reinvite(ReinviteOptions { without_sdp: true, ..Default::default() }).await.unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Reinvited { .. })).await;
    a_tap.wait_count("ACK of the re-INVITE without offer", 3, |w| w.is_request(true, &Method::Ack)).await;
    let (re2, _) = a_tap.requests(true, &Method::Invite).remove(2);
    assert!(re2.body.is_empty() && re2.headers.content_type().is_none(), "{re2:?}");
    let ok2 = a_tap.responses(false, &Method::Invite).into_iter().filter(|r| r.status == 200).nth(2).unwrap();
    assert!(is_sdp(&ok2.headers));
    assert!(body_str(&ok2.body).contains("m=audio"));
    let (ack3, _) = a_tap.requests(true, &Method::Ack).remove(2);
    assert!(is_sdp(&ack3.headers), "{ack3:?}");
    let answer = body_str(&ack3.body);
    assert!(answer.starts_with("v=0") && answer.contains("m=audio"), "{answer}");
    assert_eq!(ack3.headers.cseq().map(|c| c.seq), re2.headers.cseq().map(|c| c.seq));
    // Both views follow: Alice sent the answer, Bob received it.
    assert_eq!(a_desc.local_description().map(|b| b.data), Some(ack3.body.clone()));
    assert_eq!(a_desc.remote_description().map(|b| b.data), Some(ok2.body.clone()));
    let b_desc = call.b.description_handler();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(b_desc.local_description().map(|b| b.data), Some(ok2.body.clone()));
    assert_eq!(b_desc.remote_description().map(|b| b.data), Some(ack3.body.clone()));

    call.hang_up().await;
    assert_eq!(names(&call.a_seen), ["accepted", "terminated"]);
    assert_eq!(names(&call.b_seen), ["accepted", "reinvited", "reinvited", "bye", "terminated"]);
    // Both re-INVITEs are in-dialog requests Bob saw as such.
    for e in call.b_seen.iter().filter(|e| name(e) == "reinvited") {
        let SessionEvent::Reinvited { request } = e else { unreachable!() };
        assert_eq!(request.method, Method::Invite);
    }
    // Over: refused.
    match call.a.reinvite(ReinviteOptions::default()).await {
        Err(UaError::Session(SessionError::InvalidState { op: "reinvite", state: SessionState::Terminated })) => {}
        other => panic!("{other:?}"),
    }
}

// ----- bye and terminate options ---------------------------------------------

#[actix_rt::test]
async fn bye_options_become_reason_headers_and_body() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut call = establish(&alice, &bob, &mut inc).await;
    call.b
        .bye_with(ByeOptions {
            status_code: Some(480),
            reason_phrase: Some("Gone \"fishing\"".into()),
            extra_headers: vec![extra_header("X-Bye", "now")],
            body: Some(text("so long")),
        })
        .await
        .unwrap();
    call.finish().await;
    a_tap.wait_for("BYE", |w| w.is_request(false, &Method::Bye)).await;
    let (bye, _) = a_tap.requests(false, &Method::Bye).remove(0);
    // Quotes inside the text are dropped (the header stays well formed).
    assert_eq!(reason(&bye).as_deref(), Some("SIP;cause=480;text=\"Gone fishing\""));
    assert_eq!(ext(&bye.headers, "X-Bye").as_deref(), Some("now"));
    assert!(bye.headers.content_type().is_some_and(|c| c.is("text", "plain")));
    assert_eq!(body_str(&bye.body), "so long");
    assert_eq!(names(&call.a_seen), ["accepted", "bye", "terminated"]);
    match &call.a_seen[1] {
        SessionEvent::Bye { request } => assert_eq!(reason(request), reason(&bye)),
        other => panic!("{other:?}"),
    }
    assert_eq!(names(&call.b_seen), ["accepted", "terminated"]);
    assert_eq!(cause_of_end(&call.a_seen), Cause::Bye);
    assert_eq!(cause_of_end(&call.b_seen), Cause::Bye);
}

#[actix_rt::test]
async fn terminate_options_on_a_confirmed_session_go_on_the_bye() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut b_tap = Tap::new(&bob);
    let mut call = establish(&alice, &bob, &mut inc).await;
    call.a
        .terminate_with(TerminateOptions {
            status_code: Some(503),
            extra_headers: vec![extra_header("X-End", "maintenance")],
            ..Default::default()
        })
        .await
        .unwrap();
    call.finish().await;
    b_tap.wait_for("BYE", |w| w.is_request(false, &Method::Bye)).await;
    let (bye, _) = b_tap.requests(false, &Method::Bye).remove(0);
    // No phrase given: the standard one of the code.
    assert_eq!(reason(&bye).as_deref(), Some("SIP;cause=503;text=\"Service Unavailable\""));
    assert_eq!(ext(&bye.headers, "X-End").as_deref(), Some("maintenance"));
    assert!(bye.body.is_empty());
    assert_eq!(names(&call.a_seen), ["accepted", "terminated"]);
    assert_eq!(names(&call.b_seen), ["accepted", "bye", "terminated"]);
}

#[actix_rt::test]
async fn terminate_options_on_an_unanswered_inbound_session_set_the_final_response() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut b_tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    // A final response must be a failure.
    match b.terminate_with(TerminateOptions { status_code: Some(200), ..Default::default() }).await {
        Err(UaError::Session(SessionError::InvalidStatus(200))) => {}
        other => panic!("{other:?}"),
    }
    b.terminate_with(TerminateOptions {
        status_code: Some(603),
        reason_phrase: Some("Not Today".into()),
        extra_headers: vec![extra_header("X-Mood", "grumpy")],
        body: Some(text("try tomorrow")),
    })
    .await
    .unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    b_tap.wait_for("ACK of the 603", |w| w.is_request(false, &Method::Ack)).await;
    let r = b_tap.responses(true, &Method::Invite).into_iter().find(|r| r.status >= 300).expect("final");
    assert_eq!((r.status, &*r.reason), (603, "Not Today"));
    assert_eq!(ext(&r.headers, "X-Mood").as_deref(), Some("grumpy"));
    assert_eq!(body_str(&r.body), "try tomorrow");
    assert!(b_tap.position("> 603 INVITE").unwrap() < b_tap.position("< ACK").unwrap());
    assert_eq!(names(&a_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(cause_of_end(&a_seen), Cause::Rejected);
    assert_eq!(names(&b_seen), ["rejected", "failed", "terminated"]);
    assert_eq!(cause_of_end(&b_seen), Cause::Rejected);
}

// ----- dtmf, hold/unhold, refer options ---------------------------------------

#[actix_rt::test]
async fn dtmf_hold_and_refer_carry_extra_headers() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut call = establish(&alice, &bob, &mut inc).await;

    let dtmf = DtmfOptions { duration: 100, inter_tone_gap: 60, extra_headers: vec![extra_header("X-Pad", "keys")] };
    call.a.dtmf("4#", dtmf).await.unwrap();
    for _ in 0..2 {
        events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
    }
    a_tap.wait_count("2 INFO answered", 2, |w| w.is_response(false, 200, &Method::Info)).await;
    let infos = a_tap.requests(true, &Method::Info);
    assert_eq!(infos.len(), 2);
    for ((i, _), tone) in infos.iter().zip(['4', '#']) {
        assert_eq!(ext(&i.headers, "X-Pad").as_deref(), Some("keys"));
        assert!(body_str(&i.body).starts_with(&format!("Signal={tone}\r\n")));
    }

    // Hold by UPDATE, unhold by re-INVITE, each with its header.
    call.a
        .hold_with(HoldOptions {
            use_update: true,
            extra_headers: vec![extra_header("X-Hold", "update")],
            ..Default::default()
        })
        .await
        .unwrap();
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true }))
        .await;
    a_tap.drain();
    let (update, _) = a_tap.requests(true, &Method::Update).remove(0);
    assert_eq!(ext(&update.headers, "X-Hold").as_deref(), Some("update"));
    assert!(body_str(&update.body).contains("a=sendonly"));
    assert!(a_tap.requests(true, &Method::Invite).len() == 1, "hold went by re-INVITE: {:?}", a_tap.labels());
    call.a
        .unhold_with(HoldOptions { extra_headers: vec![extra_header("X-Hold", "invite")], ..Default::default() })
        .await
        .unwrap();
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false }))
        .await;
    a_tap.drain();
    let (reinvite, _) = a_tap.requests(true, &Method::Invite).remove(1);
    assert_eq!(ext(&reinvite.headers, "X-Hold").as_deref(), Some("invite"));
    assert!(body_str(&reinvite.body).contains("a=sendrecv"));
    assert!(call.a.description_handler().local_description().is_some_and(|b| body_str(&b.data).contains("a=sendrecv")));

    call.a
        .refer_with("sip:carol@127.0.0.1:9", ReferOptions { extra_headers: vec![extra_header("X-Transfer", "blind")] })
        .await
        .unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Refer { .. })).await;
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::ReferProgress { status: 100, .. }))
        .await;
    a_tap.drain();
    let (refer, _) = a_tap.requests(true, &Method::Refer).remove(0);
    assert_eq!(ext(&refer.headers, "X-Transfer").as_deref(), Some("blind"));
    match call.b_seen.last() {
        Some(SessionEvent::Refer { request }) => {
            assert_eq!(ext(&request.headers, "X-Transfer").as_deref(), Some("blind"))
        }
        other => panic!("{other:?}"),
    }

    call.hang_up().await;
    assert_eq!(
        names(&call.a_seen),
        ["accepted", "dtmf", "dtmf", "hold", "hold", "refer-progress", "refer-progress", "terminated"]
    );
    assert_eq!(
        names(&call.b_seen),
        ["accepted", "dtmf", "dtmf", "reinvited", "reinvited", "refer", "bye", "terminated"]
    );
    match &call.b_seen[3] {
        SessionEvent::Reinvited { request } => assert_eq!(request.method, Method::Update),
        other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn an_answer_in_an_unreliable_183_is_repeated_in_the_200() {
    let alice = start("alice");
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut b_tap = Tap::new(&bob);
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut inc).await;
    let mut b_ev = b.events();
    b.progress(sipact_actors::ProgressOptions { status: 183, early_media: true, reliable: false }).await.unwrap();
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Progress { .. })).await;
    b.accept().await.unwrap();
    events_until(&mut a_ev, &mut a_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    events_until(&mut b_ev, &mut b_seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    b_tap.wait_for("ACK", |w| w.is_request(false, &Method::Ack)).await;
    let sent = b_tap.responses(true, &Method::Invite);
    let p183 = sent.iter().find(|r| r.status == 183).expect("183");
    let ok = sent.iter().find(|r| r.status == 200).expect("200");
    assert!(!p183.headers.requires("100rel"));
    assert!(is_sdp(&p183.headers) && is_sdp(&ok.headers));
    // RFC 3261 §13.3.1.1: the answer is in the 2xx, the same as the 183's.
    assert_eq!(ok.body, p183.body);
    assert_eq!(b.description_handler().local_description().map(|b| b.data), Some(ok.body.clone()));
    a.bye().await.unwrap();
    events_to_end(&mut a_ev, &mut a_seen).await;
    events_to_end(&mut b_ev, &mut b_seen).await;
    assert_eq!(names(&a_seen), ["progress", "accepted", "terminated"]);
    assert_eq!(names(&b_seen), ["progress", "accepted", "bye", "terminated"]);
}
