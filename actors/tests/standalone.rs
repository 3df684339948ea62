//! A user agent that starts its own actix system on its own thread, driven
//! from plain tokio tasks on a multi-threaded runtime: the handles are
//! `Send + Clone`.

use std::time::Duration;

use sipact_actors::{Cause, InviteOptions, SessionEvent, UaConfig, UserAgent};
use tokio::time::timeout;

fn cfg(user: &str) -> UaConfig {
    UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..UaConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_work_from_any_tokio_task() {
    let alice = UserAgent::spawn(cfg("alice")).unwrap();
    let bob = UserAgent::spawn(cfg("bob")).unwrap();
    let mut incoming = bob.incoming();

    // Bob answers from a task of his own.
    let callee = tokio::spawn(async move {
        let b = timeout(Duration::from_secs(5), incoming.next()).await.unwrap().unwrap();
        let mut ev = b.events();
        b.accept().await.unwrap();
        let mut last = None;
        while let Ok(Some(e)) = timeout(Duration::from_secs(5), ev.next()).await {
            last = Some(e);
        }
        last
    });

    // Alice calls from another task, and a clone of her session hangs up
    // from a third one.
    let a = tokio::spawn({
        let alice = alice.clone();
        let target = bob.uri();
        async move { alice.invite(&target, InviteOptions::default()).await.unwrap() }
    })
    .await
    .unwrap();
    let mut ev = a.events();
    loop {
        match timeout(Duration::from_secs(5), ev.next()).await.unwrap() {
            Some(SessionEvent::Accepted { .. }) => break,
            Some(_) => {}
            None => panic!("session ended before it was accepted"),
        }
    }
    let a2 = a.clone();
    tokio::spawn(async move { a2.bye().await.unwrap() }).await.unwrap();
    let mut last = None;
    while let Ok(Some(e)) = timeout(Duration::from_secs(5), ev.next()).await {
        last = Some(e);
    }
    assert!(matches!(last, Some(SessionEvent::Terminated { cause: Cause::Bye })), "{last:?}");
    let b_last = callee.await.unwrap();
    assert!(matches!(b_last, Some(SessionEvent::Terminated { cause: Cause::Bye })), "{b_last:?}");
    alice.shutdown().await;
    bob.shutdown().await;
}
