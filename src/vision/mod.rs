//! Finding the wire in one frame. One module per stage, each the CPU reference:
//! [`normalise`] (→ optional [`background`] suppression) → [`ridge`] (within the [`field`] of
//! view) → [`threshold`] → [`thinning`] → [`bridging`] → [`centerline`]. [`features`] are the
//! learned engine's input, in place of the ridge stage's, over the region [`roi`] chooses;
//! [`clahe`] is there for display.
//! [`bands`] runs the ridge stage over bands of the frame on several threads, with the same
//! output; [`tiles`] runs it on tiles along the tracked wire, with the same output there.
//!
//! Every stage owns its scratch buffers, sized when it is made, so processing a frame
//! allocates nothing.

pub mod background;
pub mod bands;
pub mod bridging;
pub mod centerline;
pub mod clahe;
pub mod features;
pub mod field;
pub mod normalise;
pub mod recursive;
pub mod ridge;
pub mod roi;
pub mod thinning;
pub mod threshold;
pub mod tiles;

/// A row-major image plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane<T> {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` values, row-major.
    pub data: Vec<T>,
}

impl<T: Copy + Default> Plane<T> {
    /// A plane filled with `T::default()`.
    pub fn new(width: usize, height: usize) -> Self {
        // Written, not only reserved: a zeroed allocation's pages are mapped at their first
        // write, which would be a frame's, and cost it a page fault per 4 KiB.
        let mut data = Vec::with_capacity(width * height);
        data.resize(width * height, T::default());
        Plane { width, height, data }
    }

    /// Gives the plane a new size, its values left unspecified; nothing is allocated while
    /// `width * height` is no more than the plane held at its largest.
    pub fn reshape(&mut self, width: usize, height: usize) {
        self.data.resize(width * height, T::default());
        (self.width, self.height) = (width, height);
    }

    /// The value at column `x`, row `y`.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> T {
        self.data[y * self.width + x]
    }

    /// Sets every value in `roi` to `value`.
    pub(crate) fn fill_in(&mut self, roi: features::Roi, value: T) {
        for y in roi.y..roi.y + roi.height {
            self.data[y * self.width + roi.x..][..roi.width].fill(value);
        }
    }
}

/// Replaces `out` with the indices of the non-zero bytes of `data`, in order. A skeleton or
/// mask is almost all zero, so 64 bytes at a time are passed over when none is set (an OR of them,
/// which the compiler vectorises; a test for any byte would stop at each and does not).
pub(crate) fn set_pixels(data: &[u8], out: &mut Vec<u32>) {
    const BLOCK: usize = 64;
    out.clear();
    for (k, block) in data.chunks(BLOCK).enumerate() {
        if block.iter().fold(0, |acc, &b| acc | b) != 0 {
            let set = block.iter().enumerate().filter(|(_, &b)| b != 0);
            out.extend(set.map(|(i, _)| (k * BLOCK + i) as u32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pixels_are_the_non_zero_bytes_in_order() {
        // Three whole blocks of 64 and a part of one.
        let mut data = vec![0u8; 64 * 3 + 5];
        for i in [0, 7, 63, 64, 130, 191, 192, 196] {
            data[i] = if i % 2 == 0 { 1 } else { 2 };
        }
        let naive: Vec<u32> = (0..data.len() as u32).filter(|&i| data[i as usize] != 0).collect();
        let mut out = vec![5, 6];
        set_pixels(&data, &mut out);
        assert_eq!(out, naive);
        set_pixels(&[0; 17], &mut out);
        assert!(out.is_empty());
    }
}
