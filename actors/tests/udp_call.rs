//! Two user agents in one process over UDP on 127.0.0.1: a basic call with
//! events checked on both sides.

use std::time::Duration;

use sipact_actors::{InviteOptions, SessionEvent, UaConfig, UserAgent};

fn cfg(user: &str) -> UaConfig {
    UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..UaConfig::default() }
}

fn name(e: &SessionEvent) -> &'static str {
    match e {
        SessionEvent::Progress { .. } => "progress",
        SessionEvent::Accepted { .. } => "accepted",
        SessionEvent::Bye { .. } => "bye",
        SessionEvent::Terminated { .. } => "terminated",
        SessionEvent::HoldChanged { .. } => "hold",
        SessionEvent::Reinvited { .. } => "reinvited",
        SessionEvent::Dtmf { .. } => "dtmf",
        _ => "other",
    }
}

#[actix_rt::test]
async fn basic_call_over_udp() {
    let alice = UserAgent::start(cfg("alice")).unwrap();
    let bob = UserAgent::start(cfg("bob")).unwrap();
    let mut incoming = bob.incoming();
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a_events = a.events();
    let b = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await.unwrap().unwrap();
    let mut b_events = b.events();
    b.progress(Default::default()).await.unwrap();
    b.accept().await.unwrap();
    let mut seen_a = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), a_events.next()).await {
        seen_a.push(name(&e));
        if name(&e) == "accepted" {
            break;
        }
    }
    assert_eq!(seen_a, ["progress", "accepted"]);
    assert!(a.start_time().is_some());
    a.bye().await.unwrap();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), a_events.next()).await {
        seen_a.push(name(&e));
    }
    let mut seen_b = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), b_events.next()).await {
        seen_b.push(name(&e));
    }
    assert_eq!(seen_a, ["progress", "accepted", "terminated"]);
    assert_eq!(seen_b, ["progress", "accepted", "bye", "terminated"]);
    assert!(a.end_time().is_some() && b.end_time().is_some());
    assert!(alice.sessions().await.is_empty());
}
