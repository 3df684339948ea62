//! Tier 4: what the library logs. Sessions get a span (call-id, local
//! tag), each transaction start is logged at debug, and no credential
//! ever reaches the logs or a `Debug` print of the configuration.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use sipact_actors::{UaConfig, UserAgent};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRET: &str = "s3cr3t-hunter2";

#[test]
fn config_debug_redacts_the_password() {
    let c = UaConfig { username: Some("alice".into()), password: Some(SECRET.into()), ..UaConfig::default() };
    let d = format!("{c:?}");
    assert!(!d.contains(SECRET), "{d}");
    assert!(d.contains("<redacted>") && d.contains("alice"), "{d}");
    let pretty = format!("{c:#?}");
    assert!(!pretty.contains(SECRET));
}

#[actix_rt::test]
async fn logs_have_session_spans_transactions_and_no_credentials() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Every actor runs on this thread: a thread-local default sees them all.
    let _guard = tracing::subscriber::set_default(subscriber);

    let alice =
        UserAgent::start(UaConfig { username: Some("alice".into()), password: Some(SECRET.into()), ..cfg("alice") })
            .unwrap();
    let bob = start("bob");
    let mut inc = bob.incoming();
    let mut call = establish(&alice, &bob, &mut inc).await;
    call.a.dtmf("1", Default::default()).await.unwrap();
    events_until(&mut call.b_ev, &mut call.b_seen, |e| matches!(e, sipact_actors::SessionEvent::Dtmf { .. })).await;
    call.hang_up().await;

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains(SECRET), "password in the logs");
    let call_id = call.a.request().unwrap().headers.call_id().unwrap().to_owned();
    let a_tag = call.a.local_identity().unwrap().tag().unwrap().to_owned();
    let b_tag = call.b.local_identity().unwrap().tag().unwrap().to_owned();
    // Session spans name the call and our tag on each side.
    assert!(text.contains(&format!("call_id=\"{call_id}\"")) || text.contains(&format!("call_id={call_id}")), "{text}");
    assert!(text.contains(&a_tag) && text.contains(&b_tag), "{text}");
    let start_lines: Vec<&str> = text.lines().filter(|l| l.contains("transaction started")).collect();
    // INVITE, INFO and BYE, each once per side (client and server).
    for m in ["INVITE", "INFO", "BYE"] {
        let n = start_lines.iter().filter(|l| l.contains(&format!("method={m}"))).count();
        assert_eq!(n, 2, "{m}: {start_lines:#?}");
    }
    assert!(start_lines.iter().all(|l| l.contains("DEBUG")));
    assert!(!start_lines.iter().any(|l| l.contains("method=ACK")));
    assert!(text.lines().any(|l| l.contains("session{") && l.contains("session event")), "{text}");
}
