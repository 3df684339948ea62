//! Runs one parser over a sample in a loop, for instruction counts under
//! callgrind: `peer_loop sipact|rsip|ezk FILE N`.
#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "sipact".into());
    let path = args.next().unwrap_or_else(|| "benches/messages/a_invite_486.sip".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let data = bytes::Bytes::from(std::fs::read(&path).expect("read"));
    let f = common::PARSERS.iter().find(|(name, _)| *name == which).map(|(_, f)| *f).expect("parser name");
    for _ in 0..n {
        f(std::hint::black_box(&data));
    }
}
