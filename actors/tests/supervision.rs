//! The mission's hard promise: a transport that fails is restarted by its
//! supervisor on the same address, and no established session notices.
//! Two UAs with 100 calls over UDP and 20 over TCP; on each side the UDP
//! transport and the TCP listener fail three times; then every call still
//! holds, unholds, sends DTMF and hangs up, and both sides see
//! `Terminated { cause: Bye }`.

use std::time::Duration;

use futures_util::future::join_all;
use sipact_actors::proto::transport::TransportKind;
use sipact_actors::transport::udp::Generation;
use sipact_actors::{Cause, DtmfOptions, InviteOptions, Session, SessionEvent, UaConfig, UserAgent};
use tokio::time::timeout;

const UDP_CALLS: usize = 100;
const TCP_CALLS: usize = 20;
const CALLS: usize = UDP_CALLS + TCP_CALLS;

fn cfg(user: &str) -> UaConfig {
    UaConfig {
        user: user.into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["udp".into(), "tcp".into()],
        // Plain RTP media on every call: the subject is transport
        // supervision, and 240 WebRTC media actors (DTLS-SRTP every 20 ms)
        // on the test's single thread in a debug build starve signalling.
        media: "rtp".into(),
        ..UaConfig::default()
    }
}

async fn wait_for(events: &mut sipact_actors::SessionEvents, pred: impl Fn(&SessionEvent) -> bool) -> bool {
    loop {
        match timeout(Duration::from_secs(20), events.next()).await {
            Ok(Some(e)) if pred(&e) => return true,
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
}

async fn establish(alice: &UserAgent, bob: &UserAgent) -> Vec<(Session, Session)> {
    let mut incoming = bob.incoming();
    let mut calls = Vec::new();
    let udp = bob.uri_for(TransportKind::Udp).unwrap();
    let tcp = bob.uri_for(TransportKind::Tcp).unwrap();
    for i in 0..CALLS {
        let target = if i < UDP_CALLS { &udp } else { &tcp };
        let a = alice.invite(target, InviteOptions::default()).await.unwrap();
        let b = timeout(Duration::from_secs(10), incoming.next()).await.unwrap().unwrap();
        b.accept().await.unwrap();
        calls.push((a, b));
    }
    for (a, _) in &calls {
        let mut ev = a.events();
        assert!(wait_for(&mut ev, |e| matches!(e, SessionEvent::Accepted { .. })).await);
    }
    calls
}

#[actix_rt::test]
async fn transport_failures_lose_no_session() {
    let alice = UserAgent::start(cfg("alice")).unwrap();
    let bob = UserAgent::start(cfg("bob")).unwrap();
    let (a_addr, b_addr) = (alice.local_addr(), bob.local_addr());
    let (a_tcp, b_tcp) = (alice.addr(TransportKind::Tcp), bob.addr(TransportKind::Tcp));
    let calls = establish(&alice, &bob).await;
    // The TCP calls really are TCP: their INVITE names TCP in Via and Contact.
    for (i, (a, _)) in calls.iter().enumerate() {
        let req = a.request().unwrap();
        let want = if i < UDP_CALLS { "UDP" } else { "TCP" };
        assert_eq!(&*req.headers.via().unwrap().transport, want, "call {i}");
        let contact = req.headers.contact().unwrap().uri.to_string();
        assert_eq!(contact.contains("transport=tcp"), want == "TCP", "call {i}: {contact}");
    }
    assert_eq!(alice.sessions().await.len(), CALLS);

    // Three faults on each side, with traffic in between.
    for round in 0..3 {
        alice.fail_udp();
        bob.fail_udp();
        alice.fail_tcp_listener();
        bob.fail_tcp_listener();
        // A request right after the fault: retransmission covers the restart gap.
        let status = timeout(Duration::from_secs(20), alice.options(&bob.uri())).await.unwrap().unwrap();
        assert_eq!(status, 200, "OPTIONS after fault round {round}");
    }
    // Each transport really restarted three times...
    let gen_a = alice.udp().send(Generation).await.unwrap();
    let gen_b = bob.udp().send(Generation).await.unwrap();
    assert_eq!((gen_a, gen_b), (4, 4), "UDP bind generations");
    let tgen_a = alice.listener(TransportKind::Tcp).unwrap().send(Generation).await.unwrap();
    let tgen_b = bob.listener(TransportKind::Tcp).unwrap().send(Generation).await.unwrap();
    assert_eq!((tgen_a, tgen_b), (4, 4), "TCP listener bind generations");
    // New TCP connections are accepted after the restarts.
    let status = timeout(Duration::from_secs(20), alice.options(&bob.uri_for(TransportKind::Tcp).unwrap())).await;
    assert_eq!(status.unwrap().unwrap(), 200);
    // ...and rebound the same addresses.
    assert_eq!(alice.local_addr(), a_addr);
    assert_eq!(bob.local_addr(), b_addr);
    assert_eq!(alice.addr(TransportKind::Tcp), a_tcp);
    assert_eq!(bob.addr(TransportKind::Tcp), b_tcp);
    assert_eq!(alice.sessions().await.len(), CALLS, "a session was lost");
    assert_eq!(bob.sessions().await.len(), CALLS, "a session was lost");

    // Every call still works: hold, unhold, DTMF, BYE.
    let results = join_all(calls.iter().map(|(a, b)| async move {
        let mut ae = a.events();
        let mut be = b.events();
        a.hold().await.unwrap();
        assert!(wait_for(&mut ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true })).await);
        a.unhold().await.unwrap();
        assert!(wait_for(&mut ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await);
        a.dtmf("5", DtmfOptions::default()).await.unwrap();
        assert!(wait_for(&mut be, |e| matches!(e, SessionEvent::Dtmf { tone: '5', outgoing: false, .. })).await);
        a.bye().await.unwrap();
        let a_end = wait_for(&mut ae, |e| matches!(e, SessionEvent::Terminated { cause: Cause::Bye })).await;
        let b_end = wait_for(&mut be, |e| matches!(e, SessionEvent::Terminated { cause: Cause::Bye })).await;
        a_end && b_end
    }))
    .await;
    let ok = results.iter().filter(|r| **r).count();
    assert_eq!(ok, CALLS, "sessions lost: {}", CALLS - ok);
    assert!(alice.sessions().await.is_empty());
    assert!(bob.sessions().await.is_empty());
}
