//! Skeleton to an ordered centerline: the strongest skeleton path, proximal end first,
//! smoothed, moved across the ridge to its sub-pixel peak, and resampled at uniform arc length.
//!
//! The previous frame's centerline is a prior: a path that runs along all of it counts
//! `track_bonus` times its depth against paths that do not, a path along part of it part of
//! that (a bias, not a lock: a wire that is plainly stronger elsewhere still wins), and it
//! decides which end is proximal, so the wire neither jumps to another structure
//! nor swaps ends between frames. Only a confident centerline becomes a prior (a faint bone
//! edge must not be tracked), and the prior is dropped after a few frames without a match, so
//! tracking recovers when the wire leaves and comes back.
//!
//! Uniform spacing matters twice: the robot gets evenly spaced targets, and the protocol's
//! second-order delta coding turns evenly spaced points into one-byte varints.

use super::bridging::BRIDGE;
use super::field::FieldOfView;
use super::ridge::RidgeMap;
use super::{set_pixels, Plane};

/// Parameters of centerline extraction.
#[derive(Debug, Clone, Copy)]
pub struct CenterlineParams {
    /// Shortest skeleton path (px) taken as a wire; shorter ones are noise.
    pub min_length_px: f32,
    /// Shortest path (px) taken as a wire that is entering the field: one with an end at the
    /// image border, and deep enough for `entry_min_mean_depth` (or at a collimated field's
    /// edge, and deep enough for `confident_mean_depth`). Noise does not line up with the
    /// border; a wire being pushed in does, for the frames before it is `min_length_px` long.
    pub entry_min_length_px: f32,
    /// Lowest mean ridge depth of an entering wire shorter than `min_length_px`.
    pub entry_min_mean_depth: f32,
    /// Lowest mean ridge depth of any path as a multiple of the frame's noise depth (see
    /// [`super::threshold`]): at low dose noise alone strings together paths deeper than
    /// `min_mean_depth`, about 1.5 times the noise depth, where the wire is 2.5 times or more.
    pub min_mean_over_noise: f32,
    /// Lowest mean ridge depth (attenuation units) along a path taken as a wire. Metal
    /// attenuates far more than the bone edges and vessels that also make thin ridges, so
    /// a path fainter than this is anatomy, and "no wire" is the honest answer.
    pub min_mean_depth: f32,
    /// Mean ridge depth at which a path is as wire-like as this detector can tell: its
    /// confidence is 1 from there up.
    pub confident_mean_depth: f32,
    /// Most points sent per centerline.
    pub max_points: usize,
    /// Closest spacing (px) between resampled points on short wires.
    pub min_spacing_px: f32,
    /// Half-width (points) of the moving average that removes the skeleton's pixel staircase.
    pub smooth_half_window: usize,
    /// A path whose mean distance (px) to the previous centerline is within this follows it.
    pub track_match_px: f32,
    /// How much more a path along the whole prior counts than one that does not follow it.
    pub track_bonus: f32,
    /// Confidence from which a centerline that follows no prior becomes the prior.
    pub track_adopt_confidence: f32,
    /// Frames without a path that follows the prior before it is dropped.
    pub track_lost_frames: u32,
}

impl Default for CenterlineParams {
    fn default() -> Self {
        CenterlineParams {
            min_length_px: 20.0,
            entry_min_length_px: 8.0,
            entry_min_mean_depth: 0.15,
            min_mean_over_noise: 2.0,
            min_mean_depth: 0.10,
            confident_mean_depth: 0.25,
            max_points: 64,
            min_spacing_px: 2.0,
            smooth_half_window: 2,
            track_match_px: 8.0,
            track_bonus: 3.0,
            track_adopt_confidence: 0.8,
            track_lost_frames: 5,
        }
    }
}

/// The wire found in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wire<'a> {
    /// Pixel coordinates `[x, y]`, proximal end first, tip last.
    pub points_px: &'a [[f32; 2]],
    /// Mean ridge depth along the path over `confident_mean_depth`, capped at 1.
    pub confidence: f32,
    /// Length of the skeleton path (px).
    pub length_px: f32,
}

const UNSEEN: u32 = u32::MAX;

/// Finds the centerline in a skeleton; all scratch space is sized at start.
#[derive(Debug)]
pub struct CenterlineExtractor {
    params: CenterlineParams,
    width: usize,
    height: usize,
    /// The skeleton's set pixels, in row order: where components start, and the labels to
    /// clear after them.
    set: Vec<u32>,
    labelled: Vec<bool>,
    visit: Vec<u32>,
    generation: u32,
    parent: Vec<u32>,
    queue: Vec<u32>,
    path: Vec<u32>,
    best_path: Vec<u32>,
    smoothed: Vec<[f32; 2]>,
    output: Vec<[f32; 2]>,
    prior: Vec<[f32; 2]>,
    /// The last frame's centerline, confident or not: it decides the order of a path that runs
    /// along it, even when it was too faint to become the prior.
    previous: Vec<[f32; 2]>,
    frames_unmatched: u32,
    /// The last centerline found, confident or not, kept as long as a prior is after a frame
    /// without one ([`CenterlineExtractor::last_seen`]).
    seen: Vec<[f32; 2]>,
    frames_unseen: u32,
}

/// What a [`CenterlineExtractor`] carries from one frame to the next: the tracked wire, the
/// last frame's centerline and the last one seen, and how long each has gone unmatched.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    prior: Vec<[f32; 2]>,
    previous: Vec<[f32; 2]>,
    frames_unmatched: u32,
    seen: Vec<[f32; 2]>,
    frames_unseen: u32,
}

impl Track {
    /// Room for centerlines of `params.max_points`.
    pub fn new(params: CenterlineParams) -> Self {
        let n = params.max_points.max(2);
        Track {
            prior: Vec::with_capacity(n),
            previous: Vec::with_capacity(n),
            frames_unmatched: 0,
            seen: Vec::with_capacity(n),
            frames_unseen: 0,
        }
    }
}

impl CenterlineExtractor {
    /// Scratch space for `width` × `height` skeletons.
    pub fn new(width: usize, height: usize, params: CenterlineParams) -> Self {
        let n = width * height;
        CenterlineExtractor {
            params,
            width,
            height,
            set: Vec::with_capacity(n),
            labelled: vec![false; n],
            visit: vec![0; n],
            generation: 0,
            parent: vec![UNSEEN; n],
            queue: Vec::with_capacity(n),
            path: Vec::with_capacity(n),
            best_path: Vec::with_capacity(n),
            smoothed: Vec::with_capacity(n),
            output: Vec::with_capacity(params.max_points.max(2)),
            prior: Vec::with_capacity(params.max_points.max(2)),
            previous: Vec::with_capacity(params.max_points.max(2)),
            frames_unmatched: 0,
            seen: Vec::with_capacity(params.max_points.max(2)),
            frames_unseen: 0,
        }
    }

    /// Breadth-first search from `start` over 8-connected skeleton pixels; fills `queue` with
    /// the component in visiting order and `parent` with the search tree. Returns the last
    /// pixel reached, one of the farthest (in steps) from `start`.
    fn bfs(&mut self, skeleton: &Plane<u8>, start: u32) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.visit.fill(0);
            self.generation = 1;
        }
        let (w, h, gen) = (self.width, self.height, self.generation);
        self.queue.clear();
        self.queue.push(start);
        self.visit[start as usize] = gen;
        self.parent[start as usize] = UNSEEN;
        let mut head = 0;
        while head < self.queue.len() {
            let i = self.queue[head] as usize;
            head += 1;
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if skeleton.data[j] != 0 && self.visit[j] != gen {
                        self.visit[j] = gen;
                        self.parent[j] = i as u32;
                        self.queue.push(j as u32);
                    }
                }
            }
        }
        self.queue.last().copied().unwrap_or(start)
    }

    /// The tracked wire (empty when none): the last confident centerline, or one that followed it.
    pub fn prior(&self) -> &[[f32; 2]] {
        &self.prior
    }

    /// The last centerline found, tracked or not, within as many frames as a prior is kept
    /// (empty when none): where a wire too faint to be tracked was seen last.
    pub fn last_seen(&self) -> &[[f32; 2]] {
        &self.seen
    }

    /// Copies what this extractor carries from frame to frame into `to`, to be put back with
    /// [`CenterlineExtractor::restore_track`] where a frame is extracted again. Copies into
    /// what `to` holds: nothing is allocated once `to` holds [`Track::new`]'s room.
    pub fn save_track(&self, to: &mut Track) {
        to.prior.clone_from(&self.prior);
        to.previous.clone_from(&self.previous);
        to.seen.clone_from(&self.seen);
        (to.frames_unmatched, to.frames_unseen) = (self.frames_unmatched, self.frames_unseen);
    }

    /// Puts back what [`CenterlineExtractor::save_track`] saved: the frames since are undone.
    pub fn restore_track(&mut self, from: &Track) {
        self.prior.clone_from(&from.prior);
        self.previous.clone_from(&from.previous);
        self.seen.clone_from(&from.seen);
        (self.frames_unmatched, self.frames_unseen) = (from.frames_unmatched, from.frames_unseen);
    }

    /// Forgets the previous frames: the next frame is the first of a new sequence.
    pub fn reset(&mut self) {
        self.prior.clear();
        self.previous.clear();
        self.frames_unmatched = 0;
        self.seen.clear();
        self.frames_unseen = 0;
    }

    /// How much of `prior` the pixel `path` accounts for: 0 when the path does not run along
    /// the prior (mean distance of every 4th pixel over `track_match_px`), else the share of
    /// the prior's points within `track_match_px` of the path. A path that is only part of the
    /// tracked wire earns only part of the bonus, so the whole wire is not given up for the
    /// half of it that survived a bad frame.
    fn share_of(&self, prior: &[[f32; 2]], path: &[u32]) -> f32 {
        if prior.is_empty() {
            return 0.0;
        }
        let w = self.width;
        let xy = |i: u32| [(i as usize % w) as f32, (i as usize / w) as f32];
        let (mut sum, mut n) = (0.0f32, 0usize);
        for &i in path.iter().step_by(4) {
            sum += point_polyline_distance(xy(i), prior);
            n += 1;
        }
        if n == 0 || sum / n as f32 > self.params.track_match_px {
            return 0.0;
        }
        let reach = self.params.track_match_px;
        let near = |p: &[f32; 2]| path.iter().step_by(2).any(|&i| dist(xy(i), *p) <= reach);
        prior.iter().filter(|p| near(p)).count() as f32 / prior.len() as f32
    }

    /// The wire in `skeleton`: the component's longest path with the most ridge depth summed
    /// along it, counting `track_bonus` times where it follows the previous frame's centerline;
    /// `None` when no path reaches `min_length_px` and `min_mean_depth` (or
    /// `min_mean_over_noise` times the frame's `noise_depth`).
    pub fn extract(&mut self, skeleton: &Plane<u8>, ridge: &RidgeMap, noise_depth: f32) -> Option<Wire<'_>> {
        self.find(skeleton, ridge, noise_depth, None, None)
    }

    /// [`CenterlineExtractor::extract`] in a frame whose `field` of view may be collimated: a
    /// wire then comes into view at the field's edge, not at the image's border, and a short
    /// path entering there is taken as an entering wire where it is as deep as a confident one.
    pub fn extract_in_field(
        &mut self,
        skeleton: &Plane<u8>,
        ridge: &RidgeMap,
        noise_depth: f32,
        field: &FieldOfView,
    ) -> Option<Wire<'_>> {
        self.find(skeleton, ridge, noise_depth, Some(field), None)
    }

    /// [`CenterlineExtractor::extract_in_field`] on a frame whose regions reached beyond the
    /// tracked wire: a path with an end where `comes_into_view` (the field's edge, where a wire
    /// enters) that does not follow the prior counts as if it ran along all of it. A wire that
    /// came into view after something else was taken for one then takes over once it is the
    /// stronger, not only once it is `track_bonus` times that; a piece that starts inside the
    /// field (the rest of a wire broken at a crossing, a vessel's branch) still cannot.
    pub fn extract_with_rivals(
        &mut self,
        skeleton: &Plane<u8>,
        ridge: &RidgeMap,
        noise_depth: f32,
        field: &FieldOfView,
        comes_into_view: &dyn Fn([f32; 2]) -> bool,
    ) -> Option<Wire<'_>> {
        self.find(skeleton, ridge, noise_depth, Some(field), Some(comes_into_view))
    }

    fn find(
        &mut self,
        skeleton: &Plane<u8>,
        ridge: &RidgeMap,
        noise_depth: f32,
        field: Option<&FieldOfView>,
        comes_into_view: Option<&dyn Fn([f32; 2]) -> bool>,
    ) -> Option<Wire<'_>> {
        let strength = &ridge.strength;
        let w = self.width;
        let xy = |i: u32| [(i as usize % w) as f32, (i as usize / w) as f32];
        set_pixels(&skeleton.data, &mut self.set);
        self.best_path.clear();
        let (mut best_rank, mut best_score, mut best_follows) = (0.0f32, 0.0f32, false);
        let (mut best_length, mut best_measured) = (0.0f32, 0usize);
        for k in 0..self.set.len() {
            let start = self.set[k] as usize;
            if self.labelled[start] {
                continue;
            }
            let far_a = self.bfs(skeleton, start as u32);
            for &i in &self.queue {
                self.labelled[i as usize] = true;
            }
            let far_b = self.bfs(skeleton, far_a);
            self.path.clear();
            let mut at = far_b;
            while at != UNSEEN {
                self.path.push(at);
                at = self.parent[at as usize];
            }
            let length = path_length(&self.path, w);
            let entering = length < self.params.min_length_px;
            let entry = if entering { self.enters_view(&self.path, field) } else { None };
            if entering && (length < self.params.entry_min_length_px || entry.is_none()) {
                continue;
            }
            let floor = match entry {
                None => self.params.min_mean_depth,
                Some(Entry::Border) => self.params.entry_min_mean_depth,
                Some(Entry::FieldEdge) => self.params.confident_mean_depth,
            };
            let min_mean_depth = floor.max(self.params.min_mean_over_noise * noise_depth);
            let measured = self.path.iter().filter(|&&i| skeleton.data[i as usize] != BRIDGE);
            let (score, count) = measured.fold((0.0f32, 0usize), |(s, n), &i| (s + strength.data[i as usize], n + 1));
            if count == 0 || score < min_mean_depth * count as f32 {
                continue;
            }
            let share = self.share_of(&self.prior, &self.path);
            let follows = share > 0.0;
            let rival = comes_into_view.is_some_and(|at_edge| {
                let ends = [self.path.first(), self.path.last()];
                !follows && !self.prior.is_empty() && ends.into_iter().flatten().any(|&i| at_edge(xy(i)))
            });
            let rank =
                score * if rival { self.params.track_bonus } else { 1.0 + (self.params.track_bonus - 1.0) * share };
            if rank > best_rank {
                (best_rank, best_score, best_follows) = (rank, score, follows);
                best_measured = count;
                best_length = length;
                std::mem::swap(&mut self.path, &mut self.best_path);
            }
        }
        // Every set pixel was labelled, and only those.
        for &i in &self.set {
            self.labelled[i as usize] = false;
        }
        let follows = best_follows;
        if self.best_path.is_empty() {
            self.previous.clear();
            self.count_unmatched();
            self.count_unseen();
            return None;
        }
        let mean_depth = best_score / best_measured as f32;
        let confidence = (mean_depth / self.params.confident_mean_depth).clamp(0.0, 1.0);
        let along_previous = self.share_of(&self.previous, &self.best_path) > 0.0;
        self.order_proximal_first(follows, along_previous);
        self.smooth();
        self.refine(ridge);
        resample(&self.smoothed, self.params, &mut self.output);
        self.previous.clear();
        self.previous.extend_from_slice(&self.output);
        self.seen.clear();
        self.seen.extend_from_slice(&self.output);
        self.frames_unseen = 0;
        if follows || confidence >= self.params.track_adopt_confidence {
            self.prior.clear();
            self.prior.extend_from_slice(&self.output);
            self.frames_unmatched = 0;
        } else {
            self.count_unmatched();
        }
        Some(Wire { points_px: &self.output, confidence, length_px: best_length })
    }

    /// Whether the pixel path comes into view: one of its ends lies `ENTRY_BORDER_PX` near the
    /// edge of a collimated `field`, or else on the outermost `ENTRY_BORDER_PX` of the image,
    /// and the path leaves that edge or border at more than 30°. A path along the border is
    /// the edge of the detector or of the collimator, not a wire.
    fn enters_view(&self, path: &[u32], field: Option<&FieldOfView>) -> Option<Entry> {
        let w = self.width;
        let xy = |i: u32| ((i as usize % w) as f32, (i as usize / w) as f32);
        let reach = path.len().min(ENTRY_DIRECTION_PX);
        let ends = [(path.first(), path.get(reach - 1)), (path.last(), path.get(path.len() - reach))];
        let entries = ends.into_iter().map(|(end, inner)| {
            let (Some(&end), Some(&inner)) = (end, inner) else { return None };
            let ((ex, ey), (ix, iy)) = (xy(end), xy(inner));
            let from_border = [ex, ey, (w - 1) as f32 - ex, (self.height - 1) as f32 - ey];
            let (side, distance) =
                from_border.iter().enumerate().fold((0, f32::MAX), |b, (k, &d)| if d < b.1 { (k, d) } else { b });
            let (dx, dy) = (ix - ex, iy - ey);
            let length = (dx * dx + dy * dy).sqrt();
            let across = if side % 2 == 0 { dx.abs() } else { dy.abs() };
            // Where the field's edge is near, the wire comes into view there (the image's
            // border beside it is behind the shutters), and leaves it inward, as it leaves the
            // border across it elsewhere.
            match field.and_then(|f| f.inward_at([ex, ey], ENTRY_BORDER_PX as f32)) {
                _ if length == 0.0 => None,
                Some([nx, ny]) => (dx * nx + dy * ny >= 0.5 * length).then_some(Entry::FieldEdge),
                None => (distance < ENTRY_BORDER_PX as f32 && across >= 0.5 * length).then_some(Entry::Border),
            }
        });
        entries.flatten().min()
    }

    /// A frame went by without a centerline (abandoned at its deadline): the last frame's
    /// centerline is no longer the last, and the prior ages as if the wire had not been found.
    pub fn skip_frame(&mut self) {
        self.previous.clear();
        self.count_unmatched();
        self.count_unseen();
    }

    fn count_unseen(&mut self) {
        self.frames_unseen += 1;
        if self.frames_unseen >= self.params.track_lost_frames {
            self.seen.clear();
        }
    }

    fn count_unmatched(&mut self) {
        self.frames_unmatched += 1;
        if self.frames_unmatched >= self.params.track_lost_frames {
            self.prior.clear();
        }
    }

    /// Proximal is the end nearer the proximal end of the prior when the path follows it, else
    /// of the last frame's centerline when the path runs along that, else the end nearer the
    /// image border, where the wire enters the field.
    fn order_proximal_first(&mut self, follows_prior: bool, along_previous: bool) {
        let (w, h) = (self.width, self.height);
        let (Some(&first), Some(&last)) = (self.best_path.first(), self.best_path.last()) else { return };
        let xy = |i: u32| [(i as usize % w) as f32, (i as usize / w) as f32];
        let reference = if follows_prior {
            Some(&self.prior)
        } else if along_previous {
            Some(&self.previous)
        } else {
            None
        };
        let reverse = match reference.filter(|line| !line.is_empty()) {
            Some(line) => {
                let (a, b) = (arc_position(xy(first), line), arc_position(xy(last), line));
                if (a - b).abs() > self.params.track_match_px {
                    b < a
                } else {
                    dist(xy(last), line[0]) < dist(xy(first), line[0])
                }
            }
            None => {
                let border = |i: u32| {
                    let (x, y) = (i as usize % w, i as usize / w);
                    x.min(y).min(w - 1 - x).min(h - 1 - y)
                };
                border(last) < border(first)
            }
        };
        if reverse {
            self.best_path.reverse();
        }
    }

    /// Moves each smoothed point across the ridge to its peak: a parabola through the ridge
    /// depth at the point and one pixel either side along the Hessian normal (bilinear
    /// samples). The skeleton knows the wire's axis to a pixel; the depth profile knows it to a
    /// fraction of one. Points where the profile has no maximum stay where they are.
    fn refine(&mut self, ridge: &RidgeMap) {
        let (w, h) = (self.width, self.height);
        for p in self.smoothed.iter_mut() {
            let (xi, yi) = ((p[0].round().max(0.0) as usize).min(w - 1), (p[1].round().max(0.0) as usize).min(h - 1));
            let (nx, ny) = (ridge.normal_x.at(xi, yi), ridge.normal_y.at(xi, yi));
            let at = |t: f32| bilinear(&ridge.strength, p[0] + t * nx, p[1] + t * ny);
            let (before, centre, after) = (at(-1.0), at(0.0), at(1.0));
            let curvature = before - 2.0 * centre + after;
            if centre > 0.0 && curvature < 0.0 {
                let offset = (0.5 * (before - after) / curvature).clamp(-MAX_REFINE_PX, MAX_REFINE_PX);
                *p = [p[0] + offset * nx, p[1] + offset * ny];
            }
        }
    }

    /// Moving average along the path; the window shrinks at the ends so they stay put.
    fn smooth(&mut self) {
        let w = self.width;
        let n = self.best_path.len();
        let k = self.params.smooth_half_window;
        self.smoothed.clear();
        for i in 0..n {
            let half = k.min(i).min(n - 1 - i);
            let (mut sx, mut sy) = (0.0f32, 0.0f32);
            for &p in &self.best_path[i - half..=i + half] {
                sx += (p as usize % w) as f32;
                sy += (p as usize / w) as f32;
            }
            let count = (2 * half + 1) as f32;
            self.smoothed.push([sx / count, sy / count]);
        }
    }
}

/// Where a short path comes into view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    /// At the image's border.
    Border,
    /// At the edge of a collimated field: it must be as deep as a confident wire, since
    /// the collimator cuts through anatomy there and the field's margin hides the wire's first
    /// pixels.
    FieldEdge,
}

/// How close (px) to the image border, or to the margin dropped along a collimated field's
/// edge, a path must end to be taken as entering the field: the border echo suppression and
/// thinning leave the skeleton a few pixels short of either.
const ENTRY_BORDER_PX: usize = 4;
/// Pixels along an entering path over which its direction at the border is measured.
const ENTRY_DIRECTION_PX: usize = 8;

/// Furthest (px) refinement moves a point: beyond it the parabola is extrapolating.
const MAX_REFINE_PX: f32 = 0.75;

/// `plane` at sub-pixel `(x, y)`, bilinearly, clamped to the plane.
fn bilinear(plane: &Plane<f32>, x: f32, y: f32) -> f32 {
    let (w, h) = (plane.width, plane.height);
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = plane.at(x0, y0) * (1.0 - fx) + plane.at(x1, y0) * fx;
    let bottom = plane.at(x0, y1) * (1.0 - fx) + plane.at(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Length (px) of a pixel path with diagonal steps counted as √2.
fn path_length(path: &[u32], w: usize) -> f32 {
    path.windows(2)
        .map(|p| {
            let (a, b) = (p[0] as usize, p[1] as usize);
            if a % w != b % w && a / w != b / w {
                std::f32::consts::SQRT_2
            } else {
                1.0
            }
        })
        .sum()
}

/// Resamples a polyline at uniform arc length into `out`: at most `max_points`, at least
/// `min_spacing_px` apart where the budget allows, first and last points exact.
pub fn resample(line: &[[f32; 2]], params: CenterlineParams, out: &mut Vec<[f32; 2]>) {
    out.clear();
    let (Some(&first), Some(&last)) = (line.first(), line.last()) else {
        return;
    };
    let total: f32 = line.windows(2).map(|s| dist(s[0], s[1])).sum();
    let wanted = (total / params.min_spacing_px).ceil() as usize + 1;
    let n = wanted.clamp(2, params.max_points.max(2));
    out.push(first);
    let step = total / (n - 1) as f32;
    let (mut seg, mut seg_start) = (0usize, 0.0f32);
    for k in 1..n - 1 {
        let target = step * k as f32;
        while seg + 1 < line.len() - 1 && seg_start + dist(line[seg], line[seg + 1]) < target {
            seg_start += dist(line[seg], line[seg + 1]);
            seg += 1;
        }
        let len = dist(line[seg], line[seg + 1]);
        let t = if len > 0.0 { ((target - seg_start) / len).clamp(0.0, 1.0) } else { 0.0 };
        let (a, b) = (line[seg], line[seg + 1]);
        out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
    }
    out.push(last);
}

/// Distance (px) from `p` to the segment `a`–`b`, and where along it (0 at `a`, 1 at `b`) the
/// nearest point lies.
fn point_segment_nearest(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> (f32, f32) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (dist(p, [a[0] + t * dx, a[1] + t * dy]), t)
}

/// Distance (px) from `p` to the segment `a`–`b`.
fn point_segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    point_segment_nearest(p, a, b).0
}

/// Arc length (px) from the start of the polyline `line` to its point nearest `p`. A path's
/// ends ordered by it run the way `line` does, even where the path reaches back past the
/// line's start, as the proximal part of a wire found again does past a piece of it tracked
/// beyond a crossing (there the end nearer the line's first point can be the tip).
fn arc_position(p: [f32; 2], line: &[[f32; 2]]) -> f32 {
    let (mut along, mut best) = (0.0f32, (f32::INFINITY, 0.0f32));
    for s in line.windows(2) {
        let (d, t) = point_segment_nearest(p, s[0], s[1]);
        let length = dist(s[0], s[1]);
        if d < best.0 {
            best = (d, along + t * length);
        }
        along += length;
    }
    best.1
}

/// Distance (px) from `p` to the polyline `line` (a single point counts as a polyline).
pub fn point_polyline_distance(p: [f32; 2], line: &[[f32; 2]]) -> f32 {
    match line {
        [] => f32::INFINITY,
        [only] => dist(p, *only),
        _ => line.windows(2).map(|s| point_segment_distance(p, s[0], s[1])).fold(f32::INFINITY, f32::min),
    }
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::field::FieldParams;

    /// A ridge map with this depth and the normal of a horizontal ridge everywhere.
    fn map(strength: &Plane<f32>) -> RidgeMap {
        let mut m = RidgeMap::new(strength.width, strength.height);
        m.strength = strength.clone();
        m.normal_x.data.fill(0.0);
        m.normal_y.data.fill(1.0);
        m
    }

    #[test]
    fn points_move_to_the_ridge_peak_between_pixels() {
        let (w, h) = (80, 40);
        let skel = draw(w, h, &(0..70).map(|x| (x, 20)).collect::<Vec<_>>());
        let mut strength = Plane::new(w, h);
        for y in 15..26 {
            for x in 0..70 {
                strength.data[y * w + x] = 0.3 * (-(y as f32 - 20.3).powi(2) / 2.0).exp();
            }
        }
        let mut ex = CenterlineExtractor::new(w, h, CenterlineParams::default());
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire");
        assert!(wire.points_px.iter().all(|p| (p[1] - 20.3).abs() < 0.05), "{:?}", wire.points_px);
    }

    fn draw(w: usize, h: usize, pixels: &[(usize, usize)]) -> Plane<u8> {
        let mut p = Plane::new(w, h);
        for &(x, y) in pixels {
            p.data[y * w + x] = 1;
        }
        p
    }

    #[test]
    fn picks_the_strongest_path_and_orders_it_from_the_border() {
        let (w, h) = (64, 48);
        // A deep 40 px wire from the left border, and a longer but faint ridge below it.
        let wire_px: Vec<(usize, usize)> = (0..40).map(|x| (x, 20)).collect();
        let faint_px: Vec<(usize, usize)> = (5..60).map(|x| (x, 40)).collect();
        let skel = draw(w, h, wire_px.iter().chain(&faint_px).copied().collect::<Vec<_>>().as_slice());
        let mut strength = Plane { width: w, height: h, data: vec![0.0; w * h] };
        for &(x, y) in &wire_px {
            strength.data[y * w + x] = 0.2;
        }
        for &(x, y) in &faint_px {
            strength.data[y * w + x] = 0.11;
        }
        let mut ex = CenterlineExtractor::new(w, h, CenterlineParams::default());
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire found");
        assert_eq!(wire.points_px.first(), Some(&[0.0, 20.0]));
        assert_eq!(wire.points_px.last(), Some(&[39.0, 20.0]));
        assert!(wire.points_px.len() <= 64);
        assert!((wire.length_px - 39.0).abs() < 1e-4);
        assert!((wire.confidence - 0.2 / 0.25).abs() < 1e-6);
    }

    #[test]
    fn a_path_too_faint_for_metal_is_no_wire() {
        let skel = draw(64, 48, &(0..60).map(|x| (x, 20)).collect::<Vec<_>>());
        let strength = Plane { width: 64, height: 48, data: vec![0.05; 64 * 48] };
        let mut ex = CenterlineExtractor::new(64, 48, CenterlineParams::default());
        assert!(ex.extract(&skel, &map(&strength), 0.0).is_none());
    }

    #[test]
    fn the_longest_branch_of_a_tree_is_followed() {
        let (w, h) = (80, 60);
        let mut px: Vec<(usize, usize)> = (5..70).map(|x| (x, 30)).collect();
        px.extend((31..40).map(|y| (30, y)));
        let skel = draw(w, h, &px);
        let strength = Plane { width: w, height: h, data: vec![0.3; w * h] };
        let mut ex = CenterlineExtractor::new(w, h, CenterlineParams::default());
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire found");
        let (a, b) = (wire.points_px[0], *wire.points_px.last().expect("points"));
        assert_eq!((a, b), ([5.0, 30.0], [69.0, 30.0]));
        assert!(wire.points_px.iter().all(|p| (p[1] - 30.0).abs() < 1.0));
    }

    /// A skeleton with the given horizontal lines `(y, x range, depth)`.
    fn lines(w: usize, h: usize, spec: &[(usize, std::ops::Range<usize>, f32)]) -> (Plane<u8>, Plane<f32>) {
        let (mut skel, mut strength) = (Plane::new(w, h), Plane::new(w, h));
        for (y, xs, depth) in spec {
            for x in xs.clone() {
                skel.data[y * w + x] = 1;
                strength.data[y * w + x] = *depth;
            }
        }
        (skel, strength)
    }

    #[test]
    fn the_tracked_wire_beats_a_stronger_structure_that_appears_elsewhere() {
        let mut ex = CenterlineExtractor::new(80, 60, CenterlineParams::default());
        let (skel, strength) = lines(80, 60, &[(10, 0..50, 0.3)]);
        assert!(ex.extract(&skel, &map(&strength), 0.0).is_some());
        let (skel, strength) = lines(80, 60, &[(11, 0..50, 0.2), (40, 0..70, 0.3)]);
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire");
        assert_eq!(wire.points_px[0], [0.0, 11.0]);
        ex.reset();
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire");
        assert_eq!(wire.points_px[0], [0.0, 40.0], "without a prior the strongest wins");
    }

    /// On a frame that looked beyond the tracked structure, a stronger path coming in at the
    /// border takes over from it without being `track_bonus` times stronger; one that starts
    /// inside the field does not.
    #[test]
    fn a_wire_coming_into_view_takes_over_from_a_weaker_tracked_structure() {
        let (w, h) = (120, 80);
        let at_border = |p: [f32; 2]| p[0] < 2.0 || p[1] < 2.0 || p[0] > (w - 3) as f32 || p[1] > (h - 3) as f32;
        let piece = (20, 40..70, 0.3);
        let tracked = || {
            let mut ex = CenterlineExtractor::new(w, h, CenterlineParams::default());
            let (skel, strength) = lines(w, h, std::slice::from_ref(&piece));
            assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([40.0, 20.0]));
            ex
        };
        let entering = lines(w, h, &[piece.clone(), (60, 0..50, 0.3)]);
        let inside = lines(w, h, &[piece.clone(), (60, 10..60, 0.3)]);
        let uncollimated = FieldOfView::new(w, h, FieldParams::default());
        let proximal = |ex: &mut CenterlineExtractor, (skel, strength): &(Plane<u8>, Plane<f32>), rivals: bool| {
            let wire = if rivals {
                ex.extract_with_rivals(skel, &map(strength), 0.0, &uncollimated, &at_border)
            } else {
                ex.extract(skel, &map(strength), 0.0)
            };
            wire.map(|w| w.points_px[0])
        };
        assert_eq!(proximal(&mut tracked(), &entering, false), Some([40.0, 20.0]), "the prior's bonus");
        let mut ex = tracked();
        assert_eq!(proximal(&mut ex, &entering, true), Some([0.0, 60.0]), "the wire coming into view");
        assert_eq!(proximal(&mut ex, &entering, false), Some([0.0, 60.0]), "and it is tracked from then on");
        assert_eq!(proximal(&mut tracked(), &inside, true), Some([40.0, 20.0]), "a piece inside the field");
    }

    #[test]
    fn the_prior_is_a_bias_not_a_lock() {
        let mut ex = CenterlineExtractor::new(80, 60, CenterlineParams::default());
        let (skel, strength) = lines(80, 60, &[(10, 0..50, 0.3)]);
        assert!(ex.extract(&skel, &map(&strength), 0.0).is_some());
        let (skel, strength) = lines(80, 60, &[(11, 0..25, 0.12), (40, 0..70, 0.5)]);
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([0.0, 40.0]));
    }

    #[test]
    fn the_prior_keeps_the_proximal_end_when_the_tip_nears_another_border() {
        let mut ex = CenterlineExtractor::new(80, 60, CenterlineParams::default());
        let (skel, strength) = lines(80, 60, &[(30, 0..50, 0.3)]);
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([0.0, 30.0]));
        // The wire now spans the frame, its proximal end moved 3 px in: by the border rule alone
        // the tip (1 px from the right border) would be taken as proximal.
        let (skel, strength) = lines(80, 60, &[(30, 3..79, 0.3)]);
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("wire");
        assert_eq!((wire.points_px[0], *wire.points_px.last().expect("tip")), ([3.0, 30.0], [78.0, 30.0]));
    }

    /// The prior is the piece of a wire beyond a crossing (its proximal end inside the field);
    /// the next frame's path runs from mid-piece back past the piece's start to the border.
    /// Its upper end is nearer the prior's first point, but it lies along the prior where the
    /// lower end lies before it: the lower end is proximal.
    #[test]
    fn a_path_reaching_back_past_the_prior_s_start_keeps_the_prior_s_direction() {
        let (w, h) = (80, 60);
        let mut ex = CenterlineExtractor::new(w, h, CenterlineParams::default());
        let piece: Vec<(usize, usize)> = (20..=45).map(|y| (50, y)).collect();
        let (skel, strength) = (draw(w, h, &piece), Plane { width: w, height: h, data: vec![0.3; w * h] });
        let wire = ex.extract(&skel, &map(&strength), 0.0).expect("the piece");
        assert_eq!(wire.points_px[0], [50.0, 45.0], "proximal at its lower end, nearer the border");
        // The upper end is 10 px from the prior's first point, the lower one 14.
        let back: Vec<(usize, usize)> = (35..=59usize).map(|y| (50 - y.saturating_sub(45) / 4, y)).collect();
        let wire = ex.extract(&draw(w, h, &back), &map(&strength), 0.0).expect("the path");
        let (proximal, tip) = (wire.points_px[0], *wire.points_px.last().expect("tip"));
        assert!(proximal[1] > 55.0 && tip[1] < 40.0, "proximal {proximal:?}, tip {tip:?}");
    }

    #[test]
    fn a_faint_first_find_is_not_tracked_and_a_lost_prior_is_dropped() {
        let params = CenterlineParams::default();
        let mut ex = CenterlineExtractor::new(80, 60, params);
        let (faint, faint_depth) = lines(80, 60, &[(10, 0..50, 0.11)]);
        assert!(ex.extract(&faint, &map(&faint_depth), 0.0).is_some());
        let (skel, strength) = lines(80, 60, &[(11, 0..50, 0.11), (40, 0..70, 0.3)]);
        assert_eq!(
            ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]),
            Some([0.0, 40.0]),
            "faint find was no prior"
        );
        let empty = (Plane::new(80, 60), Plane::new(80, 60));
        for _ in 0..params.track_lost_frames {
            assert!(ex.extract(&empty.0, &map(&empty.1), 0.0).is_none());
        }
        // Near the dropped prior (y 40) but weaker than a path elsewhere: no longer preferred.
        let (skel, strength) = lines(80, 60, &[(41, 0..50, 0.2), (10, 0..60, 0.3)]);
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([0.0, 10.0]), "prior dropped");
    }

    #[test]
    fn a_faint_wire_is_remembered_where_it_was_last_seen_as_long_as_a_prior_would_be() {
        let params = CenterlineParams::default();
        let mut ex = CenterlineExtractor::new(80, 60, params);
        let (faint, faint_depth) = lines(80, 60, &[(10, 0..50, 0.11)]);
        let found = ex.extract(&faint, &map(&faint_depth), 0.0).expect("faint wire").points_px.to_vec();
        assert!(ex.prior().is_empty(), "too faint to be tracked");
        assert_eq!(ex.last_seen(), found);
        let empty = (Plane::new(80, 60), Plane::new(80, 60));
        assert!(ex.extract(&empty.0, &map(&empty.1), 0.0).is_none());
        ex.skip_frame();
        assert_eq!(ex.last_seen(), found, "kept over frames without it");
        for _ in 2..params.track_lost_frames {
            assert!(ex.extract(&empty.0, &map(&empty.1), 0.0).is_none());
        }
        assert!(ex.last_seen().is_empty(), "forgotten after as many frames as a prior");
        ex.extract(&faint, &map(&faint_depth), 0.0);
        ex.reset();
        assert!(ex.last_seen().is_empty());
    }

    #[test]
    fn a_faint_wire_keeps_its_order_from_the_last_frame() {
        let mut ex = CenterlineExtractor::new(80, 60, CenterlineParams::default());
        // Too faint to become the prior, but found, entering at the left border.
        let (skel, strength) = lines(80, 60, &[(30, 0..60, 0.14)]);
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([0.0, 30.0]));
        // Only its distal half is seen now, its tip nearer the right border than its other end
        // is to the left one: by the border rule alone it would be sent tip first.
        let (skel, strength) = lines(80, 60, &[(30, 35..60, 0.14)]);
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([35.0, 30.0]));
        ex.reset();
        assert_eq!(ex.extract(&skel, &map(&strength), 0.0).map(|w| w.points_px[0]), Some([59.0, 30.0]));
    }

    #[test]
    fn a_short_deep_path_is_a_wire_only_where_it_enters_at_the_border() {
        let mut ex = CenterlineExtractor::new(64, 48, CenterlineParams::default());
        let (at_border, depth) = lines(64, 48, &[(20, 0..12, 0.2)]);
        let wire = ex.extract(&at_border, &map(&depth), 0.0).map(|w| (w.points_px[0], w.length_px));
        assert_eq!(wire, Some(([0.0, 20.0], 11.0)), "entering wire");
        ex.reset();
        let (inside, depth) = lines(64, 48, &[(20, 20..32, 0.2)]);
        assert!(ex.extract(&inside, &map(&depth), 0.0).is_none(), "short and away from the border");
        let (faint, depth) = lines(64, 48, &[(20, 0..12, 0.12)]);
        assert!(ex.extract(&faint, &map(&depth), 0.0).is_none(), "short and too faint for an entering wire");
        let (speck, depth) = lines(64, 48, &[(20, 0..5, 0.4)]);
        assert!(ex.extract(&speck, &map(&depth), 0.0).is_none(), "shorter than an entering wire");
        let (along, depth) = lines(64, 48, &[(1, 20..32, 0.2)]);
        assert!(ex.extract(&along, &map(&depth), 0.0).is_none(), "along the border, not into the image");
    }

    /// Shutters over the left of the image: a wire comes into view at their edge, inside
    /// the image, where the field's margin has dropped its first pixels. Anatomy cut by the
    /// shutters ends there too, so a short path must be as deep as a confident wire. In the
    /// corner where the shutters' edge meets the image's border, the edge is what counts: the
    /// real angiogram test_28 had an echo of its collimator there.
    #[test]
    fn a_short_deep_path_is_a_wire_where_it_enters_at_the_edge_of_a_collimated_field() {
        let (w, h) = (64, 48);
        let mut attenuation = Plane::new(w, h);
        for (i, a) in attenuation.data.iter_mut().enumerate() {
            *a = if i % w < 16 { 9.0 } else { 2.0 };
        }
        let mut field = FieldOfView::new(w, h, FieldParams::default());
        assert!(field.update(&attenuation) > 0);
        let edge = (0..w).find(|&x| !field.near_edge([x as f32, 20.0], 0.0)).expect("a field");
        assert!((20..32).contains(&edge), "the margin is dropped beyond the shutters' edge: {edge}");
        let params = CenterlineParams::default();
        let mut ex = CenterlineExtractor::new(w, h, params);
        let deep = params.confident_mean_depth;
        let (entering, depth) = lines(w, h, &[(20, edge..edge + 12, deep)]);
        assert!(ex.extract(&entering, &map(&depth), 0.0).is_none(), "away from the image's border");
        let wire = ex.extract_in_field(&entering, &map(&depth), 0.0, &field).map(|w| (w.points_px[0], w.length_px));
        assert_eq!(wire, Some(([edge as f32, 20.0], 11.0)), "entering at the field's edge");
        ex.reset();
        let shallow = (params.entry_min_mean_depth + deep) / 2.0;
        let (entering, depth) = lines(w, h, &[(20, edge..edge + 12, shallow)]);
        assert!(ex.extract_in_field(&entering, &map(&depth), 0.0, &field).is_none(), "deep enough only at the border");
        let (inside, depth) = lines(w, h, &[(20, edge + 8..edge + 20, deep)]);
        assert!(ex.extract_in_field(&inside, &map(&depth), 0.0, &field).is_none(), "short and inside the field");
        let along = draw(w, h, &(10..22).map(|y| (edge, y)).collect::<Vec<_>>());
        let depth = Plane { width: w, height: h, data: along.data.iter().map(|&v| deep * f32::from(v)).collect() };
        assert!(ex.extract_in_field(&along, &map(&depth), 0.0, &field).is_none(), "along the edge, not into the field");
        // Where the field's edge meets the image's border, the path must leave the edge.
        let corner = draw(w, h, &(h - 10..h).map(|y| (edge, y)).collect::<Vec<_>>());
        let depth = Plane { width: w, height: h, data: corner.data.iter().map(|&v| deep * f32::from(v)).collect() };
        assert!(ex.extract(&corner, &map(&depth), 0.0).is_some(), "into the image from its border");
        ex.reset();
        assert!(ex.extract_in_field(&corner, &map(&depth), 0.0, &field).is_none(), "but along the field's edge");
    }

    #[test]
    fn at_low_dose_a_path_must_stand_out_of_the_noise() {
        let (skel, strength) = lines(64, 48, &[(20, 5..50, 0.15)]);
        let mut ex = CenterlineExtractor::new(64, 48, CenterlineParams::default());
        assert!(ex.extract(&skel, &map(&strength), 0.05).is_some(), "3 times the noise depth");
        assert!(ex.extract(&skel, &map(&strength), 0.09).is_none(), "1.7 times the noise depth");
    }

    #[test]
    fn frames_skipped_at_their_deadline_age_the_prior() {
        let params = CenterlineParams::default();
        let mut ex = CenterlineExtractor::new(80, 60, params);
        let (skel, strength) = lines(80, 60, &[(10, 0..50, 0.3)]);
        assert!(ex.extract(&skel, &map(&strength), 0.0).is_some());
        assert!(!ex.prior().is_empty());
        for _ in 0..params.track_lost_frames {
            ex.skip_frame();
        }
        assert!(ex.prior().is_empty(), "a prior from frames ago no longer steers the search");
    }

    #[test]
    fn short_fragments_are_no_wire() {
        let skel = draw(32, 32, &[(5, 5), (6, 6), (7, 7)]);
        let strength = Plane { width: 32, height: 32, data: vec![1.0; 1024] };
        let mut ex = CenterlineExtractor::new(32, 32, CenterlineParams::default());
        assert!(ex.extract(&skel, &map(&strength), 0.0).is_none());
    }

    #[test]
    fn resampling_keeps_the_ends_and_spaces_points_evenly() {
        let line: Vec<[f32; 2]> = (0..=300).map(|i| [i as f32, 0.5 * i as f32]).collect();
        let mut out = Vec::new();
        resample(&line, CenterlineParams::default(), &mut out);
        assert_eq!(out.len(), 64);
        assert_eq!(out[0], line[0]);
        assert_eq!(out[63], line[300]);
        let gaps: Vec<f32> = out.windows(2).map(|s| dist(s[0], s[1])).collect();
        let mean = gaps.iter().sum::<f32>() / gaps.len() as f32;
        assert!(gaps.iter().all(|g| (g - mean).abs() < 1e-2), "{gaps:?}");
    }
}
