//! Allocations and allocated bytes per parse, for each parser and sample, with
//! a counting global allocator. Prints a Markdown table.
//!
//! `cargo bench -p sipact-benches --bench allocs`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

mod common;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A realloc counts as one allocation of the new size.
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RUNS: u64 = 1000;

fn main() {
    println!(
        "size_of: sipact Header {} B, SipMessage {} B; rsip Header {} B",
        std::mem::size_of::<sipact_message::Header>(),
        std::mem::size_of::<sipact_message::SipMessage>(),
        std::mem::size_of::<rsip::Header>(),
    );
    println!();
    println!("| message | bytes | parser | allocs/parse | bytes allocated/parse |");
    println!("|---|---:|---|---:|---:|");
    for sample in common::samples() {
        for (name, f) in common::PARSERS {
            // Warm up once (lazy statics, first-use tables) before counting.
            f(&sample.bytes);
            let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
            for _ in 0..RUNS {
                f(&sample.bytes);
            }
            let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
            let allocs = (a1 - a0) as f64 / RUNS as f64;
            let bytes = (b1 - b0) as f64 / RUNS as f64;
            println!("| {} | {} | {name} | {allocs:.1} | {bytes:.0} |", sample.id, sample.bytes.len());
        }
    }

    // Printing: sipact into a reused Vec, rsip `to_string`.
    let msg = sipact_message::SipMessage::parse(common::OK_200.to_vec()).expect("sipact parse 200");
    let rsip_msg = rsip::SipMessage::try_from(common::OK_200).expect("rsip parse 200");
    let mut out = Vec::with_capacity(1024);
    msg.write(&mut out);
    let printers: [(&str, &mut dyn FnMut()); 2] = [
        ("sipact write (reused Vec)", &mut || {
            out.clear();
            msg.write(&mut out);
            std::hint::black_box(&out);
        }),
        ("rsip to_string", &mut || {
            std::hint::black_box(rsip_msg.to_string());
        }),
    ];
    println!();
    println!("| print 200 OK ({} bytes) | allocs/print | bytes allocated/print |", common::OK_200.len());
    println!("|---|---:|---:|");
    for (name, f) in printers {
        f();
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        for _ in 0..RUNS {
            f();
        }
        let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        println!("| {name} | {:.1} | {:.0} |", (a1 - a0) as f64 / RUNS as f64, (b1 - b0) as f64 / RUNS as f64);
    }
}
