//! The `sipact` command: argument parsing (clap), configuration
//! (`--config FILE`, `SIPACT_*` environment variables), and the commands,
//! each a thin layer over the public `UserAgent`/`Session` API.

pub mod call;
pub mod ladder;
pub mod listen;
pub mod output;
pub mod parse;
pub mod pcap;
pub mod register;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use sipact::actors::{StartError, UaConfig};

/// Exit statuses of the command (also printed by `--help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// `parse`: the message did not parse.
    pub const PARSE_ERROR: u8 = 1;
    /// Bad arguments or configuration (clap's usage errors are 2 too), or
    /// an unreadable input file.
    pub const USAGE: u8 = 2;
    /// The target or registrar is unreachable or did not answer in time
    /// (Timer B/F, 408, 503, connection refused, unresolvable host).
    pub const UNREACHABLE: u8 = 3;
    /// Authentication failed (401/407 with the credentials given, or none; 403 to REGISTER).
    pub const AUTH: u8 = 4;
    /// The call (or registration) failed otherwise; its cause is printed.
    pub const FAILED: u8 = 5;
    /// A local failure: the address cannot be bound, a file cannot be written.
    pub const LOCAL: u8 = 6;
    /// Interrupted (SIGINT) before the call was answered.
    pub const INTERRUPTED: u8 = 130;
}

const EXIT_HELP: &str = "\
Exit status:
  0    success (a call answered and hung up with BYE; registered then unregistered)
  1    parse: the message does not parse
  2    bad arguments or configuration, unreadable input file
  3    target or registrar unreachable, or no answer in time (timeout, 408, 503,
       connection refused, unresolvable host)
  4    authentication failed (401/407 with the credentials given or none, 403 to REGISTER)
  5    the call failed (rejected, canceled, no ACK...) or the registration was
       refused: the status and cause are printed on standard error
  6    local failure: the address cannot be bound, the pcap file cannot be written
  130  interrupted before the call was answered

Configuration: every option can come from the command line, from a
SIPACT_<OPTION> environment variable (SIPACT_BIND, SIPACT_ANSWER,
SIPACT_HANGUP_AFTER...), or from the TOML file given with --config (keys
named like the options, with underscores: answer = \"ring:2\",
hangup_after = 3.0), in that order of precedence. The same file and
variables also set the user agent's settings (user, domain, t1_ms, rel100,
media, echo, dtmf = \"info\" or \"rfc4733\", rtp_timeout_ms, username,
password, outbound_proxy, tls_cert, tls_key, tls_ca...).
Logs go to standard error, filtered by RUST_LOG (default: warn).";

/// sipact: a SIP user agent.
#[derive(Parser, Debug)]
#[command(name = "sipact", version, about, after_long_help = EXIT_HELP, after_help = EXIT_HELP)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The embedded demo: three user agents on 127.0.0.1 (Alice calls Bob,
    /// reliable early media, audio both ways, DTMF 1234#, hold and unhold,
    /// Bob transfers Alice to Carol, everyone hangs up). Prints the SIP
    /// ladder, each session's timeline and the steps; exits 0 only if every
    /// step happened (else 5).
    Demo,
    /// Parse one SIP message and print it as JSON (exit 0), or print the
    /// error with its byte offset (exit 1).
    Parse {
        /// File to read; `-` or nothing reads standard input.
        file: Option<String>,
        /// Print the canonical form of the message instead of JSON.
        #[arg(long)]
        canonical: bool,
    },
    /// Run a user agent that answers calls, until interrupted (SIGINT,
    /// SIGTERM) or until --max-calls calls are over.
    Listen(listen::ListenArgs),
    /// Place one call, run the actions asked for (DTMF, hold, unhold,
    /// transfer, hang-up), exit when it is over.
    Call(call::CallArgs),
    /// Register with a registrar, stay registered (refreshing) until
    /// interrupted (SIGINT, SIGTERM), then unregister.
    Register(register::RegisterArgs),
}

/// SIP transports the command can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// SIP over WebSocket.
    Ws,
    /// TLS (needs tls_cert and tls_key, and tls_ca for outgoing connections).
    Tls,
}

impl Transport {
    fn token(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
            Transport::Tls => "tls",
        }
    }
}

/// Media of the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Media {
    /// WebRTC (ICE, DTLS-SRTP).
    Webrtc,
    /// Plain RTP (G.711, RFC 4733 DTMF).
    Rtp,
    /// WebRTC for outgoing calls and for incoming WebRTC offers, plain RTP
    /// for other incoming offers (a gateway's choice).
    Auto,
    /// No media: SDP on the discard port, no sockets (load generation).
    None,
    /// SDP announcing audio, no media behind it.
    Signalling,
}

/// Format of `--events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventsFormat {
    /// One JSON object per line on standard output.
    Json,
}

/// RFC 3262 policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rel100 {
    /// Reliable provisionals neither offered nor accepted.
    None,
    /// Used when the peer supports them.
    Supported,
    /// Required of the peer.
    Required,
}

impl Rel100 {
    fn token(self) -> &'static str {
        match self {
            Rel100::None => "unsupported",
            Rel100::Supported => "supported",
            Rel100::Required => "required",
        }
    }
}

/// Options shared by the commands that run a user agent.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Address to bind (listen: default 127.0.0.1:5060; call and register:
    /// 127.0.0.1 on a free port).
    #[arg(long, env = "SIPACT_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// Transport of our Via and Contact, and of requests to URIs without
    /// `;transport=` (default udp).
    #[arg(long, env = "SIPACT_TRANSPORT", value_enum)]
    pub transport: Option<Transport>,
    /// Media of the sessions (default webrtc: ICE, DTLS-SRTP, what browsers
    /// speak; rtp: plain RTP/AVP audio, G.711 and telephone-event, what SIP
    /// trunks, desk phones and SIPp speak).
    #[arg(long, env = "SIPACT_MEDIA", value_enum)]
    pub media: Option<Media>,
    /// RFC 3262 reliable provisionals (default supported).
    #[arg(long, env = "SIPACT_REL100", value_enum)]
    pub rel100: Option<Rel100>,
    /// Print one JSON object per line on standard output for every session
    /// event: timestamp, session, call_id, event, and status, cause, tone
    /// when they apply.
    #[arg(long, env = "SIPACT_EVENTS", value_enum, value_name = "FORMAT")]
    pub events: Option<EventsFormat>,
    /// Print the ladder diagram of each finished call on standard output
    /// (its lines never start with `{`, JSON event lines always do).
    #[arg(long, env = "SIPACT_LADDER")]
    pub ladder: bool,
    /// Write every SIP message sent and received to this pcap file
    /// (Ethernet/IPv4 or IPv6/UDP or TCP headers synthesized around it).
    #[arg(long, env = "SIPACT_PCAP", value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// TOML file with options and user agent settings.
    #[arg(long, env = "SIPACT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The options a `--config` file may set, besides the user agent settings
/// that `UaConfig::load` reads from the same file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileOptions {
    pub bind: Option<SocketAddr>,
    pub transport: Option<Transport>,
    pub rel100: Option<Rel100>,
    pub events: Option<EventsFormat>,
    pub ladder: Option<bool>,
    pub pcap: Option<PathBuf>,
    // listen
    pub answer: Option<String>,
    pub max_calls: Option<u64>,
    // call
    pub from: Option<String>,
    pub dtmf: Option<String>,
    pub hold_after: Option<f64>,
    pub unhold_after: Option<f64>,
    pub refer: Option<String>,
    pub hangup_after: Option<f64>,
    pub timeout: Option<f64>,
    // register
    pub expires: Option<u32>,
}

/// A failure with its exit status and message.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// What to print on standard error.
    pub message: String,
}

impl Failure {
    /// A failure.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }
    /// Bad arguments or configuration.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(exit::USAGE, message)
    }
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Bind { .. } => Failure::new(exit::LOCAL, e.to_string()),
            other => Failure::usage(other.to_string()),
        }
    }
}

/// Reads the command's own options from the `--config` file.
pub fn file_options(path: Option<&std::path::Path>) -> Result<FileOptions, Failure> {
    let Some(p) = path else { return Ok(FileOptions::default()) };
    let c = config::Config::builder()
        .add_source(config::File::from(p).format(config::FileFormat::Toml).required(true))
        .build()
        .map_err(|e| Failure::usage(format!("configuration: {e}")))?;
    c.try_deserialize().map_err(|e| Failure::usage(format!("configuration: {e}")))
}

/// The resolved shared options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// User agent settings.
    pub ua: UaConfig,
    /// `--events json`.
    pub events: bool,
    /// `--ladder`.
    pub ladder: bool,
    /// `--pcap`.
    pub pcap: Option<PathBuf>,
}

/// Builds the user agent configuration: defaults, the `--config` file and
/// `SIPACT_*` variables (through `UaConfig::load`), then the options.
pub fn settings(common: &Common, file: &FileOptions, default_bind: SocketAddr) -> Result<Settings, Failure> {
    let mut ua = UaConfig::load(common.config.as_deref())?;
    ua.bind = common.bind.or(file.bind).unwrap_or(default_bind);
    if let Some(t) = common.transport.or(file.transport) {
        ua.transport = t.token().into();
        // The stream transport listens on the --bind port (UDP too, always).
        let port = ua.bind.port();
        match t {
            Transport::Udp => {}
            Transport::Tcp if ua.tcp_port == 0 => ua.tcp_port = port,
            Transport::Ws if ua.ws_port == 0 => ua.ws_port = port,
            Transport::Tls if ua.tls_port == 0 => ua.tls_port = port,
            _ => {}
        }
    }
    if let Some(r) = common.rel100.or(file.rel100) {
        ua.rel100 = r.token().into();
    }
    // `media` in the file or SIPACT_MEDIA are read by UaConfig::load.
    match common.media {
        Some(Media::Webrtc) => ua.media = "webrtc".into(),
        Some(Media::Rtp) => ua.media = "rtp".into(),
        Some(Media::Auto) => ua.media = "auto".into(),
        Some(Media::None) => ua.media = "none".into(),
        Some(Media::Signalling) => ua.media = "signalling".into(),
        None => {}
    }
    Ok(Settings {
        ua,
        events: common.events.or(file.events).is_some(),
        ladder: common.ladder || file.ladder.unwrap_or(false),
        pcap: common.pcap.clone().or_else(|| file.pcap.clone()),
    })
}

/// A seconds value from the command line: finite, not negative.
pub fn seconds(name: &str, v: Option<f64>) -> Result<Option<std::time::Duration>, Failure> {
    match v {
        None => Ok(None),
        Some(s) if (0.0..1e9).contains(&s) => Ok(Some(std::time::Duration::from_secs_f64(s))),
        Some(s) => Err(Failure::usage(format!("--{name} must be a number of seconds, not {s}"))),
    }
}

/// Runs the command line.
pub fn main() -> ExitCode {
    // Logs go to standard error, filtered by RUST_LOG (default: warnings).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Parse { file, canonical } => return parse::run(file.as_deref(), canonical),
        Command::Demo => (
            "demo",
            run_ua(|| async {
                let report = sipact::demo::run().await;
                print!("{}", report.render());
                if report.passed() {
                    Ok(())
                } else {
                    Err(Failure::new(exit::FAILED, "some steps did not happen (see above)"))
                }
            }),
        ),
        Command::Listen(a) => ("listen", run_ua(move || listen::run(a))),
        Command::Call(a) => ("call", run_ua(move || call::run(a))),
        Command::Register(a) => ("register", run_ua(move || register::run(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("sipact {name}: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Runs an async command inside an actix system of its own.
fn run_ua<F, Fut>(f: F) -> Result<(), Failure>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let sys = actix_rt::System::new();
    sys.block_on(f())
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
