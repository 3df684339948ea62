//! Calls over the stream transports (TCP, WebSocket, TLS) between two user
//! agents on 127.0.0.1, a connection that dies mid-call, a listener that
//! fails and restarts, keep-alives and framing errors on a raw connection.

use std::time::Duration;

use sipact_actors::proto::transport::TransportKind;
use sipact_actors::{Cause, InviteOptions, Session, SessionEvent, SessionEvents, UaConfig, UserAgent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn cfg(user: &str, transport: &str) -> UaConfig {
    UaConfig {
        user: user.into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        transport: transport.into(),
        listen: vec!["udp".into(), transport.into()],
        ..UaConfig::default()
    }
}

/// Waits for the first event matching `pred` (false on timeout or end).
async fn wait_for(events: &mut SessionEvents, pred: impl Fn(&SessionEvent) -> bool) -> Option<SessionEvent> {
    loop {
        match timeout(WAIT, events.next()).await {
            Ok(Some(e)) if pred(&e) => return Some(e),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

fn is_accepted(e: &SessionEvent) -> bool {
    matches!(e, SessionEvent::Accepted { .. })
}

fn terminated(e: &SessionEvent) -> Option<Cause> {
    match e {
        SessionEvent::Terminated { cause } => Some(*cause),
        _ => None,
    }
}

/// Alice calls Bob; both see the call accepted.
async fn establish(alice: &UserAgent, bob: &UserAgent) -> (Session, SessionEvents, Session, SessionEvents) {
    let mut incoming = bob.incoming();
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut ae = a.events();
    let b = timeout(WAIT, incoming.next()).await.unwrap().unwrap();
    let mut be = b.events();
    b.accept().await.unwrap();
    assert!(wait_for(&mut ae, is_accepted).await.is_some(), "caller saw no Accepted");
    assert!(wait_for(&mut be, is_accepted).await.is_some(), "callee saw no Accepted");
    (a, ae, b, be)
}

/// Hold, unhold, then BYE from `a`; both sides end with `Cause::Bye`.
async fn hold_and_hang_up(a: &Session, ae: &mut SessionEvents, b: &Session, be: &mut SessionEvents) {
    a.hold().await.unwrap();
    assert!(wait_for(ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true })).await.is_some(), "hold");
    a.unhold().await.unwrap();
    assert!(wait_for(ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await.is_some(), "unhold");
    a.bye().await.unwrap();
    let ea = wait_for(ae, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    let eb = wait_for(be, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!(ea, Some(Cause::Bye));
    assert_eq!(eb, Some(Cause::Bye));
    assert!(b.is_terminated());
}

/// Every message Bob received came over `t`.
async fn only_over(wire: &mut tokio::sync::mpsc::UnboundedReceiver<sipact_actors::core::WireRecord>, t: TransportKind) {
    let mut n = 0;
    while let Ok(rec) = wire.try_recv() {
        assert_eq!(rec.peer.transport, t, "a message went over {}", rec.peer.transport);
        if t != TransportKind::Udp {
            assert!(rec.peer.flow.is_some() || rec.outgoing, "a received message without its flow");
        }
        n += 1;
    }
    assert!(n > 0, "no message seen");
}

#[actix_rt::test]
async fn call_over_tcp() {
    let alice = UserAgent::start(cfg("alice", "tcp")).unwrap();
    let bob = UserAgent::start(cfg("bob", "tcp")).unwrap();
    assert!(bob.uri().ends_with(";transport=tcp"), "{}", bob.uri());
    assert_eq!(bob.addr(TransportKind::Tcp), Some(bob.local_addr()));
    let mut wire = bob.wire();
    let (a, mut ae, b, mut be) = establish(&alice, &bob).await;
    assert!(!alice.connections().await.is_empty(), "alice has no TCP connection");
    hold_and_hang_up(&a, &mut ae, &b, &mut be).await;
    only_over(&mut wire, TransportKind::Tcp).await;
}

#[actix_rt::test]
async fn callee_hangs_up_over_tcp() {
    // The callee's in-dialog requests go to the caller's Contact: a new
    // connection to the caller's listener.
    let alice = UserAgent::start(cfg("alice", "tcp")).unwrap();
    let bob = UserAgent::start(cfg("bob", "tcp")).unwrap();
    let (_a, mut ae, b, mut be) = establish(&alice, &bob).await;
    b.bye().await.unwrap();
    let ea = wait_for(&mut ae, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    let eb = wait_for(&mut be, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!((ea, eb), (Some(Cause::Bye), Some(Cause::Bye)));
}

#[actix_rt::test]
async fn call_over_ws() {
    let alice = UserAgent::start(cfg("alice", "ws")).unwrap();
    let bob = UserAgent::start(cfg("bob", "ws")).unwrap();
    assert!(bob.uri().ends_with(";transport=ws"), "{}", bob.uri());
    let mut wire = bob.wire();
    let (a, mut ae, b, mut be) = establish(&alice, &bob).await;
    let conns = alice.connections().await;
    assert!(conns.iter().any(|(_, t, r)| *t == TransportKind::Ws && Some(*r) == bob.addr(TransportKind::Ws)));
    hold_and_hang_up(&a, &mut ae, &b, &mut be).await;
    only_over(&mut wire, TransportKind::Ws).await;
}

#[actix_rt::test]
async fn ws_listener_requires_the_sip_subprotocol() {
    let bob = UserAgent::start(cfg("bob", "ws")).unwrap();
    let addr = bob.addr(TransportKind::Ws).unwrap();
    // No subprotocol: refused.
    let r = timeout(WAIT, tokio_tungstenite::connect_async(format!("ws://{addr}/"))).await.unwrap();
    assert!(r.is_err(), "a WebSocket without the sip subprotocol was accepted");
    // With it: accepted and echoed.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (_ws, resp) = timeout(WAIT, tokio_tungstenite::connect_async(req)).await.unwrap().unwrap();
    assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), "sip");
}

/// A self-signed certificate for 127.0.0.1 in a fresh directory.
fn self_signed() -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("sipact-tls-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn tls_cfg(user: &str, transport: &str, cert: &std::path::Path, key: &std::path::Path) -> UaConfig {
    UaConfig {
        tls_cert: Some(cert.to_path_buf()),
        tls_key: Some(key.to_path_buf()),
        // Self-signed: the certificate is its own CA.
        tls_ca: Some(cert.to_path_buf()),
        ..cfg(user, transport)
    }
}

#[actix_rt::test]
async fn call_over_tls() {
    let (cert, key) = self_signed();
    let alice = UserAgent::start(tls_cfg("alice", "tls", &cert, &key)).unwrap();
    let bob = UserAgent::start(tls_cfg("bob", "tls", &cert, &key)).unwrap();
    assert!(bob.uri().ends_with(";transport=tls"), "{}", bob.uri());
    let mut wire = bob.wire();
    let (a, mut ae, b, mut be) = establish(&alice, &bob).await;
    hold_and_hang_up(&a, &mut ae, &b, &mut be).await;
    only_over(&mut wire, TransportKind::Tls).await;
}

#[actix_rt::test]
async fn call_over_wss() {
    let (cert, key) = self_signed();
    let alice = UserAgent::start(tls_cfg("alice", "wss", &cert, &key)).unwrap();
    let bob = UserAgent::start(tls_cfg("bob", "wss", &cert, &key)).unwrap();
    let mut wire = bob.wire();
    let (a, mut ae, b, mut be) = establish(&alice, &bob).await;
    hold_and_hang_up(&a, &mut ae, &b, &mut be).await;
    only_over(&mut wire, TransportKind::Wss).await;
}

#[actix_rt::test]
async fn tls_to_an_untrusted_server_fails_fast() {
    let (cert, key) = self_signed();
    let (other_cert, _) = self_signed();
    // Alice trusts another certificate: the handshake fails, the INVITE
    // ends with a transport error at once (not after Timer B).
    let alice =
        UserAgent::start(UaConfig { tls_ca: Some(other_cert), ..tls_cfg("alice", "tls", &cert, &key) }).unwrap();
    let bob = UserAgent::start(tls_cfg("bob", "tls", &cert, &key)).unwrap();
    let a = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut ae = a.events();
    let e = wait_for(&mut ae, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!(e, Some(Cause::ConnectionError));
}

#[actix_rt::test]
async fn tcp_connect_refused_ends_the_invite() {
    let alice = UserAgent::start(cfg("alice", "tcp")).unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let a = alice.invite(&format!("sip:nobody@{closed};transport=tcp"), InviteOptions::default()).await.unwrap();
    let mut ae = a.events();
    let e = wait_for(&mut ae, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!(e, Some(Cause::ConnectionError));
}

#[actix_rt::test]
async fn tcp_connection_dies_mid_call() {
    let alice = UserAgent::start(cfg("alice", "tcp")).unwrap();
    let bob = UserAgent::start(cfg("bob", "tcp")).unwrap();
    // Call 1 established, call 2 ringing: both over the same connection.
    let (a1, mut a1e, b1, mut b1e) = establish(&alice, &bob).await;
    let mut incoming = bob.incoming();
    let a2 = alice.invite(&bob.uri(), InviteOptions::default()).await.unwrap();
    let mut a2e = a2.events();
    let b2 = timeout(WAIT, incoming.next()).await.unwrap().unwrap();
    b2.progress(Default::default()).await.unwrap();
    assert!(wait_for(&mut a2e, |e| matches!(e, SessionEvent::Progress { .. })).await.is_some());
    let before = alice.connections().await;
    assert_eq!(before.len(), 1, "one connection carries both calls: {before:?}");

    // The connection dies.
    assert_eq!(alice.close_connections(Some(TransportKind::Tcp)).await, 1);

    // Only the INVITE transaction pinned to it ends: call 2 fails...
    let e = wait_for(&mut a2e, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!(e, Some(Cause::ConnectionError));
    // ...call 1 lives on: hold and BYE over a new connection.
    assert!(!a1.is_terminated());
    hold_and_hang_up(&a1, &mut a1e, &b1, &mut b1e).await;
    let after = alice.connections().await;
    assert!(after.iter().all(|c| !before.contains(c)), "the dead connection is still listed");
}

#[cfg(feature = "fault-injection")]
#[actix_rt::test]
async fn tcp_listener_restarts_on_the_same_port() {
    let alice = UserAgent::start(cfg("alice", "tcp")).unwrap();
    let bob = UserAgent::start(cfg("bob", "tcp")).unwrap();
    let port = bob.addr(TransportKind::Tcp).unwrap();
    let (a, mut ae, b, mut be) = establish(&alice, &bob).await;
    bob.fail_tcp_listener();
    // The established connection survives the listener's restart...
    a.hold().await.unwrap();
    assert!(wait_for(&mut ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: true })).await.is_some());
    // ...and new connections reach the same port once it has rebound.
    alice.close_connections(None).await;
    let mut status = 0;
    for _ in 0..50 {
        status = timeout(WAIT, alice.options(&bob.uri())).await.unwrap().unwrap();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "OPTIONS over a new connection after the restart");
    let generation = bob.listener(TransportKind::Tcp).unwrap().send(sipact_actors::transport::udp::Generation).await;
    assert_eq!(generation.unwrap(), 2, "the listener did not restart");
    assert_eq!(bob.addr(TransportKind::Tcp), Some(port));
    // The call goes on over a new connection.
    a.unhold().await.unwrap();
    assert!(wait_for(&mut ae, |e| matches!(e, SessionEvent::HoldChanged { local_hold: false })).await.is_some());
    a.bye().await.unwrap();
    let eb = wait_for(&mut be, |e| terminated(e).is_some()).await.and_then(|e| terminated(&e));
    assert_eq!(eb, Some(Cause::Bye));
    assert!(b.is_terminated());
}

#[actix_rt::test]
async fn raw_tcp_keepalive_and_framing_error() {
    let bob = UserAgent::start(cfg("bob", "tcp")).unwrap();
    let addr = bob.addr(TransportKind::Tcp).unwrap();
    let mut s = timeout(WAIT, tokio::net::TcpStream::connect(addr)).await.unwrap().unwrap();
    // RFC 5626 §3.5.1: a double-CRLF ping gets a CRLF pong.
    s.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, s.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(&pong, b"\r\n");
    // An OPTIONS in two pieces is framed and answered on the same connection.
    let req = format!(
        "OPTIONS sip:bob@{addr};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKraw1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1>;tag=r1\r\nTo: <sip:bob@{addr}>\r\nCall-ID: raw-1\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    let (h1, h2) = req.as_bytes().split_at(40);
    s.write_all(h1).await.unwrap();
    s.write_all(h2).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
        let n = timeout(WAIT, s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed before the response");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.starts_with(b"SIP/2.0 200"), "{}", String::from_utf8_lossy(&buf));
    // A message without Content-Length loses framing: the connection closes.
    s.write_all(b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9\r\n\r\n").await.unwrap();
    loop {
        let n = timeout(WAIT, s.read(&mut chunk)).await.unwrap().unwrap_or(0);
        if n == 0 {
            break;
        }
    }
}
