//! SIP.js `modifiers`: per-call ones (InviteOptions) and UA-wide ones
//! apply to every description a session sends and receives.

mod common;

use common::*;
use sipact_actors::{DescriptionModifier, HoldOptions, InviteOptions, SessionEvent, UaConfig, UserAgent};
use sipact_message::Method;

fn add_attr(line: &'static str) -> DescriptionModifier {
    DescriptionModifier::new(move |b| {
        let mut s = String::from_utf8_lossy(&b.data).into_owned();
        s.push_str(line);
        b.data = s.into_bytes().into();
    })
}

#[actix_rt::test]
async fn modifiers_apply_to_outgoing_and_incoming_descriptions() {
    let alice = start("alice");
    // Bob's UA-wide modifier turns any incoming `sendonly` into `sendrecv`:
    // a hold offer then looks like a plain one to his handler.
    let bob = UserAgent::start_with_modifiers(
        UaConfig { ..cfg("bob") },
        vec![DescriptionModifier::new(|b| {
            let s = String::from_utf8_lossy(&b.data).replace("a=sendonly", "a=sendrecv");
            b.data = s.into_bytes().into();
        })],
    )
    .unwrap();
    let mut tap = Tap::new(&alice);
    let mut incoming = bob.incoming();
    let opts = InviteOptions { modifiers: vec![add_attr("a=x-modified-by:alice\r\n")], ..Default::default() };
    let a = alice.invite(&bob.uri(), opts).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut incoming).await;
    b.accept().await.unwrap();
    let mut seen = Vec::new();
    events_until(&mut a_ev, &mut seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;

    // Alice's per-call modifier is on her offer on the wire.
    tap.wait_for("INVITE sent", |w| w.is_request(true, &Method::Invite)).await;
    let invite = tap.seen.iter().find(|w| w.is_request(true, &Method::Invite)).unwrap().request().unwrap().clone();
    assert!(body_str(&invite.body).contains("a=x-modified-by:alice"), "{}", body_str(&invite.body));

    // Alice holds: her offer says sendonly, but Bob's incoming modifier
    // makes his handler see sendrecv, so his answer is sendrecv, not recvonly.
    a.hold_with(HoldOptions::default()).await.unwrap();
    events_until(&mut a_ev, &mut seen, |e| matches!(e, SessionEvent::HoldChanged { .. })).await;
    tap.wait_for("200 to the re-INVITE", |w| {
        w.response().is_some_and(|r| {
            r.status == 200 && r.headers.cseq().is_some_and(|c| c.method == Method::Invite && c.seq == 2)
        })
    })
    .await;
    let reinvite = tap
        .seen
        .iter()
        .filter_map(|w| w.request().filter(|r| w.outgoing && r.method == Method::Invite))
        .next_back()
        .unwrap()
        .clone();
    assert!(body_str(&reinvite.body).contains("a=sendonly"));
    assert!(body_str(&reinvite.body).contains("a=x-modified-by:alice"), "modifiers apply to every offer");
    let answer = tap
        .seen
        .iter()
        .filter_map(|w| {
            w.response().filter(|r| !w.outgoing && r.status == 200 && r.headers.cseq().is_some_and(|c| c.seq == 2))
        })
        .next_back()
        .unwrap()
        .clone();
    let body = body_str(&answer.body);
    assert!(body.contains("a=sendrecv") && !body.contains("a=recvonly"), "{body}");
    a.bye().await.unwrap();
}

#[actix_rt::test]
async fn per_call_modifiers_and_handler_options() {
    use std::sync::{Arc, Mutex};
    // Alice's factory records the handler options each session was made with.
    type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;
    let seen_opts: Seen = Arc::default();
    let rec = seen_opts.clone();
    let factory: sipact_actors::proto::ua::HooksFactory = Box::new(move |ctx| {
        if let Ok(mut v) = rec.lock() {
            v.push(ctx.options.clone());
        }
        Box::new(sipact_actors::sdp::SignallingSdp::new("127.0.0.1".parse().unwrap(), 4000, ctx.session))
    });
    let alice = UserAgent::start_with(cfg("alice"), Some(factory)).unwrap();
    // Alice's hooks make plain SDP: Bob answers it with plain RTP.
    let bob = UserAgent::start(UaConfig { media: "rtp".into(), ..cfg("bob") }).unwrap();
    let mut tap = Tap::new(&alice);
    let mut incoming = bob.incoming();
    let opts =
        InviteOptions { description_options: vec![("constraints".into(), "audio".into())], ..Default::default() };
    let a = alice.invite(&bob.uri(), opts).await.unwrap();
    let mut a_ev = a.events();
    let b = next_incoming(&mut incoming).await;
    // Bob's accept carries a modifier for his answer.
    b.accept_with(sipact_actors::AcceptOptions { modifiers: vec![add_attr("a=x-answer-by:bob\r\n")] }).await.unwrap();
    let mut seen = Vec::new();
    events_until(&mut a_ev, &mut seen, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    assert_eq!(seen_opts.lock().unwrap().as_slice(), &[vec![("constraints".to_string(), "audio".to_string())]]);
    tap.wait_for("200 received", |w| w.response().is_some_and(|r| !w.outgoing && r.status == 200)).await;
    let ok = tap.seen.iter().find_map(|w| w.response().filter(|r| !w.outgoing && r.status == 200)).unwrap().clone();
    assert!(body_str(&ok.body).contains("a=x-answer-by:bob"), "{}", body_str(&ok.body));

    // A hold with its own modifier: that offer carries it.
    a.hold_with(HoldOptions { modifiers: vec![add_attr("a=x-hold-call\r\n")], ..Default::default() }).await.unwrap();
    events_until(&mut a_ev, &mut seen, |e| matches!(e, SessionEvent::HoldChanged { .. })).await;
    tap.wait_for("re-INVITE sent", |w| {
        w.request()
            .is_some_and(|r| w.outgoing && r.method == Method::Invite && r.headers.cseq().is_some_and(|c| c.seq == 2))
    })
    .await;
    let hold = tap
        .seen
        .iter()
        .find_map(|w| w.request().filter(|r| w.outgoing && r.headers.cseq().is_some_and(|c| c.seq == 2)))
        .unwrap()
        .clone();
    assert!(body_str(&hold.body).contains("a=x-hold-call"));
    // The next call without modifiers clears them.
    a.unhold_with(HoldOptions::default()).await.unwrap();
    events_until(&mut a_ev, &mut seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await;
    let unhold = tap
        .seen
        .iter()
        .find_map(|w| w.request().filter(|r| w.outgoing && r.headers.cseq().is_some_and(|c| c.seq == 3)))
        .cloned();
    let unhold = match unhold {
        Some(u) => u,
        None => {
            tap.wait_for("unhold sent", |w| {
                w.request().is_some_and(|r| w.outgoing && r.headers.cseq().is_some_and(|c| c.seq == 3))
            })
            .await;
            tap.seen
                .iter()
                .find_map(|w| w.request().filter(|r| w.outgoing && r.headers.cseq().is_some_and(|c| c.seq == 3)))
                .unwrap()
                .clone()
        }
    };
    assert!(!body_str(&unhold.body).contains("a=x-hold-call"));
    a.bye().await.unwrap();
}
