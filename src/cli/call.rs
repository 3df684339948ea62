//! `sipact call`: one outbound call and a timeline of actions.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use sipact::actors::proto::Cause;
use sipact::actors::{DtmfOptions, InviteOptions, SessionEvent, UaError, UserAgent};
use sipact::message::Uri;
use tokio::time::Instant;

use super::output;
use super::wire::WireTap;
use super::{Common, Failure, exit};

/// Options of `sipact call`.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// Whom to call: a SIP URI with an IP host (`sip:bob@127.0.0.1:5070`,
    /// `;transport=tcp` to pick the transport).
    #[arg(value_name = "URI")]
    pub target: String,
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Our identity (From): a SIP URI, whose user and host become ours.
    #[arg(long, env = "SIPACT_FROM", value_name = "URI")]
    pub from: Option<String>,
    /// Digest username, for a peer that challenges (401/407).
    #[arg(long, env = "SIPACT_USERNAME", value_name = "U")]
    pub user: Option<String>,
    /// Digest password.
    #[arg(long, env = "SIPACT_PASSWORD", value_name = "P", hide_env_values = true)]
    pub password: Option<String>,
    /// DTMF tones to send by INFO once the call is answered (0-9, *, #, A-D).
    #[arg(long, env = "SIPACT_DTMF", value_name = "TONES")]
    pub dtmf: Option<String>,
    /// Put the peer on hold this many seconds after the answer.
    #[arg(long, env = "SIPACT_HOLD_AFTER", value_name = "S")]
    pub hold_after: Option<f64>,
    /// Take the peer off hold this many seconds after the answer (after --hold-after).
    #[arg(long, env = "SIPACT_UNHOLD_AFTER", value_name = "S")]
    pub unhold_after: Option<f64>,
    /// Transfer the peer (blind REFER) after the other actions; the call is
    /// hung up once the transfer succeeded.
    #[arg(long, env = "SIPACT_REFER", value_name = "URI")]
    pub refer: Option<String>,
    /// Hang up this many seconds after the answer. Without it the call
    /// lasts until the peer hangs up (or an interrupt).
    #[arg(long, env = "SIPACT_HANGUP_AFTER", value_name = "S")]
    pub hangup_after: Option<f64>,
    /// Cancel the call if it is not answered within this many seconds (exit 3).
    #[arg(long, env = "SIPACT_TIMEOUT", value_name = "S")]
    pub timeout: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Dtmf(String),
    Hold,
    Unhold,
    Refer(String),
    Hangup,
}

/// The tones INFO can carry.
fn valid_tones(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d'))
}

/// Exit status for how a call ended.
pub fn exit_for(cause: Cause) -> u8 {
    match cause {
        Cause::Bye => exit::OK,
        Cause::AuthenticationError => exit::AUTH,
        Cause::RequestTimeout | Cause::ConnectionError | Cause::NoAnswer => exit::UNREACHABLE,
        _ => exit::FAILED,
    }
}

/// Runs `sipact call`.
pub async fn run(args: CallArgs) -> Result<(), Failure> {
    let file = super::file_options(args.common.config.as_deref())?;
    let mut settings = super::settings(&args.common, &file, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    if let Some(from) = args.from.clone().or(file.from.clone()) {
        let uri = Uri::parse(from.trim()).map_err(|e| Failure::usage(format!("--from {from:?}: {e}")))?;
        let sip = uri.as_sip().ok_or_else(|| Failure::usage(format!("--from {from:?} is not a SIP URI")))?;
        if let Some(u) = &sip.user {
            settings.ua.user = u.to_string();
        }
        settings.ua.domain = Some(sip.host.to_string());
    }
    if let Some(u) = &args.user {
        settings.ua.username = Some(u.clone());
    }
    if let Some(p) = &args.password {
        settings.ua.password = Some(p.clone());
    }
    if settings.ua.username.is_some() != settings.ua.password.is_some() {
        return Err(Failure::usage("--user and --password go together"));
    }
    Uri::parse(args.target.trim()).map_err(|e| Failure::usage(format!("bad target {:?}: {e}", args.target)))?;

    // The timeline, relative to the answer.
    let dtmf = args.dtmf.clone().or(file.dtmf.clone());
    let hold = super::seconds("hold-after", args.hold_after.or(file.hold_after))?;
    let unhold = super::seconds("unhold-after", args.unhold_after.or(file.unhold_after))?;
    let hangup = super::seconds("hangup-after", args.hangup_after.or(file.hangup_after))?;
    let timeout = super::seconds("timeout", args.timeout.or(file.timeout))?;
    let refer = args.refer.clone().or(file.refer.clone());
    let mut timeline: Vec<(Duration, Action)> = Vec::new();
    let mut last = Duration::ZERO;
    if let Some(t) = &dtmf {
        if !valid_tones(t) {
            return Err(Failure::usage(format!("--dtmf {t:?}: tones are 0-9, *, #, A-D")));
        }
        timeline.push((Duration::ZERO, Action::Dtmf(t.clone())));
        // One INFO per tone, 100 ms tones with 500 ms gaps.
        last = Duration::from_millis(600 * t.len() as u64);
    }
    match (hold, unhold) {
        (None, Some(_)) => return Err(Failure::usage("--unhold-after needs --hold-after")),
        (Some(h), Some(u)) if u <= h => return Err(Failure::usage("--unhold-after must come after --hold-after")),
        _ => {}
    }
    if let Some(h) = hold {
        timeline.push((h, Action::Hold));
        last = last.max(h);
    }
    if let Some(u) = unhold {
        timeline.push((u, Action::Unhold));
        last = last.max(u);
    }
    if let Some(r) = &refer {
        Uri::parse(r.trim()).map_err(|e| Failure::usage(format!("--refer {r:?}: {e}")))?;
        timeline.push((last, Action::Refer(r.clone())));
    }
    if let Some(h) = hangup {
        timeline.push((h, Action::Hangup));
    }
    timeline.sort_by_key(|(t, _)| *t);

    let pcap = match &settings.pcap {
        Some(p) => Some(
            super::pcap::PcapWriter::create(p)
                .map_err(|e| Failure::new(exit::LOCAL, format!("cannot write {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let ua = UserAgent::start(settings.ua.clone())?;
    let tap = WireTap::start(&ua, pcap, settings.ladder);
    let result = place(&ua, &args.target, timeline, timeout, settings.events).await;
    if let Some(t) = &tap
        && let Ok(c) = &result
    {
        t.ended(c.clone());
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), ua.shutdown()).await;
    let pcap_error = match tap {
        Some(t) => t.finish().await,
        None => None,
    };
    result?;
    if let Some(e) = pcap_error {
        return Err(Failure::new(exit::LOCAL, format!("pcap: {e}")));
    }
    Ok(())
}

/// Calls, runs the timeline, returns the call-id once the call is over.
async fn place(
    ua: &UserAgent,
    target: &str,
    mut timeline: Vec<(Duration, Action)>,
    timeout: Option<Duration>,
    events: bool,
) -> Result<String, Failure> {
    let session = ua.invite(target, InviteOptions::default()).await.map_err(|e| match e {
        UaError::InvalidTarget(_) => Failure::usage(e.to_string()),
        UaError::Unresolvable(_) => Failure::new(exit::UNREACHABLE, e.to_string()),
        other => Failure::new(exit::FAILED, other.to_string()),
    })?;
    let call_id = output::call_id(&session);
    output::note(&format!("sipact call: calling {target} from {}", ua.uri()));
    if events {
        output::line(&output::session_start_json(&session).to_string());
    }
    let mut ev = session.events();
    let stop = super::interrupted();
    tokio::pin!(stop);
    let mut interrupted = false;
    let mut answered: Option<Instant> = None;
    let mut failure: Option<(Option<(u16, String)>, Cause)> = None;
    let no_answer_at = timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let cause = loop {
        let next = match answered {
            Some(at) => timeline.first().map(|(d, _)| at + *d),
            None => {
                if timed_out {
                    None
                } else {
                    no_answer_at
                }
            }
        };
        tokio::select! {
            e = ev.next() => {
                let Some(e) = e else { break Cause::InternalError };
                if events {
                    output::line(&output::event_json(&session, &e).to_string());
                }
                match &e {
                    SessionEvent::Accepted { response, .. } => {
                        answered = Some(Instant::now());
                        output::note(&format!("sipact call: answered: {} {}", response.status, response.reason));
                    }
                    SessionEvent::Rejected { response, cause } => {
                        failure = Some((Some((response.status, response.reason.to_string())), *cause));
                    }
                    SessionEvent::Failed { response, cause } => {
                        let r = response.as_ref().map(|r| (r.status, r.reason.to_string()));
                        failure = Some((r.or(failure.as_ref().and_then(|f| f.0.clone())), *cause));
                    }
                    SessionEvent::ReferProgress { status, terminated: true }
                        if (200..300).contains(status) && !timeline.iter().any(|(_, a)| *a == Action::Hangup) =>
                    {
                        // The transfer worked: our part of the call is over.
                        let _ = session.bye().await;
                    }
                    SessionEvent::Terminated { cause } => break *cause,
                    _ => {}
                }
            }
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if answered.is_none() {
                    timed_out = true;
                    output::note("sipact call: no answer in time, canceling");
                    let _ = session.cancel().await;
                    continue;
                }
                let (_, action) = timeline.remove(0);
                let r = match &action {
                    Action::Dtmf(t) => session.dtmf(t, DtmfOptions::default()).await,
                    Action::Hold => session.hold().await,
                    Action::Unhold => session.unhold().await,
                    Action::Refer(to) => session.refer(to).await,
                    Action::Hangup => {
                        timeline.clear();
                        session.bye().await
                    }
                };
                if let Err(e) = r {
                    output::note(&format!("sipact call: {action:?} failed: {e}"));
                }
            }
            _ = &mut stop, if !interrupted => {
                interrupted = true;
                output::note("sipact call: interrupted, hanging up");
                let _ = session.terminate().await;
            }
        }
    };
    if answered.is_some() && matches!(cause, Cause::Bye | Cause::Replaced) {
        output::note("sipact call: call ended (cause Bye)");
        return Ok(call_id);
    }
    if interrupted && answered.is_none() {
        return Err(Failure::new(exit::INTERRUPTED, "interrupted before the answer"));
    }
    if timed_out && answered.is_none() {
        return Err(Failure::new(exit::UNREACHABLE, "call failed: no answer in time (cause NoAnswer)"));
    }
    let (status, cause) = match failure {
        Some((s, c)) => (s, c),
        None => (None, cause),
    };
    let what = match status {
        Some((code, reason)) => format!("{code} {reason} (cause {cause})"),
        None => format!("cause {cause}"),
    };
    let code = exit_for(cause);
    let code = if code == exit::OK { exit::FAILED } else { code };
    let verb = if answered.is_some() { "call ended abnormally" } else { "call failed" };
    Err(Failure::new(code, format!("{verb}: {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tones_and_causes() {
        assert!(valid_tones("123#*A"));
        assert!(!valid_tones("12x"));
        assert!(!valid_tones(""));
        assert_eq!(exit_for(Cause::AuthenticationError), exit::AUTH);
        assert_eq!(exit_for(Cause::RequestTimeout), exit::UNREACHABLE);
        assert_eq!(exit_for(Cause::Busy), exit::FAILED);
    }
}
