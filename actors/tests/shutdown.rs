//! Graceful shutdown: every session ended (BYE for a confirmed call, CANCEL
//! for one still ringing out, 480 for one ringing in), the registration
//! removed, then the transports released so their ports can be bound again.

use std::time::Duration;

use sipact_actors::proto::register::RegEvent;
use sipact_actors::{InviteOptions, SessionEvent, UaConfig, UserAgent};
use sipact_message::{Method, SipMessage};
use tokio::time::timeout;

fn cfg(user: &str) -> UaConfig {
    UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..UaConfig::default() }
}

async fn until(ev: &mut sipact_actors::SessionEvents, f: impl Fn(&SessionEvent) -> bool) {
    while let Ok(Some(e)) = timeout(Duration::from_secs(5), ev.next()).await {
        if f(&e) {
            return;
        }
    }
    panic!("event never came");
}

#[actix_rt::test]
async fn shutdown_ends_sessions_unregisters_and_frees_the_port() {
    let alice = UserAgent::start(cfg("alice")).unwrap();
    let bob = UserAgent::start(cfg("bob")).unwrap();
    let carol = UserAgent::start(UaConfig { rel100: "unsupported".into(), ..cfg("carol") }).unwrap();
    let mut wire = alice.wire();
    let mut bob_in = bob.incoming();
    let mut carol_in = carol.incoming();
    let mut alice_in = alice.incoming();

    // A confirmed call alice -> bob.
    let a1 = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let b1 = timeout(Duration::from_secs(5), bob_in.next()).await.unwrap().unwrap();
    b1.accept().await.unwrap();
    let mut a1e = a1.events();
    until(&mut a1e, |e| matches!(e, SessionEvent::Accepted { .. })).await;
    // A call alice -> carol that is only ringing.
    let a2 = alice.invite(&carol.uri(), InviteOptions::default()).await.unwrap();
    let c2 = timeout(Duration::from_secs(5), carol_in.next()).await.unwrap().unwrap();
    c2.progress(Default::default()).await.unwrap();
    let mut a2e = a2.events();
    until(&mut a2e, |e| matches!(e, SessionEvent::Progress { .. })).await;
    // A call bob -> alice that alice has not answered.
    let b3 = bob.invite(&alice.uri(), InviteOptions::default()).await.unwrap();
    let _a3 = timeout(Duration::from_secs(5), alice_in.next()).await.unwrap().unwrap();
    let mut b3e = b3.events();
    // Alice is registered with a registrar (bob plays one: any 2xx will do
    // for the unregister to be sent; bob answers REGISTER with 405).
    let mut regs = alice.registrations();
    alice.register(&bob.uri(), 300).await.unwrap();
    let _ = timeout(Duration::from_secs(5), regs.recv()).await;

    let addr = alice.local_addr();
    timeout(Duration::from_secs(40), alice.shutdown()).await.unwrap();
    assert!(alice.sessions().await.is_empty());

    let mut sent = Vec::new();
    while let Ok(Some(r)) = timeout(Duration::from_millis(200), wire.recv()).await {
        if r.outgoing
            && let Ok(m) = SipMessage::parse(r.data)
        {
            sent.push(m);
        }
    }
    let req = |m: Method| sent.iter().any(|s| matches!(s, SipMessage::Request(r) if r.method == m));
    let resp = |c: u16| sent.iter().any(|s| matches!(s, SipMessage::Response(r) if r.status == c));
    assert!(req(Method::Bye), "BYE for the confirmed call");
    assert!(req(Method::Cancel), "CANCEL for the ringing call");
    assert!(resp(480), "480 for the unanswered inbound call");
    let unregister = sent
        .iter()
        .any(|s| matches!(s, SipMessage::Request(r) if r.method == Method::Register && r.headers.expires() == Some(0)));
    assert!(unregister, "REGISTER with Expires: 0");
    until(&mut b3e, |e| matches!(e, SessionEvent::Terminated { .. })).await;
    let _ = RegEvent::Unregistered;
    // The port is free again.
    std::net::UdpSocket::bind(addr).expect("port released");
}
