//! # sipact-proto
//!
//! The sans-IO SIP protocol core: transactions (RFC 3261 §17 with RFC 6026),
//! dialogs (§12), INVITE sessions, registration and digest authentication,
//! as plain state machines that take input and the current time and hand
//! back output. No sockets, no clock, no runtime: time is an argument and
//! randomness comes from an injected [`Rng`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Hash maps keyed by values peers choose (branches, Call-IDs, tags): a
/// fast hasher with a per-process random seed, so flooding one bucket takes
/// knowing the seed.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub mod auth;
pub mod dialog;
pub mod rand;
pub mod register;
pub mod session;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod util;

pub use auth::{AuthError, Credentials, DigestClient, DigestVerifier, Secret, VerifyError};
pub use dialog::{Dialog, DialogError, DialogId, DialogState};
pub use rand::{Rng, SplitMix64};
pub use register::{RegEvent, RegState, Registration};
pub use session::{
    Body, Cause, DescriptionHooks, Direction, Extras, InviteSession, Rel100, SessionError, SessionEvent, SessionState,
};
pub use sipact_message as message;
pub use transaction::{
    Role, Timer, TimerConfig, TransactionError, TransactionLayer, Transmit, TxCommand, TxConfig, TxEvent, TxKey,
    TxKind, TxState,
};
pub use transport::{FlowId, Peer, TransportKind};
pub use ua::{CoreConfig, InviteOptions, UaError, UaEvent, UserAgentCore};
