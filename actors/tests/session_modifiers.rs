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
