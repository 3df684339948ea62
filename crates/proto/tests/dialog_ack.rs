//! The ACK a dialog prints without building it is the ACK it builds,
//! printed (RFC 3261 §13.2.2.4, §12.2.1.1): for an empty route set, loose
//! routes, display names and URI parameters; strict routing is left to
//! the built request.

use sipact_message::{Host, Method, Request, Response, SipMessage, Via};
use sipact_proto::dialog::Dialog;

fn parse(raw: String) -> SipMessage {
    SipMessage::parse(raw.replace('\n', "\r\n").into_bytes()).expect("parses")
}

fn pair(record_route: &str, contact: &str, from: &str) -> (Request, Response) {
    let SipMessage::Request(invite) = parse(format!(
        "INVITE sip:bob@example.com SIP/2.0\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv\n\
         Max-Forwards: 70\nFrom: {from};tag=a1\nTo: <sip:bob@example.com>\n\
         Call-ID: 3848276298220188511@atlanta.example.com\nCSeq: 314159 INVITE\n\
         Contact: <sip:alice@192.0.2.1:5060>\nContent-Length: 0\n\n"
    )) else {
        panic!("a request")
    };
    let SipMessage::Response(ok) = parse(format!(
        "SIP/2.0 200 OK\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv\n\
         {record_route}From: {from};tag=a1\nTo: <sip:bob@example.com>;tag=b2\n\
         Call-ID: 3848276298220188511@atlanta.example.com\nCSeq: 314159 INVITE\n\
         Contact: {contact}\nContent-Length: 0\n\n"
    )) else {
        panic!("a response")
    };
    (invite, ok)
}

fn via() -> Via {
    let mut v = Via::new("UDP", Host::Ipv4([192, 0, 2, 1].into()), Some(5060), "z9hG4bKack");
    v.params.set("rport", None);
    v
}

#[test]
fn the_printed_ack_is_the_built_ack() {
    let cases = [
        ("", "<sip:bob@192.0.2.2:5060>", "<sip:alice@example.com>"),
        ("", "<sip:bob@192.0.2.2;transport=udp>", "\"Alice \\\"A\\\"\" <sip:alice@example.com;user=phone>"),
        (
            "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr;ftag=x>\n",
            "<sip:bob@[2001:db8::2]:5062>",
            "Alice <sip:alice@example.com>",
        ),
    ];
    for (rr, contact, from) in cases {
        let (invite, ok) = pair(rr, contact, from);
        let mut dialog = Dialog::uac(&invite, &ok).expect("a dialog");
        let printed = dialog.print_ack(&via(), 314159).expect("loose routing");
        let seq_before = dialog.local_seq;
        let built = dialog.request(Method::Ack, via(), Some(314159)).to_bytes();
        assert_eq!(printed, built, "{rr}{contact}");
        // An ACK takes the INVITE's sequence number: none is used up.
        assert_eq!(dialog.local_seq, seq_before);
        // Sent where the built one would go: the first route, else the target.
        let first_hop = if rr.is_empty() { contact.trim_matches(['<', '>']) } else { "sip:p1.example.com;lr;ftag=x" };
        assert_eq!(dialog.next_hop().to_string(), first_hop);
    }
}

#[test]
fn a_printed_bye_is_the_built_bye_and_takes_the_next_sequence_number() {
    use sipact_message::{Header, HeaderName};
    for rr in ["", "Record-Route: <sip:p1.example.com;lr>\n"] {
        let (invite, ok) = pair(rr, "<sip:bob@192.0.2.2:5060>", "<sip:alice@example.com>");
        let mut printing = Dialog::uac(&invite, &ok).expect("a dialog");
        let mut building = printing.clone();
        for _ in 0..2 {
            let printed = printing
                .print_request(Method::Bye, &via(), None, |w| w.text(HeaderName::UserAgent, "sipact/0.1.0"))
                .expect("loose routing");
            let mut built = building.request(Method::Bye, via(), None);
            built.headers.push(Header::UserAgent("sipact/0.1.0".into()));
            assert_eq!(printed, built.to_bytes(), "{rr}");
            assert_eq!(printing.local_seq, building.local_seq);
        }
        assert_eq!(printing.local_seq, 314159 + 2);
    }
}

#[test]
fn a_strict_first_hop_is_left_to_the_built_request() {
    let (invite, ok) = pair("Record-Route: <sip:p1.example.com>\n", "<sip:bob@192.0.2.2>", "<sip:alice@example.com>");
    let mut dialog = Dialog::uac(&invite, &ok).expect("a dialog");
    assert!(dialog.print_ack(&via(), 314159).is_none());
    // Nothing is used up by a request left to the built path.
    let seq = dialog.local_seq;
    assert!(dialog.print_request(Method::Bye, &via(), None, |_| {}).is_none());
    assert_eq!(dialog.local_seq, seq);
}
