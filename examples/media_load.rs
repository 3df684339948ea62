//! Media load: N concurrent calls between two user agents in one process
//! (one actix System, one thread), with plain RTP and then with WebRTC
//! media, each call sending a 20 ms G.711 frame every 20 ms both ways.
//! Prints the CPU time the process used per call and second of media, and
//! the packets that arrived, for both kinds side by side.
//!
//! Run: `cargo run --release --example media_load -- [CALLS] [SECONDS]`
//! (default 50 calls, 5 s). Everything on 127.0.0.1; bounded in count and time.

use std::time::{Duration, Instant};

use sipact::actors::{InviteOptions, SessionEvent, UaConfig, UserAgent};
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error>;

/// CPU time (user + system) of this process, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the
    // 12th and stime the 13th of those, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn config(user: &str, media: &str) -> UaConfig {
    UaConfig {
        user: user.into(),
        bind: "127.0.0.1:0".parse().expect("address"),
        media: media.into(),
        ..UaConfig::default()
    }
}

struct Outcome {
    setup: Duration,
    cpu: Duration,
    wall: Duration,
    received: u64,
}

async fn run(media: &str, calls: usize, seconds: u64) -> Result<Outcome, BoxError> {
    let alice = UserAgent::start(config("alice", media))?;
    let bob = UserAgent::start(config("bob", media))?;
    let mut incoming = bob.incoming();
    let started = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..calls {
        let a = alice.invite(&bob.uri(), InviteOptions::default()).await?;
        let b = timeout(Duration::from_secs(10), incoming.next()).await?.ok_or("no incoming call")?;
        b.accept().await?;
        let mut ev = a.events();
        loop {
            match timeout(Duration::from_secs(10), ev.next()).await? {
                Some(SessionEvent::Accepted { .. }) => break,
                Some(_) => {}
                None => return Err("a call ended before it was answered".into()),
            }
        }
        sessions.push((a, b));
    }
    let setup = started.elapsed();
    // Let every call reach steady state (ICE and DTLS for WebRTC).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = |s: &[(sipact::actors::Session, sipact::actors::Session)]| -> u64 {
        s.iter()
            .map(|(a, b)| {
                a.media_stats().map_or(0, |m| m.packets_received) + b.media_stats().map_or(0, |m| m.packets_received)
            })
            .sum()
    };
    let (cpu0, wall0, rx0) = (cpu_time(), Instant::now(), received(&sessions));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu, wall, rx) = (cpu_time() - cpu0, wall0.elapsed(), received(&sessions) - rx0);
    for (a, _) in &sessions {
        a.bye().await?;
    }
    alice.shutdown().await;
    bob.shutdown().await;
    Ok(Outcome { setup, cpu, wall, received: rx })
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50).clamp(1, 500);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).clamp(1, 60);
    let system = actix::System::new();
    println!("{calls} concurrent calls, {seconds} s of media, both user agents in one thread");
    println!(
        "| media | set-up of all calls | CPU per call (% of a core) | packets received per s (expected {}) |",
        calls * 100
    );
    println!("|---|---:|---:|---:|");
    for media in ["rtp", "webrtc"] {
        let o = system.block_on(run(media, calls, seconds))?;
        let per_call = o.cpu.as_secs_f64() / o.wall.as_secs_f64() / calls as f64 * 100.0;
        println!(
            "| {media} | {:.2} s | {per_call:.3} % | {:.0} |",
            o.setup.as_secs_f64(),
            o.received as f64 / o.wall.as_secs_f64()
        );
    }
    Ok(())
}
