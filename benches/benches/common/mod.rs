//! What the three parsers are asked to do, shared by the `parser` and
//! `allocs` bench targets.
//!
//! "What a transaction and dialog layer needs": frame the message (start line,
//! header lines, body by Content-Length) and get typed top Via (with branch),
//! From (with tag), To, CSeq, Call-ID, Max-Forwards and Contact.

#![allow(dead_code)]

use std::hint::black_box;

use bytes::Bytes;

/// A sample message: bench id and raw bytes.
pub struct Sample {
    pub id: &'static str,
    pub bytes: Bytes,
}

/// The four parse samples, in order a..d.
///
/// Heap-backed (`Bytes::from(Vec)`), like a received datagram, not
/// `Bytes::from_static`: a static `Bytes` makes every zero-copy sub-slice free
/// (no reference count), which would flatter sipact.
pub fn samples() -> Vec<Sample> {
    let heap = |b: &'static [u8]| Bytes::from(b.to_vec());
    vec![
        Sample { id: "a_invite_486", bytes: heap(include_bytes!("../../messages/a_invite_486.sip")) },
        Sample { id: "b_ringing_410", bytes: heap(include_bytes!("../../messages/b_ringing_410.sip")) },
        Sample { id: "c_options_250", bytes: heap(include_bytes!("../../messages/c_options_250.sip")) },
        Sample { id: "d_invite_1220", bytes: heap(include_bytes!("../../messages/d_invite_1220.sip")) },
    ]
}

/// The 200 OK used by the printer bench.
pub const OK_200: &[u8] = include_bytes!("../../messages/e_200ok.sip");

/// sipact: one eager parse into typed headers, then the accessors.
pub fn sipact(bytes: &Bytes) {
    let msg = sipact_message::SipMessage::parse(bytes.clone()).expect("sipact parse");
    let h = msg.headers();
    let via = h.via().expect("via");
    black_box(via.branch().expect("branch"));
    black_box((&via.transport, &via.host, via.port));
    let from = h.from().expect("from");
    black_box((from.tag().expect("from tag"), &from.uri));
    let to = h.to().expect("to");
    black_box((to.tag(), &to.uri));
    let cseq = h.cseq().expect("cseq");
    black_box((cseq.seq, &cseq.method));
    black_box(h.call_id().expect("call-id"));
    black_box(h.max_forwards());
    black_box(h.contact().expect("contact"));
    black_box(msg.body());
    black_box(&msg);
}

/// rsip 0.4: parse into untyped headers, then convert the needed ones to
/// typed headers (Call-ID stays a string in rsip; Max-Forwards via `num()`).
pub fn rsip(bytes: &Bytes) {
    use rsip::prelude::*;
    let msg = rsip::SipMessage::try_from(&bytes[..]).expect("rsip parse");
    let via = msg.via_header().expect("via").typed().expect("typed via");
    black_box(via.branch().expect("branch"));
    black_box(&via);
    let from = msg.from_header().expect("from").typed().expect("typed from");
    black_box(from.tag().expect("from tag"));
    black_box(&from);
    let to = msg.to_header().expect("to").typed().expect("typed to");
    black_box((to.tag(), &to));
    let cseq = msg.cseq_header().expect("cseq").typed().expect("typed cseq");
    black_box(&cseq);
    black_box(msg.call_id_header().expect("call-id").value());
    black_box(msg.max_forwards_header().ok().map(|m| m.num().expect("max-forwards")));
    let contact = msg.contact_header().expect("contact").typed().expect("typed contact");
    black_box(&contact);
    black_box(msg.body());
    black_box(&msg);
}

/// ezk-sip-types 0.6 has no whole-message parser (ezk-sip-core's transport
/// layer assembles one); this does what that layer does: `PullParser` over the
/// lines, `MessageLine` for the start line, `Line` + `Headers::insert` for each
/// header, body by Content-Length; then typed `Headers::get*` decoding.
pub fn ezk(bytes: &Bytes) {
    use ezk_sip_types::Name;
    use ezk_sip_types::header::typed::{CSeq, CallID, Contact, ContentLength, FromTo, MaxForwards, Via};
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;

    let mut parser = PullParser::new(bytes, 0);
    let mut message_line = None;
    let mut headers = ezk_sip_types::Headers::with_capacity(16);
    for item in &mut parser {
        let line = std::str::from_utf8(item.expect("complete")).expect("utf-8");
        if message_line.is_none() {
            message_line = Some(MessageLine::parse(bytes)(line).expect("ezk start line").1);
        } else {
            let (_, line) = Line::parse(bytes, line).expect("ezk header line");
            headers.insert(line.name, line.value);
        }
    }
    let head_end = parser.head_end();
    let len = headers.get_named::<ContentLength>().map(|l| l.0).unwrap_or(0);
    let body = bytes.slice(head_end..head_end + len);
    black_box((&message_line, &body));

    let via = headers.get_named::<Via>().expect("via");
    black_box(via.params.get_val("branch").expect("branch"));
    black_box(&via);
    let from = headers.get::<FromTo>(Name::FROM).expect("from");
    black_box(from.tag.as_ref().expect("from tag"));
    black_box(&from);
    let to = headers.get::<FromTo>(Name::TO).expect("to");
    black_box(&to);
    black_box(headers.get_named::<CSeq>().expect("cseq"));
    black_box(headers.get_named::<CallID>().expect("call-id"));
    black_box(headers.get_named::<MaxForwards>().ok());
    black_box(headers.get_named::<Contact>().expect("contact"));
    black_box(&headers);
}

/// A parse-and-extract routine.
pub type ParseFn = fn(&Bytes);

/// Parser names and functions, in table order.
pub const PARSERS: [(&str, ParseFn); 3] = [("sipact", sipact), ("rsip", rsip), ("ezk", ezk)];
