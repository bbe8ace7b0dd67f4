//! Joins skeleton fragments across short gaps.
//!
//! Where a wire crosses a strong edge (a vertebral endplate, the border of the heart shadow)
//! the edge's own curvature swamps the wire's in the Hessian, and the skeleton breaks. A
//! fragment end is joined to the end of another fragment when they are close and both point
//! at each other, so the robot gets one wire instead of the longer half of it.
//!
//! Noise cuts a faint wire into short pieces whose end directions are poor. So bridging runs
//! twice: first across gaps of a few pixels, where direction hardly matters, then, with the
//! pieces joined and their ends' directions measured over a longer stretch, across the long
//! gaps (a catheter crossing).

use super::{set_pixels, Plane};

/// Parameters of gap bridging.
#[derive(Debug, Clone, Copy)]
pub struct BridgeParams {
    /// Longest gap (px) that is bridged.
    pub max_gap_px: f32,
    /// Largest mean angle (radians) between the two ends' directions and the bridge.
    pub max_angle_rad: f32,
    /// Gaps up to this length (px) are closed first, with `max_angle_rad` doubled.
    pub short_gap_px: f32,
    /// Skeleton steps walked back from an end to estimate its direction.
    pub tangent_steps: usize,
    /// Fragments with fewer pixels are noise specks: they get no ends, so they neither take
    /// a bridge from the wire nor crowd the candidate list.
    pub min_fragment_px: u32,
    /// Skeleton steps at an end that may be a hook (0: none). Where a mask breaks at a
    /// crossing, its skeleton often ends in a hook of 1-3 px along the break, which turns the
    /// end's direction away from the gap. With a hook allowed, an end is read a second time
    /// as if it ended this many steps back: from there and in that stretch's direction.
    pub hook_steps: usize,
    /// How much longer (px) than `max_gap_px` a gap may be where it crosses a thick structure
    /// that hides that much of it (the bridge's pixels in the occlusion mask). A wire crossing a catheter
    /// obliquely loses as much of its skeleton as the catheter is wide over the sine of the
    /// angle, and a few pixels either side where the catheter's edge swamps it: on hard
    /// sequences 24-28 px, each end's direction within 26° of the gap. Only the second pass,
    /// across long gaps, allows it.
    pub max_hidden_px: f32,
}

impl BridgeParams {
    /// The defaults, for constants built from them.
    pub const DEFAULT: BridgeParams = BridgeParams {
        max_gap_px: 24.0,
        max_angle_rad: 0.6,
        short_gap_px: 3.0,
        tangent_steps: 8,
        min_fragment_px: 6,
        hook_steps: 0,
        max_hidden_px: 16.0,
    };
}

impl Default for BridgeParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A gap longer than `max_gap_px`, allowed for what a crossed structure hides, is bridged
/// within this share of the angles: the longer the gap, the further a small error of the
/// ends' directions carries. The catheter crossings of hard sequences bridge within it (each
/// end within 26° of the gap, the two within 22° on average; 23° and 34° allowed).
const HIDDEN_ANGLE: f32 = 2.0 / 3.0;

/// Skeleton value of a bridge pixel: part of the wire's path, but no measurement of it.
pub const BRIDGE: u8 = 2;

/// Most fragment ends considered per frame; beyond this the frame is noise, not wire. Ends
/// are compared only within the longest gap's rows of each other (`max_gap_px` +
/// `max_hidden_px`): on a frame they are spread over, that is a few hundred comparisons an
/// end; packed into 41 rows, 8 million at worst.
const MAX_ENDS: usize = 4096;
/// Most candidate bridges considered per frame.
const MAX_CANDIDATES: usize = 8192;

#[derive(Debug, Clone, Copy)]
struct End {
    pixel: u32,
    label: u32,
    /// Unit vector from the fragment's interior towards this end.
    direction: [f32; 2],
    /// Index in `ends` of the fragment end this is a reading of: an end is bridged once,
    /// from whichever reading.
    origin: u16,
}

/// Gap bridging with scratch space sized at start.
#[derive(Debug)]
pub struct GapBridger {
    params: BridgeParams,
    width: usize,
    labels: Vec<u32>,
    /// The skeleton's set pixels at the last labelling, in row order: the only labels to
    /// clear before the next, and the pixels [`GapBridger::find_ends`] looks at.
    set: Vec<u32>,
    /// Pixels per fragment label.
    sizes: Vec<u32>,
    stack: Vec<u32>,
    /// The pixels walked back from an end, the end first.
    walk: Vec<u32>,
    ends: Vec<End>,
    candidates: Vec<(f32, u16, u16)>,
    used: Vec<bool>,
    parent: Vec<u32>,
}

const NEIGHBOURS: [(isize, isize); 8] = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)];

impl GapBridger {
    /// Scratch space for `width` × `height` skeletons.
    pub fn new(width: usize, height: usize, params: BridgeParams) -> Self {
        let pixels = width * height;
        GapBridger {
            params,
            width,
            labels: vec![0; pixels],
            set: Vec::with_capacity(pixels),
            sizes: Vec::with_capacity(pixels / 2 + 2),
            stack: Vec::with_capacity(pixels),
            walk: Vec::with_capacity(params.tangent_steps + 1),
            ends: Vec::with_capacity(MAX_ENDS),
            candidates: Vec::with_capacity(MAX_CANDIDATES),
            used: Vec::with_capacity(MAX_ENDS),
            parent: Vec::with_capacity(pixels / 2 + 2),
        }
    }

    /// Draws bridges into `skeleton` (values 0 or 1 on entry); returns how many were drawn. Bridge
    /// pixels where `occluded` is set (a thick structure hides the ridge) become [`BRIDGE`], the
    /// others 1: those are judged by their ridge depth like any other skeleton pixel.
    pub fn apply(&mut self, skeleton: &mut Plane<u8>, occluded: &Plane<u8>) -> usize {
        let BridgeParams { short_gap_px, max_gap_px, max_angle_rad, max_hidden_px, .. } = self.params;
        self.pass(skeleton, occluded, short_gap_px, 2.0 * max_angle_rad, 0.0)
            + self.pass(skeleton, occluded, max_gap_px, max_angle_rad, max_hidden_px)
    }

    fn pass(
        &mut self,
        skeleton: &mut Plane<u8>,
        occluded: &Plane<u8>,
        max_gap_px: f32,
        max_angle_rad: f32,
        max_hidden_px: f32,
    ) -> usize {
        let count = self.label(skeleton);
        self.find_ends(skeleton);
        self.propose(occluded, max_gap_px, max_angle_rad, max_hidden_px);
        self.parent.clear();
        self.parent.extend(0..=count);
        self.used.clear();
        self.used.resize(self.ends.len(), false);
        let mut drawn = 0;
        for k in 0..self.candidates.len() {
            let (_, a, b) = self.candidates[k];
            let (a, b) = (usize::from(a), usize::from(b));
            let (oa, ob) = (usize::from(self.ends[a].origin), usize::from(self.ends[b].origin));
            if self.used[oa] || self.used[ob] {
                continue;
            }
            let (ra, rb) = (find(&mut self.parent, self.ends[a].label), find(&mut self.parent, self.ends[b].label));
            if ra == rb {
                continue;
            }
            self.parent[ra as usize] = rb;
            self.used[oa] = true;
            self.used[ob] = true;
            draw_line(skeleton, occluded, self.ends[a].pixel, self.ends[b].pixel);
            drawn += 1;
        }
        drawn
    }

    /// Labels 8-connected fragments 1, 2, …; returns the number of fragments.
    fn label(&mut self, skeleton: &Plane<u8>) -> u32 {
        let (w, h) = (skeleton.width, skeleton.height);
        for &i in &self.set {
            self.labels[i as usize] = 0;
        }
        set_pixels(&skeleton.data, &mut self.set);
        self.sizes.clear();
        self.sizes.push(0);
        let mut next = 0u32;
        for k in 0..self.set.len() {
            let start = self.set[k] as usize;
            if self.labels[start] != 0 {
                continue;
            }
            next += 1;
            self.labels[start] = next;
            self.stack.clear();
            self.stack.push(start as u32);
            let mut size = 0;
            while let Some(i) = self.stack.pop() {
                size += 1;
                for j in neighbours(i as usize, w, h) {
                    if skeleton.data[j] != 0 && self.labels[j] == 0 {
                        self.labels[j] = next;
                        self.stack.push(j as u32);
                    }
                }
            }
            self.sizes.push(size);
        }
        next
    }

    /// Fragment ends (pixels with one neighbour) and their outward directions.
    fn find_ends(&mut self, skeleton: &Plane<u8>) {
        let (w, h) = (skeleton.width, skeleton.height);
        self.ends.clear();
        for &i in &self.set {
            let i = i as usize;
            if self.ends.len() == MAX_ENDS {
                break;
            }
            if self.sizes[self.labels[i] as usize] < self.params.min_fragment_px
                || neighbours(i, w, h).filter(|&j| skeleton.data[j] != 0).count() != 1
            {
                continue;
            }
            // Never onto a pixel walked already: thinning leaves triangles of three pixels on
            // staircases, and a walk round one would measure nothing of the fragment.
            self.walk.clear();
            self.walk.push(i as u32);
            let mut cur = i;
            while self.walk.len() <= self.params.tangent_steps {
                let walk = &self.walk;
                match neighbours(cur, w, h).find(|&j| skeleton.data[j] != 0 && !walk.contains(&(j as u32))) {
                    Some(n) => {
                        cur = n;
                        self.walk.push(n as u32);
                    }
                    None => break,
                }
            }
            let steps = self.walk.len() - 1;
            if steps < 2 {
                continue;
            }
            let past_hook = self.walk[self.params.hook_steps.min(steps)] as usize;
            let origin = self.ends.len() as u16;
            let towards = |end: usize| between(w, cur as u32, end as u32).map(|(d, _)| d);
            let label = self.labels[i];
            let Some(direction) = towards(i) else { continue };
            self.ends.push(End { pixel: i as u32, label, direction, origin });
            let hook = self.params.hook_steps;
            if let Some(direction) = towards(past_hook).filter(|_| hook > 0 && steps >= hook + 2) {
                if self.ends.len() < MAX_ENDS {
                    self.ends.push(End { pixel: past_hook as u32, label, direction, origin });
                }
            }
        }
    }

    /// Candidate bridges between ends of different fragments, cheapest first: gaps up to
    /// `max_gap_px`, and up to `max_hidden_px` more where a crossed structure hides that much.
    /// Ends were found in row order (a reading past a hook up to `hook_steps` rows above its
    /// end), so the search for partners of an end stops that far beyond the longest gap's
    /// rows below it.
    fn propose(&mut self, occluded: &Plane<u8>, max_gap_px: f32, max_angle_rad: f32, max_hidden_px: f32) {
        self.candidates.clear();
        let cos_mean = max_angle_rad.cos();
        let cos_each = (1.5 * max_angle_rad).min(std::f32::consts::FRAC_PI_2).cos();
        let cos_mean_hidden = (HIDDEN_ANGLE * max_angle_rad).cos();
        let cos_each_hidden = (HIDDEN_ANGLE * 1.5 * max_angle_rad).min(std::f32::consts::FRAC_PI_2).cos();
        let longest_px = max_gap_px + max_hidden_px;
        let max_rows = longest_px.ceil() as usize + 2 * self.params.hook_steps;
        'outer: for a in 0..self.ends.len() {
            for b in a + 1..self.ends.len() {
                let (ea, eb) = (self.ends[a], self.ends[b]);
                if (eb.pixel as usize / self.width) > (ea.pixel as usize / self.width) + max_rows {
                    break;
                }
                if ea.label == eb.label {
                    continue;
                }
                let Some((d, dist)) = between(self.width, ea.pixel, eb.pixel) else { continue };
                if dist > longest_px {
                    continue;
                }
                let hidden = dist > max_gap_px;
                let (cos_mean, cos_each) =
                    if hidden { (cos_mean_hidden, cos_each_hidden) } else { (cos_mean, cos_each) };
                let cos_a = ea.direction[0] * d[0] + ea.direction[1] * d[1];
                let cos_b = -(eb.direction[0] * d[0] + eb.direction[1] * d[1]);
                if cos_a < cos_each || cos_b < cos_each || cos_a + cos_b < 2.0 * cos_mean {
                    continue;
                }
                // The line walk last: few pairs that far apart line up.
                if hidden && dist - hidden_px(occluded, ea.pixel, eb.pixel) > max_gap_px {
                    continue;
                }
                if self.candidates.len() == MAX_CANDIDATES {
                    break 'outer;
                }
                let cost = dist * (3.0 - cos_a - cos_b);
                self.candidates.push((cost, a as u16, b as u16));
            }
        }
        self.candidates.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
    }
}

/// Unit vector and distance from pixel `a` to pixel `b` of a `w`-wide plane.
fn between(w: usize, a: u32, b: u32) -> Option<([f32; 2], f32)> {
    let (a, b) = (a as usize, b as usize);
    let (dx, dy) = ((b % w) as f32 - (a % w) as f32, (b / w) as f32 - (a / w) as f32);
    let dist = (dx * dx + dy * dy).sqrt();
    (dist > 0.0).then(|| ([dx / dist, dy / dist], dist))
}

/// The 8-connected neighbours of pixel `i` inside a `w` × `h` plane.
fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = ((i % w) as isize, (i / w) as isize);
    NEIGHBOURS.iter().filter_map(move |&(dx, dy)| {
        let (nx, ny) = (x + dx, y + dy);
        (nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h).then(|| ny as usize * w + nx as usize)
    })
}

/// Union-find root with path halving.
fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// The length (px) of the straight line from pixel `a` to `b` that a thick structure hides,
/// where the line crosses one: both ends outside `occluded`, one stretch inside, and the
/// structure at least half as wide across the line as that stretch is long. A line along a
/// structure (between fragments on its edge, or inside it) hides nothing of a gap.
fn hidden_px(occluded: &Plane<u8>, a: u32, b: u32) -> f32 {
    let (w, h) = (occluded.width, occluded.height);
    let (mut hidden, mut steps, mut runs, mut inside) = (0u32, 0u32, 0u32, false);
    let (mut first, mut last) = (0usize, 0usize);
    line(w, a, b, |i| {
        let now = occluded.data[i] != 0;
        steps += 1;
        hidden += u32::from(now);
        if now && !inside {
            runs += 1;
            first = i;
        }
        if now {
            last = i;
        }
        inside = now;
    });
    let ends_open = occluded.data[a as usize] == 0 && occluded.data[b as usize] == 0;
    let Some((d, dist)) = between(w, a, b).filter(|_| ends_open && runs == 1) else {
        return 0.0;
    };
    let hidden_len = dist * hidden as f32 / steps as f32;
    let mid = [((first % w + last % w) as f32) / 2.0, ((first / w + last / w) as f32) / 2.0];
    let across = |sign: f32| {
        (1..)
            .map(|t| [mid[0] - sign * d[1] * t as f32, mid[1] + sign * d[0] * t as f32])
            .take_while(|p| {
                let (x, y) = (p[0].round(), p[1].round());
                x >= 0.0
                    && y >= 0.0
                    && (x as usize) < w
                    && (y as usize) < h
                    && occluded.data[y as usize * w + x as usize] != 0
            })
            .take(hidden_len.ceil() as usize)
            .count() as f32
    };
    if 2.0 * (across(1.0) + across(-1.0) + 1.0) < hidden_len {
        return 0.0;
    }
    hidden_len
}

/// Sets the pixels of the 8-connected digital line from pixel `a` to pixel `b` (Bresenham):
/// [`BRIDGE`] where `occluded`, else 1.
fn draw_line(plane: &mut Plane<u8>, occluded: &Plane<u8>, a: u32, b: u32) {
    line(plane.width, a, b, |i| {
        if plane.data[i] == 0 {
            plane.data[i] = if occluded.data[i] != 0 { BRIDGE } else { 1 };
        }
    });
}

/// Calls `at` with each pixel of the 8-connected line from pixel `a` to `b` of a plane
/// `w` wide, both ends included (Bresenham).
fn line(w: usize, a: u32, b: u32, mut at: impl FnMut(usize)) {
    let (mut x, mut y) = ((a as usize % w) as isize, (a as usize / w) as isize);
    let (x1, y1) = ((b as usize % w) as isize, (b as usize / w) as isize);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        at(y as usize * w + x as usize);
        if x == x1 && y == y1 {
            return;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(w: usize, h: usize, pixels: impl IntoIterator<Item = (usize, usize)>) -> Plane<u8> {
        let mut p = Plane::new(w, h);
        for (x, y) in pixels {
            p.data[y * w + x] = 1;
        }
        p
    }

    #[test]
    fn collinear_fragments_are_joined() {
        let mut skel = draw(60, 20, (2..25).map(|x| (x, 10)).chain((35..58).map(|x| (x, 10))));
        let drawn = GapBridger::new(60, 20, BridgeParams::default()).apply(&mut skel, &Plane::new(60, 20));
        assert_eq!(drawn, 1);
        assert!((2..58).all(|x| skel.data[10 * 60 + x] == 1));
    }

    #[test]
    fn a_gap_longer_than_the_longest_is_bridged_only_where_a_thick_structure_hides_enough_of_it() {
        // Ends at x 24 and 55: 31 px apart, 7 px more than `max_gap_px`.
        let skeleton = || draw(90, 20, (2..25).map(|x| (x, 10)).chain((55..88).map(|x| (x, 10))));
        let band = |from: usize, to: usize| draw(90, 20, (from..to).flat_map(|x| (0..20).map(move |y| (x, y))));
        let bridged = |occluded: &Plane<u8>| {
            let mut skel = skeleton();
            GapBridger::new(90, 20, BridgeParams::default()).apply(&mut skel, occluded)
        };
        assert_eq!(bridged(&Plane::new(90, 20)), 0, "nothing hides it");
        assert_eq!(bridged(&band(33, 37)), 0, "4 px hidden: 27 px open");
        assert_eq!(bridged(&band(30, 50)), 1, "20 px hidden: 11 px open");
        assert_eq!(bridged(&band(0, 50)), 0, "an end in the structure: along it, not across");
        let along = draw(90, 20, (27..53).flat_map(|x| (8..13).map(move |y| (x, y))));
        assert_eq!(bridged(&along), 0, "a structure 5 px wide across the gap, 26 px along it");
        let (mut two, second) = (band(28, 36), band(44, 52));
        two.data.iter_mut().zip(&second.data).for_each(|(a, b)| *a |= b);
        assert_eq!(bridged(&two), 0, "two structures, 16 px hidden: not one crossing");
        // Hidden or not, no gap beyond `max_gap_px` + `max_hidden_px` (40 px; these ends 42),
        // though a structure 60 px across hides all but 1 px of it.
        let mut far = draw(90, 60, (2..25).map(|x| (x, 30)).chain((66..88).map(|x| (x, 30))));
        let wide = draw(90, 60, (25..66).flat_map(|x| (0..60).map(move |y| (x, y))));
        assert!(hidden_px(&wide, 30 * 90 + 24, 30 * 90 + 66) > 40.0);
        assert_eq!(GapBridger::new(90, 60, BridgeParams::default()).apply(&mut far, &wide), 0);
    }

    #[test]
    fn a_gap_a_structure_hides_must_line_up_better_than_one_in_view() {
        let band = draw(90, 40, (30..50).flat_map(|x| (0..40).map(move |y| (x, y))));
        // Both ends point along x, the gap runs 27° off it.
        let offset = |dx: usize, dy: usize| {
            draw(90, 40, (2..25).map(|x| (x, 10)).chain((25 + dx..88).map(move |x| (x, 10 + dy))))
        };
        let mut in_view = offset(19, 10);
        assert_eq!(GapBridger::new(90, 40, BridgeParams::default()).apply(&mut in_view, &Plane::new(90, 40)), 1);
        let mut hidden = offset(30, 16);
        // The band hides 22 px of its 35: the angles alone keep it open.
        assert!(hidden_px(&band, 10 * 90 + 24, 26 * 90 + 55) > 20.0);
        assert_eq!(GapBridger::new(90, 40, BridgeParams::default()).apply(&mut hidden, &band), 0);
        let mut lined_up = offset(30, 0);
        assert_eq!(GapBridger::new(90, 40, BridgeParams::default()).apply(&mut lined_up, &band), 1);
        // 16 px and 38° off, 14 px of it hidden: a gap the first pass (3 px, angles doubled)
        // would take if it allowed for what is hidden; the second pass's angles keep it open.
        let mut short = offset(12, 10);
        let across = draw(90, 40, (25..37).flat_map(|x| (0..40).map(move |y| (x, y))));
        assert!(hidden_px(&across, 10 * 90 + 24, 20 * 90 + 37) > 13.0);
        assert_eq!(GapBridger::new(90, 40, BridgeParams::default()).apply(&mut short, &across), 0);
    }

    #[test]
    fn a_bridge_over_an_occluding_structure_is_marked_as_unmeasured() {
        let mut skel = draw(60, 20, (2..25).map(|x| (x, 10)).chain((35..58).map(|x| (x, 10))));
        let occluded = draw(60, 20, (28..32).flat_map(|x| (0..20).map(move |y| (x, y))));
        assert_eq!(GapBridger::new(60, 20, BridgeParams::default()).apply(&mut skel, &occluded), 1);
        let row = &skel.data[10 * 60..11 * 60];
        assert!(row[28..32].iter().all(|&v| v == BRIDGE), "{:?}", &row[25..35]);
        assert!(row[25..28].iter().chain(&row[32..35]).all(|&v| v == 1));
    }

    #[test]
    fn a_short_gap_at_a_sharp_bend_is_closed_but_a_long_one_is_not() {
        // A horizontal piece, then a piece turning down at a right angle, 2 px (then 10 px)
        // apart diagonally: the bridge is 45° off both ends.
        for (gap, joined) in [(2, true), (10, false)] {
            let pixels = (2..25).map(|x| (x, 5)).chain((5 + gap..40).map(move |y| (24 + gap, y)));
            let mut skel = draw(60, 45, pixels);
            let drawn = GapBridger::new(60, 45, BridgeParams::default()).apply(&mut skel, &Plane::new(60, 45));
            assert_eq!(drawn == 1, joined, "gap {gap}");
        }
    }

    #[test]
    fn fragments_that_do_not_point_at_each_other_stay_apart() {
        for hook_steps in [0, 2] {
            let mut skel = draw(60, 40, (2..25).map(|x| (x, 10)).chain((12..35).map(|y| (32, y))));
            let before = skel.clone();
            let params = BridgeParams { hook_steps, ..BridgeParams::default() };
            assert_eq!(GapBridger::new(60, 40, params).apply(&mut skel, &Plane::new(60, 40)), 0);
            assert_eq!(skel, before);
        }
    }

    #[test]
    fn an_end_that_hooks_along_a_break_is_bridged_from_before_its_hook_where_hooks_are_allowed() {
        // A wire along x = 20, broken between y = 20 and 27; the lower piece's skeleton turns
        // left for 3 px at the break: its end points 27° off the wire, and a bridge from its
        // tip would run 53° off that.
        let upper = (2..=20).map(|y| (20, y));
        let lower = (27..45).map(|y| (20, y)).chain((17..20).map(|x| (x, 26)));
        for (hook_steps, joined) in [(0, false), (2, true)] {
            let mut skel = draw(40, 48, upper.clone().chain(lower.clone()));
            let mut bridger = GapBridger::new(40, 48, BridgeParams { hook_steps, ..BridgeParams::default() });
            assert_eq!(bridger.apply(&mut skel, &Plane::new(40, 48)), usize::from(joined), "hook {hook_steps}");
            assert_eq!(bridger.label(&skel) == 1, joined, "hook {hook_steps}");
        }
    }

    #[test]
    fn gaps_longer_than_the_limit_stay_open() {
        let mut skel = draw(90, 20, (2..25).map(|x| (x, 10)).chain((55..88).map(|x| (x, 10))));
        assert_eq!(GapBridger::new(90, 20, BridgeParams::default()).apply(&mut skel, &Plane::new(90, 20)), 0);
    }

    /// Thinning leaves triangles of three pixels on staircases. The walk back from an end used to
    /// go round one and read the end's direction off the triangle (straight up here, 45° off
    /// the staircase); where it came back to where the reading past a hook starts, that reading
    /// had no direction at all (0/0), passed every angle test and was bridged first. Walked
    /// without stepping back, the end points along the staircase, at the piece beyond the gap
    /// on its line.
    #[test]
    fn an_end_s_direction_comes_from_its_fragment_not_from_a_triangle_its_walk_goes_round() {
        let staircase = [(21, 9), (21, 10), (21, 11), (22, 11)].into_iter().chain((12..30).map(|k| (k + 10, k)));
        let beyond = (0..=6).map(|k| (k + 10, k));
        for hook_steps in [0, 2] {
            let mut skel = draw(40, 32, staircase.clone().chain(beyond.clone()));
            let mut bridger = GapBridger::new(40, 32, BridgeParams { hook_steps, ..BridgeParams::default() });
            assert_eq!(bridger.apply(&mut skel, &Plane::new(40, 32)), 1, "hook {hook_steps}");
            assert_eq!(bridger.label(&skel), 1, "hook {hook_steps}: one piece");
        }
    }

    #[test]
    fn each_end_is_bridged_once_and_no_loop_is_made() {
        for hook_steps in [0, 2] {
            let pieces = (2..25).chain(33..55).chain(63..88);
            let mut skel = draw(90, 20, pieces.map(|x| (x, 10)));
            let params = BridgeParams { hook_steps, ..BridgeParams::default() };
            assert_eq!(GapBridger::new(90, 20, params).apply(&mut skel, &Plane::new(90, 20)), 2);
            assert!((2..88).all(|x| skel.data[10 * 90 + x] != 0));
            assert_eq!(skel.data.iter().filter(|&&v| v != 0).count(), 86, "one row, no second bridge");
        }
    }
}
