//! Parses a message in a loop: `cargo run --release --example parse_loop -- FILE [N]`.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "benches/messages/a_invite_486.sip".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let data = sipact_message::Bytes::from(std::fs::read(&path).expect("read"));
    let t = Instant::now();
    let mut acc = 0usize;
    for _ in 0..n {
        let m = sipact_message::SipMessage::parse(data.clone()).expect("parse");
        let h = m.headers();
        acc += h.via().map(|v| v.branch().map(str::len).unwrap_or(0)).unwrap_or(0);
        acc += h.from().and_then(|f| f.tag()).map(str::len).unwrap_or(0);
        acc += h.to().map(|t| t.params.len()).unwrap_or(0);
        acc += h.cseq().map(|c| c.seq as usize).unwrap_or(0);
        acc += h.call_id().map(str::len).unwrap_or(0);
        acc += h.max_forwards().unwrap_or(0) as usize;
        acc += h.contact().map(|c| c.params.len()).unwrap_or(0);
    }
    let el = t.elapsed();
    println!("{path}: {:.3} us/parse ({acc})", el.as_secs_f64() * 1e6 / f64::from(n));
}
