//! `sipact parse`: JSON on success (exit 0), error with offset (exit 1).

use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipact"))
        .args(["parse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipact");
    child.stdin.take().expect("stdin").write_all(input).expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sample_invite_prints_typed_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipact"))
        .args(["parse", concat!(env!("CARGO_MANIFEST_DIR"), "/samples/invite.sip")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["kind"], "request");
    assert_eq!(v["method"], "INVITE");
    assert_eq!(v["request_uri"], "sip:bob@biloxi.example.com");
    assert_eq!(v["body_length"], 136);
    let headers = v["headers"].as_array().expect("headers");
    assert_eq!(headers[0]["name"], "Via");
    assert_eq!(headers[0]["typed"]["Via"]["params"][0]["value"], "z9hG4bK776asdhds");
    let cseq = headers.iter().find(|h| h["name"] == "CSeq").expect("cseq");
    assert_eq!(cseq["typed"]["CSeq"]["seq"], 314159);
    let from = headers.iter().find(|h| h["name"] == "From").expect("from");
    assert_eq!(from["typed"]["From"]["display"], "Alice");
}

#[test]
fn response_from_stdin() {
    let (code, out, _) = run(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"], 180);
    assert_eq!(v["reason"], "Ringing");
}

#[test]
fn lists_print_as_sequences() {
    // Allow lists methods in the form CSeq's method has; option tags are strings.
    let (code, out, _) = run(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nAllow: INVITE,FOO\r\nSupported: timer, 100rel\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let headers = v["headers"].as_array().expect("headers");
    let typed = |name: &str| headers.iter().find(|h| h["name"] == name).map(|h| h["typed"].clone()).expect(name);
    assert_eq!(typed("Allow"), serde_json::json!({ "Allow": ["Invite", { "Extension": "FOO" }] }));
    assert_eq!(typed("Supported"), serde_json::json!({ "Supported": ["timer", "100rel"] }));
    assert_eq!(typed("CSeq")["CSeq"]["method"], "Options");
    let allow = headers.iter().find(|h| h["name"] == "Allow").expect("Allow");
    assert_eq!(allow["value"], "INVITE, FOO");
}

#[test]
fn bad_via_reports_offset_and_exits_1() {
    let (code, out, err) = run(b"OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/UDP\r\n\r\n");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["error"], "InvalidHeaderValue");
    assert_eq!(v["header"], "Via");
    // "OPTIONS sip:x@h SIP/2.0\r\n" is 25 bytes, "Via: " 5 more; the sent-by is missing after "SIP/2.0/UDP".
    assert_eq!(v["offset"], 41);
    assert!(err.contains("Via"), "{err}");
}

#[test]
fn missing_file_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipact")).args(["parse", "/nonexistent/x.sip"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}
