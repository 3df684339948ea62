//! The mission's hard promise: a transport that fails is restarted by its
//! supervisor on the same address, and no established session notices.
//! 100 calls over UDP; each side's UDP transport fails three times; then
//! every call still holds, unholds, sends DTMF and hangs up, and both sides
//! see `Terminated { cause: Bye }`.

use std::time::Duration;

use futures_util::future::join_all;
use sipact_actors::{Cause, DtmfOptions, InviteOptions, Session, SessionEvent, UaConfig, UserAgent};
use tokio::time::timeout;

const CALLS: usize = 100;

fn cfg(user: &str) -> UaConfig {
    UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..UaConfig::default() }
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
    for _ in 0..CALLS {
        let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
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
async fn udp_transport_failures_lose_no_session() {
    let alice = UserAgent::start(cfg("alice")).unwrap();
    let bob = UserAgent::start(cfg("bob")).unwrap();
    let (a_addr, b_addr) = (alice.local_addr(), bob.local_addr());
    let calls = establish(&alice, &bob).await;
    assert_eq!(alice.sessions().await.len(), CALLS);

    // Three faults on each side, with traffic in between.
    for round in 0..3 {
        alice.fail_udp();
        bob.fail_udp();
        // A request right after the fault: retransmission covers the restart gap.
        let status = timeout(Duration::from_secs(20), alice.options(&bob.uri())).await.unwrap().unwrap();
        assert_eq!(status, 200, "OPTIONS after fault round {round}");
    }
    // Each transport really restarted three times...
    let gen_a = alice.udp().send(sipact_actors::transport::udp::Generation).await.unwrap();
    let gen_b = bob.udp().send(sipact_actors::transport::udp::Generation).await.unwrap();
    assert_eq!((gen_a, gen_b), (4, 4), "bind generations");
    // ...and rebound the same addresses.
    assert_eq!(alice.local_addr(), a_addr);
    assert_eq!(bob.local_addr(), b_addr);
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
