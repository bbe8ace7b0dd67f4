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
        Plane { width, height, data: vec![T::default(); width * height] }
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
}
