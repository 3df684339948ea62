//! Tier 4: the actor topology. Transports deliver to the transaction
//! actor, which owns the transaction layer; the dialog actor owns the
//! dialogs and sessions and exchanges typed transaction commands and
//! events with it; session actors get their events from the dialog actor.
//! An in-dialog request crosses transport -> transaction actor -> dialog
//! actor -> session actor.

mod common;

use common::*;
use sipact_actors::messages::{GetStats, PipelineStats};
use sipact_actors::{SessionEvent, UserAgent};

async fn stats(ua: &UserAgent) -> (PipelineStats, PipelineStats) {
    // The transaction actor first: whatever it forwarded before answering
    // is in the dialog actor's mailbox ahead of the second question.
    let t = ua.transaction_actor().send(GetStats).await.unwrap();
    let d = ua.dialog_actor().send(GetStats).await.unwrap();
    (t, d)
}

#[actix_rt::test]
async fn transactions_and_dialogs_run_in_distinct_actors_and_a_call_works() {
    let alice = start("alice");
    let bob = start("bob");
    let mut bob_wire = Tap::new(&bob);
    let mut inc = bob.incoming();

    // Two actors, each answering for its own part.
    let (t0, d0) = stats(&bob).await;
    assert_eq!((t0.actor, d0.actor), ("transaction", "dialog"));
    assert_eq!((t0.received, t0.events, d0.events, d0.commands), (0, 0, 0, 0));

    let mut call = establish(&alice, &bob, &mut inc).await;
    let (t1, d1) = stats(&bob).await;
    // Bob's INVITE and ACK came in through the transaction actor, which
    // handed the dialog actor a transaction event per request; the dialog
    // actor's commands (180/200) ran in the transaction actor.
    assert!(t1.received >= 2, "{t1:?}");
    assert!(t1.events >= 2 && d1.events == t1.events, "{t1:?} {d1:?}");
    assert!(d1.commands >= 1 && t1.commands == d1.commands, "{t1:?} {d1:?}");
    assert!(d1.session_events >= 1, "{d1:?}");
    assert_eq!(t1.live, 1, "the INVITE server transaction (Accepted) lives in the transaction actor");
    assert_eq!(d1.live, 1, "the session lives in the dialog actor");

    // An in-dialog request: one more message received by the transaction
    // actor, one more event for the dialog actor, a session event for the
    // session actor, and the dialog actor's 200 run by the transaction actor.
    call.a.dtmf("5", Default::default()).await.unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, SessionEvent::Dtmf { .. })).await;
    bob_wire.wait_for("200 INFO sent", |w| w.is_response(true, 200, &sipact_message::Method::Info)).await;
    let (t2, d2) = stats(&bob).await;
    assert!(t2.received > t1.received, "{t1:?} -> {t2:?}");
    assert!(d2.events > d1.events && d2.events == t2.events, "{d1:?} -> {d2:?}, {t2:?}");
    assert!(d2.session_events > d1.session_events, "{d1:?} -> {d2:?}");
    assert!(d2.commands > d1.commands && t2.commands == d2.commands, "{d2:?} {t2:?}");

    call.hang_up().await;
    assert_one_terminated(&call.a_seen, "alice");
    assert_one_terminated(&call.b_seen, "bob");
    bob_wire.wait_for("200 BYE sent", |w| w.is_response(true, 200, &sipact_message::Method::Bye)).await;
    let (t3, d3) = stats(&bob).await;
    assert_eq!(d3.live, 0, "no session left");
    // Every message bob sent left through the transaction actor, every
    // one it received came in through it: the wire tap is the
    // transaction actor's.
    bob_wire.drain();
    let sent = bob_wire.seen.iter().filter(|w| w.outgoing).count() as u64;
    let received = bob_wire.seen.iter().filter(|w| !w.outgoing).count() as u64;
    assert_eq!((t3.transmits, t3.received), (sent, received), "{:?}", bob_wire.labels());

    alice.shutdown().await;
    bob.shutdown().await;
    // Shutdown stops both actors.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!bob.transaction_actor().connected() && !bob.dialog_actor().connected());
}
