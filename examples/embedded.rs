//! sipact inside your own actix System.
//!
//! The application owns the System (here `actix::System::new()`, in a web
//! service it would be actix-web's) and starts user agents in it like any
//! other actor. Session events reach the application's own actor through
//! `Session::subscribe`, and the async handles work from any task.
//!
//! Run: `cargo run --example embedded` (a call between two user agents on
//! 127.0.0.1, then exit).

use std::time::Duration;

use actix::prelude::*;
use sipact::actors::session::Deliver;
use sipact::actors::{DtmfOptions, InviteOptions, SessionEvent, UaConfig, UserAgent};
use tokio::time::timeout;

/// One of the application's actors: it logs every event of the sessions it
/// is given.
struct CallLog {
    who: &'static str,
}

impl Actor for CallLog {
    type Context = Context<Self>;
}

impl Handler<Deliver> for CallLog {
    type Result = ();
    fn handle(&mut self, m: Deliver, _: &mut Self::Context) {
        println!("[{}] {}", self.who, short(&m.event));
    }
}

fn short(e: &SessionEvent) -> String {
    let s = format!("{e:?}");
    s.split([' ', '{', '(']).next().unwrap_or_default().to_owned()
}

type BoxError = Box<dyn std::error::Error>;

async fn run() -> Result<(), BoxError> {
    let wait = Duration::from_secs(5);
    let config =
        |user: &str| UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    // Both user agents live in the application's System.
    let alice = UserAgent::start(config("alice"))?;
    let bob = UserAgent::start(config("bob"))?;
    let log_a = CallLog { who: "alice" }.start();
    let log_b = CallLog { who: "bob" }.start();

    // Bob answers every call from a task of his own.
    let mut incoming = bob.incoming();
    actix_rt::spawn(async move {
        while let Some(session) = incoming.next().await {
            session.subscribe(log_b.clone().recipient());
            let _ = session.progress(Default::default()).await;
            let _ = session.accept().await;
        }
    });

    let call = alice.invite(&bob.uri(), InviteOptions::default()).await?;
    call.subscribe(log_a.recipient());
    let mut events = call.events();
    loop {
        match timeout(wait, events.next()).await? {
            Some(SessionEvent::Accepted { .. }) => break,
            Some(SessionEvent::Terminated { cause }) => return Err(format!("call failed: {cause:?}").into()),
            Some(_) => {}
            None => return Err("event stream ended".into()),
        }
    }
    println!("call up at {:?}", call.start_time());
    call.dtmf("42", DtmfOptions { duration: 100, inter_tone_gap: 100, ..Default::default() }).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    call.bye().await?;
    while let Some(e) = timeout(wait, events.next()).await? {
        if let SessionEvent::Terminated { cause } = e {
            println!("call over: {cause:?}");
        }
    }
    timeout(wait, alice.shutdown()).await?;
    timeout(wait, bob.shutdown()).await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // The application's System; sipact adds actors to it, nothing more.
    let system = System::new();
    system.block_on(run())
}
