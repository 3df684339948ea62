//! Appending to a print buffer. Printing a message appends some forty
//! short strings (names, separators, tags, hosts); `Vec::extend_from_slice`
//! calls `memcpy` for each one whose length is not known when compiling,
//! and for a few bytes the call costs more than the copy. [`put`] copies
//! strings of 4 to 16 bytes with two fixed-size, possibly overlapping moves.

// The second place in the crate with `unsafe` (the first is `bytestr`):
// writing into a vector's spare capacity, then extending its length.
#![allow(unsafe_code)]

/// Appends `b` to `out`.
#[inline(always)]
pub(crate) fn put(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if !(4..=16).contains(&n) {
        out.extend_from_slice(b);
        return;
    }
    out.reserve(n);
    let len = out.len();
    // SAFETY: `reserve` made room for `n` more bytes after `len`. Each move
    // below writes a fixed `k <= n` bytes (k = 8 for n >= 8, else 4), one at
    // `len` and one ending at `len + n`, so both stay inside the allocation,
    // and each reads `k` bytes inside `b` at the same offsets. Together they
    // cover all of `len..len + n` (they overlap when n < 2k), so every byte
    // is initialised before `set_len` makes it part of the vector.
    unsafe {
        let src = b.as_ptr();
        let dst = out.as_mut_ptr().add(len);
        if n >= 8 {
            std::ptr::copy_nonoverlapping(src, dst, 8);
            std::ptr::copy_nonoverlapping(src.add(n - 8), dst.add(n - 8), 8);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, 4);
            std::ptr::copy_nonoverlapping(src.add(n - 4), dst.add(n - 4), 4);
        }
        out.set_len(len + n);
    }
}

#[cfg(test)]
mod tests {
    use super::put;

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
}
