//! The UA's index of session deadlines: with several sessions waiting for
//! their ACK, `poll_timeout` names the earliest 2xx retransmission of any of
//! them, skips a session whose timer was disarmed since, and a fired timer
//! is re-armed at its doubled interval (RFC 3261 §13.3.1.4: "the 2xx
//! response is passed to the transport with an interval that starts at T1
//! seconds and doubles for each retransmission until it reaches T2").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sipact_message::{Method, SipMessage};
use sipact_proto::session::{Body, DescriptionHooks};
use sipact_proto::transport::{Peer, TransportKind};
use sipact_proto::ua::{CoreConfig, HooksContext, InviteOptions, UaEvent, UserAgentCore};
use sipact_proto::{SplitMix64, Transmit};

const SDP: &[u8] =
    b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

struct Sdp;

impl DescriptionHooks for Sdp {
    fn offer(&mut self, _hold: bool) -> Result<Body, u16> {
        Ok(Body::sdp(Bytes::from_static(SDP)))
    }
    fn answer(&mut self, _offer: &Body, _hold: bool) -> Result<Body, u16> {
        Ok(Body::sdp(Bytes::from_static(SDP)))
    }
    fn apply_answer(&mut self, _answer: &Body) -> Result<(), u16> {
        Ok(())
    }
}

fn core(user: &str, addr: SocketAddr, seed: u64) -> UserAgentCore {
    UserAgentCore::new(
        CoreConfig::new(TransportKind::Udp, addr, user),
        Box::new(SplitMix64::new(seed)),
        Box::new(|_: &HooksContext| Box::new(Sdp) as Box<dyn DescriptionHooks>),
    )
}

fn sent(ua: &mut UserAgentCore) -> Vec<Transmit> {
    std::iter::from_fn(|| ua.poll_transmit()).collect()
}

fn parsed(t: &Transmit) -> SipMessage {
    SipMessage::parse(t.data.clone()).expect("our own message parses")
}

fn call_id(t: &Transmit) -> String {
    parsed(t).headers().call_id().unwrap_or_default().to_owned()
}

#[test]
fn the_earliest_session_deadline_is_found_and_stale_ones_skipped() {
    let a_addr: SocketAddr = ([127, 0, 0, 1], 5060).into();
    let b_addr: SocketAddr = ([127, 0, 0, 2], 5060).into();
    let (mut alice, mut bob) = (core("alice", a_addr, 1), core("bob", b_addr, 2));
    let t0 = Instant::now();
    let t1 = Duration::from_millis(500);
    let target = format!("sip:bob@{b_addr}");
    // Three calls 100 ms apart; bob answers each at once; alice's ACKs are
    // held back, so each of bob's sessions retransmits its 200.
    let mut calls = Vec::new();
    let mut acks = Vec::new();
    for k in 0..3u32 {
        let now = t0 + Duration::from_millis(100) * k;
        alice.invite(now, &target, InviteOptions::default()).expect("invite");
        for t in sent(&mut alice) {
            bob.handle_bytes(now, Peer::udp(a_addr), t.data).expect("bob takes the INVITE");
        }
        let id = std::iter::from_fn(|| bob.poll_event())
            .find_map(|e| match e {
                UaEvent::Incoming { session, .. } => Some(session),
                _ => None,
            })
            .expect("incoming call");
        bob.accept(now, id).expect("accept");
        let out = sent(&mut bob);
        let ok = out.iter().find(|t| matches!(parsed(t), SipMessage::Response(r) if r.status == 200)).expect("200");
        calls.push(call_id(ok));
        for t in out {
            alice.handle_bytes(now, Peer::udp(b_addr), t.data).expect("alice takes the response");
        }
        while alice.poll_event().is_some() {}
        let ack = sent(&mut alice);
        assert!(
            ack.len() == 1 && matches!(parsed(&ack[0]), SipMessage::Request(r) if r.method == Method::Ack),
            "alice acknowledges the 200"
        );
        acks.push(ack);
        while bob.poll_event().is_some() {}
    }

    // First 2xx retransmission of the first call, T1 after its 200.
    assert_eq!(bob.poll_timeout(), Some(t0 + t1));
    bob.handle_timeout(t0 + t1);
    let out = sent(&mut bob);
    assert_eq!(out.iter().map(call_id).collect::<Vec<_>>(), [calls[0].clone()], "only the first call's 200 again");
    assert_eq!(bob.poll_timeout(), Some(t0 + t1 + Duration::from_millis(100)));

    // The second call's ACK arrives: its retransmission timer is disarmed,
    // and the next deadline is the third call's, not the second's.
    let now = t0 + t1 + Duration::from_millis(50);
    for t in acks.remove(1) {
        bob.handle_bytes(now, Peer::udp(a_addr), t.data).expect("bob takes the ACK");
    }
    assert_eq!(bob.poll_timeout(), Some(t0 + t1 + Duration::from_millis(200)));
    bob.handle_timeout(t0 + t1 + Duration::from_millis(200));
    let out = sent(&mut bob);
    assert_eq!(out.iter().map(call_id).collect::<Vec<_>>(), [calls[2].clone()], "only the third call's 200 again");

    // The first call retransmits again 2*T1 after its first retransmission.
    assert_eq!(bob.poll_timeout(), Some(t0 + t1 + 2 * t1));
    bob.handle_timeout(t0 + 3 * t1);
    assert_eq!(sent(&mut bob).iter().map(call_id).collect::<Vec<_>>(), [calls[0].clone()]);
}
