//! Scenarios: DTMF by INFO, OPTIONS and MESSAGE outside dialogs, a 2xx that
//! is never ACKed (RFC 3261 §13.3.1.4), and a REGISTER whose Contact is
//! rewritten from `received`/`rport` (RFC 3581).

use std::time::Duration;

use sipact_message::{MediaType, Method, SipMessage};
use sipact_proto::session::Body;
use sipact_proto::ua::{InviteOptions, UaEvent};
use sipact_proto::{Cause, RegEvent, SessionError, SessionEvent};
use sipact_testkit::{NetConfig, Pair};

const ALICE: usize = 0;
const BOB: usize = 1;

fn established(p: &mut Pair) -> (u64, u64) {
    let target = p.sides[BOB].uri();
    let now = p.now;
    let a = p.sides[ALICE].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[BOB].incoming(0).is_some()));
    let b = p.sides[BOB].incoming(0).expect("incoming");
    let now = p.now;
    p.sides[BOB].ua.accept(now, b).expect("accept");
    assert!(p.run_until(Duration::from_secs(5), |p| {
        p.sides[BOB].session_events(b).iter().any(|e| matches!(e, SessionEvent::Accepted { .. }))
    }));
    (a, b)
}

#[test]
fn dtmf_sends_one_info_per_tone_with_gaps() {
    let mut p = Pair::new(NetConfig::default(), 3);
    let (a, b) = established(&mut p);
    let now = p.now;
    // SIP.js: invalid symbols and calls outside a confirmed session are errors.
    assert!(matches!(
        p.sides[ALICE].ua.dtmf(now, a, "1x", 100, 500),
        Err(sipact_proto::UaError::Session(SessionError::InvalidDtmf(_)))
    ));
    p.sides[ALICE].ua.dtmf(now, a, "12#", 100, 500).expect("dtmf");
    p.run_for(Duration::from_secs(5));
    let infos: Vec<_> = p
        .wire_at()
        .into_iter()
        .filter_map(|(t, _, m)| match m {
            SipMessage::Request(r) if r.method == Method::Info => Some((t, r)),
            _ => None,
        })
        .collect();
    assert_eq!(infos.len(), 3);
    let bodies: Vec<String> = infos.iter().map(|(_, r)| String::from_utf8_lossy(&r.body).into_owned()).collect();
    assert_eq!(
        bodies,
        ["Signal=1\r\nDuration=100\r\n", "Signal=2\r\nDuration=100\r\n", "Signal=#\r\nDuration=100\r\n"]
    );
    for (_, r) in &infos {
        assert!(r.headers.content_type().is_some_and(|c| c.is("application", "dtmf-relay")));
    }
    // Each tone starts duration + inter-tone gap after the previous one.
    assert_eq!(infos[1].0 - infos[0].0, Duration::from_millis(600));
    assert_eq!(infos[2].0 - infos[1].0, Duration::from_millis(600));
    let tones: Vec<char> = p.sides[BOB]
        .session_events(b)
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Dtmf { tone, outgoing: false, duration: 100, .. } => Some(*tone),
            _ => None,
        })
        .collect();
    assert_eq!(tones, ['1', '2', '#']);
    let sent: Vec<char> = p.sides[ALICE]
        .session_events(a)
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Dtmf { tone, outgoing: true, .. } => Some(*tone),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ['1', '2', '#']);
}

#[test]
fn options_and_message_outside_dialogs() {
    let mut p = Pair::new(NetConfig::default(), 4);
    let target = p.sides[BOB].uri();
    let now = p.now;
    let o = p.sides[ALICE].ua.request(now, Method::Options, &target, None).expect("options");
    let body = Body { content_type: MediaType::new("text", "plain"), data: "hello bob".into() };
    let m = p.sides[ALICE].ua.request(now, Method::Message, &target, Some(body)).expect("message");
    p.run_for(Duration::from_secs(2));
    let done = |id: u64| {
        p.sides[ALICE].events.iter().find_map(|(_, e)| match e {
            UaEvent::RequestDone { id: i, status, response } if *i == id => Some((*status, response.clone())),
            _ => None,
        })
    };
    let (status, resp) = done(o).expect("OPTIONS answered");
    assert_eq!(status, 200);
    let resp = resp.expect("response");
    assert!(resp.headers.iter().any(|h| matches!(h, sipact_message::Header::Allow(m) if m.contains(&Method::Invite))));
    assert_eq!(done(m).map(|d| d.0), Some(200));
    let got = p.sides[BOB].events.iter().find_map(|(_, e)| match e {
        UaEvent::Message { request } => Some(request.clone()),
        _ => None,
    });
    assert_eq!(got.map(|r| r.body), Some("hello bob".into()));
}

#[test]
fn unacknowledged_2xx_is_retransmitted_then_ends_with_bye() {
    let mut p = Pair::new(NetConfig::default(), 5);
    let target = p.sides[BOB].uri();
    let now = p.now;
    let a = p.sides[ALICE].ua.invite(now, &target, InviteOptions::default()).expect("invite");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[BOB].incoming(0).is_some()));
    let b = p.sides[BOB].incoming(0).expect("incoming");
    // From now on nothing gets through: the 200 is never ACKed.
    p.net.config_mut().loss = 1.0;
    let t200 = p.now;
    p.sides[BOB].ua.accept(t200, b).expect("accept");
    p.run_for(Duration::from_secs(40));
    let oks: Vec<Duration> = p
        .wire_at()
        .into_iter()
        .filter_map(|(t, from, m)| match m {
            SipMessage::Response(r)
                if from == p.sides[BOB].addr
                    && r.status == 200
                    && r.headers.cseq().is_some_and(|c| c.method == Method::Invite) =>
            {
                Some(t - t200)
            }
            _ => None,
        })
        .collect();
    // §13.3.1.4: T1, doubling up to T2.
    let ms: Vec<u128> = oks.iter().take(7).map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 500, 1500, 3500, 7500, 11500, 15500]);
    // 64*T1 without ACK: BYE and the NoAck cause.
    let byes: Vec<Duration> = p
        .wire_at()
        .into_iter()
        .filter_map(|(t, from, m)| match m {
            SipMessage::Request(r) if from == p.sides[BOB].addr && r.method == Method::Bye => Some(t - t200),
            _ => None,
        })
        .collect();
    assert_eq!(byes.first().copied(), Some(Duration::from_secs(32)));
    assert!(matches!(p.sides[BOB].session_events(b).last(), Some(SessionEvent::Terminated { cause: Cause::NoAck })));
    let _ = a;
}

#[test]
fn register_learns_public_address_from_received_and_rport() {
    // Alice believes she is at 10.0.0.1 (her Via and Contact say so) but her
    // packets leave from 127.0.0.1:5060, as behind a NAT.
    let mut p = Pair::with(
        NetConfig::default(),
        6,
        |a| a.local = "10.0.0.1:5060".parse().expect("addr"),
        |b| b.registrar = true,
    );
    let registrar = p.sides[BOB].uri();
    let now = p.now;
    p.sides[ALICE].ua.register(now, &registrar, 600).expect("register");
    p.run_for(Duration::from_secs(2));
    let ev: Vec<&RegEvent> = p.sides[ALICE]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            UaEvent::Registration(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        matches!(ev.first(), Some(RegEvent::ContactChanged { contact }) if contact.to_string() == "sip:alice@127.0.0.1:5060"),
        "{ev:?}"
    );
    assert!(matches!(ev.get(1), Some(RegEvent::Registered { expires: 600, .. })), "{ev:?}");
    let aor = "sip:alice@10.0.0.1:5060";
    assert_eq!(p.sides[BOB].ua.binding(aor).map(|c| c.uri.to_string()), Some("sip:alice@127.0.0.1:5060".into()));
    // The first REGISTER asked for rport and the response filled it in.
    let first_resp = p
        .wire()
        .into_iter()
        .find_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status == 200 => Some(r),
            _ => None,
        })
        .expect("200");
    let via = first_resp.headers.via().expect("via");
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(5060)));
}

#[test]
fn an_offer_the_hooks_cannot_answer_is_rejected_with_488() {
    let mut p = Pair::new(NetConfig::default(), 11);
    let target = p.sides[BOB].uri();
    let now = p.now;
    // Alice's offer has no audio stream: Bob's hooks cannot answer it.
    let opts = InviteOptions {
        modifiers: vec![sipact_proto::ua::DescriptionModifier::new(|b: &mut Body| {
            b.data = String::from_utf8_lossy(&b.data).replace("m=audio", "m=text").into_bytes().into();
        })],
        ..InviteOptions::default()
    };
    let a = p.sides[ALICE].ua.invite(now, &target, opts).expect("invite");
    assert!(p.run_until(Duration::from_secs(5), |p| p.sides[BOB].incoming(0).is_some()));
    let b = p.sides[BOB].incoming(0).expect("incoming");
    let now = p.now;
    // accept() fails with the hooks' status, and the INVITE is answered.
    assert!(matches!(
        p.sides[BOB].ua.accept(now, b),
        Err(sipact_proto::UaError::Session(SessionError::Description(488)))
    ));
    assert!(p.run_until(Duration::from_secs(5), |p| {
        p.sides[ALICE].session_events(a).iter().any(|e| matches!(e, SessionEvent::Terminated { .. }))
    }));
    let finals: Vec<u16> = p
        .wire()
        .iter()
        .filter_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status >= 200 => Some(r.status),
            _ => None,
        })
        .collect();
    assert_eq!(finals, [488], "one final response, 488");
    assert!(p.sides[ALICE].session_events(a).iter().any(|e| matches!(
        e,
        SessionEvent::Rejected { response, .. } if response.status == 488
    )));
    assert!(
        p.sides[BOB]
            .session_events(b)
            .iter()
            .any(|e| matches!(e, SessionEvent::Terminated { cause: Cause::IncompatibleSdp }))
    );
}
