//! Scoring centerlines against ground truth.
//!
//! Distances are measured between polylines, not between their vertices, so a centerline
//! with 64 points and a ground truth with 300 compare fairly.

/// Distance (px) from `p` to the segment `a`–`b`.
fn point_segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (cx, cy) = (a[0] + t * dx, a[1] + t * dy);
    ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt()
}

/// Distance (px) from `p` to the polyline `line` (a single point counts as a polyline).
pub fn point_polyline_distance(p: [f32; 2], line: &[[f32; 2]]) -> f32 {
    match line {
        [] => f32::INFINITY,
        [only] => point_segment_distance(p, *only, *only),
        _ => line.windows(2).map(|s| point_segment_distance(p, s[0], s[1])).fold(f32::INFINITY, f32::min),
    }
}

/// Points along `line` every `step_px` or closer, both ends included.
fn densify(line: &[[f32; 2]], step_px: f32) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    for s in line.windows(2) {
        let len = ((s[1][0] - s[0][0]).powi(2) + (s[1][1] - s[0][1]).powi(2)).sqrt();
        let n = (len / step_px).ceil().max(1.0) as usize;
        for k in 0..n {
            let t = k as f32 / n as f32;
            out.push([s[0][0] + t * (s[1][0] - s[0][0]), s[0][1] + t * (s[1][1] - s[0][1])]);
        }
    }
    out.extend(line.last());
    out
}

/// Mean of the distances from points along `from` to the polyline `to`.
fn mean_directed_distance(from: &[[f32; 2]], to: &[[f32; 2]]) -> f32 {
    let samples = densify(from, 0.5);
    samples.iter().map(|&p| point_polyline_distance(p, to)).sum::<f32>() / samples.len() as f32
}

/// Mean symmetric centerline distance (px): the average of the mean distance from the
/// prediction to the truth and from the truth to the prediction. A prediction that covers
/// only half the wire is penalised by the second term. `None` if either is empty.
pub fn mean_centerline_distance(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    if predicted.is_empty() || truth.is_empty() {
        return None;
    }
    Some(0.5 * (mean_directed_distance(predicted, truth) + mean_directed_distance(truth, predicted)))
}

/// Distance (px) between the predicted and the true tip (last points).
pub fn tip_error(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    let (p, t) = (predicted.last()?, truth.last()?);
    Some(((p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lines_are_zero_apart_whatever_their_sampling() {
        let coarse = [[0.0, 0.0], [100.0, 0.0]];
        let fine: Vec<[f32; 2]> = (0..=50).map(|i| [2.0 * i as f32, 0.0]).collect();
        assert!(mean_centerline_distance(&coarse, &fine).is_some_and(|d| d < 1e-5));
    }

    #[test]
    fn a_parallel_offset_is_its_distance() {
        let a = [[0.0, 0.0], [100.0, 0.0]];
        let b = [[0.0, 1.5], [100.0, 1.5]];
        assert!(mean_centerline_distance(&a, &b).is_some_and(|d| (d - 1.5).abs() < 1e-4));
    }

    #[test]
    fn half_a_wire_is_penalised() {
        let truth = [[0.0, 0.0], [100.0, 0.0]];
        let half = [[0.0, 0.0], [50.0, 0.0]];
        // Truth to prediction: half the truth is 0 px away, the other half 0..50 px: mean 12.5.
        let d = mean_centerline_distance(&half, &truth).unwrap_or(0.0);
        assert!((d - 6.25).abs() < 0.1, "{d}");
        assert!(tip_error(&half, &truth).is_some_and(|e| (e - 50.0).abs() < 1e-4));
    }

    #[test]
    fn empty_lines_have_no_distance() {
        assert_eq!(mean_centerline_distance(&[], &[[0.0, 0.0]]), None);
    }
}
