//! The public `UserAgent`: configuration (config crate: defaults, a TOML
//! file, then `SIPACT_*` environment variables), the actor wiring, and the
//! UA-level API (invite, incoming, register, OPTIONS, MESSAGE, shutdown).

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use sipact_message::Method;
use sipact_proto::register::RegEvent;
use sipact_proto::session::{Body, DescriptionHooks, Rel100};
use sipact_proto::transaction::TimerConfig;
use sipact_proto::transport::TransportKind;
use sipact_proto::ua::{CoreConfig, HooksContext, HooksFactory, InviteOptions, UserAgentCore};
use sipact_proto::{Credentials, UaError};
use tokio::sync::mpsc;
use tokio_stream::Stream;

use crate::media::{AudioFactory, MediaSetup, PendingMedia, bind_rtp, lock};
use sipact_media::audio::{AudioSink, AudioSource, NullSink, RATE_8K, Silence};
use sipact_media::handler::{HandlerContext, HandlerHooks, NoneHandler, RtpHandler, SessionDescriptionHandlerFactory};
use sipact_media::offer_answer::LocalMedia;
use sipact_media::rtp::RtpConfig;
use sipact_media::webrtc::{WebRtcConfig, WebRtcHandler, is_webrtc_offer};

use crate::dialog::{
    DialogActor, Invite, ListSessions, MediaWiring, OutOfDialog, Register, Shutdown, SubscribeIncoming,
    SubscribeRegistration,
};
use crate::sdp::SignallingSdp;
use crate::session::Session;
use crate::transaction::TransactionActor;
use crate::transport::tcp::bind_listener;
use crate::transport::{
    CloseFlows, ListFlows, ListenerKind, SetConnector, SetUdp, Sinks, StreamConnector, TcpListenerActor,
    TransportRegistry, UdpTransport,
};

/// User agent settings. Load them with [`UaConfig::load`]; every field has
/// a default, so an empty file (or none) works.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UaConfig {
    /// User part of our address of record and Contact.
    pub user: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Domain of our address of record (default: the bound address).
    pub domain: Option<String>,
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Transport named in Via and Contact: `udp`, `tcp`, `tls`, `ws` or
    /// `wss`. It is listened on even when [`UaConfig::listen`] omits it.
    pub transport: String,
    /// Transports to listen on: any of `udp`, `tcp`, `tls`, `ws`, `wss`.
    /// UDP is always bound (on [`UaConfig::bind`]); the others on the IP of
    /// `bind` with their own port setting.
    pub listen: Vec<String>,
    /// TCP listening port; 0 picks a free one.
    pub tcp_port: u16,
    /// TLS listening port; 0 picks a free one.
    pub tls_port: u16,
    /// WebSocket listening port; 0 picks a free one.
    pub ws_port: u16,
    /// Secure WebSocket listening port; 0 picks a free one.
    pub wss_port: u16,
    /// TLS certificate chain (PEM), for the TLS and WSS listeners.
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM), for the TLS and WSS listeners.
    pub tls_key: Option<std::path::PathBuf>,
    /// CA certificates (PEM) trusted for outgoing TLS and WSS connections;
    /// without it they fail.
    pub tls_ca: Option<std::path::PathBuf>,
    /// T1 in ms (RFC 3261 default 500).
    pub t1_ms: u64,
    /// T2 in ms (default 4000).
    pub t2_ms: u64,
    /// T4 in ms (default 5000).
    pub t4_ms: u64,
    /// RFC 3262 policy: `unsupported`, `supported` or `required`.
    pub rel100: String,
    /// Session-Expires to ask for (RFC 4028); absent turns session timers off.
    pub session_expires: Option<u32>,
    /// Smallest session interval accepted.
    pub min_se: u32,
    /// User-Agent / Server header.
    pub user_agent: String,
    /// Digest username.
    pub username: Option<String>,
    /// Digest password (never logged).
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Send all out-of-dialog requests to this address (`host:port`).
    pub outbound_proxy: Option<SocketAddr>,
    /// Session media: `webrtc` (the default: ICE host candidates on the
    /// bind address, DTLS-SRTP, G.711 and Opus, telephone-event, through
    /// str0m; one WebRTC media actor per session), `rtp` (plain RTP/AVP
    /// audio, PCMU/PCMA and telephone-event, for SIP trunks and desk
    /// phones; one media actor per session), `auto` (a gateway's choice:
    /// WebRTC for outgoing calls and for incoming offers that ask for
    /// DTLS-SRTP, plain RTP for other incoming offers),
    /// `signalling` (SDP announcing audio on port 4000, no media) or
    /// `none` (the media crate's `NoneHandler`: SDP on the discard port 9,
    /// no sockets, for load generation).
    pub media: String,
    /// How `Session::dtmf` sends: `info` (SIP INFO, the default) or
    /// `rfc4733` (telephone-events in the RTP stream, when negotiated).
    pub dtmf: String,
    /// Hang up (BYE, `Cause::RtpTimeout`) after this many ms without RTP
    /// or RTCP from the peer while its media is expected; off when absent.
    pub rtp_timeout_ms: Option<u64>,
    /// Play back what is heard (an echo), unless the application gives
    /// its own audio with [`UserAgent::start_with_media`].
    pub echo: bool,
    /// WebRTC media: open a data channel with this label in our offers
    /// (see [`Session::send_data`](crate::Session::send_data)). A channel
    /// the peer offers is accepted either way.
    pub data_channel: Option<String>,
    /// The application's own description handlers (SIP.js
    /// `sessionDescriptionHandlerFactory`): when set, each session gets a
    /// handler from it instead of the built-in [`media`](Self::media)
    /// kinds, and the handler does its own media I/O (no media actor).
    /// Not read from files or the environment.
    #[serde(skip)]
    pub handler_factory: Option<HandlerFactory>,
}

/// A [`SessionDescriptionHandlerFactory`] in a [`UaConfig`]; two are equal
/// when they are the same factory.
#[derive(Clone)]
pub struct HandlerFactory(pub Arc<dyn SessionDescriptionHandlerFactory>);

impl PartialEq for HandlerFactory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for HandlerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandlerFactory(..)")
    }
}

/// Description hooks over a handler from the application's factory; when
/// the factory fails, every offer and answer fails with its status.
fn factory_hooks(factory: &HandlerFactory, ip: std::net::IpAddr, c: &HooksContext) -> Box<dyn DescriptionHooks> {
    let context = HandlerContext {
        address: ip,
        port: 0,
        session_id: u64::from(rand::random::<u32>()),
        ssrc: rand::random(),
        inbound: c.inbound,
    };
    match factory.0.create(&context) {
        Ok(handler) => Box::new(HandlerHooks::new(handler)),
        Err(e) => {
            tracing::warn!(session = c.session, error = %e, "the handler factory failed");
            Box::new(FailedHooks(e.status()))
        }
    }
}

/// Hooks whose every offer and answer fails with one status.
#[derive(Debug)]
struct FailedHooks(u16);

impl DescriptionHooks for FailedHooks {
    fn offer(&mut self, _hold: bool) -> Result<Body, u16> {
        Err(self.0)
    }
    fn answer(&mut self, _offer: &Body, _hold: bool) -> Result<Body, u16> {
        Err(self.0)
    }
    fn apply_answer(&mut self, _answer: &Body) -> Result<(), u16> {
        Err(self.0)
    }
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            user: "sipact".into(),
            display_name: None,
            domain: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transport: "udp".into(),
            listen: vec!["udp".into()],
            tcp_port: 0,
            tls_port: 0,
            ws_port: 0,
            wss_port: 0,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            rel100: "supported".into(),
            session_expires: None,
            min_se: 90,
            user_agent: concat!("sipact/", env!("CARGO_PKG_VERSION")).into(),
            username: None,
            password: None,
            outbound_proxy: None,
            media: "webrtc".into(),
            dtmf: "info".into(),
            rtp_timeout_ms: None,
            echo: false,
            data_channel: None,
            handler_factory: None,
        }
    }
}

impl std::fmt::Debug for UaConfig {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UaConfig")
            .field("user", &self.user)
            .field("display_name", &self.display_name)
            .field("domain", &self.domain)
            .field("bind", &self.bind)
            .field("transport", &self.transport)
            .field("listen", &self.listen)
            .field("tcp_port", &self.tcp_port)
            .field("tls_port", &self.tls_port)
            .field("ws_port", &self.ws_port)
            .field("wss_port", &self.wss_port)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_ca", &self.tls_ca)
            .field("t1_ms", &self.t1_ms)
            .field("t2_ms", &self.t2_ms)
            .field("t4_ms", &self.t4_ms)
            .field("rel100", &self.rel100)
            .field("session_expires", &self.session_expires)
            .field("min_se", &self.min_se)
            .field("user_agent", &self.user_agent)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("outbound_proxy", &self.outbound_proxy)
            .field("media", &self.media)
            .field("dtmf", &self.dtmf)
            .field("rtp_timeout_ms", &self.rtp_timeout_ms)
            .field("echo", &self.echo)
            .field("data_channel", &self.data_channel)
            .field("handler_factory", &self.handler_factory)
            .finish()
    }
}

/// Why a user agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration could not be read or has a bad value.
    #[error("configuration: {0}")]
    Config(String),
    /// The transport could not bind.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or CA could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] crate::transport::tls::TlsSetupError),
    /// Not inside an actix system (use [`UserAgent::spawn`]).
    #[error("no actix system is running on this thread")]
    NoSystem,
}

impl UaConfig {
    /// Defaults, then the TOML file `path` (if given), then `SIPACT_*`
    /// environment variables (`SIPACT_USER=alice`, `SIPACT_BIND=...`).
    pub fn load(path: Option<&Path>) -> Result<UaConfig, StartError> {
        let defaults = config::Config::try_from(&UaConfig::default()).map_err(|e| StartError::Config(e.to_string()))?;
        let mut b = config::Config::builder().add_source(defaults);
        if let Some(p) = path {
            b = b.add_source(config::File::from(p).format(config::FileFormat::Toml).required(true));
        }
        b = b.add_source(config::Environment::with_prefix("SIPACT").try_parsing(true));
        let c = b.build().map_err(|e| StartError::Config(e.to_string()))?;
        let cfg: UaConfig = c.try_deserialize().map_err(|e| StartError::Config(e.to_string()))?;
        let (t, _) = cfg.core_parts()?;
        cfg.stream_listens(t)?;
        cfg.media_parts()?;
        Ok(cfg)
    }

    /// The media kind and whether DTMF goes as RFC 4733 telephone-events.
    fn media_parts(&self) -> Result<(MediaMode, bool), StartError> {
        let media = match self.media.trim().to_ascii_lowercase().as_str() {
            "rtp" => MediaMode::Rtp,
            "webrtc" => MediaMode::WebRtc,
            "auto" => MediaMode::Auto,
            "signalling" | "signaling" => MediaMode::Signalling,
            "none" => MediaMode::None,
            other => {
                return Err(StartError::Config(format!(
                    "media must be webrtc, rtp, auto, signalling or none, not {other:?}"
                )));
            }
        };
        let rfc4733 = match self.dtmf.trim().to_ascii_lowercase().as_str() {
            "info" => false,
            "rfc4733" | "rfc2833" => true,
            other => return Err(StartError::Config(format!("dtmf must be info or rfc4733, not {other:?}"))),
        };
        Ok((media, rfc4733))
    }

    /// The transports to listen on besides UDP, each once, including the
    /// Via/Contact transport.
    fn stream_listens(&self, contact: TransportKind) -> Result<Vec<TransportKind>, StartError> {
        let mut v = Vec::new();
        for name in &self.listen {
            let t = TransportKind::from_token(name.trim())
                .ok_or_else(|| StartError::Config(format!("unknown transport {name:?} in listen")))?;
            if t != TransportKind::Udp && !v.contains(&t) {
                v.push(t);
            }
        }
        if contact != TransportKind::Udp && !v.contains(&contact) {
            v.push(contact);
        }
        Ok(v)
    }

    /// The listening port configured for a stream transport.
    fn port_for(&self, t: TransportKind) -> u16 {
        match t {
            TransportKind::Udp => self.bind.port(),
            TransportKind::Tcp => self.tcp_port,
            TransportKind::Tls => self.tls_port,
            TransportKind::Ws => self.ws_port,
            TransportKind::Wss => self.wss_port,
        }
    }

    fn core_parts(&self) -> Result<(TransportKind, Rel100), StartError> {
        let t = TransportKind::from_token(&self.transport)
            .ok_or_else(|| StartError::Config(format!("unknown transport {:?}", self.transport)))?;
        let r = match self.rel100.to_ascii_lowercase().as_str() {
            "unsupported" | "none" => Rel100::Unsupported,
            "supported" => Rel100::Supported,
            "required" => Rel100::Required,
            other => {
                return Err(StartError::Config(format!(
                    "rel100 must be unsupported, supported or required, not {other:?}"
                )));
            }
        };
        Ok((t, r))
    }

    fn core_config(&self, local: SocketAddr) -> Result<CoreConfig, StartError> {
        let (transport, rel100) = self.core_parts()?;
        let mut c = CoreConfig::new(transport, local, &self.user);
        c.display = self.display_name.clone();
        c.domain = self.domain.clone();
        c.tx.timers = TimerConfig {
            t1: Duration::from_millis(self.t1_ms),
            t2: Duration::from_millis(self.t2_ms),
            t4: Duration::from_millis(self.t4_ms),
            ..TimerConfig::default()
        };
        c.rel100 = rel100;
        c.session_expires = self.session_expires;
        c.min_se = self.min_se;
        c.user_agent = Some(self.user_agent.clone());
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            c.credentials.push(Credentials::new(u.clone(), p.clone()));
        }
        c.outbound_proxy = self.outbound_proxy.map(|a| sipact_proto::transport::Peer::new(transport, a));
        Ok(c)
    }
}

/// The session media of [`UaConfig::media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaMode {
    Rtp,
    WebRtc,
    Auto,
    Signalling,
    None,
}

/// The description hooks of a session with plain RTP media: its sockets
/// are bound now (the SDP names the port) and left in `pending` for the
/// dialog actor, which starts the session's media actor with them.
fn rtp_hooks(
    ip: std::net::IpAddr,
    ctx: &HooksContext,
    rtp_timeout: Option<Duration>,
    pending: &PendingMedia,
) -> Box<dyn DescriptionHooks> {
    let session_id = u64::from(rand::random::<u32>());
    match bind_rtp(ip) {
        Ok((rtp, rtcp)) => {
            let port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
            let config = RtpConfig {
                rtp_timeout,
                initial_sequence: rand::random(),
                initial_timestamp: rand::random(),
                wallclock: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
                ..RtpConfig::pcmu(rand::random())
            };
            let handler =
                Arc::new(std::sync::Mutex::new(RtpHandler::new(LocalMedia::audio(ip, port), session_id, config)));
            lock(pending).insert(ctx.session, MediaSetup::Rtp { rtp, rtcp, handler: handler.clone() });
            Box::new(HandlerHooks::new(handler))
        }
        Err(e) => {
            tracing::warn!(session = ctx.session, error = %e, "cannot bind an RTP socket: no media");
            Box::new(HandlerHooks::new(NoneHandler::new(ip, DISCARD_PORT, session_id)))
        }
    }
}

/// The description hooks of a session with WebRTC media: its socket is
/// bound now (the SDP names it as the ICE host candidate) and left in
/// `pending` with the handler for the dialog actor, which starts the
/// session's WebRTC media actor with them.
fn webrtc_hooks(
    ip: std::net::IpAddr,
    ctx: &HooksContext,
    config: WebRtcConfig,
    pending: &PendingMedia,
) -> Box<dyn DescriptionHooks> {
    let made = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).and_then(|socket| {
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        Ok((socket, local))
    });
    let made = made.map_err(|e| e.to_string()).and_then(|(socket, local)| {
        let handler = WebRtcHandler::new(config, &[local], std::time::Instant::now()).map_err(|e| e.to_string())?;
        Ok((socket, handler))
    });
    match made {
        Ok((socket, handler)) => {
            let handler = Arc::new(std::sync::Mutex::new(handler));
            lock(pending).insert(ctx.session, MediaSetup::WebRtc { socket, handler: handler.clone() });
            Box::new(HandlerHooks::new(handler))
        }
        Err(e) => {
            tracing::warn!(session = ctx.session, error = %e, "cannot set up WebRTC media: no media");
            Box::new(HandlerHooks::new(NoneHandler::new(ip, DISCARD_PORT, u64::from(rand::random::<u32>()))))
        }
    }
}

/// The port announced when no media is received (RFC 863 discard).
const DISCARD_PORT: u16 = 9;

/// Randomness for tags, branches and digest nonces: ChaCha seeded by the OS.
struct OsSeededRng(rand::rngs::StdRng);

impl sipact_proto::Rng for OsSeededRng {
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }
}

/// Silence and a discarding sink, or an echo.
fn default_audio(echo: bool) -> AudioFactory {
    Arc::new(move |_| {
        if echo {
            let (sink, source) = sipact_media::audio::echo(RATE_8K);
            (Box::new(source) as Box<dyn AudioSource>, Box::new(sink) as Box<dyn AudioSink>)
        } else {
            (
                Box::new(Silence::new(RATE_8K)) as Box<dyn AudioSource>,
                Box::new(NullSink::new(RATE_8K)) as Box<dyn AudioSink>,
            )
        }
    })
}

/// A stream of inbound sessions.
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<crate::session::SessionInfo>,
    ua: UserAgent,
}

impl Stream for Incoming {
    type Item = Session;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Session>> {
        let ua = self.ua.clone();
        self.rx.poll_recv(cx).map(|o| o.map(|i| Session::from_info(i, ua)))
    }
}

impl Incoming {
    /// The next inbound session.
    pub async fn next(&mut self) -> Option<Session> {
        let info = self.rx.recv().await?;
        Some(Session::from_info(info, self.ua.clone()))
    }
}

/// A SIP user agent: a cloneable handle around the actor addresses.
#[derive(Clone)]
pub struct UserAgent {
    core: Addr<DialogActor>,
    transactions: Addr<TransactionActor>,
    registry: Addr<TransportRegistry>,
    udp: Addr<UdpTransport>,
    listeners: Arc<Vec<(TransportKind, SocketAddr, Addr<TcpListenerActor>)>>,
    udp_addr: SocketAddr,
    local: SocketAddr,
    transport: TransportKind,
    config: Arc<UaConfig>,
}

impl std::fmt::Debug for UserAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAgent").field("local", &self.local).field("user", &self.config.user).finish()
    }
}

fn resolve_port(addr: SocketAddr) -> Result<SocketAddr, StartError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    // Pick a free port now so that Via and Contact can name it; the
    // transport binds it right after (with SO_REUSEADDR).
    let s = std::net::UdpSocket::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
    s.local_addr().map_err(|source| StartError::Bind { addr, source })
}

impl UserAgent {
    /// Starts a user agent inside the current actix system, with the
    /// media of [`UaConfig::media`] (or the handlers of
    /// [`UaConfig::handler_factory`]).
    pub fn start(config: UaConfig) -> Result<UserAgent, StartError> {
        UserAgent::start_with(config, None)
    }

    /// Starts a user agent whose sessions get description hooks from
    /// `factory` (without one, from [`UaConfig::media`]). Hooks of the
    /// application's own have no media actor.
    pub fn start_with(config: UaConfig, factory: Option<HooksFactory>) -> Result<UserAgent, StartError> {
        UserAgent::start_inner(config, factory, None)
    }

    /// Starts a user agent with plain RTP or WebRTC media whose audio
    /// comes from the application: `audio` is called once per session with
    /// its id and returns the source played to the peer and the sink for
    /// what the peer sends (8 kHz mono frames of 20 ms).
    /// [`UaConfig::media`] must be `webrtc`, `rtp` or `auto`.
    pub fn start_with_media(config: UaConfig, audio: AudioFactory) -> Result<UserAgent, StartError> {
        if !matches!(config.media_parts()?.0, MediaMode::Rtp | MediaMode::WebRtc | MediaMode::Auto) {
            return Err(StartError::Config("start_with_media needs media = \"webrtc\", \"rtp\" or \"auto\"".into()));
        }
        UserAgent::start_inner(config, None, Some(audio))
    }

    /// Starts a user agent whose every session description passes through
    /// `modifiers` (SIP.js `modifiers`, UA-wide: outgoing descriptions
    /// after the handler made them, incoming ones before it sees them).
    /// Per-call modifiers go in [`InviteOptions::modifiers`].
    pub fn start_with_modifiers(
        config: UaConfig,
        modifiers: Vec<sipact_proto::ua::DescriptionModifier>,
    ) -> Result<UserAgent, StartError> {
        UserAgent::start_full(config, None, None, modifiers)
    }

    fn start_inner(
        config: UaConfig,
        factory: Option<HooksFactory>,
        audio: Option<AudioFactory>,
    ) -> Result<UserAgent, StartError> {
        UserAgent::start_full(config, factory, audio, Vec::new())
    }

    fn start_full(
        config: UaConfig,
        factory: Option<HooksFactory>,
        audio: Option<AudioFactory>,
        modifiers: Vec<sipact_proto::ua::DescriptionModifier>,
    ) -> Result<UserAgent, StartError> {
        if actix::System::try_current().is_none() {
            return Err(StartError::NoSystem);
        }
        let (transport, _) = config.core_parts()?;
        let streams = config.stream_listens(transport)?;
        let udp_addr = resolve_port(config.bind)?;
        // Fail early and clearly if the address cannot be bound.
        drop(std::net::UdpSocket::bind(udp_addr).map_err(|source| StartError::Bind { addr: udp_addr, source })?);
        // Bind the stream listeners now, so that their ports are known for
        // Via and Contact and bind errors surface here.
        let mut bound = Vec::new();
        for t in streams {
            let addr = SocketAddr::new(config.bind.ip(), config.port_for(t));
            let l = bind_listener(addr).map_err(|source| StartError::Bind { addr, source })?;
            let at = l.local_addr().map_err(|source| StartError::Bind { addr, source })?;
            bound.push((t, at, l));
        }
        let local = match transport {
            TransportKind::Udp => udp_addr,
            t => bound.iter().find(|(k, _, _)| *k == t).map(|(_, a, _)| *a).unwrap_or(udp_addr),
        };
        let needs_tls = bound.iter().any(|(t, _, _)| matches!(t, TransportKind::Tls | TransportKind::Wss));
        let acceptor = if needs_tls {
            match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => Some(crate::transport::tls::acceptor(c, k)?),
                _ => return Err(StartError::Config("tls and wss listeners need tls_cert and tls_key".into())),
            }
        } else {
            None
        };
        let tls_client = crate::transport::tls::connector(config.tls_ca.as_deref())?;
        let mut core_config = config.core_config(local)?;
        // Sessions and requests over another transport name it in Via and Contact.
        core_config.modifiers = modifiers;
        core_config.locals.push((TransportKind::Udp, udp_addr));
        core_config.locals.extend(bound.iter().map(|(t, a, _)| (*t, *a)));
        let ip = local.ip();
        let (mode, rfc4733) = config.media_parts()?;
        let mut media = None;
        let factory: HooksFactory = match (factory, config.handler_factory.clone(), mode) {
            (Some(f), _, _) => f,
            (None, Some(f), _) => Box::new(move |c: &HooksContext| factory_hooks(&f, ip, c)),
            (None, None, MediaMode::Signalling) => Box::new(move |c: &HooksContext| {
                Box::new(SignallingSdp::new(ip, 4000, c.session + 1)) as Box<dyn DescriptionHooks>
            }),
            (None, None, MediaMode::None) => Box::new(move |c: &HooksContext| {
                Box::new(HandlerHooks::new(NoneHandler::new(ip, DISCARD_PORT, c.session + 1)))
                    as Box<dyn DescriptionHooks>
            }),
            (None, None, MediaMode::Rtp | MediaMode::WebRtc | MediaMode::Auto) => {
                let pending = PendingMedia::default();
                let echo = config.echo;
                let audio = audio.unwrap_or_else(|| default_audio(echo));
                media = Some(MediaWiring { pending: pending.clone(), audio, rfc4733 });
                let timeout = config.rtp_timeout_ms.map(Duration::from_millis);
                let data_channel = config.data_channel.clone();
                Box::new(move |c: &HooksContext| {
                    let webrtc = match mode {
                        MediaMode::WebRtc => true,
                        MediaMode::Auto => c.offer.as_ref().is_none_or(|o| is_webrtc_offer(&o.data)),
                        _ => false,
                    };
                    if webrtc {
                        let config = WebRtcConfig {
                            rtp_timeout: timeout,
                            data_channel: data_channel.clone(),
                            ..WebRtcConfig::default()
                        };
                        webrtc_hooks(ip, c, config, &pending)
                    } else {
                        rtp_hooks(ip, c, timeout, &pending)
                    }
                })
            }
        };
        let rng = OsSeededRng(rand::SeedableRng::from_os_rng());
        let layer = sipact_proto::TransactionLayer::new(core_config.tx.clone());
        let core = UserAgentCore::new_external(core_config, Box::new(rng), factory);

        // transport -> transaction actor -> dialog actor -> session actor.
        let core_ctx: Context<DialogActor> = Context::new();
        let core_addr = core_ctx.address();
        let tx_ctx: Context<TransactionActor> = Context::new();
        let tx_addr = tx_ctx.address();
        let registry =
            TransportRegistry::new(tx_addr.clone().recipient()).with_assigned_sink(tx_addr.clone().recipient()).start();
        let sink = tx_addr.clone().recipient();
        let udp = actix::Supervisor::start(move |_| UdpTransport::new(udp_addr, sink, None));
        registry.do_send(SetUdp(udp.clone().recipient()));
        let sinks = Sinks { received: tx_addr.clone().recipient(), registry: registry.clone() };
        registry.do_send(SetConnector(Box::new(StreamConnector::new(sinks.clone()).with_tls(tls_client))));
        let mut listeners = Vec::new();
        for (t, at, l) in bound {
            let kind = match (t, &acceptor) {
                (TransportKind::Tcp, _) => ListenerKind::Tcp,
                (TransportKind::Ws, _) => ListenerKind::Ws,
                (TransportKind::Tls, Some(a)) => ListenerKind::Tls(a.clone()),
                (TransportKind::Wss, Some(a)) => ListenerKind::Wss(a.clone()),
                _ => continue,
            };
            let actor = TcpListenerActor::from_std(l, kind, sinks.clone())
                .map_err(|source| StartError::Bind { addr: at, source })?;
            listeners.push((t, at, actix::Supervisor::start(move |_| actor)));
        }
        tx_ctx.run(TransactionActor::new(layer, registry.clone(), core_addr.clone().recipient()));
        let mut core_actor = DialogActor::new(core, tx_addr.clone());
        if let Some(m) = media {
            core_actor = core_actor.with_media(m);
        }
        core_ctx.run(core_actor);
        tracing::info!(%local, %transport, user = %config.user, "user agent started");
        Ok(UserAgent {
            core: core_addr,
            transactions: tx_addr,
            registry,
            udp,
            listeners: Arc::new(listeners),
            udp_addr,
            local,
            transport,
            config: Arc::new(config),
        })
    }

    /// Starts a user agent on a thread of its own running its own actix
    /// system (for applications without one).
    pub fn spawn(config: UaConfig) -> Result<UserAgent, StartError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sipact".into())
            .spawn(move || {
                let sys = actix::System::new();
                sys.block_on(async move {
                    let _ = tx.send(UserAgent::start(config));
                });
                let _ = sys.run();
            })
            .map_err(|e| StartError::Config(format!("cannot start the sipact thread: {e}")))?;
        rx.recv().map_err(|_| StartError::NoSystem)?
    }

    /// The address of the Via/Contact transport ([`UaConfig::transport`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The Via/Contact transport.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// The address a transport listens on (`None` if not listening on it).
    pub fn addr(&self, transport: TransportKind) -> Option<SocketAddr> {
        match transport {
            TransportKind::Udp => Some(self.udp_addr),
            t => self.listeners.iter().find(|(k, _, _)| *k == t).map(|(_, a, _)| *a),
        }
    }

    /// Our SIP URI over a given transport (`sip:user@host:port;transport=tcp`),
    /// `None` if not listening on it.
    pub fn uri_for(&self, transport: TransportKind) -> Option<String> {
        let a = self.addr(transport)?;
        Some(match transport {
            TransportKind::Udp => format!("sip:{}@{}", self.config.user, a),
            t => format!("sip:{}@{};transport={}", self.config.user, a, t.via_token().to_ascii_lowercase()),
        })
    }

    /// Closes live connections (each reports its flow closed: client
    /// transactions pinned to it end, dialogs live on). `None` closes
    /// every connection. Returns how many were closed.
    pub async fn close_connections(&self, transport: Option<TransportKind>) -> usize {
        let m = match transport {
            Some(t) => CloseFlows::Kind(t),
            None => CloseFlows::All,
        };
        self.registry.send(m).await.unwrap_or(0)
    }

    /// The live connections: flow, kind and remote address.
    pub async fn connections(&self) -> Vec<(sipact_proto::transport::FlowId, TransportKind, SocketAddr)> {
        self.registry.send(ListFlows).await.unwrap_or_default()
    }

    /// The configuration.
    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// Our SIP URI over the Via/Contact transport (`sip:user@host:port`,
    /// with `;transport=` for the stream transports).
    pub fn uri(&self) -> String {
        self.uri_for(self.transport).unwrap_or_else(|| format!("sip:{}@{}", self.config.user, self.local))
    }

    /// Calls `target` (a SIP URI, or `user@host`). The INVITE is on its way
    /// when this returns.
    pub async fn invite(&self, target: &str, opts: InviteOptions) -> Result<Session, UaError> {
        let info = self
            .core
            .send(Invite { target: target.to_owned(), opts })
            .await
            .map_err(|_| UaError::Transaction("user agent stopped".into()))??;
        Ok(Session::from_info(info, self.clone()))
    }

    /// Inbound sessions, from now on. While nobody listens, calls are
    /// declined with 480.
    pub fn incoming(&self) -> Incoming {
        let (tx, rx) = mpsc::unbounded_channel();
        self.core.do_send(SubscribeIncoming(tx));
        Incoming { rx, ua: self.clone() }
    }

    /// Every SIP message sent or received, from now on.
    pub fn wire(&self) -> mpsc::UnboundedReceiver<crate::transaction::WireRecord> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.transactions.do_send(crate::transaction::SubscribeWire(tx));
        rx
    }

    /// Registration events, from now on.
    pub fn registrations(&self) -> mpsc::UnboundedReceiver<RegEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.core.do_send(SubscribeRegistration(tx));
        rx
    }

    /// Registers with `registrar` for `expires` seconds, refreshing until
    /// [`UserAgent::unregister`].
    pub async fn register(&self, registrar: &str, expires: u32) -> Result<(), UaError> {
        self.core
            .send(Register { registrar: Some(registrar.to_owned()), expires })
            .await
            .map_err(|_| UaError::Transaction("user agent stopped".into()))?
    }

    /// Removes the registration.
    pub async fn unregister(&self) -> Result<(), UaError> {
        self.core
            .send(Register { registrar: None, expires: 0 })
            .await
            .map_err(|_| UaError::Transaction("user agent stopped".into()))?
    }

    async fn out_of_dialog(&self, method: Method, target: &str, body: Option<Body>) -> Result<u16, UaError> {
        let rx = self
            .core
            .send(OutOfDialog { method, target: target.to_owned(), body })
            .await
            .map_err(|_| UaError::Transaction("user agent stopped".into()))??;
        rx.await.map_err(|_| UaError::Transaction("user agent stopped".into()))
    }

    /// Sends OPTIONS; returns the final status (408 on timeout).
    pub async fn options(&self, target: &str) -> Result<u16, UaError> {
        self.out_of_dialog(Method::Options, target, None).await
    }

    /// Sends a MESSAGE with a `text/plain` body; returns the final status.
    pub async fn message(&self, target: &str, text: &str) -> Result<u16, UaError> {
        let body = Body {
            content_type: sipact_message::MediaType::new("text", "plain"),
            data: bytes::Bytes::copy_from_slice(text.as_bytes()),
        };
        self.out_of_dialog(Method::Message, target, Some(body)).await
    }

    /// Ids of live sessions.
    pub async fn sessions(&self) -> Vec<u64> {
        self.core.send(ListSessions).await.unwrap_or_default()
    }

    /// Ends every session (BYE, CANCEL, or 480), unregisters, waits until
    /// all are over (at most about 35 s), then closes the transports and
    /// stops the dialog and transaction actors: the handle is unusable
    /// afterwards.
    pub async fn shutdown(&self) {
        let _ = self.core.send(Shutdown).await;
        // Then stop: connections closed, listeners and the UDP socket
        // released (their ports are free again), the actors stopped.
        let _ = self.registry.send(crate::transport::CloseFlows::All).await;
        for (_, _, l) in self.listeners.iter() {
            let _ = l.send(crate::messages::Close).await;
        }
        let _ = self.udp.send(crate::messages::Close).await;
        let _ = self.core.send(crate::messages::Stop).await;
        let _ = self.transactions.send(crate::messages::Stop).await;
    }

    /// The dialog actor (dialogs, sessions, registration; see
    /// [`DialogActor`]).
    pub fn dialog_actor(&self) -> &Addr<DialogActor> {
        &self.core
    }

    /// The transaction actor (every transaction and its timers; see
    /// [`TransactionActor`]).
    pub fn transaction_actor(&self) -> &Addr<TransactionActor> {
        &self.transactions
    }

    /// The transport registry.
    pub fn registry(&self) -> &Addr<TransportRegistry> {
        &self.registry
    }

    /// Makes the UDP transport fail as on a socket error (it restarts and
    /// rebinds the same address).
    #[cfg(feature = "fault-injection")]
    pub fn fail_udp(&self) {
        self.udp.do_send(crate::messages::InjectFault);
    }

    /// Makes the listener of a stream transport fail as on a socket error
    /// (it restarts and rebinds the same address; live connections stay).
    #[cfg(feature = "fault-injection")]
    pub fn fail_listener(&self, transport: TransportKind) {
        for (t, _, l) in self.listeners.iter() {
            if *t == transport {
                l.do_send(crate::messages::InjectFault);
            }
        }
    }

    /// Makes the TCP listener fail as on a socket error.
    #[cfg(feature = "fault-injection")]
    pub fn fail_tcp_listener(&self) {
        self.fail_listener(TransportKind::Tcp);
    }

    /// The listener actor of a stream transport.
    pub fn listener(&self, transport: TransportKind) -> Option<&Addr<TcpListenerActor>> {
        self.listeners.iter().find(|(t, _, _)| *t == transport).map(|(_, _, l)| l)
    }

    /// The UDP transport actor.
    pub fn udp(&self) -> &Addr<UdpTransport> {
        &self.udp
    }
}
