//! Fuzz target: the message parser (strict and lenient) never panics, and
//! whatever it accepts prints to something it accepts again, equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipact_message::{Bytes, Limits, SipMessage};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let limits = Limits::default();
    let _ = SipMessage::parse_lenient(input.clone(), &limits);
    if let Ok(msg) = SipMessage::parse_with(input, &limits) {
        let printed = msg.to_bytes();
        let again = SipMessage::parse_with(printed.clone(), &limits)
            .unwrap_or_else(|e| panic!("printed form does not parse: {e}\n{}", String::from_utf8_lossy(&printed)));
        assert_eq!(again.to_bytes(), printed, "printing is not stable");
    }
});
