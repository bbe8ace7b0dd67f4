//! The metrics: polyline distances and mask overlaps, each a pure function.

pub use crate::vision::centerline::point_polyline_distance;
use crate::vision::thinning::Thinning;
use crate::vision::Plane;

/// Spacing (px) at which polylines are sampled for distances.
const SAMPLE_STEP_PX: f32 = 0.5;
/// Distance (px) within which a ground-truth point counts as covered.
pub const COVERAGE_RADIUS_PX: f32 = 2.0;

/// Points along `line` every `step_px` or closer, both ends included.
pub fn densify(line: &[[f32; 2]], step_px: f32) -> Vec<[f32; 2]> {
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

/// Distances from points along `from` to the polyline `to`.
fn directed_distances(from: &[[f32; 2]], to: &[[f32; 2]]) -> Vec<f32> {
    densify(from, SAMPLE_STEP_PX).iter().map(|&p| point_polyline_distance(p, to)).collect()
}

fn mean(values: &[f32]) -> f32 {
    values.iter().sum::<f32>() / values.len().max(1) as f32
}

/// The `q`-quantile (0..=1) of `values`, nearest rank; sorts `values`.
fn quantile(values: &mut [f32], q: f32) -> f32 {
    if values.is_empty() {
        return f32::NAN;
    }
    values.sort_by(f32::total_cmp);
    let rank = ((q * values.len() as f32).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Mean symmetric centerline distance (px): the average of the mean distance from the
/// prediction to the truth and from the truth to the prediction. A prediction that covers
/// only half the wire is penalised by the second term. `None` if either is empty.
pub fn mean_centerline_distance(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    if predicted.is_empty() || truth.is_empty() {
        return None;
    }
    Some(0.5 * (mean(&directed_distances(predicted, truth)) + mean(&directed_distances(truth, predicted))))
}

/// 95th-percentile Hausdorff distance (px): the larger of the two directed 95th percentiles,
/// so a few stray pixels do not dominate but a missing or extra stretch does.
pub fn hausdorff95(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    if predicted.is_empty() || truth.is_empty() {
        return None;
    }
    let forward = quantile(&mut directed_distances(predicted, truth), 0.95);
    let backward = quantile(&mut directed_distances(truth, predicted), 0.95);
    Some(forward.max(backward))
}

/// Share of the ground-truth centerline within [`COVERAGE_RADIUS_PX`] of the prediction
/// (0 when there is no prediction).
pub fn coverage(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    if truth.is_empty() {
        return None;
    }
    if predicted.is_empty() {
        return Some(0.0);
    }
    let d = directed_distances(truth, predicted);
    Some(d.iter().filter(|&&d| d <= COVERAGE_RADIUS_PX).count() as f32 / d.len() as f32)
}

/// True when the prediction runs the same way as the truth, proximal end first: its ends are
/// nearer the matching ends of the truth than the swapped ones.
pub fn direction_correct(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<bool> {
    let (p0, p1, t0, t1) = (predicted.first()?, predicted.last()?, truth.first()?, truth.last()?);
    let d = |a: &[f32; 2], b: &[f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    Some(d(p0, t0) + d(p1, t1) <= d(p0, t1) + d(p1, t0))
}

fn count_both(a: &Plane<u8>, b: &Plane<u8>) -> usize {
    a.data.iter().zip(&b.data).filter(|(&x, &y)| x != 0 && y != 0).count()
}

fn count(a: &Plane<u8>) -> usize {
    a.data.iter().filter(|&&x| x != 0).count()
}

/// Dice overlap of two masks (non-zero is foreground); `None` when both are empty.
pub fn dice(predicted: &Plane<u8>, truth: &Plane<u8>) -> Option<f32> {
    let total = count(predicted) + count(truth);
    (total > 0).then(|| 2.0 * count_both(predicted, truth) as f32 / total as f32)
}

/// Zhang-Suen skeleton of a mask, as 0/1.
pub fn skeleton(mask: &Plane<u8>) -> Plane<u8> {
    let mut s =
        Plane { width: mask.width, height: mask.height, data: mask.data.iter().map(|&v| u8::from(v != 0)).collect() };
    Thinning::new(mask.data.len()).apply(&mut s);
    s
}

/// clDice (Shit et al. 2021): the harmonic mean of topology precision, the share of the
/// prediction's skeleton inside the true mask, and topology sensitivity, the share of the true
/// skeleton inside the predicted mask. A wire broken in two keeps a high Dice but loses
/// sensitivity here. `None` when the truth is empty; 0 when the prediction is.
pub fn cl_dice(predicted: &Plane<u8>, truth: &Plane<u8>) -> Option<f32> {
    let (sp, st) = (skeleton(predicted), skeleton(truth));
    let (np, nt) = (count(&sp), count(&st));
    if nt == 0 {
        return None;
    }
    if np == 0 {
        return Some(0.0);
    }
    let precision = count_both(&sp, truth) as f32 / np as f32;
    let sensitivity = count_both(&st, predicted) as f32 / nt as f32;
    Some(if precision + sensitivity > 0.0 { 2.0 * precision * sensitivity / (precision + sensitivity) } else { 0.0 })
}

/// 8-connected components of a mask, each pixel labelled 1, 2, …; returns the count.
pub fn label_components(mask: &Plane<u8>, labels: &mut Vec<u32>) -> u32 {
    let (w, h) = (mask.width, mask.height);
    labels.clear();
    labels.resize(mask.data.len(), 0);
    let mut next = 0;
    let mut stack = Vec::new();
    for start in 0..mask.data.len() {
        if mask.data[start] == 0 || labels[start] != 0 {
            continue;
        }
        next += 1;
        labels[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask.data[j] != 0 && labels[j] == 0 {
                        labels[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
    }
    next
}

/// Number of 8-connected components of a mask.
pub fn components(mask: &Plane<u8>) -> u32 {
    label_components(mask, &mut Vec::new())
}

/// Draws `line` into `mask` as a tube: every pixel whose centre is within `radius_px` of it.
pub fn draw_tube(line: &[[f32; 2]], radius_px: f32, mask: &mut Plane<u8>) {
    let (w, h) = (mask.width, mask.height);
    if w == 0 || h == 0 {
        return;
    }
    let reach = radius_px.ceil() as isize + 1;
    for p in densify(line, SAMPLE_STEP_PX) {
        let (cx, cy) = (p[0].round() as isize, p[1].round() as isize);
        for y in (cy - reach).max(0)..=(cy + reach).min(h as isize - 1) {
            for x in (cx - reach).max(0)..=(cx + reach).min(w as isize - 1) {
                if point_polyline_distance([x as f32, y as f32], line) <= radius_px {
                    mask.data[y as usize * w + x as usize] = 1;
                }
            }
        }
    }
}

/// Distance (px) between the predicted and the true tip (last points).
pub fn tip_error(predicted: &[[f32; 2]], truth: &[[f32; 2]]) -> Option<f32> {
    let (p, t) = (predicted.last()?, truth.last()?);
    Some(((p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_of(line: &[[f32; 2]], radius_px: f32) -> Plane<u8> {
        let mut m = Plane::new(64, 48);
        draw_tube(line, radius_px, &mut m);
        m
    }

    const LINE: [[f32; 2]; 2] = [[5.0, 20.0], [55.0, 20.0]];

    #[test]
    fn a_shifted_line_is_off_by_its_shift_everywhere() {
        let shifted = [[5.0, 23.0], [55.0, 23.0]];
        assert!(hausdorff95(&shifted, &LINE).is_some_and(|d| (d - 3.0).abs() < 1e-4));
        assert_eq!(coverage(&shifted, &LINE), Some(0.0));
        let near = [[5.0, 21.5], [55.0, 21.5]];
        assert_eq!(coverage(&near, &LINE), Some(1.0));
        assert_eq!(direction_correct(&shifted, &LINE), Some(true));
        let (truth, pred) = (mask_of(&LINE, 1.0), mask_of(&shifted, 1.0));
        assert_eq!(dice(&pred, &truth), Some(0.0));
        assert_eq!(cl_dice(&pred, &truth), Some(0.0));
    }

    #[test]
    fn a_reversed_line_has_the_wrong_direction_and_a_large_tip_error() {
        let reversed = [LINE[1], LINE[0]];
        assert_eq!(direction_correct(&reversed, &LINE), Some(false));
        assert!(tip_error(&reversed, &LINE).is_some_and(|e| (e - 50.0).abs() < 1e-4));
        assert!(mean_centerline_distance(&reversed, &LINE).is_some_and(|d| d < 1e-5));
    }

    #[test]
    fn a_broken_line_keeps_its_dice_but_counts_two_pieces_and_loses_coverage() {
        let truth = mask_of(&LINE, 1.0);
        let mut broken = truth.clone();
        for y in 0..48 {
            for x in 28..32 {
                broken.data[y * 64 + x] = 0;
            }
        }
        assert_eq!(components(&truth), 1);
        assert_eq!(components(&broken), 2);
        let d = dice(&broken, &truth).unwrap_or(0.0);
        assert!(d > 0.9, "dice {d}");
        let cl = cl_dice(&broken, &truth).unwrap_or(1.0);
        assert!(cl < 1.0 && cl > 0.8, "clDice {cl}");
        assert_eq!(cl_dice(&truth, &truth), Some(1.0));
        let pieces = [[5.0, 20.0], [27.0, 20.0]];
        assert!(coverage(&pieces, &LINE).is_some_and(|c| (c - 24.0 / 50.0).abs() < 0.02));
    }

    #[test]
    fn hausdorff95_ignores_a_few_stray_samples_but_not_a_missing_stretch() {
        let truth: Vec<[f32; 2]> = (0..=100).map(|x| [x as f32, 0.0]).collect();
        let half = [[0.0, 0.0], [50.0, 0.0]];
        assert!(hausdorff95(&half, &truth).is_some_and(|d| d > 40.0));
        assert_eq!(hausdorff95(&truth, &truth), Some(0.0));
    }

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
