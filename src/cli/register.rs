//! `sipact register`: register, stay registered until interrupted, then
//! unregister.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use sipact::actors::UserAgent;
use sipact::actors::proto::register::RegEvent;
use sipact::message::Uri;

use super::output;
use super::wire::WireTap;
use super::{Common, Failure, exit};

/// Options of `sipact register`.
#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    /// The registrar: a SIP URI with an IP host (`sip:127.0.0.1:5060`).
    #[arg(value_name = "URI")]
    pub registrar: String,
    /// Shared options.
    #[command(flatten)]
    pub common: Common,
    /// Digest username (also our user part unless the configuration sets `user`).
    #[arg(long, env = "SIPACT_USERNAME", value_name = "U")]
    pub user: Option<String>,
    /// Digest password.
    #[arg(long, env = "SIPACT_PASSWORD", value_name = "P", hide_env_values = true)]
    pub password: Option<String>,
    /// Registration lifetime to ask for, in seconds (default 3600).
    #[arg(long, env = "SIPACT_EXPIRES", value_name = "S")]
    pub expires: Option<u32>,
}

/// Exit status for a refused REGISTER.
pub fn exit_for_status(status: u16) -> u8 {
    match status {
        401 | 403 | 407 => exit::AUTH,
        408 | 503 | 504 => exit::UNREACHABLE,
        _ => exit::FAILED,
    }
}

/// Runs `sipact register`.
pub async fn run(args: RegisterArgs) -> Result<(), Failure> {
    let file = super::file_options(args.common.config.as_deref())?;
    let mut settings = super::settings(&args.common, &file, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    if let Some(u) = &args.user {
        settings.ua.username = Some(u.clone());
        if settings.ua.user == sipact::actors::UaConfig::default().user {
            settings.ua.user = u.clone();
        }
    }
    if let Some(p) = &args.password {
        settings.ua.password = Some(p.clone());
    }
    if settings.ua.username.is_none() || settings.ua.password.is_none() {
        return Err(Failure::usage("register needs --user and --password"));
    }
    let expires = args.expires.or(file.expires).unwrap_or(3600);
    if expires == 0 {
        return Err(Failure::usage("--expires must be at least 1"));
    }
    Uri::parse(args.registrar.trim())
        .map_err(|e| Failure::usage(format!("bad registrar {:?}: {e}", args.registrar)))?;
    let pcap = match &settings.pcap {
        Some(p) => Some(
            super::pcap::PcapWriter::create(p)
                .map_err(|e| Failure::new(exit::LOCAL, format!("cannot write {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let ua = UserAgent::start(settings.ua.clone())?;
    let tap = WireTap::start(&ua, pcap, settings.ladder);
    let result = registered(&ua, &args.registrar, expires, settings.events, settings.ua.t1_ms).await;
    // No `ua.shutdown()`: it would unregister once more (the registration is
    // already removed, or was refused); there are no sessions to end, and
    // the sockets close with the process.
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

async fn registered(ua: &UserAgent, registrar: &str, expires: u32, events: bool, t1_ms: u64) -> Result<(), Failure> {
    let mut regs = ua.registrations();
    ua.register(registrar, expires).await.map_err(|e| match e {
        sipact::actors::UaError::InvalidTarget(_) => Failure::usage(e.to_string()),
        sipact::actors::UaError::Unresolvable(_) => Failure::new(exit::UNREACHABLE, e.to_string()),
        other => Failure::new(exit::FAILED, other.to_string()),
    })?;
    // Timer F (64*T1) ends an unanswered REGISTER with 408; allow a little more.
    let first_deadline = tokio::time::Instant::now() + Duration::from_millis(64 * t1_ms.max(1) + 2000);
    let mut is_registered = false;
    let stop = super::interrupted();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            r = regs.recv() => match r {
                Some(RegEvent::Registered { expires, contacts }) => {
                    if events {
                        let c: Vec<String> = contacts.iter().map(|c| c.uri.to_string()).collect();
                        output::line(&output::registration_json("registered", &[("expires", json!(expires)), ("contacts", json!(c))]).to_string());
                    }
                    if !is_registered {
                        output::note(&format!("sipact register: registered with {registrar} for {expires} s as {}", ua.uri()));
                    }
                    is_registered = true;
                }
                Some(RegEvent::Failed { status }) => {
                    if events {
                        output::line(&output::registration_json("registration-failed", &[("status", json!(status))]).to_string());
                    }
                    let what = format!("{status} {}", sipact::message::default_reason(status));
                    return Err(Failure::new(exit_for_status(status), format!("registration failed: {what}")));
                }
                Some(RegEvent::ContactChanged { contact }) => {
                    if events {
                        output::line(&output::registration_json("contact-changed", &[("contact", json!(contact.to_string()))]).to_string());
                    }
                }
                Some(RegEvent::Unregistered) => {
                    if events {
                        output::line(&output::registration_json("unregistered", &[]).to_string());
                    }
                    return Err(Failure::new(exit::FAILED, "the registration was removed"));
                }
                Some(_) => {}
                None => return Err(Failure::new(exit::FAILED, "the user agent stopped")),
            },
            _ = tokio::time::sleep_until(first_deadline), if !is_registered => {
                return Err(Failure::new(exit::UNREACHABLE, format!("no answer from {registrar}")));
            }
            _ = &mut stop => break,
        }
    }
    output::note("sipact register: interrupted, unregistering");
    let _ = ua.unregister().await;
    let wait = async {
        while let Some(r) = regs.recv().await {
            match r {
                RegEvent::Unregistered => {
                    if events {
                        output::line(&output::registration_json("unregistered", &[]).to_string());
                    }
                    return Ok(());
                }
                RegEvent::Failed { status } => {
                    return Err(Failure::new(exit_for_status(status), format!("unregistering failed: {status}")));
                }
                _ => {}
            }
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(5), wait).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(exit::UNREACHABLE, "no answer to the unregistration")),
    }
}
