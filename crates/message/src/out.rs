//! Appending to a print buffer. Printing a message appends some forty
//! short strings (names, separators, tags, hosts); `Vec::extend_from_slice`
//! calls `memcpy` for each one whose length is not known when compiling,
//! and for a few bytes the call costs more than the copy. [`put`] copies
//! strings of up to 32 bytes with fixed-size, possibly overlapping moves.
//! [`emplace`] appends a value to any vector the same way: into the spare
//! capacity, so that the value is built where it stays.

// The second place in the crate with `unsafe` (the first is `bytestr`):
// writing into a vector's spare capacity, then extending its length.
#![allow(unsafe_code)]

/// Appends `b` to `out`.
#[inline(always)]
pub(crate) fn put(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n == 0 || n > 32 {
        out.extend_from_slice(b);
        return;
    }
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve` made room for `n` more bytes after `len`. Each
    // branch writes fixed-size pieces of `k <= n` bytes (k = 16, 8, 4 or 1
    // by the range of `n`), one starting at `len` and one ending at
    // `len + n` (plus the middle byte when n < 4), so every write stays
    // inside the allocation and every read inside `b`, at the same offsets.
    // Together the pieces cover all of `len..len + n` (overlapping when
    // n < 2k), so every byte is initialised before `set_len` makes it part
    // of the vector. `b` cannot alias `out`'s buffer: `out` is borrowed
    // mutably.
    unsafe {
        let src = b.as_ptr();
        let dst = out.as_mut_ptr().add(len);
        let two = |k: usize| {
            std::ptr::copy_nonoverlapping(src, dst, k);
            std::ptr::copy_nonoverlapping(src.add(n - k), dst.add(n - k), k);
        };
        if n >= 16 {
            two(16);
        } else if n >= 8 {
            two(8);
        } else if n >= 4 {
            two(4);
        } else {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        out.set_len(len + n);
    }
}

/// Appends `a` in dotted-quad form. Each octet's digits and the dot after
/// them come from a table as four bytes, stored straight into the spare
/// capacity at the current end (the next octet overwrites what follows the
/// dot). Assembled in a stack buffer and copied from there, the text was
/// read back with loads spanning several of the four-byte stores, which
/// stalled the CPU's store forwarding: a third of the time spent printing
/// an IPv4 host sat on that one load.
#[inline]
pub(crate) fn put_ipv4(out: &mut Vec<u8>, a: &std::net::Ipv4Addr) {
    // Four octets of at most three digits and a dot: the last store ends
    // at most 16 bytes past the current end.
    out.reserve(16);
    let len = out.len();
    let mut n = 0;
    // SAFETY: `reserve` made room for 16 bytes after `len`; each store
    // writes 4 bytes at offset `n <= 12`. The bytes counted by `set_len`,
    // `len..len + n - 1`, are the digits and dots written (each octet's
    // digits and dot are contiguous and the next starts right after them),
    // without the last dot.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        for x in a.octets() {
            let (text, width) = crate::uri::OCTETS[usize::from(x)];
            dst.add(n).cast::<[u8; 4]>().write_unaligned(text);
            n += usize::from(width) + 1;
        }
        out.set_len(len + n - 1);
    }
}

/// Appends the value `make` builds to `v`, building it in the vector's
/// slot. `v.push(make())` builds the value on the stack and then copies all
/// of it (a `Header` is 192 bytes, whatever its variant) with a call to
/// `memcpy`, whose loads stall on the stores that just built it; with the
/// room reserved first, the compiler writes the fields straight into place.
#[inline(always)]
pub(crate) fn emplace<T>(v: &mut Vec<T>, make: impl FnOnce() -> T) {
    v.reserve(1);
    let len = v.len();
    // SAFETY: `reserve` made room for one more element at `len`; it is
    // written before `set_len` counts it. Should `make` panic, nothing was
    // written and the length is unchanged.
    unsafe {
        v.as_mut_ptr().add(len).write(make());
        v.set_len(len + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::{emplace, put};

    #[test]
    fn put_appends_like_extend_from_slice() {
        // Every length around the fixed-size paths, onto buffers that are
        // empty, partly filled and exactly full (so `reserve` must grow).
        let src: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=src.len() {
            for (fill, cap) in [(0, 0), (3, 8), (5, 5), (17, 64), (60, 64)] {
                let mut expect = Vec::with_capacity(cap);
                expect.extend(std::iter::repeat_n(b'x', fill));
                let mut got = expect.clone();
                got.reserve_exact(cap.saturating_sub(got.capacity()));
                expect.extend_from_slice(&src[..n]);
                put(&mut got, &src[..n]);
                assert_eq!(got, expect, "n={n} fill={fill} cap={cap}");
            }
        }
    }

    #[test]
    fn emplace_appends_like_push_and_survives_a_panicking_builder() {
        // Through several reallocations, with values that own heap memory.
        let mut got: Vec<String> = Vec::new();
        let mut expect = Vec::new();
        for i in 0..100 {
            emplace(&mut got, || format!("h{i}"));
            expect.push(format!("h{i}"));
        }
        assert_eq!(got, expect);
        // A builder that panics leaves the vector as it was.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            emplace(&mut got, || panic!("no value"));
        }));
        assert!(r.is_err());
        assert_eq!(got, expect);
        emplace(&mut got, || "after".to_owned());
        assert_eq!(got.last().map(String::as_str), Some("after"));
        assert_eq!(got.len(), 101);
    }
}
