//! Whole calls between two cores in a loop, for callgrind: `call_loop N`.
#[path = "../benches/duo/mod.rs"]
#[allow(dead_code)]
mod duo;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let mut d = duo::Duo::new();
    for i in 0..n {
        d.call();
        if (i + 1) % 256 == 0 {
            d.advance(duo::Duo::SETTLE);
        }
    }
    d.advance(duo::Duo::SETTLE);
    println!("{:?}", d.counts);
}
