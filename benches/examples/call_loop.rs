//! Whole calls between two cores in a loop, for callgrind: `call_loop N`.
//! `call_loop N OPEN` first sets up OPEN calls that stay established and
//! asks each core for its next deadline after every message, as the
//! dialog actor does.
#[path = "../benches/duo/mod.rs"]
#[allow(dead_code)]
mod duo;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let open: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut d = duo::Duo::new();
    if open > 0 {
        d.open_dialogs(open);
        d.poll_after_input = true;
    }
    for i in 0..n {
        d.call();
        if (i + 1) % 256 == 0 {
            d.advance(duo::Duo::SETTLE);
        }
    }
    d.advance(duo::Duo::SETTLE);
    println!("{:?}", d.counts);
}
