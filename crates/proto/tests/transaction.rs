//! The transaction layer against RFC 3261 §17 (with the RFC 6026 Accepted
//! states and timers L and M): one test per state transition and per timer.
//! Every test quotes the sentence it checks. Time is synthetic: `t0` plus
//! durations; nothing sleeps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipact_proto::message::{Bytes, Method, Request, Response, SipMessage};
use sipact_proto::util::response_for;
use sipact_proto::{
    FlowId, Peer, Role, Timer, TransactionError, TransactionLayer, Transmit, TransportKind, TxConfig, TxEvent, TxKey,
    TxKind, TxState,
};

// ----- helpers ----------------------------------------------------------

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const T4: Duration = Duration::from_secs(5);

fn layer() -> TransactionLayer {
    TransactionLayer::new(TxConfig::default())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The far end over UDP.
fn udp() -> Peer {
    Peer::udp(addr("192.0.2.1:5060"))
}

/// The far end over a TCP connection `flow`.
fn tcp(flow: u64) -> Peer {
    Peer { transport: TransportKind::Tcp, addr: addr("192.0.2.1:5060"), flow: Some(FlowId(flow)) }
}

/// A request as text: `method` to sip:bob@example.com, top Via
/// `SIP/2.0/<transport> <sent_by>;<via_params>`, From tag, To, Call-ID,
/// CSeq `seq method`, Max-Forwards, plus `extra` header lines.
fn request_text(method: &str, transport: &str, sent_by: &str, via_params: &str, seq: u32, extra: &str) -> String {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {sent_by};{via_params}\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@example.com>\r\n\
         From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@pc33.example.com\r\n\
         CSeq: {seq} {method}\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
}

fn parse_request(text: &str) -> Request {
    match SipMessage::parse(text.as_bytes().to_vec()).expect("test request parses") {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

/// An INVITE over UDP with branch `z9hG4bK<b>`.
fn invite(b: &str) -> Request {
    parse_request(&request_text("INVITE", "UDP", "192.0.2.99:5060", &format!("branch=z9hG4bK{b}"), 314159, ""))
}

/// An OPTIONS over UDP with branch `z9hG4bK<b>`.
fn options(b: &str) -> Request {
    parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", &format!("branch=z9hG4bK{b}"), 63104, ""))
}

/// A request with the given method and Via transport (for reliable tests).
fn request_over(method: &str, transport: &str, b: &str) -> Request {
    parse_request(&request_text(method, transport, "192.0.2.99:5060", &format!("branch=z9hG4bK{b}"), 1, ""))
}

/// A response to `req` with `status` and a To tag (none for 100).
fn resp(req: &Request, status: u16) -> Response {
    response_for(req, status, if status == 100 { None } else { Some("as83kd9bs") })
}

fn rmsg(req: &Request, status: u16) -> SipMessage {
    SipMessage::Response(resp(req, status))
}

fn transmits(l: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn parsed(t: &Transmit) -> SipMessage {
    SipMessage::parse(t.data.clone()).expect("sent bytes parse")
}

fn status_of(t: &Transmit) -> u16 {
    match parsed(t) {
        SipMessage::Response(r) => r.status,
        SipMessage::Request(r) => panic!("expected a response, got {}", r.method.as_str()),
    }
}

fn request_of(t: &Transmit) -> Request {
    match parsed(t) {
        SipMessage::Request(r) => r,
        SipMessage::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

/// Statuses of the `Response` events.
fn response_statuses(evs: &[TxEvent]) -> Vec<u16> {
    evs.iter()
        .filter_map(|e| match e {
            TxEvent::Response { response, .. } => Some(response.status),
            _ => None,
        })
        .collect()
}

fn terminated(evs: &[TxEvent], key: &TxKey) -> bool {
    evs.iter().any(|e| matches!(e, TxEvent::Terminated { key: k, .. } if k == key))
}

/// Starts a client transaction at `t0` and drains the first transmission.
fn start_client(l: &mut TransactionLayer, t0: Instant, req: Request, peer: Peer) -> (TxKey, Bytes) {
    let key = l.send_request(t0, req, peer).unwrap();
    let sent = transmits(l);
    assert_eq!(sent.len(), 1, "the request is sent once");
    (key, sent[0].data.clone())
}

/// Feeds a request to the server side and returns the new transaction's key.
fn receive_request(l: &mut TransactionLayer, now: Instant, req: &Request, peer: Peer) -> TxKey {
    l.handle_message(now, peer, SipMessage::Request(req.clone()));
    events(l)
        .into_iter()
        .find_map(|e| match e {
            TxEvent::Request { key, .. } => Some(key),
            _ => None,
        })
        .expect("a new server transaction")
}

/// Fires timers at each instant reported by `poll_timeout` up to `until`,
/// returning the instants.
fn run_until(l: &mut TransactionLayer, until: Instant) -> Vec<Instant> {
    let mut at = Vec::new();
    while let Some(t) = l.poll_timeout() {
        if t > until {
            break;
        }
        at.push(t);
        l.handle_timeout(t);
    }
    at
}

// ----- INVITE client transaction (§17.1.1.2, RFC 6026 §8.4) ---------------

#[test]
fn ict_calling_to_proceeding_on_1xx() {
    // RFC 3261 §17.1.1.2: "If the client transaction receives a provisional
    // response while in the "Calling" state, it transitions to the
    // "Proceeding" state. In the "Proceeding" state, the client transaction
    // SHOULD NOT retransmit the request any longer. Furthermore, the
    // provisional response MUST be passed to the TU."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ict1");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    assert_eq!(l.state(&key), Some(TxState::Calling));
    assert_eq!(key.role, Role::Client);
    assert_eq!(key.method, Method::Invite);

    l.handle_message(t0 + Duration::from_millis(100), udp(), rmsg(&inv, 180));
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    assert_eq!(response_statuses(&events(&mut l)), vec![180]);
    assert_eq!(l.timer(&key, Timer::A), None, "no retransmissions in Proceeding");
    assert_eq!(l.timer(&key, Timer::B), None, "Timer B only guards Calling");
    l.handle_timeout(t0 + T1 * 10);
    assert!(transmits(&mut l).is_empty());

    // "Any further provisional responses MUST be passed up to the TU while
    // in the "Proceeding" state."
    l.handle_message(t0 + T1 * 11, udp(), rmsg(&inv, 183));
    assert_eq!(response_statuses(&events(&mut l)), vec![183]);
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
}

#[test]
fn ict_timer_a_doubles_and_retransmits_same_bytes() {
    // RFC 3261 §17.1.1.2: "When timer A fires, the client transaction MUST
    // retransmit the request by passing it to the transport layer, and MUST
    // reset the timer with a value of 2*T1." ... "This process MUST continue
    // so that the request is retransmitted with intervals that double after
    // each transmission."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, original) = start_client(&mut l, t0, invite("ictA"), udp());
    assert_eq!(l.timer(&key, Timer::A), Some(t0 + T1));

    // Intervals T1, 2T1, 4T1, 8T1, 16T1, 32T1: fires at 1, 3, 7, 15, 31, 63 T1
    // (no T2 cap for INVITE requests).
    let mut expected = t0;
    let mut interval = T1;
    for _ in 0..6 {
        expected += interval;
        assert_eq!(l.poll_timeout(), Some(expected));
        l.handle_timeout(expected);
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data, original, "a retransmission is the same bytes");
        assert_eq!(sent[0].peer, udp());
        interval *= 2;
        assert_eq!(l.timer(&key, Timer::A), Some(expected + interval));
    }
    // The next deadline is Timer B at 64*T1, before Timer A at 127*T1.
    assert_eq!(l.poll_timeout(), Some(t0 + T1 * 64));
}

#[test]
fn ict_no_timer_a_on_reliable_transport() {
    // RFC 3261 §17.1.1.2: "If a reliable transport is being used, the client
    // transaction SHOULD NOT start timer A (Timer A controls request
    // retransmissions)."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, _) = start_client(&mut l, t0, request_over("INVITE", "TCP", "ictTcp"), tcp(1));
    assert_eq!(l.timer(&key, Timer::A), None);
    // "For any transport, the client transaction MUST start timer B with a
    // value of 64*T1 seconds"
    assert_eq!(l.timer(&key, Timer::B), Some(t0 + T1 * 64));
    assert_eq!(l.poll_timeout(), Some(t0 + T1 * 64));
    l.handle_timeout(t0 + T1 * 63);
    assert!(transmits(&mut l).is_empty(), "nothing retransmitted over TCP");
}

#[test]
fn ict_timer_b_fires_at_64_t1_in_calling() {
    // RFC 3261 §17.1.1.2: "If the client transaction is still in the
    // "Calling" state when timer B fires, the client transaction SHOULD
    // inform the TU that a timeout has occurred.  The client transaction
    // MUST NOT generate an ACK."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, _) = start_client(&mut l, t0, invite("ictB"), udp());
    l.handle_timeout(t0 + T1 * 64 - Duration::from_nanos(1));
    transmits(&mut l);
    assert!(events(&mut l).is_empty(), "no timeout before 64*T1");
    assert_eq!(l.state(&key), Some(TxState::Calling));

    l.handle_timeout(t0 + T1 * 64);
    assert!(transmits(&mut l).is_empty(), "no ACK, no retransmission");
    let evs = events(&mut l);
    assert_eq!(
        evs,
        vec![
            TxEvent::Timeout { key: key.clone() },
            TxEvent::Terminated { key: key.clone(), kind: TxKind::ClientInvite }
        ]
    );
    assert_eq!(l.state(&key), None);
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn ict_timer_b_does_not_fire_in_proceeding() {
    // RFC 3261 §17.1.1.2: "If the client transaction is still in the
    // "Calling" state when timer B fires, the client transaction SHOULD
    // inform the TU that a timeout has occurred." Figure 5 has no Timer B
    // transition out of "Proceeding": a ringing INVITE may last longer than
    // 64*T1.
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ictBp");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0 + T1, udp(), rmsg(&inv, 180));
    events(&mut l);
    l.handle_timeout(t0 + T1 * 200);
    assert!(events(&mut l).is_empty(), "no timeout while ringing");
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
}

#[test]
fn ict_2xx_moves_to_accepted_with_timer_m() {
    // RFC 6026 §8.4: "When a 2xx response is received while in either the
    // "Calling" or "Proceeding" states, the client transaction MUST
    // transition to the "Accepted" state, and Timer M MUST be started with a
    // value of 64*T1.  The 2xx response MUST be passed up to the TU.  The
    // client transaction MUST NOT generate an ACK to the 2xx response - its
    // handling is delegated to the TU."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ict2xx");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    let t = t0 + Duration::from_millis(200);
    l.handle_message(t, udp(), rmsg(&inv, 200));
    assert_eq!(l.state(&key), Some(TxState::Accepted));
    assert_eq!(response_statuses(&events(&mut l)), vec![200]);
    assert!(transmits(&mut l).is_empty(), "no ACK from the transaction");
    assert_eq!(l.timer(&key, Timer::M), Some(t + T1 * 64));
    assert_eq!(l.timer(&key, Timer::A), None);
    assert_eq!(l.timer(&key, Timer::B), None);
    assert_eq!(l.poll_timeout(), Some(t + T1 * 64));
}

#[test]
fn ict_accepted_passes_further_2xx_up() {
    // RFC 6026 §8.4: "Any 2xx responses that match this client transaction
    // and that are received while in the "Accepted" state MUST be passed up
    // to the TU.  The client transaction MUST NOT generate an ACK to the 2xx
    // response."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ictAcc");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 180));
    l.handle_message(t0 + T1, udp(), rmsg(&inv, 200));
    assert_eq!(response_statuses(&events(&mut l)), vec![180, 200]);
    l.handle_message(t0 + T1 * 2, udp(), rmsg(&inv, 200));
    assert_eq!(response_statuses(&events(&mut l)), vec![200]);
    assert!(transmits(&mut l).is_empty());
    // Non-2xx finals are not part of the Accepted state machine.
    l.handle_message(t0 + T1 * 3, udp(), rmsg(&inv, 486));
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.state(&key), Some(TxState::Accepted));
}

#[test]
fn ict_timer_m_terminates_accepted() {
    // RFC 6026 §8.4: "If Timer M fires while the client transaction is in
    // the "Accepted" state, the client transaction MUST move to the
    // "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ictM");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 200));
    events(&mut l);
    l.handle_timeout(t0 + T1 * 64 - Duration::from_millis(1));
    assert_eq!(l.state(&key), Some(TxState::Accepted));
    l.handle_timeout(t0 + T1 * 64);
    assert_eq!(events(&mut l), vec![TxEvent::Terminated { key: key.clone(), kind: TxKind::ClientInvite }]);
    assert_eq!(l.state(&key), None);
    // A 2xx after Timer M matches nothing: it goes to the core as stray.
    l.handle_message(t0 + T1 * 65, udp(), rmsg(&inv, 200));
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::StrayResponse { response, .. }] if response.status == 200));
}

#[test]
fn ict_300_699_completes_and_sends_ack() {
    // RFC 3261 §17.1.1.2: "When in either the "Calling" or "Proceeding"
    // states, reception of a response with status code from 300-699 MUST
    // cause the client transaction to transition to "Completed".  The client
    // transaction MUST pass the received response up to the TU, and the
    // client transaction MUST generate an ACK request, even if the transport
    // is reliable". §17.1.1.3: "The To header field in the ACK MUST equal the
    // To header field in the response being acknowledged" ... "The ACK MUST
    // contain a single Via header field, and this MUST be equal to the top
    // Via header field of the original request.  The CSeq header field in the
    // ACK MUST contain the same value for the sequence number as was present
    // in the original request, but the method parameter MUST be equal to
    // "ACK"." ... "If the INVITE request whose response is being acknowledged
    // had Route header fields, those header fields MUST appear in the ACK."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = parse_request(&request_text(
        "INVITE",
        "UDP",
        "192.0.2.99:5060",
        "branch=z9hG4bKictAck",
        986759,
        "Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n",
    ));
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    let final_resp = resp(&inv, 486);
    l.handle_message(t0 + T1, udp(), SipMessage::Response(final_resp.clone()));
    assert_eq!(l.state(&key), Some(TxState::Completed));
    assert_eq!(response_statuses(&events(&mut l)), vec![486]);

    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    // "The ACK MUST be sent to the same address, port, and transport to which
    // the original request was sent."
    assert_eq!(sent[0].peer, udp());
    let ack = request_of(&sent[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, inv.uri, "Request-URI of the INVITE");
    assert_eq!(ack.headers.vias().count(), 1);
    assert_eq!(ack.headers.via(), inv.headers.via(), "top Via (so the branch) of the INVITE");
    assert_eq!(ack.headers.via().unwrap().branch(), Some("z9hG4bKictAck"));
    assert_eq!(ack.headers.to(), final_resp.headers.to());
    assert_eq!(ack.headers.to().unwrap().tag(), Some("as83kd9bs"));
    assert_eq!(ack.headers.from(), inv.headers.from());
    assert_eq!(ack.headers.call_id(), inv.headers.call_id());
    let cseq = ack.headers.cseq().unwrap();
    assert_eq!((cseq.seq, &cseq.method), (986759, &Method::Ack));
    assert_eq!(ack.headers.routes().collect::<Vec<_>>(), inv.headers.routes().collect::<Vec<_>>());
    assert_eq!(ack.headers.routes().count(), 2);
}

#[test]
fn ict_completed_resends_ack_on_retransmitted_final() {
    // RFC 3261 §17.1.1.2: "Any retransmissions of the final response that are
    // received while in the "Completed" state MUST cause the ACK to be
    // re-passed to the transport layer for retransmission, but the newly
    // received response MUST NOT be passed up to the TU."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ictRe");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 180));
    l.handle_message(t0 + T1, udp(), rmsg(&inv, 603));
    assert_eq!(response_statuses(&events(&mut l)), vec![180, 603]);
    let first_ack = transmits(&mut l);
    assert_eq!(first_ack.len(), 1);

    l.handle_message(t0 + T1 * 2, udp(), rmsg(&inv, 603));
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, first_ack[0].data, "the same ACK");
    assert!(events(&mut l).is_empty(), "the retransmission is not passed up");
    assert_eq!(l.state(&key), Some(TxState::Completed));
}

#[test]
fn ict_timer_d_32s_on_unreliable() {
    // RFC 3261 §17.1.1.2: "The client transaction SHOULD start timer D when
    // it enters the "Completed" state, with a value of at least 32 seconds
    // for unreliable transports" ... "If timer D fires while the client
    // transaction is in the "Completed" state, the client transaction MUST
    // move to the terminated state."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ictD");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    let t = t0 + T1;
    l.handle_message(t, udp(), rmsg(&inv, 404));
    events(&mut l);
    assert_eq!(l.timer(&key, Timer::D), Some(t + Duration::from_secs(32)));
    assert_eq!(l.timer(&key, Timer::B), None);
    assert_eq!(l.poll_timeout(), Some(t + Duration::from_secs(32)));
    l.handle_timeout(t + Duration::from_secs(32) - Duration::from_millis(1));
    assert_eq!(l.state(&key), Some(TxState::Completed));
    l.handle_timeout(t + Duration::from_secs(32));
    assert_eq!(events(&mut l), vec![TxEvent::Terminated { key: key.clone(), kind: TxKind::ClientInvite }]);
    assert!(l.is_empty());
}

#[test]
fn ict_timer_d_zero_on_reliable() {
    // RFC 3261 §17.1.1.2: "... and a value of zero seconds for reliable
    // transports." (The ACK is still generated "even if the transport is
    // reliable".)
    let t0 = Instant::now();
    let mut l = layer();
    let inv = request_over("INVITE", "TCP", "ictD0");
    let (key, _) = start_client(&mut l, t0, inv.clone(), tcp(7));
    l.handle_message(t0 + T1, tcp(7), rmsg(&inv, 480));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(request_of(&sent[0]).method, Method::Ack);
    assert_eq!(sent[0].peer, tcp(7));
    let evs = events(&mut l);
    assert_eq!(response_statuses(&evs), vec![480]);
    assert!(terminated(&evs, &key));
    assert_eq!(l.state(&key), None);
}

// ----- non-INVITE client transaction (§17.1.2.2) -------------------------

#[test]
fn nict_timer_e_doubles_capped_at_t2_in_trying() {
    // RFC 3261 §17.1.2.2: "If timer E fires while still in this state, the
    // timer is reset, but this time with a value of MIN(2*T1, T2).  When the
    // timer fires again, it is reset to a MIN(4*T1, T2).  This process
    // continues so that retransmissions occur with an exponentially
    // increasing interval that caps at T2." ... "For the default values of
    // T1 and T2, this results in intervals of 500 ms, 1 s, 2 s, 4 s, 4 s,
    // 4 s, etc."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, original) = start_client(&mut l, t0, options("nictE"), udp());
    assert_eq!(l.state(&key), Some(TxState::Trying));
    let intervals = [T1, T1 * 2, T1 * 4, T2, T2, T2, T2];
    let mut expected = t0;
    for iv in intervals {
        expected += iv;
        assert_eq!(l.poll_timeout(), Some(expected));
        l.handle_timeout(expected);
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data, original);
    }
    assert_eq!(expected, t0 + Duration::from_millis(500 + 1000 + 2000 + 4 * 4000));
}

#[test]
fn timers_of_an_ended_transaction_never_fire_for_the_next_one() {
    // §17.1.2.2: Timer E of a new transaction first fires T1 after it
    // starts, whatever transaction ran before it. A transaction that ends
    // early leaves its deadlines behind (E at t0+T1, F at t0+64*T1); the
    // next transaction takes over its storage. Started 1 ms later, it must
    // retransmit at t1+T1, t1+3*T1, ..., never at t0+T1, and time out at
    // exactly t1+64*T1.
    let t0 = Instant::now();
    let mut l = layer();
    let (a, _) = start_client(&mut l, t0, options("reuseA"), udp());
    l.handle_send_error(&a);
    assert!(terminated(&events(&mut l), &a));
    let t1 = t0 + Duration::from_millis(1);
    let (b, original) = start_client(&mut l, t1, options("reuseB"), udp());
    assert_eq!(l.poll_timeout(), Some(t1 + T1), "A's stale deadline at t0+T1 is not reported");
    l.handle_timeout(t0 + T1);
    assert!(transmits(&mut l).is_empty(), "nothing fires at A's old deadline");
    l.handle_timeout(t1 + T1);
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].data, original);
    assert_eq!(l.timer(&b, Timer::E), Some(t1 + T1 * 3));
    assert_eq!(l.timer(&b, Timer::F), Some(t1 + T1 * 64));
    l.handle_timeout(t0 + T1 * 64);
    assert_eq!(l.state(&b), Some(TxState::Trying), "A's Timer F does not end B");
    l.handle_timeout(t1 + T1 * 64);
    let evs = events(&mut l);
    assert!(evs.contains(&TxEvent::Timeout { key: b.clone() }));
    assert!(terminated(&evs, &b));

    // Started at the very instant A was, B's Timer E shares A's deadline:
    // it fires once, at t0+T1, not twice.
    let mut l = layer();
    let (a, _) = start_client(&mut l, t0, options("reuseC"), udp());
    l.handle_send_error(&a);
    events(&mut l);
    let (b, _) = start_client(&mut l, t0, options("reuseD"), udp());
    l.handle_timeout(t0 + T1);
    assert_eq!(transmits(&mut l).len(), 1);
    assert_eq!(l.timer(&b, Timer::E), Some(t0 + T1 * 3));
}

#[test]
fn deadlines_before_the_first_one_armed_still_fire_in_time_order() {
    // The layer is sans-IO: the times it is given need not grow. A
    // transaction started (and so timed) before the first one still
    // retransmits first (§17.1.2.2: Timer E fires T1 after its start), and
    // each fires exactly at its own deadlines.
    let t0 = Instant::now() + Duration::from_secs(10);
    let mut l = layer();
    let (late, late_bytes) = start_client(&mut l, t0, options("late"), udp());
    let early_start = t0 - Duration::from_secs(3);
    let (early, early_bytes) = start_client(&mut l, early_start, options("early"), udp());
    assert_eq!(l.poll_timeout(), Some(early_start + T1));
    l.handle_timeout(early_start + T1);
    let sent = transmits(&mut l);
    assert_eq!(sent.iter().map(|t| t.data.clone()).collect::<Vec<_>>(), [early_bytes]);
    assert_eq!(l.timer(&early, Timer::E), Some(early_start + T1 * 3));
    // The early one's next retransmissions still come first.
    assert_eq!(l.poll_timeout(), Some(early_start + T1 * 3));
    l.handle_timeout(t0 + T1 - Duration::from_nanos(1));
    assert!(transmits(&mut l).iter().all(|t| t.data != late_bytes), "the late one waits for its T1");
    l.handle_timeout(t0 + T1);
    assert!(transmits(&mut l).iter().any(|t| t.data == late_bytes));
    assert_eq!(l.timer(&late, Timer::E), Some(t0 + T1 * 3));
}

#[test]
fn nict_timer_e_is_t2_in_proceeding() {
    // RFC 3261 §17.1.2.2: "If Timer E fires while in the "Proceeding" state,
    // the request MUST be passed to the transport layer for retransmission,
    // and Timer E MUST be reset with a value of T2 seconds."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nictEp");
    let (key, original) = start_client(&mut l, t0, req.clone(), udp());
    // "If a provisional response is received while in the "Trying" state,
    // the response MUST be passed to the TU, and then the client transaction
    // SHOULD move to the "Proceeding" state."
    l.handle_message(t0 + Duration::from_millis(100), udp(), rmsg(&req, 100));
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    assert_eq!(response_statuses(&events(&mut l)), vec![100]);
    // Timer E was armed for T1; from then on it is T2.
    let mut expected = t0 + T1;
    for _ in 0..4 {
        assert_eq!(l.poll_timeout(), Some(expected));
        l.handle_timeout(expected);
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data, original);
        expected += T2;
    }
}

#[test]
fn nict_timer_f_timeout_in_trying() {
    // RFC 3261 §17.1.2.2: "When entering this state, the client transaction
    // SHOULD set timer F to fire in 64*T1 seconds." ... "If Timer F fires
    // while the client transaction is still in the "Trying" state, the
    // client transaction SHOULD inform the TU about the timeout, and then it
    // SHOULD enter the "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, _) = start_client(&mut l, t0, options("nictF"), udp());
    assert_eq!(l.timer(&key, Timer::F), Some(t0 + T1 * 64));
    run_until(&mut l, t0 + T1 * 64 - Duration::from_nanos(1));
    assert!(events(&mut l).is_empty());
    l.handle_timeout(t0 + T1 * 64);
    assert_eq!(
        events(&mut l),
        vec![
            TxEvent::Timeout { key: key.clone() },
            TxEvent::Terminated { key: key.clone(), kind: TxKind::ClientNonInvite }
        ]
    );
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn nict_timer_f_timeout_in_proceeding() {
    // RFC 3261 §17.1.2.2: "If timer F fires while in the "Proceeding" state,
    // the TU MUST be informed of a timeout, and the client transaction MUST
    // transition to the terminated state."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nictFp");
    let (key, _) = start_client(&mut l, t0, req.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&req, 183));
    events(&mut l);
    l.handle_timeout(t0 + T1 * 64);
    let evs = events(&mut l);
    assert!(evs.contains(&TxEvent::Timeout { key: key.clone() }));
    assert!(terminated(&evs, &key));
}

#[test]
fn nict_final_completes_with_timer_k_t4() {
    // RFC 3261 §17.1.2.2: "If a final response (status codes 200-699) is
    // received while in the "Trying" state, the response MUST be passed to
    // the TU, and the client transaction MUST transition to the "Completed"
    // state." ... "Once the client transaction enters the "Completed" state,
    // it MUST set Timer K to fire in T4 seconds for unreliable transports"
    // ... "If Timer K fires while in this state, the client transaction MUST
    // transition to the "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nictK");
    let (key, _) = start_client(&mut l, t0, req.clone(), udp());
    let t = t0 + Duration::from_millis(300);
    l.handle_message(t, udp(), rmsg(&req, 200));
    assert_eq!(l.state(&key), Some(TxState::Completed));
    assert_eq!(response_statuses(&events(&mut l)), vec![200]);
    assert_eq!(l.timer(&key, Timer::K), Some(t + T4));
    assert_eq!(l.timer(&key, Timer::E), None);
    assert_eq!(l.timer(&key, Timer::F), None);
    assert_eq!(l.poll_timeout(), Some(t + T4));
    l.handle_timeout(t + T4);
    assert_eq!(events(&mut l), vec![TxEvent::Terminated { key: key.clone(), kind: TxKind::ClientNonInvite }]);
    assert!(transmits(&mut l).is_empty(), "no retransmission after the final response");
}

#[test]
fn nict_final_in_proceeding_completes() {
    // RFC 3261 §17.1.2.2: "If a final response (status codes 200-699) is
    // received while in the "Proceeding" state, the response MUST be passed
    // to the TU, and the client transaction MUST transition to the
    // "Completed" state."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nictPc");
    let (key, _) = start_client(&mut l, t0, req.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&req, 100));
    l.handle_message(t0 + T1 * 3, udp(), rmsg(&req, 404));
    assert_eq!(response_statuses(&events(&mut l)), vec![100, 404]);
    assert_eq!(l.state(&key), Some(TxState::Completed));
}

#[test]
fn nict_timer_k_zero_on_reliable() {
    // RFC 3261 §17.1.2.2: "... and zero seconds for reliable transports."
    // (And no Timer E: "If an unreliable transport is in use, the client
    // transaction MUST set timer E to fire in T1 seconds.")
    let t0 = Instant::now();
    let mut l = layer();
    let req = request_over("OPTIONS", "TCP", "nictK0");
    let (key, _) = start_client(&mut l, t0, req.clone(), tcp(2));
    assert_eq!(l.timer(&key, Timer::E), None);
    assert_eq!(l.timer(&key, Timer::F), Some(t0 + T1 * 64));
    l.handle_message(t0 + T1, tcp(2), rmsg(&req, 200));
    let evs = events(&mut l);
    assert_eq!(response_statuses(&evs), vec![200]);
    assert!(terminated(&evs, &key));
    assert_eq!(l.state(&key), None);
}

#[test]
fn nict_completed_absorbs_retransmitted_final() {
    // RFC 3261 §17.1.2.2: "The "Completed" state exists to buffer any
    // additional response retransmissions that may be received".
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nictAbs");
    let (key, _) = start_client(&mut l, t0, req.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&req, 200));
    events(&mut l);
    l.handle_message(t0 + T1, udp(), rmsg(&req, 200));
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.state(&key), Some(TxState::Completed));
}

// ----- INVITE server transaction (§17.2.1, RFC 6026 §8.5-8.7) -------------

#[test]
fn ist_new_invite_passed_up_and_100_sent() {
    // RFC 3261 §17.2.1: "When a server transaction is constructed for a
    // request, it enters the "Proceeding" state.  The server transaction
    // MUST generate a 100 (Trying) response unless it knows that the TU will
    // generate a provisional or final response within 200 ms" ... "The
    // request MUST be passed to the TU."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("ist1");
    l.handle_message(t0, udp(), SipMessage::Request(inv.clone()));
    let evs = events(&mut l);
    let key = match evs.as_slice() {
        [TxEvent::Request { key, request, peer }] => {
            assert_eq!(request.method, Method::Invite);
            assert_eq!(*peer, udp());
            key.clone()
        }
        other => panic!("unexpected events {other:?}"),
    };
    assert_eq!(key.role, Role::Server);
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(status_of(&sent[0]), 100);
    // "the insertion of tags in the To header field of the response (when
    // none was present in the request) is downgraded from MAY to SHOULD NOT."
    let SipMessage::Response(trying) = parsed(&sent[0]) else { unreachable!() };
    assert_eq!(trying.headers.to().unwrap().tag(), None);
}

#[test]
fn ist_retransmitted_invite_resends_last_provisional() {
    // RFC 3261 §17.2.1: "If a request retransmission is received while in
    // the "Proceeding" state, the most recent provisional response that was
    // received from the TU MUST be passed to the transport layer for
    // retransmission."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istRe");
    let key = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    l.send_response(t0, &key, resp(&inv, 180)).unwrap();
    let ringing = transmits(&mut l);
    assert_eq!(ringing.len(), 1);
    // "They ... do not cause a change in the state of the server transaction."
    assert_eq!(l.state(&key), Some(TxState::Proceeding));

    l.handle_message(t0 + T1, udp(), SipMessage::Request(inv.clone()));
    assert!(events(&mut l).is_empty(), "a retransmission is not a new request");
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, ringing[0].data);
}

#[test]
fn ist_2xx_moves_to_accepted_with_timer_l() {
    // RFC 6026 §8.7 (draft-sparks-sip-invfix): "When the INVITE server
    // transaction enters the "Accepted" state, Timer L MUST be set to fire in
    // 64*T1 for all transports." ... "While in the "Accepted" state, any
    // retransmissions of the INVITE received will match this transaction
    // state machine and will be absorbed by the machine without changing its
    // state. These retransmissions are not passed onto the TU."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istL");
    let key = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    let t = t0 + T1;
    l.send_response(t, &key, resp(&inv, 200)).unwrap();
    assert_eq!(status_of(&transmits(&mut l)[0]), 200);
    assert_eq!(l.state(&key), Some(TxState::Accepted));
    assert_eq!(l.timer(&key, Timer::L), Some(t + T1 * 64));
    assert_eq!(l.timer(&key, Timer::G), None, "the transaction does not retransmit a 2xx");

    l.handle_message(t + T1, udp(), SipMessage::Request(inv.clone()));
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
    assert_eq!(l.state(&key), Some(TxState::Accepted));
}

#[test]
fn ist_accepted_passes_tu_2xx_retransmissions_and_acks() {
    // RFC 6026 §8.7: "The server transaction MUST NOT generate 2xx
    // retransmissions on its own.  Any retransmission of the 2xx response
    // passed from the TU to the transaction while in the "Accepted" state
    // MUST be passed to the transport layer for transmission.  Any ACKs
    // received from the network while in the "Accepted" state MUST be passed
    // directly to the TU and not absorbed."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istAcc");
    let key = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    let ok = resp(&inv, 200);
    l.send_response(t0, &key, ok.clone()).unwrap();
    let first = transmits(&mut l);
    run_until(&mut l, t0 + T1 * 10);
    assert!(transmits(&mut l).is_empty(), "no 2xx retransmission by the transaction");
    l.send_response(t0 + T1, &key, ok.clone()).unwrap();
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, first[0].data);
    // A final non-2xx is refused in Accepted.
    assert!(matches!(
        l.send_response(t0 + T1, &key, resp(&inv, 500)),
        Err(TransactionError::InvalidState { state: TxState::Accepted, status: 500 })
    ));

    let ack = parse_request(&request_text("ACK", "UDP", "192.0.2.99:5060", "branch=z9hG4bKistAcc", 314159, ""));
    l.handle_message(t0 + T1 * 2, udp(), SipMessage::Request(ack.clone()));
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::Ack { request, .. }] if request.method == Method::Ack));
    l.handle_message(t0 + T1 * 3, udp(), SipMessage::Request(ack));
    assert_eq!(events(&mut l).len(), 1, "not absorbed");
}

#[test]
fn ist_timer_l_terminates_accepted() {
    // RFC 6026 §8.7: "If Timer L fires while the INVITE server transaction is
    // in the "Accepted" state, the transaction MUST transition to the
    // "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istLf");
    let key = receive_request(&mut l, t0, &inv, udp());
    l.send_response(t0, &key, resp(&inv, 200)).unwrap();
    assert_eq!(l.poll_timeout(), Some(t0 + T1 * 64));
    l.handle_timeout(t0 + T1 * 64);
    assert_eq!(events(&mut l), vec![TxEvent::Terminated { key: key.clone(), kind: TxKind::ServerInvite }]);
    assert!(l.is_empty());
}

#[test]
fn ist_non_2xx_completed_timer_g_schedule() {
    // RFC 3261 §17.2.1: "While in the "Proceeding" state, if the TU passes a
    // response with status code from 300 to 699 to the server transaction,
    // the response MUST be passed to the transport layer for transmission,
    // and the state machine MUST enter the "Completed" state.  For unreliable
    // transports, timer G is set to fire in T1 seconds" ... "If timer G
    // fires, the response is passed to the transport layer once more for
    // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds.
    // From then on, when timer G fires, the response is passed to the
    // transport again for transmission, and timer G is reset with a value
    // that doubles, unless that value exceeds T2, in which case it is reset
    // with the value of T2."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istG");
    let key = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    let final_bytes = transmits(&mut l)[0].data.clone();
    assert_eq!(l.state(&key), Some(TxState::Completed));
    assert_eq!(l.timer(&key, Timer::G), Some(t0 + T1));
    let mut expected = t0;
    for iv in [T1, T1 * 2, T1 * 4, T2, T2, T2] {
        expected += iv;
        assert_eq!(l.poll_timeout(), Some(expected));
        l.handle_timeout(expected);
        let sent = transmits(&mut l);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data, final_bytes);
        assert_eq!(sent[0].peer, udp());
    }
}

#[test]
fn ist_completed_resends_final_on_invite_retransmission() {
    // RFC 3261 §17.2.1: "Furthermore, while in the "Completed" state, if a
    // request retransmission is received, the server SHOULD pass the
    // response to the transport for retransmission."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istCre");
    let key = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    l.send_response(t0, &key, resp(&inv, 404)).unwrap();
    let final_bytes = transmits(&mut l)[0].data.clone();
    l.handle_message(t0 + Duration::from_millis(100), udp(), SipMessage::Request(inv));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].data, final_bytes);
    assert!(events(&mut l).is_empty());
}

#[test]
fn ist_timer_h_reports_no_ack() {
    // RFC 3261 §17.2.1: "When the "Completed" state is entered, timer H MUST
    // be set to fire in 64*T1 seconds for all transports." ... "If timer H
    // fires while in the "Completed" state, it implies that the ACK was never
    // received.  In this case, the server transaction MUST transition to the
    // "Terminated" state, and MUST indicate to the TU that a transaction
    // failure has occurred."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istH");
    let key = receive_request(&mut l, t0, &inv, udp());
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    assert_eq!(l.timer(&key, Timer::H), Some(t0 + T1 * 64));
    run_until(&mut l, t0 + T1 * 64 - Duration::from_nanos(1));
    assert!(events(&mut l).is_empty());
    assert_eq!(l.state(&key), Some(TxState::Completed));
    l.handle_timeout(t0 + T1 * 64);
    assert_eq!(
        events(&mut l),
        vec![TxEvent::NoAck { key: key.clone() }, TxEvent::Terminated { key: key.clone(), kind: TxKind::ServerInvite }]
    );
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn ist_ack_confirms_and_starts_timer_i() {
    // RFC 3261 §17.2.1: "If an ACK is received while the server transaction
    // is in the "Completed" state, the server transaction MUST transition to
    // the "Confirmed" state.  As Timer G is ignored in this state, any
    // retransmissions of the response will cease." ... "The purpose of the
    // "Confirmed" state is to absorb any additional ACK messages that arrive"
    // ... "When this state is entered, timer I is set to fire in T4 seconds
    // for unreliable transports".
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istI");
    let key = receive_request(&mut l, t0, &inv, udp());
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    transmits(&mut l);
    // §17.2.3: an ACK matches the INVITE transaction (same branch, sent-by,
    // "except for ACK, where the method of the request that created the
    // transaction is INVITE").
    let ack = parse_request(&request_text("ACK", "UDP", "192.0.2.99:5060", "branch=z9hG4bKistI", 314159, ""));
    let t = t0 + T1 * 2;
    l.handle_message(t, udp(), SipMessage::Request(ack.clone()));
    assert_eq!(l.state(&key), Some(TxState::Confirmed));
    assert!(events(&mut l).is_empty(), "the ACK for a non-2xx stays in the transaction");
    assert_eq!(l.timer(&key, Timer::I), Some(t + T4));
    assert_eq!(l.timer(&key, Timer::G), None);
    assert_eq!(l.timer(&key, Timer::H), None);
    assert_eq!(l.poll_timeout(), Some(t + T4));
    run_until(&mut l, t + T4 - Duration::from_nanos(1));
    assert!(transmits(&mut l).is_empty(), "retransmissions cease");

    l.handle_message(t + T1, udp(), SipMessage::Request(ack));
    assert!(events(&mut l).is_empty(), "further ACKs absorbed");
    assert!(transmits(&mut l).is_empty());
}

#[test]
fn ist_timer_i_terminates_confirmed() {
    // RFC 3261 §17.2.1: "Once timer I fires, the server MUST transition to
    // the "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("istIf");
    let key = receive_request(&mut l, t0, &inv, udp());
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    let ack = parse_request(&request_text("ACK", "UDP", "192.0.2.99:5060", "branch=z9hG4bKistIf", 314159, ""));
    l.handle_message(t0, udp(), SipMessage::Request(ack));
    l.handle_timeout(t0 + T4);
    assert_eq!(events(&mut l), vec![TxEvent::Terminated { key: key.clone(), kind: TxKind::ServerInvite }]);
}

#[test]
fn ist_reliable_no_timer_g_and_timer_i_zero() {
    // RFC 3261 §17.2.1: "For unreliable transports, timer G is set to fire in
    // T1 seconds, and is not set to fire for reliable transports." ...
    // "timer I is set to fire in T4 seconds for unreliable transports, and
    // zero seconds for reliable transports."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = request_over("INVITE", "TCP", "istTcp");
    let key = receive_request(&mut l, t0, &inv, tcp(3));
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    assert_eq!(l.timer(&key, Timer::G), None);
    assert_eq!(l.timer(&key, Timer::H), Some(t0 + T1 * 64), "H for all transports");
    let ack = request_over("ACK", "TCP", "istTcp");
    l.handle_message(t0 + T1, tcp(3), SipMessage::Request(ack));
    assert!(terminated(&events(&mut l), &key));
    assert_eq!(l.state(&key), None);
}

// ----- non-INVITE server transaction (§17.2.2) ---------------------------

#[test]
fn nist_trying_discards_retransmissions() {
    // RFC 3261 §17.2.2: "The state machine is initialized in the "Trying"
    // state and is passed a request other than INVITE or ACK when
    // initialized.  This request is passed up to the TU.  Once in the
    // "Trying" state, any further request retransmissions are discarded."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nistT");
    let key = receive_request(&mut l, t0, &req, udp());
    assert_eq!(l.state(&key), Some(TxState::Trying));
    assert!(transmits(&mut l).is_empty(), "no automatic 100 for non-INVITE");
    l.handle_message(t0 + T1, udp(), SipMessage::Request(req));
    assert!(events(&mut l).is_empty());
    assert!(transmits(&mut l).is_empty());
}

#[test]
fn nist_trying_to_proceeding_and_provisional_resent() {
    // RFC 3261 §17.2.2: "While in the "Trying" state, if the TU passes a
    // provisional response to the server transaction, the server transaction
    // MUST enter the "Proceeding" state." ... "If a retransmission of the
    // request is received while in the "Proceeding" state, the most recently
    // sent provisional response MUST be passed to the transport layer for
    // retransmission."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nistP");
    let key = receive_request(&mut l, t0, &req, udp());
    l.send_response(t0, &key, resp(&req, 100)).unwrap();
    l.send_response(t0, &key, resp(&req, 183)).unwrap();
    let sent = transmits(&mut l);
    assert_eq!(sent.iter().map(status_of).collect::<Vec<_>>(), vec![100, 183]);
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    l.handle_message(t0 + T1, udp(), SipMessage::Request(req));
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, sent[1].data);
}

#[test]
fn nist_final_completes_with_timer_j() {
    // RFC 3261 §17.2.2: "When the server transaction enters the "Completed"
    // state, it MUST set Timer J to fire in 64*T1 seconds for unreliable
    // transports" ... "While in the "Completed" state, the server transaction
    // MUST pass the final response to the transport layer for retransmission
    // whenever a retransmission of the request is received.  Any other final
    // responses passed by the TU to the server transaction MUST be discarded
    // while in the "Completed" state.  The server transaction remains in this
    // state until Timer J fires, at which point it MUST transition to the
    // "Terminated" state."
    let t0 = Instant::now();
    let mut l = layer();
    let req = options("nistJ");
    let key = receive_request(&mut l, t0, &req, udp());
    l.send_response(t0, &key, resp(&req, 200)).unwrap();
    let final_bytes = transmits(&mut l)[0].data.clone();
    assert_eq!(l.state(&key), Some(TxState::Completed));
    assert_eq!(l.timer(&key, Timer::J), Some(t0 + T1 * 64));

    l.handle_message(t0 + T1, udp(), SipMessage::Request(req.clone()));
    let again = transmits(&mut l);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, final_bytes);

    assert!(l.send_response(t0 + T1, &key, resp(&req, 500)).is_err());
    assert!(transmits(&mut l).is_empty(), "other finals discarded");

    l.handle_timeout(t0 + T1 * 64 - Duration::from_nanos(1));
    assert_eq!(l.state(&key), Some(TxState::Completed));
    l.handle_timeout(t0 + T1 * 64);
    assert!(terminated(&events(&mut l), &key));
    assert!(l.is_empty());
}

#[test]
fn nist_timer_j_zero_on_reliable() {
    // RFC 3261 §17.2.2: "... and zero seconds for reliable transports."
    let t0 = Instant::now();
    let mut l = layer();
    let req = request_over("OPTIONS", "TCP", "nistJ0");
    let key = receive_request(&mut l, t0, &req, tcp(4));
    l.send_response(t0, &key, resp(&req, 200)).unwrap();
    assert_eq!(transmits(&mut l)[0].peer, tcp(4));
    assert!(terminated(&events(&mut l), &key));
    assert_eq!(l.state(&key), None);
}

// ----- matching (§17.1.3, §17.2.3) ----------------------------------------

#[test]
fn response_with_same_branch_other_method_does_not_match() {
    // RFC 3261 §17.1.3: "2.  If the method parameter in the CSeq header field
    // matches the method of the request that created the transaction.  The
    // method is needed since a CANCEL request constitutes a different
    // transaction, but shares the same value of the branch parameter."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("match1");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    // A 200 to a CANCEL with the INVITE's branch.
    let cancel = parse_request(&request_text("CANCEL", "UDP", "192.0.2.99:5060", "branch=z9hG4bKmatch1", 314159, ""));
    l.handle_message(t0, udp(), rmsg(&cancel, 200));
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::StrayResponse { response, .. }] if response.status == 200));
    assert_eq!(l.state(&key), Some(TxState::Calling), "the INVITE is untouched");
}

#[test]
fn response_with_other_branch_does_not_match() {
    // RFC 3261 §17.1.3: "1.  If the response has the same value of the branch
    // parameter in the top Via header field as the branch parameter in the
    // top Via header field of the request that created the transaction."
    let t0 = Instant::now();
    let mut l = layer();
    let (key, _) = start_client(&mut l, t0, options("match2"), udp());
    l.handle_message(t0, udp(), rmsg(&options("other"), 200));
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::StrayResponse { .. }]));
    assert_eq!(l.state(&key), Some(TxState::Trying));
}

#[test]
fn request_with_other_sent_by_is_a_new_transaction() {
    // RFC 3261 §17.2.3: "2. the sent-by value in the top Via of the request
    // is equal to the one in the request that created the transaction" ...
    // "The sent-by value is used as part of the matching process because
    // there could be accidental or malicious duplication of branch
    // parameters from different clients."
    let t0 = Instant::now();
    let mut l = layer();
    let a = options("dup");
    let b = parse_request(&request_text("OPTIONS", "UDP", "198.51.100.5:5060", "branch=z9hG4bKdup", 63104, ""));
    let ka = receive_request(&mut l, t0, &a, udp());
    let kb = receive_request(&mut l, t0, &b, Peer::udp(addr("198.51.100.5:5060")));
    assert_ne!(ka, kb);
    assert_eq!(l.len(), 2);
}

#[test]
fn request_with_other_method_is_a_new_transaction() {
    // RFC 3261 §17.2.3: "3. the method of the request matches the one that
    // created the transaction, except for ACK, where the method of the
    // request that created the transaction is INVITE."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("meth");
    let ki = receive_request(&mut l, t0, &inv, udp());
    let opt = parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=z9hG4bKmeth", 2, ""));
    let ko = receive_request(&mut l, t0, &opt, udp());
    assert_ne!(ki, ko);
    assert_eq!((ki.method, ko.method), (Method::Invite, Method::Options));
}

#[test]
fn rfc2543_request_without_cookie_matches_retransmission() {
    // RFC 3261 §17.2.3: "If the branch parameter in the top Via header field
    // is not present, or does not contain the magic cookie, the following
    // procedures are used.  These exist to handle backwards compatibility
    // with RFC 2543 compliant implementations." ... "The INVITE request
    // matches a transaction if the Request-URI, To tag, From tag, Call-ID,
    // CSeq, and top Via header field match those of the INVITE request which
    // created the transaction."
    let t0 = Instant::now();
    let mut l = layer();
    let old = parse_request(&request_text("INVITE", "UDP", "192.0.2.99:5060", "branch=oldstyle1", 7, ""));
    let key = receive_request(&mut l, t0, &old, udp());
    let trying = transmits(&mut l);
    l.handle_message(t0 + T1, udp(), SipMessage::Request(old.clone()));
    assert!(events(&mut l).is_empty(), "matched as a retransmission");
    assert_eq!(transmits(&mut l)[0].data, trying[0].data, "the 100 is re-sent");
    // No branch at all works the same way.
    let none = parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", "x=y", 8, ""));
    let k2 = receive_request(&mut l, t0, &none, udp());
    l.handle_message(t0 + T1, udp(), SipMessage::Request(none));
    assert!(events(&mut l).is_empty());
    assert_ne!(key, k2);
    // A different CSeq is a different transaction.
    let next = parse_request(&request_text("INVITE", "UDP", "192.0.2.99:5060", "branch=oldstyle1", 9, ""));
    l.handle_message(t0 + T1, udp(), SipMessage::Request(next));
    assert!(matches!(events(&mut l).as_slice(), [TxEvent::Request { .. }]));
}

#[test]
fn rfc2543_ack_matches_invite() {
    // RFC 3261 §17.2.3: "The ACK request matches a transaction if the
    // Request-URI, From tag, Call-ID, CSeq number (not the method), and top
    // Via header field match those of the INVITE request which created the
    // transaction".
    let t0 = Instant::now();
    let mut l = layer();
    let old = parse_request(&request_text("INVITE", "UDP", "192.0.2.99:5060", "branch=oldstyle2", 7, ""));
    let key = receive_request(&mut l, t0, &old, udp());
    l.send_response(t0, &key, resp(&old, 404)).unwrap();
    let ack = parse_request(&request_text("ACK", "UDP", "192.0.2.99:5060", "branch=oldstyle2", 7, ""));
    l.handle_message(t0 + T1, udp(), SipMessage::Request(ack));
    assert_eq!(l.state(&key), Some(TxState::Confirmed));
}

// ----- CANCEL (§9.1, §9.2) -------------------------------------------------

#[test]
fn cancel_before_provisional_is_deferred_until_1xx() {
    // RFC 3261 §9.1: "If no provisional response has been received, the
    // CANCEL request MUST NOT be sent; rather, the client MUST wait for the
    // arrival of a provisional response before sending the request." ...
    // "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header
    // fields in the CANCEL request MUST be identical to those in the request
    // being cancelled, including tags.  A CANCEL constructed by a client MUST
    // have only a single Via header field value matching the top Via value in
    // the request being cancelled."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("cnl1");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    assert_eq!(l.cancel(t0, &key), Ok(None));
    assert!(transmits(&mut l).is_empty(), "nothing sent before a 1xx");

    let t = t0 + Duration::from_millis(100);
    l.handle_message(t, udp(), rmsg(&inv, 180));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    // "The destination address, port, and transport for the CANCEL MUST be
    // identical to those used to send the original request."
    assert_eq!(sent[0].peer, udp());
    let cancel = request_of(&sent[0]);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, inv.uri);
    assert_eq!(cancel.headers.vias().count(), 1);
    assert_eq!(cancel.headers.via().unwrap().branch(), Some("z9hG4bKcnl1"));
    let cseq = cancel.headers.cseq().unwrap();
    assert_eq!((cseq.seq, &cseq.method), (314159, &Method::Cancel));
    assert_eq!(cancel.headers.to(), inv.headers.to());
    assert_eq!(cancel.headers.from(), inv.headers.from());
    assert_eq!(cancel.headers.call_id(), inv.headers.call_id());
    // "If there is no final response for the original request in 64*T1
    // seconds ..., the client SHOULD then consider the original transaction
    // cancelled and SHOULD destroy the client transaction"
    assert_eq!(l.timer(&key, Timer::B), Some(t + T1 * 64));
    // "it creates a client transaction for the CANCEL"
    let ckey = TxKey { method: Method::Cancel, ..key.clone() };
    assert_eq!(l.state(&ckey), Some(TxState::Trying));
    assert_eq!(l.timer(&ckey, Timer::E), Some(t + T1));
    // The 200 to the CANCEL goes to the CANCEL transaction (§17.1.3).
    l.handle_message(t, udp(), rmsg(&cancel, 200));
    events(&mut l);
    assert_eq!(l.state(&ckey), Some(TxState::Completed));
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
}

#[test]
fn cancel_in_proceeding_is_sent_at_once() {
    // RFC 3261 §9.1: "When the client decides to send the CANCEL, it creates
    // a client transaction for the CANCEL and passes it the CANCEL request
    // along with the destination address, port, and transport."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("cnl2");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 183));
    let ckey = l.cancel(t0 + T1, &key).unwrap().expect("sent now");
    assert_eq!(ckey.method, Method::Cancel);
    assert_eq!(ckey.branch, key.branch);
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(request_of(&sent[0]).method, Method::Cancel);
}

#[test]
fn cancelled_invite_is_destroyed_after_64_t1_without_final() {
    // RFC 3261 §9.1: "If there is no final response for the original request
    // in 64*T1 seconds (T1 is defined in Section 17.1.1.1), the client SHOULD
    // then consider the original transaction cancelled and SHOULD destroy
    // the client transaction handling the original request."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("cnl64");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 180));
    let t = t0 + Duration::from_secs(100);
    l.handle_timeout(t);
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    l.cancel(t, &key).unwrap();
    events(&mut l);
    l.handle_timeout(t + T1 * 64 - Duration::from_nanos(1));
    assert_eq!(l.state(&key), Some(TxState::Proceeding));
    l.handle_timeout(t + T1 * 64);
    assert_eq!(l.state(&key), None);
    assert!(terminated(&events(&mut l), &key));
}

#[test]
fn cancel_after_final_sends_nothing() {
    // RFC 3261 §9.1: "If the original request has generated a final response,
    // the CANCEL SHOULD NOT be sent, as it is an effective no-op, since CANCEL
    // has no effect on requests that have already generated a final
    // response."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("cnl3");
    let (key, _) = start_client(&mut l, t0, inv.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv, 200));
    assert_eq!(l.cancel(t0, &key), Ok(None));
    assert!(transmits(&mut l).is_empty());

    let inv2 = invite("cnl3b");
    let (key2, _) = start_client(&mut l, t0, inv2.clone(), udp());
    l.handle_message(t0, udp(), rmsg(&inv2, 486));
    transmits(&mut l); // the ACK
    assert_eq!(l.cancel(t0, &key2), Ok(None));
    assert!(transmits(&mut l).is_empty());
}

#[test]
fn server_cancel_matching_proceeding_invite() {
    // RFC 3261 §9.2: "If the UAS has not issued a final response for the
    // original request, its behavior depends on the method of the original
    // request.  If the original request was an INVITE, the UAS SHOULD
    // immediately respond to the INVITE with a 487 (Request Terminated)."
    // ... "as long as the CANCEL matched an existing transaction, the UAS
    // answers the CANCEL request itself with a 200 (OK) response."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("scnl");
    let ikey = receive_request(&mut l, t0, &inv, udp());
    transmits(&mut l);
    let cancel = parse_request(&request_text("CANCEL", "UDP", "192.0.2.99:5060", "branch=z9hG4bKscnl", 314159, ""));
    l.handle_message(t0 + T1, udp(), SipMessage::Request(cancel));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    let SipMessage::Response(ok) = parsed(&sent[0]) else { panic!("a response") };
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.cseq().unwrap().method, Method::Cancel);
    let evs = events(&mut l);
    assert!(matches!(evs.as_slice(), [TxEvent::Cancelled { invite, request }]
        if *invite == ikey && request.method == Method::Cancel));
    // The TU answers the INVITE with 487 itself.
    assert_eq!(l.state(&ikey), Some(TxState::Proceeding));
    l.send_response(t0 + T1, &ikey, resp(&inv, 487)).unwrap();
    assert_eq!(l.state(&ikey), Some(TxState::Completed));
}

#[test]
fn server_cancel_after_final_has_no_effect() {
    // RFC 3261 §9.2: "If it has, the CANCEL request has no effect on the
    // processing of the original request, no effect on any session state,
    // and no effect on the responses generated for the original request."
    let t0 = Instant::now();
    let mut l = layer();
    let inv = invite("scnlF");
    let ikey = receive_request(&mut l, t0, &inv, udp());
    l.send_response(t0, &ikey, resp(&inv, 200)).unwrap();
    transmits(&mut l);
    let cancel = parse_request(&request_text("CANCEL", "UDP", "192.0.2.99:5060", "branch=z9hG4bKscnlF", 314159, ""));
    l.handle_message(t0 + T1, udp(), SipMessage::Request(cancel));
    assert_eq!(status_of(&transmits(&mut l)[0]), 200);
    assert!(events(&mut l).iter().all(|e| !matches!(e, TxEvent::Cancelled { .. })));
    assert_eq!(l.state(&ikey), Some(TxState::Accepted));
}

#[test]
fn server_unknown_cancel_gets_481() {
    // RFC 3261 §9.2: "If the UAS did not find a matching transaction for the
    // CANCEL according to the procedure above, it SHOULD respond to the
    // CANCEL with a 481 (Call Leg/Transaction Does Not Exist)."
    let t0 = Instant::now();
    let mut l = layer();
    let cancel = parse_request(&request_text("CANCEL", "UDP", "192.0.2.99:5060", "branch=z9hG4bKnothere", 1, ""));
    l.handle_message(t0, udp(), SipMessage::Request(cancel));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(status_of(&sent[0]), 481);
    assert!(events(&mut l).iter().all(|e| !matches!(e, TxEvent::Cancelled { .. } | TxEvent::Request { .. })));
}

// ----- answers made by the layer itself -----------------------------------

fn bytes_of(text: String) -> Bytes {
    Bytes::from(text.into_bytes())
}

#[test]
fn malformed_header_gets_400_naming_it() {
    // RFC 3261 §21.4.1: "The request could not be understood due to
    // malformed syntax.  The Reason-Phrase SHOULD identify the syntax problem
    // in more detail, for example, "Missing Call-ID header field"."
    let t0 = Instant::now();
    let mut l = layer();
    let text = request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=z9hG4bKbad1", 1, "")
        .replace("Max-Forwards: 70", "Max-Forwards: seventy");
    let err = l.handle_bytes(t0, udp(), bytes_of(text)).unwrap_err();
    assert_eq!(err.header, Some("Max-Forwards"));
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    let SipMessage::Response(r) = parsed(&sent[0]) else { panic!("a response") };
    assert_eq!(r.status, 400);
    assert!(r.reason.contains("Max-Forwards"), "reason {:?} names the header", r.reason);
    assert!(events(&mut l).is_empty(), "not passed to the TU");
}

#[test]
fn other_sip_version_gets_505() {
    // RFC 3261 §21.5.6: "The server does not support, or refuses to support,
    // the SIP protocol version that was used in the request."
    let t0 = Instant::now();
    let mut l = layer();
    let text = request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=z9hG4bKv3", 1, "").replacen(
        "SIP/2.0\r\n",
        "SIP/3.0\r\n",
        1,
    );
    assert!(l.handle_bytes(t0, udp(), bytes_of(text)).is_err());
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(status_of(&sent[0]), 505);
    assert!(events(&mut l).is_empty());
}

#[test]
fn unknown_require_gets_420_with_unsupported() {
    // RFC 3261 §8.2.2.3: "If a UAS does not understand an option-tag listed
    // in a Require header field, it MUST respond by generating a response
    // with status code 420 (Bad Extension).  The UAS MUST add an Unsupported
    // header field, and list in it those options it does not understand
    // amongst those in the Require header field of the request."
    let t0 = Instant::now();
    let mut l = layer();
    let text =
        request_text("INVITE", "UDP", "192.0.2.99:5060", "branch=z9hG4bKreq", 1, "Require: 100rel, frobnicate\r\n");
    l.handle_bytes(t0, udp(), bytes_of(text)).unwrap();
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    let SipMessage::Response(r) = parsed(&sent[0]) else { panic!("a response") };
    assert_eq!(r.status, 420);
    let unsupported: Vec<String> = r
        .headers
        .iter()
        .filter_map(|h| match h {
            sipact_proto::message::Header::Unsupported(tags) => Some(tags.iter().map(|t| t.to_string())),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(unsupported, vec!["frobnicate".to_string()]);
    assert!(events(&mut l).iter().all(|e| !matches!(e, TxEvent::Request { .. })));
}

#[test]
fn unknown_uri_scheme_gets_416() {
    // RFC 3261 §8.2.2.1: "If the Request-URI uses a scheme not supported by
    // the UAS, it SHOULD reject the request with a 416 (Unsupported URI
    // Scheme) response."
    let t0 = Instant::now();
    let mut l = layer();
    let text = request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=z9hG4bKuri", 1, "").replacen(
        "OPTIONS sip:bob@example.com",
        "OPTIONS foo:bob@example.com",
        1,
    );
    l.handle_bytes(t0, udp(), bytes_of(text)).unwrap();
    let sent = transmits(&mut l);
    assert_eq!(sent.len(), 1);
    assert_eq!(status_of(&sent[0]), 416);
    assert!(events(&mut l).iter().all(|e| !matches!(e, TxEvent::Request { .. })));
}

#[test]
fn malformed_ack_gets_no_response() {
    // RFC 3261 §17.1: the client transaction filters out "disallowed
    // responses (such as a response to ACK)"; an ACK is never answered.
    let t0 = Instant::now();
    let mut l = layer();
    let text = request_text("ACK", "UDP", "192.0.2.99:5060", "branch=z9hG4bKbadack", 1, "")
        .replace("Max-Forwards: 70", "Max-Forwards: seventy");
    assert!(l.handle_bytes(t0, udp(), bytes_of(text)).is_err());
    assert!(transmits(&mut l).is_empty());
    assert!(events(&mut l).is_empty());
}

// ----- transport (§8.1.3.1, §17.1.4, §18.2, RFC 3581) ---------------------

#[test]
fn flow_closed_ends_client_transactions_on_that_flow() {
    // RFC 3261 §17.1.4: "The client transaction SHOULD inform the TU that a
    // transport failure has occurred, and the client transaction SHOULD
    // transition directly to the "Terminated" state." §8.1.3.1: "If a fatal
    // transport error is reported by the transport layer (generally, due to
    // fatal ICMP errors in UDP or connection failures in TCP), the condition
    // MUST be treated as a 503 (Service Unavailable) status code."
    let t0 = Instant::now();
    let mut l = layer();
    let (k1, _) = start_client(&mut l, t0, request_over("INVITE", "TCP", "flowA"), tcp(10));
    let (k2, _) = start_client(&mut l, t0, request_over("OPTIONS", "TCP", "flowB"), tcp(10));
    let (k3, _) = start_client(&mut l, t0, request_over("OPTIONS", "TCP", "flowC"), tcp(11));
    let (k4, _) = start_client(&mut l, t0, options("flowUdp"), udp());
    l.handle_flow_closed(FlowId(10));
    let evs = events(&mut l);
    for k in [&k1, &k2] {
        assert!(evs.contains(&TxEvent::TransportError { key: k.clone() }));
        assert!(terminated(&evs, k));
        assert_eq!(l.state(k), None);
    }
    assert_eq!(evs.len(), 4);
    assert_eq!(l.state(&k3), Some(TxState::Trying), "another flow is untouched");
    assert_eq!(l.state(&k4), Some(TxState::Trying), "UDP is untouched");
}

#[test]
fn a_response_on_a_flow_pins_the_client_transaction_to_it() {
    // A request sent without a flow (the transport picked or opened a
    // connection) is pinned to the connection its first response came on:
    // when that connection closes, the transaction ends (§8.1.3.1).
    let t0 = Instant::now();
    let mut l = layer();
    let req = request_over("INVITE", "TCP", "pinA");
    let unpinned = Peer::new(TransportKind::Tcp, tcp(0).addr);
    let (k, _) = start_client(&mut l, t0, req.clone(), unpinned);
    let (other, _) = start_client(&mut l, t0, request_over("OPTIONS", "TCP", "pinB"), unpinned);
    l.handle_message(t0, tcp(7), rmsg(&req, 180));
    events(&mut l);
    l.handle_flow_closed(FlowId(7));
    let evs = events(&mut l);
    assert!(evs.contains(&TxEvent::TransportError { key: k.clone() }));
    assert_eq!(l.state(&k), None);
    assert_eq!(l.state(&other), Some(TxState::Trying), "no response on the flow: not pinned");
}

#[test]
fn an_assigned_flow_pins_pending_client_transactions_to_that_destination() {
    // The transport opened connection 8 for messages to the destination:
    // if it never comes up, the transactions waiting on it end at once.
    let t0 = Instant::now();
    let mut l = layer();
    let dest = tcp(0).addr;
    let (k, _) = start_client(&mut l, t0, request_over("INVITE", "TCP", "asgA"), Peer::new(TransportKind::Tcp, dest));
    let (udp_k, _) = start_client(&mut l, t0, options("asgUdp"), udp());
    let elsewhere = Peer::new(TransportKind::Tcp, addr("192.0.2.200:5060"));
    let (other, _) = start_client(&mut l, t0, request_over("OPTIONS", "TCP", "asgB"), elsewhere);
    l.handle_flow_assigned(TransportKind::Tcp, dest, FlowId(8));
    l.handle_flow_closed(FlowId(8));
    let evs = events(&mut l);
    assert!(evs.contains(&TxEvent::TransportError { key: k.clone() }));
    assert_eq!(l.state(&udp_k), Some(TxState::Trying));
    assert_eq!(l.state(&other), Some(TxState::Trying));
}

#[test]
fn received_and_rport_are_stamped() {
    // RFC 3581 §4: "If this Via header field value contains an "rport"
    // parameter with no value, it MUST set the value of the parameter to the
    // source port of the request." ... "In fact, the server MUST insert a
    // "received" parameter containing the source IP address that the request
    // came from, even if it is identical to the value of the "sent-by"
    // component." RFC 3261 §18.2.1: "If the host portion of the "sent-by"
    // parameter contains a domain name, or if it contains an IP address that
    // differs from the packet source address, the server MUST add a
    // "received" parameter to that Via header field value."
    let t0 = Instant::now();
    let mut l = layer();
    let src = Peer::udp(addr("192.0.2.99:40000"));

    let with_rport = parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", "rport;branch=z9hG4bKr1", 1, ""));
    l.handle_message(t0, src, SipMessage::Request(with_rport));
    let via = match events(&mut l).remove(0) {
        TxEvent::Request { request, .. } => request.headers.via().unwrap().clone(),
        e => panic!("{e:?}"),
    };
    assert_eq!(via.received(), Some("192.0.2.99"), "received even when equal to sent-by");
    assert_eq!(via.rport(), Some(Some(40000)));

    let same_host = parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=z9hG4bKr2", 1, ""));
    l.handle_message(t0, src, SipMessage::Request(same_host));
    let via = match events(&mut l).remove(0) {
        TxEvent::Request { request, .. } => request.headers.via().unwrap().clone(),
        e => panic!("{e:?}"),
    };
    assert_eq!(via.received(), None);
    assert_eq!(via.rport(), None);

    let domain = parse_request(&request_text("OPTIONS", "UDP", "pc33.example.com", "branch=z9hG4bKr3", 1, ""));
    l.handle_message(t0, src, SipMessage::Request(domain));
    let via = match events(&mut l).remove(0) {
        TxEvent::Request { request, .. } => request.headers.via().unwrap().clone(),
        e => panic!("{e:?}"),
    };
    assert_eq!(via.received(), Some("192.0.2.99"));
}

#[test]
fn response_goes_to_source_port_with_rport() {
    // RFC 3581 §4: "... the response MUST be sent to the IP address listed in
    // the "received" parameter, and the port in the "rport" parameter."
    let t0 = Instant::now();
    let mut l = layer();
    let src = Peer::udp(addr("203.0.113.7:40000"));
    let inv = parse_request(&request_text("INVITE", "UDP", "10.0.0.1:5070", "rport;branch=z9hG4bKnat", 1, ""));
    let key = receive_request(&mut l, t0, &inv, src);
    assert_eq!(transmits(&mut l)[0].peer.addr, addr("203.0.113.7:40000"), "the 100");
    l.send_response(t0, &key, resp(&inv, 486)).unwrap();
    assert_eq!(transmits(&mut l)[0].peer.addr, addr("203.0.113.7:40000"));
}

#[test]
fn response_goes_to_via_port_without_rport() {
    // RFC 3261 §18.2.2: "Otherwise (for unreliable unicast transports), if
    // the top Via has a "received" parameter, the response MUST be sent to
    // the address in the "received" parameter, using the port indicated in
    // the "sent-by" value, or using port 5060 if none is specified
    // explicitly."
    let t0 = Instant::now();
    let mut l = layer();
    let src = Peer::udp(addr("203.0.113.7:40000"));
    let inv = parse_request(&request_text("INVITE", "UDP", "10.0.0.1:5070", "branch=z9hG4bKnonat", 1, ""));
    receive_request(&mut l, t0, &inv, src);
    assert_eq!(transmits(&mut l)[0].peer.addr, addr("203.0.113.7:5070"));

    let no_port = parse_request(&request_text("INVITE", "UDP", "10.0.0.1", "branch=z9hG4bKnoport", 1, ""));
    receive_request(&mut l, t0, &no_port, src);
    assert_eq!(transmits(&mut l)[0].peer.addr, addr("203.0.113.7:5060"));
}

#[test]
fn response_over_reliable_transport_uses_the_connection() {
    // RFC 3261 §18.2.2: "If the "sent-protocol" is a reliable transport
    // protocol such as TCP or SCTP, or TLS over those, the response MUST be
    // sent using the existing connection to the source of the original
    // request that created the transaction, if that connection is still
    // open."
    let t0 = Instant::now();
    let mut l = layer();
    let src = Peer { transport: TransportKind::Tcp, addr: addr("203.0.113.7:40001"), flow: Some(FlowId(42)) };
    let inv = parse_request(&request_text("INVITE", "TCP", "10.0.0.1:5070", "branch=z9hG4bKtcp", 1, ""));
    receive_request(&mut l, t0, &inv, src);
    assert_eq!(transmits(&mut l)[0].peer, src);
}

#[test]
fn send_request_refuses_ack_and_missing_branch() {
    // RFC 3261 §17.1.1.3: "A UAC core that generates an ACK for 2xx MUST
    // instead follow the rules described in Section 13." (The ACK is not a
    // client transaction.) §8.1.1.7: "The branch ID inserted by an element
    // compliant with this specification MUST always begin with the
    // characters "z9hG4bK"."
    let t0 = Instant::now();
    let mut l = layer();
    let ack = request_over("ACK", "UDP", "x");
    assert_eq!(l.send_request(t0, ack, udp()), Err(TransactionError::AckNotAllowed));
    let old = parse_request(&request_text("OPTIONS", "UDP", "192.0.2.99:5060", "branch=123", 1, ""));
    assert_eq!(l.send_request(t0, old, udp()), Err(TransactionError::MissingBranch));
    assert!(transmits(&mut l).is_empty());
}
