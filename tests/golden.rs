//! The CPU stages against implementations users already trust, on fixtures written by
//! `tests/golden/generate.py` (scikit-image 0.24 and OpenCV 4.10; see its docstring).

use wiretrace::vision::clahe::{Clahe, ClaheParams};
use wiretrace::vision::ridge::{eigenvalues, RidgeDetector, RidgeParams};
use wiretrace::vision::thinning::Thinning;
use wiretrace::vision::Plane;

const SIZE: usize = 64;

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn mask(bytes: &[u8]) -> Plane<u8> {
    Plane { width: SIZE, height: SIZE, data: bytes.iter().map(|&v| u8::from(v != 0)).collect() }
}

/// Pixels this far from the border are compared; nearer, the two reflect differently far out
/// in their kernels' tails (SciPy's run past 11σ, ours stop at 6σ).
const BORDER_PX: usize = 12;

#[test]
fn hessian_eigenvalues_match_scikit_image_within_1e_4_relative() {
    let input = Plane { width: SIZE, height: SIZE, data: f32s(include_bytes!("golden/hessian_input.f32")) };
    let fixtures: [(f32, &[u8]); 4] = [
        (1.0, include_bytes!("golden/hessian_eig_s1.0.f32")),
        (1.5, include_bytes!("golden/hessian_eig_s1.5.f32")),
        (2.0, include_bytes!("golden/hessian_eig_s2.0.f32")),
        (3.5, include_bytes!("golden/hessian_eig_s3.5.f32")),
    ];
    let mut detector = RidgeDetector::new(SIZE, SIZE, RidgeParams::default());
    for (sigma, bytes) in fixtures {
        let reference = f32s(bytes);
        let (big, small) = reference.split_at(SIZE * SIZE);
        // Relative to each value, with a floor at 1 % of the largest so that values near zero
        // (where relative error means nothing) are held to 1e-6 of the image's scale.
        let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let h = detector.hessian_at(&input, sigma);
        let mut worst = 0.0f32;
        for y in BORDER_PX..SIZE - BORDER_PX {
            for x in BORDER_PX..SIZE - BORDER_PX {
                let i = y * SIZE + x;
                let (a, b) = eigenvalues(h.xx.data[i], h.xy.data[i], h.yy.data[i]);
                let (ours_big, ours_small) = (a.max(b), a.min(b));
                for (ours, theirs) in [(ours_big, big[i]), (ours_small, small[i])] {
                    let err = (ours - theirs).abs() / theirs.abs().max(0.01 * scale);
                    worst = worst.max(err);
                    assert!(err <= 1e-4, "sigma {sigma}, pixel ({x}, {y}): ours {ours}, scikit-image {theirs}");
                }
            }
        }
        eprintln!("sigma {sigma}: worst relative error {worst:.2e}");
    }
}

#[test]
fn zhang_suen_thinning_matches_opencv_pixel_for_pixel() {
    let fixtures: [(&[u8], &[u8]); 3] = [
        (include_bytes!("golden/thinning_0_in.u8"), include_bytes!("golden/thinning_0_out.u8")),
        (include_bytes!("golden/thinning_1_in.u8"), include_bytes!("golden/thinning_1_out.u8")),
        (include_bytes!("golden/thinning_2_in.u8"), include_bytes!("golden/thinning_2_out.u8")),
    ];
    for (k, (input, expected)) in fixtures.into_iter().enumerate() {
        let mut m = mask(input);
        assert!(m.data.iter().any(|&v| v != 0), "fixture {k} is empty");
        Thinning::new(SIZE * SIZE).apply(&mut m);
        let want = mask(expected);
        let differ: Vec<(usize, usize)> =
            (0..SIZE * SIZE).filter(|&i| m.data[i] != want.data[i]).map(|i| (i % SIZE, i / SIZE)).collect();
        assert!(
            differ.is_empty(),
            "fixture {k}: {} pixels differ from OpenCV, first {:?}",
            differ.len(),
            &differ[..differ.len().min(5)]
        );
    }
}

#[test]
fn clahe_matches_opencv_within_one_grey_level() {
    /// Input, OpenCV's output, width, height, and OpenCV's parameters.
    type Fixture = (&'static [u8], &'static [u8], usize, usize, ClaheParams);
    let params = |clip_limit, tiles_x, tiles_y| ClaheParams { clip_limit, tiles_x, tiles_y };
    let fixtures: [Fixture; 3] = [
        (include_bytes!("golden/clahe_0_in.u8"), include_bytes!("golden/clahe_0_out.u8"), 64, 64, params(2.0, 8, 8)),
        (include_bytes!("golden/clahe_1_in.u8"), include_bytes!("golden/clahe_1_out.u8"), 100, 75, params(3.0, 4, 6)),
        (include_bytes!("golden/clahe_2_in.u8"), include_bytes!("golden/clahe_2_out.u8"), 90, 60, params(40.0, 8, 8)),
    ];
    for (k, (input, expected, width, height, params)) in fixtures.into_iter().enumerate() {
        let image = Plane { width, height, data: input.to_vec() };
        let mut out = Plane::new(width, height);
        Clahe::new(width, height, params).apply(&image, &mut out);
        let diffs: Vec<i16> = out.data.iter().zip(expected).map(|(&a, &b)| i16::from(a) - i16::from(b)).collect();
        let worst = diffs.iter().map(|d| d.abs()).max().unwrap_or(0);
        let off = diffs.iter().filter(|&&d| d != 0).count();
        eprintln!("clahe fixture {k}: {off} of {} pixels differ, by at most {worst}", diffs.len());
        assert!(worst <= 1, "fixture {k}: differs from OpenCV by up to {worst} grey levels");
    }
}
