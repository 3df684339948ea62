//! Tier 4: a representative subset of the Session methods (dtmf,
//! hold/unhold, blind refer, terminate) over TCP and WebSocket between two
//! user agents on 127.0.0.1, checked on the wire (every message over the
//! stream transport) and by the order of the events on both sides.

mod common;

use common::*;
use sipact_actors::proto::transport::TransportKind;
use sipact_actors::{
    Cause, DtmfOptions, HoldOptions, ReferOptions, SessionEvent, TerminateOptions, UaConfig, UserAgent, extra_header,
};
use sipact_message::Method;

fn over(user: &str, transport: &str) -> UserAgent {
    UserAgent::start(UaConfig {
        transport: transport.into(),
        listen: vec!["udp".into(), transport.into()],
        ..cfg(user)
    })
    .unwrap()
}

async fn methods_over(transport: &str, kind: TransportKind) {
    let alice = over("alice", transport);
    let bob = over("bob", transport);
    assert!(bob.uri().ends_with(&format!(";transport={transport}")), "{}", bob.uri());
    let mut inc = bob.incoming();
    let mut a_tap = Tap::new(&alice);
    let mut b_wire = bob.wire();
    let mut call = establish(&alice, &bob, &mut inc).await;

    // dtmf
    let opts = DtmfOptions { duration: 100, inter_tone_gap: 60, extra_headers: vec![extra_header("X-T", transport)] };
    call.a.dtmf("7*", opts).await.unwrap();
    for _ in 0..2 {
        events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
    }
    a_tap.wait_count("2 INFO answered", 2, |w| w.is_response(false, 200, &Method::Info)).await;
    let infos = a_tap.requests(true, &Method::Info);
    assert_eq!(infos.len(), 2);
    assert!(body_str(&infos[1].0.body).starts_with("Signal=*\r\n"));

    // hold by re-INVITE, unhold by UPDATE
    call.a.hold().await.unwrap();
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true }))
        .await;
    call.a.unhold_with(HoldOptions { use_update: true, ..Default::default() }).await.unwrap();
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false }))
        .await;
    a_tap.drain();
    let reinvites = a_tap.requests(true, &Method::Invite);
    assert_eq!(reinvites.len(), 2, "{:?}", a_tap.labels());
    assert!(body_str(&reinvites[1].0.body).contains("a=sendonly"));
    let (update, _) = a_tap.requests(true, &Method::Update).remove(0);
    assert!(body_str(&update.body).contains("a=sendrecv"));

    // blind refer
    call.a.refer_with("sip:carol@127.0.0.1:9", ReferOptions::default()).await.unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Refer { .. })).await;
    events_until(&mut call.a_ev, &mut call.a_seen, |e| matches!(e, SessionEvent::ReferProgress { status: 100, .. }))
        .await;

    // terminate (confirmed: BYE, with a Reason)
    call.b.terminate_with(TerminateOptions { status_code: Some(200), ..Default::default() }).await.unwrap();
    call.finish().await;
    a_tap.wait_for("200 BYE sent", |w| w.is_response(true, 200, &Method::Bye)).await;
    let (bye, _) = a_tap.requests(false, &Method::Bye).remove(0);
    assert!(bye.headers.iter().any(|h| matches!(h, sipact_message::Header::Reason(r) if &*r.value == "SIP")));

    assert_eq!(
        names(&call.a_seen),
        ["accepted", "dtmf", "dtmf", "hold", "hold", "refer-progress", "refer-progress", "bye", "terminated"]
    );
    assert_eq!(names(&call.b_seen), ["accepted", "dtmf", "dtmf", "reinvited", "reinvited", "refer", "terminated"]);
    assert_eq!(call.a_seen.last(), Some(&SessionEvent::Terminated { cause: Cause::Bye }));
    assert_eq!(call.b_seen.last(), Some(&SessionEvent::Terminated { cause: Cause::Bye }));

    // On the wire: everything went over the stream transport, both ways.
    let l = a_tap.labels();
    for w in ["> INVITE", "< 200 INVITE", "> ACK", "> INFO", "> UPDATE", "> REFER", "< NOTIFY", "< BYE"] {
        assert!(l.iter().any(|x| x == w), "{w} missing: {l:?}");
    }
    let mut n = 0;
    while let Ok(rec) = b_wire.try_recv() {
        assert_eq!(rec.peer.transport, kind, "a message went over {}", rec.peer.transport);
        n += 1;
    }
    assert!(n >= 20, "only {n} messages seen by Bob");
}

#[actix_rt::test]
async fn session_methods_over_tcp() {
    methods_over("tcp", TransportKind::Tcp).await;
}

#[actix_rt::test]
async fn session_methods_over_ws() {
    methods_over("ws", TransportKind::Ws).await;
}
