//! Scoring against ground truth: the metrics, and `wiretrace eval` over whole sequences.
//!
//! Distances are measured between polylines, not between their vertices, so a centerline with
//! 64 points and a ground truth with 300 compare fairly. Mask metrics follow the clDice paper
//! (Shit et al., CVPR 2021): the skeleton of one mask against the other mask.

pub mod metrics;
pub mod report;

pub use metrics::{mean_centerline_distance, point_polyline_distance, tip_error};
