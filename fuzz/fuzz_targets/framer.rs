//! Fuzz target: the stream framer never panics, cuts the same frames however
//! the bytes are split into reads, and never buffers past its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipact_message::{Frame, Limits, StreamFramer};

fn frames(data: &[u8], chunk: usize, limits: Limits) -> (Vec<Frame>, bool) {
    let mut f = StreamFramer::with_limits(limits);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        f.push(piece);
        loop {
            match f.next() {
                Ok(Some(fr)) => out.push(fr),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
        assert!(f.buffered() <= limits.max_header_bytes + limits.max_body_bytes + piece.len() + 4);
    }
    (out, false)
}

fuzz_target!(|input: (u8, &[u8])| {
    let (split, data) = input;
    let limits = Limits { max_header_bytes: 4096, max_headers: 64, max_body_bytes: 4096 };
    let whole = frames(data, data.len(), limits);
    let pieces = frames(data, split as usize % 17 + 1, limits);
    // Splitting may only delay an error or a trailing keep-alive decision,
    // never change a message that was cut.
    let msgs = |v: &Vec<Frame>| v.iter().filter(|f| matches!(f, Frame::Message(_))).cloned().collect::<Vec<_>>();
    if !whole.1 && !pieces.1 {
        assert_eq!(msgs(&whole.0), msgs(&pieces.0));
    }
    for f in whole.0 {
        if let Frame::Message(m) = f {
            let _ = sipact_message::SipMessage::parse(m);
        }
    }
});
