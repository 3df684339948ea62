//! # sipact-message
//!
//! The SIP message layer of sipact: the RFC 3261 grammar (with nom), typed
//! headers, SIP/SIPS/tel URIs, a canonical printer, and stream framing for
//! TCP, TLS and WebSocket. Sans-IO: no sockets, no clock, no runtime.
//!
//! Strings in a parsed message are [`ByteString`]s: short ones (up to 23
//! bytes: tags, branches, parameter names and values, user parts, most host
//! names) are held inline, so parsing, cloning and dropping them costs no
//! allocation and no reference count; longer ones share the input buffer
//! ([`bytes::Bytes`] underneath) without copying. A message's header vector
//! is shared between clones and copied on the first change ([`Headers`]),
//! so keeping a message and handing it on costs no header copy.
//!
//! ```
//! use sipact_message::{SipMessage, Method};
//! let raw = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n\
//!            Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n\
//!            From: Alice <sip:alice@example.com>;tag=1928\r\n\
//!            Call-ID: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\n\
//!            Content-Length: 0\r\n\r\n";
//! let msg = SipMessage::parse(raw.as_bytes().to_vec()).unwrap();
//! let SipMessage::Request(req) = &msg else { unreachable!() };
//! assert_eq!(req.method, Method::Options);
//! assert_eq!(req.headers.via().unwrap().branch(), Some("z9hG4bK776"));
//! assert_eq!(req.headers.from().unwrap().tag(), Some("1928"));
//! assert_eq!(SipMessage::parse(msg.to_bytes()).unwrap(), msg);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod bytestr;
mod error;
mod framing;
mod headers;
mod message;
mod method;
mod out;
mod param;
mod pool;
mod printer;
mod text;
mod unique;
mod uri;

pub use bytes::Bytes;
pub use bytestr::ByteString;
pub use error::{ErrorKind, ParseError};
pub use framing::{Frame, StreamFramer};
pub use headers::{
    Auth, AuthParam, CSeq, Contact, DeltaParams, Header, HeaderName, Headers, MediaType, MethodList, NameAddr, RAck,
    RawHeader, TokenList, TokenParams, Via, Warning,
};
pub use message::{Limits, Request, Response, SipMessage, Version, default_reason};
pub use method::Method;
pub use param::{Param, Params};
pub use printer::{HeaderWriter, print_request};
pub use uri::{Host, SipUri, TelUri, Uri};
