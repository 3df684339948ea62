//! A user agent under the application's own actix `Supervisor`.
//!
//! `PhoneLine` is an actor of the application that owns a `UserAgent`. It
//! is `Supervised`: when it stops (here on purpose, as it would on an
//! unrecoverable error of the application's), its supervisor restarts it
//! with the same address, and `started` brings up a fresh user agent. The
//! old one is shut down first, which ends its calls cleanly (BYE, CANCEL
//! or 480) rather than leaving peers with half-open calls.
//!
//! Run: `cargo run --example supervised` (a crash, a restart, then a call).

use std::time::Duration;

use actix::prelude::*;
use sipact::actors::{InviteOptions, Session, SessionEvent, UaConfig, UaError, UserAgent};
use tokio::time::timeout;

struct PhoneLine {
    config: UaConfig,
    ua: Option<UserAgent>,
    starts: u32,
}

impl Actor for PhoneLine {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.starts += 1;
        match UserAgent::start(self.config.clone()) {
            Ok(ua) => {
                println!("phone line up (start #{}) on {}", self.starts, ua.local_addr());
                self.ua = Some(ua);
            }
            Err(e) => {
                eprintln!("cannot start the user agent: {e}");
                // Stopping hands the problem to the supervisor: it restarts us.
                ctx.stop();
            }
        }
    }
}

impl Supervised for PhoneLine {
    fn restarting(&mut self, _: &mut Self::Context) {
        println!("phone line restarting");
        if let Some(old) = self.ua.take() {
            actix_rt::spawn(async move { old.shutdown().await });
        }
    }
}

/// Simulates an application failure: the actor stops, the supervisor restarts it.
#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Crash> for PhoneLine {
    type Result = ();
    fn handle(&mut self, _: Crash, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Places a call.
#[derive(Message)]
#[rtype(result = "Result<Session, UaError>")]
struct Dial(String);

impl Handler<Dial> for PhoneLine {
    type Result = ResponseFuture<Result<Session, UaError>>;
    fn handle(&mut self, m: Dial, _: &mut Self::Context) -> Self::Result {
        let ua = self.ua.clone();
        Box::pin(async move {
            match ua {
                Some(ua) => ua.invite(&m.0, InviteOptions::default()).await,
                None => Err(UaError::Transaction("phone line down".into())),
            }
        })
    }
}

/// How many times the line has started.
#[derive(Message)]
#[rtype(result = "u32")]
struct Starts;

impl Handler<Starts> for PhoneLine {
    type Result = u32;
    fn handle(&mut self, _: Starts, _: &mut Self::Context) -> u32 {
        self.starts
    }
}

type BoxError = Box<dyn std::error::Error>;

async fn run() -> Result<(), BoxError> {
    let wait = Duration::from_secs(5);
    let config =
        |user: &str| UaConfig { user: user.into(), bind: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    let bob = UserAgent::start(config("bob"))?;
    let mut incoming = bob.incoming();
    actix_rt::spawn(async move {
        while let Some(s) = incoming.next().await {
            let _ = s.accept().await;
        }
    });

    let cfg = config("alice");
    let line = Supervisor::start(move |_| PhoneLine { config: cfg, ua: None, starts: 0 });
    line.do_send(Crash);
    // The address stays valid across the restart; messages wait in its mailbox.
    let starts = timeout(wait, line.send(Starts)).await??;
    println!("line started {starts} times");

    let call = timeout(wait, line.send(Dial(bob.uri()))).await???;
    let mut events = call.events();
    loop {
        match timeout(wait, events.next()).await? {
            Some(SessionEvent::Accepted { .. }) => break,
            Some(SessionEvent::Terminated { cause }) => return Err(format!("call failed: {cause:?}").into()),
            Some(_) => {}
            None => return Err("event stream ended".into()),
        }
    }
    println!("call up through the restarted line");
    call.bye().await?;
    while let Some(e) = timeout(wait, events.next()).await? {
        if let SessionEvent::Terminated { cause } = e {
            println!("call over: {cause:?}");
        }
    }
    timeout(wait, bob.shutdown()).await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    System::new().block_on(run())
}
