//! Scenario: cores whose transaction layer is outside them
//! (`UserAgentCore::new_external`, as the actors run them), driven through
//! transaction commands and events. The wire is the one of cores with
//! their own layer; calls, CANCELs and lossy networks end as cleanly.

use std::time::Duration;

use sipact_proto::transaction::{TxCommand, cancel_key, client_key};
use sipact_proto::ua::{CoreConfig, InviteOptions, UserAgentCore};
use sipact_proto::{Cause, SessionEvent, SplitMix64, TransportKind};
use sipact_testkit::{FakeSdp, NetConfig, Pair};

fn terminated(evs: &[&SessionEvent]) -> Vec<Cause> {
    evs.iter()
        .filter_map(|e| match e {
            SessionEvent::Terminated { cause } => Some(*cause),
            _ => None,
        })
        .collect()
}

/// INVITE, 180, 200, ACK, BYE; returns the session ids.
fn call(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(40), |p| p.sides[1].incoming(0).is_some()), "{:?}", p.ladder());
    let b = p.sides[1].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[1].ua.progress(now, b, 180, false, false).expect("180");
    p.run_for(Duration::from_millis(200));
    let now = p.now;
    p.sides[1].ua.accept(now, b).expect("accept");
    assert!(
        p.run_until(Duration::from_secs(60), |p| {
            p.sides[0].session_events(a).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
                && p.sides[1].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
        }),
        "{:?}",
        p.ladder()
    );
    let now = p.now;
    p.sides[0].ua.bye(now, a).expect("bye");
    assert!(
        p.run_until(Duration::from_secs(60), |p| p.sides[0].ua.session(a).is_none()
            && p.sides[1].ua.session(b).is_none()),
        "{:?}",
        p.ladder()
    );
    (a, b)
}

fn idle(p: &mut Pair) {
    p.run_for(Duration::from_secs(200));
    for s in &mut p.sides {
        assert!(s.ua.is_external());
        assert!(s.ua.transactions().is_none());
        assert!(s.ua.session_ids().is_empty());
        assert_eq!(s.transaction_count(), 0);
        assert_eq!(s.poll_timeout(), None);
        assert!(s.ua.poll_tx_command().is_none());
    }
}

#[test]
fn a_call_puts_the_same_messages_on_the_wire_in_both_modes() {
    let mut embedded = Pair::new(NetConfig::default(), 3);
    let mut external = Pair::external(NetConfig::default(), 3, |_| {}, |_| {});
    let (ea, eb) = call(&mut embedded);
    let (xa, xb) = call(&mut external);
    assert_eq!(external.ladder(), embedded.ladder());
    assert_eq!(
        external.ladder(),
        ["alice INVITE", "bob 100 INVITE", "bob 180 INVITE", "bob 200 INVITE", "alice ACK", "alice BYE", "bob 200 BYE"]
    );
    assert_eq!(terminated(&external.sides[0].session_events(xa)), terminated(&embedded.sides[0].session_events(ea)));
    assert_eq!(terminated(&external.sides[1].session_events(xb)), [Cause::Bye]);
    assert_eq!(terminated(&embedded.sides[1].session_events(eb)), [Cause::Bye]);
    idle(&mut external);
}

#[test]
fn calls_complete_under_loss_and_every_layer_goes_idle() {
    for seed in 1..=10 {
        let net = NetConfig { loss: 0.3, duplicate: 0.05, reorder: 0.1, ..NetConfig::default() };
        let mut p = Pair::external(net, seed, |_| {}, |_| {});
        let (a, b) = call(&mut p);
        assert_eq!(terminated(&p.sides[0].session_events(a)).len(), 1, "seed {seed}");
        assert_eq!(terminated(&p.sides[1].session_events(b)).len(), 1, "seed {seed}");
        idle(&mut p);
    }
}

#[test]
fn a_cancel_before_any_provisional_waits_in_the_external_layer() {
    let mut p = Pair::external(NetConfig::default(), 7, |_| {}, |_| {});
    let target = p.sides[1].uri();
    let now = p.now;
    let a = p.sides[0].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    p.sides[0].ua.cancel(now, a).expect("cancel");
    p.run_for(Duration::from_millis(5));
    assert_eq!(p.ladder(), ["alice INVITE"], "CANCEL sent before any provisional");
    assert!(p.run_until(Duration::from_secs(60), |p| p.sides[0].ua.session(a).is_none()), "{:?}", p.ladder());
    assert_eq!(terminated(&p.sides[0].session_events(a)), [Cause::Canceled]);
    let b = p.sides[1].incoming(0).expect("incoming");
    assert!(p.run_until(Duration::from_secs(60), |p| p.sides[1].ua.session(b).is_none()));
    assert_eq!(terminated(&p.sides[1].session_events(b)), [Cause::Canceled]);
    assert!(p.ladder().iter().any(|l| l == "alice CANCEL"), "{:?}", p.ladder());
    idle(&mut p);
}

#[test]
fn commands_carry_the_keys_the_core_expects() {
    let addr = "127.0.0.1:5060".parse().expect("addr");
    let hooks = Box::new(|_: &sipact_proto::ua::HooksContext| {
        Box::new(FakeSdp::new("alice")) as Box<dyn sipact_proto::DescriptionHooks>
    });
    let mut core = UserAgentCore::new_external(
        CoreConfig::new(TransportKind::Udp, addr, "alice"),
        Box::new(SplitMix64::new(1)),
        hooks,
    );
    let now = std::time::Instant::now();
    let id = core.invite(now, "sip:bob@127.0.0.2:5060", InviteOptions::default()).expect("invite");
    assert_eq!(core.poll_transmit(), None, "an external core sends nothing itself");
    let Some(TxCommand::SendRequest { request, peer }) = core.poll_tx_command() else { panic!("no INVITE command") };
    assert_eq!(peer.addr, "127.0.0.2:5060".parse().expect("addr"));
    let key = client_key(&request).expect("key");
    assert_eq!(core.session(id).and_then(|s| s.invite_key()), Some(&key));
    core.cancel(now, id).expect("cancel");
    match core.poll_tx_command() {
        Some(TxCommand::Cancel { invite }) => {
            assert_eq!(invite, key);
            let ck = cancel_key(&invite);
            assert_eq!((ck.branch.clone(), ck.method.clone()), (key.branch.clone(), sipact_message::Method::Cancel));
        }
        other => panic!("expected a Cancel command, got {other:?}"),
    }
    assert!(core.poll_tx_command().is_none());
}
