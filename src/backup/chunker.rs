//! Content-defined chunking of one logical file, fed in pieces of any size: FastCDC
//! (fastcdc's 2020 algorithm, normalization level 1) with the repository's parameters and
//! its gear table XORed with a seed from the naming key. Cut points depend only on the
//! bytes since the previous cut, so the same file gives the same chunks however its bytes
//! arrive (one write, many small writes, any reader count upstream), and an insert moves
//! only the chunks around it.
//!
//! Memory: the chunker holds at most `max` bytes plus the piece being added.
//!
//! Not for: naming, compressing or storing chunks (see `writer`).

use std::borrow::Cow;

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};

use super::config::ChunkerParams;

/// A streaming chunker: `push` bytes, take whole chunks, `finish` for the tail.
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already handed out as chunks.
    consumed: usize,
}

impl Chunker {
    pub fn new(params: &ChunkerParams, seed: u64) -> Chunker {
        let (gear, gear_ls) = get_gear_with_seed(seed);
        let avg = params.avg as usize;
        Chunker {
            min: params.min as usize,
            avg,
            max: params.max as usize,
            masks: select_masks(avg, Normalization::Level1),
            gear,
            gear_ls,
            buf: Vec::with_capacity(params.max as usize * 2),
            consumed: 0,
        }
    }

    /// Adds bytes; then call `next_chunk` until it returns `None`.
    pub fn push(&mut self, data: &[u8]) {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn cut(&self, source: &[u8]) -> usize {
        let (mask_s, mask_l) = self.masks;
        cut_gear(
            source,
            self.min,
            self.avg,
            self.max,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }

    /// The next complete chunk, if enough bytes are buffered to be sure of its end.
    pub fn next_chunk(&mut self) -> Option<&[u8]> {
        let rest = &self.buf[self.consumed..];
        // Only with a whole `max` ahead is a cut the same as in the whole stream.
        if rest.len() < self.max {
            return None;
        }
        let len = self.cut(rest);
        let start = self.consumed;
        self.consumed += len;
        Some(&self.buf[start..start + len])
    }

    /// At the end of the file: the remaining chunks (the last may be short).
    pub fn finish(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.consumed < self.buf.len() {
            let rest = &self.buf[self.consumed..];
            let len = self.cut(rest).max(1).min(rest.len());
            out.push(rest[..len].to_vec());
            self.consumed += len;
        }
        self.buf.clear();
        self.consumed = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<u8> {
        // Row-like text, deterministic.
        let mut out = Vec::with_capacity(n);
        let mut x = seed;
        while out.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(format!("({},'{:x}'),", x >> 40, x).as_bytes());
        }
        out.truncate(n);
        out
    }

    fn chunks(input: &[u8], piece: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(&ChunkerParams::default(), seed);
        let mut out = Vec::new();
        for p in input.chunks(piece) {
            c.push(p);
            while let Some(ch) = c.next_chunk() {
                out.push(ch.to_vec());
            }
        }
        out.extend(c.finish());
        out
    }

    #[test]
    fn chunks_do_not_depend_on_how_the_bytes_arrive() {
        let input = data(3_000_000, 1);
        let whole = chunks(&input, input.len(), 7);
        assert!(whole.len() > 30, "{} chunks", whole.len());
        for piece in [1, 4096, 65_537, 1 << 20] {
            assert_eq!(chunks(&input, piece, 7), whole, "pieces of {piece}");
        }
        assert_eq!(whole.concat(), input);
        let p = ChunkerParams::default();
        assert!(
            whole[..whole.len() - 1]
                .iter()
                .all(|c| c.len() >= p.min as usize && c.len() <= p.max as usize)
        );
    }

    #[test]
    fn an_insert_moves_only_nearby_chunks() {
        let input = data(2_000_000, 2);
        let mut changed = input[..1_000_000].to_vec();
        changed.extend_from_slice(b"(424242,'inserted row'),");
        changed.extend_from_slice(&input[1_000_000..]);
        let a = chunks(&input, 100_000, 9);
        let b = chunks(&changed, 100_000, 9);
        let set: std::collections::HashSet<_> = a.iter().collect();
        let new = b.iter().filter(|c| !set.contains(c)).count();
        assert!(new <= 3, "{new} of {} chunks changed", b.len());
    }

    #[test]
    fn the_seed_moves_the_cut_points() {
        let input = data(1_000_000, 3);
        assert_ne!(chunks(&input, 4096, 1), chunks(&input, 4096, 2));
    }

    #[test]
    fn empty_and_tiny_files() {
        assert!(chunks(b"", 10, 1).is_empty());
        assert_eq!(chunks(b"abc", 1, 1), vec![b"abc".to_vec()]);
    }
}
