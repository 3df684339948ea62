//! `sipact listen`: a user agent that answers calls.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use clap::Args;
use sipact::actors::{ProgressOptions, Session, SessionEvent, UserAgent};
use tokio::sync::mpsc;

use super::output;
use super::wire::{Ender, WireTap};
use super::{Common, Failure, exit};

/// Options of `sipact listen`.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// How to answer: `auto` (200 at once), `ring:SECS` (180, reliable when
    /// the caller supports 100rel, then 200 after SECS seconds), or
    /// `reject:CODE` (a final response 300-699). Default auto.
    #[arg(long, env = "SIPACT_ANSWER", value_name = "auto|ring:SECS|reject:CODE")]
    pub answer: Option<String>,
    /// Play back what the caller sends (an echo; needs --media rtp).
    #[arg(long, env = "SIPACT_ECHO")]
    pub echo: bool,
    /// Take this many calls, decline any others with 486, and exit (0)
    /// once they are all over and the peers have been quiet for T2+T1
    /// (4.5 s by default), so that retransmitted requests are still answered.
    #[arg(long, env = "SIPACT_MAX_CALLS", value_name = "N")]
    pub max_calls: Option<u64>,
}

/// How calls are answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    /// 200 at once.
    Auto,
    /// 180, then 200 after this long.
    Ring(Duration),
    /// A final failure response.
    Reject(u16),
}

impl std::str::FromStr for Answer {
    type Err = String;
    fn from_str(s: &str) -> Result<Answer, String> {
        let bad = || format!("--answer must be auto, ring:SECS or reject:CODE (300-699), not {s:?}");
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Answer::Auto);
        }
        if let Some(secs) = s.strip_prefix("ring:") {
            let v: f64 = secs.trim().parse().map_err(|_| bad())?;
            return match super::seconds("answer ring", Some(v)) {
                Ok(Some(d)) => Ok(Answer::Ring(d)),
                _ => Err(bad()),
            };
        }
        if let Some(code) = s.strip_prefix("reject:") {
            let c: u16 = code.trim().parse().map_err(|_| bad())?;
            if (300..=699).contains(&c) {
                return Ok(Answer::Reject(c));
            }
        }
        Err(bad())
    }
}

/// Runs `sipact listen`.
pub async fn run(args: ListenArgs) -> Result<(), Failure> {
    let file = super::file_options(args.common.config.as_deref())?;
    let answer: Answer =
        args.answer.clone().or(file.answer.clone()).unwrap_or_else(|| "auto".into()).parse().map_err(Failure::usage)?;
    let max_calls = args.max_calls.or(file.max_calls);
    if max_calls == Some(0) {
        return Err(Failure::usage("--max-calls must be at least 1"));
    }
    let mut settings = super::settings(&args.common, &file, SocketAddr::from(([127, 0, 0, 1], 5060)))?;
    if args.echo {
        settings.ua.echo = true;
    }
    if settings.ua.echo && settings.ua.media != "rtp" {
        output::note("sipact listen: --echo needs --media rtp; there is no media to echo");
    }
    let pcap = match &settings.pcap {
        Some(p) => Some(
            super::pcap::PcapWriter::create(p)
                .map_err(|e| Failure::new(exit::LOCAL, format!("cannot write {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let ua = UserAgent::start(settings.ua.clone())?;
    let tap = WireTap::start(&ua, pcap, settings.ladder);
    // With --max-calls, what arrives is watched so that we leave only once
    // the peers stopped retransmitting.
    let mut heard = max_calls.map(|_| ua.wire());
    let mut incoming = ua.incoming();
    output::note(&format!("sipact listen: listening on {} ({})", ua.uri(), ua.transport().via_token()));

    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let taken = Rc::new(Cell::new(0u64));
    let mut finished = 0u64;
    let stop = super::interrupted();
    tokio::pin!(stop);
    let mut reached = false;
    loop {
        tokio::select! {
            s = incoming.next() => {
                let Some(s) = s else { break };
                if max_calls.is_some_and(|m| taken.get() >= m) {
                    let _ = s.reject(486).await;
                    continue;
                }
                taken.set(taken.get() + 1);
                let ender = tap.as_ref().map(WireTap::ender);
                actix_rt::spawn(serve(s, answer, settings.events, ender, done_tx.clone()));
            }
            d = done_rx.recv() => {
                if d.is_none() { break }
                finished += 1;
                if max_calls.is_some_and(|m| finished >= m) {
                    reached = true;
                    break;
                }
            }
            // Keep the tap drained while calls go on.
            Some(_) = async { match heard.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {}
            _ = &mut stop => {
                output::note("sipact listen: interrupted, ending the calls");
                break;
            }
        }
    }
    if reached && let Some(h) = heard.as_mut() {
        let quiet = Duration::from_millis(settings.ua.t2_ms + settings.ua.t1_ms);
        let cap = tokio::time::Instant::now() + Duration::from_millis(64 * settings.ua.t1_ms);
        linger(h, quiet, cap).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), ua.shutdown()).await;
    if let Some(t) = tap
        && let Some(e) = t.finish().await
    {
        return Err(Failure::new(exit::LOCAL, format!("pcap: {e}")));
    }
    Ok(())
}

/// Waits until nothing was received for `quiet` (the peers stopped
/// retransmitting: a retransmitted BYE whose 200 was lost still gets its
/// answer), or until `cap`.
async fn linger(
    heard: &mut mpsc::UnboundedReceiver<sipact::actors::core::WireRecord>,
    quiet: Duration,
    cap: tokio::time::Instant,
) {
    let mut until = (tokio::time::Instant::now() + quiet).min(cap);
    loop {
        tokio::select! {
            r = heard.recv() => match r {
                Some(rec) if !rec.outgoing => until = (tokio::time::Instant::now() + quiet).min(cap),
                Some(_) => {}
                None => return,
            },
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

/// Answers one call and reports its events until it is over.
async fn serve(s: Session, answer: Answer, events: bool, ender: Option<Ender>, done: mpsc::UnboundedSender<()>) {
    let mut ev = s.events();
    if events {
        output::line(&output::session_start_json(&s).to_string());
    }
    let answering = {
        let s = s.clone();
        async move {
            let r = match answer {
                Answer::Auto => s.accept().await,
                Answer::Reject(code) => s.reject(code).await,
                Answer::Ring(d) => {
                    let r = s.progress(ProgressOptions { status: 180, early_media: false, reliable: true }).await;
                    match r {
                        Ok(()) => {
                            tokio::time::sleep(d).await;
                            if s.is_terminated() { Ok(()) } else { s.accept().await }
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = r {
                tracing::debug!(session = s.id(), error = %e, "answering failed (the call ended meanwhile?)");
            }
        }
    };
    let reporting = async {
        while let Some(e) = ev.next().await {
            if events {
                output::line(&output::event_json(&s, &e).to_string());
            }
            if let SessionEvent::Terminated { .. } = e {
                break;
            }
        }
    };
    // The answer may still be pending (ringing) when the call ends: stop then.
    tokio::pin!(answering);
    tokio::select! {
        _ = reporting => {}
        _ = async { (&mut answering).await; std::future::pending::<()>().await } => {}
    }
    if let Some(t) = ender {
        t.ended(output::call_id(&s));
    }
    let _ = done.send(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_modes() {
        assert_eq!("auto".parse::<Answer>(), Ok(Answer::Auto));
        assert_eq!("ring:1.5".parse::<Answer>(), Ok(Answer::Ring(Duration::from_millis(1500))));
        assert_eq!("reject:486".parse::<Answer>(), Ok(Answer::Reject(486)));
        assert!("reject:200".parse::<Answer>().is_err());
        assert!("ring:-1".parse::<Answer>().is_err());
        assert!("pickup".parse::<Answer>().is_err());
    }
}
