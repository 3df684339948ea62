//! JSON views of messages, as printed by `sipact parse`.

use serde_json::{Value, json};

use crate::message::SipMessage;

/// A JSON object for `msg`: kind, method or status, request URI (printed and
/// structured), every header typed (unknown ones as name/value), and the
/// body length.
pub fn message_json(msg: &SipMessage) -> Value {
    let headers: Vec<Value> = msg
        .headers()
        .iter()
        .map(|h| {
            let mut v = Vec::new();
            h.write_value(&mut v);
            json!({
                "name": h.name_str(),
                "value": String::from_utf8_lossy(&v),
                "typed": serde_json::to_value(h).unwrap_or(Value::Null),
            })
        })
        .collect();
    match msg {
        SipMessage::Request(r) => json!({
            "kind": "request",
            "method": r.method.as_str(),
            "request_uri": r.uri.to_string(),
            "uri": serde_json::to_value(&r.uri).unwrap_or(Value::Null),
            "headers": headers,
            "body_length": r.body.len(),
        }),
        SipMessage::Response(r) => json!({
            "kind": "response",
            "status": r.status,
            "reason": &*r.reason,
            "headers": headers,
            "body_length": r.body.len(),
        }),
    }
}
