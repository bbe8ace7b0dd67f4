//! Joins skeleton fragments across short gaps.
//!
//! Where a wire crosses a strong edge (a vertebral endplate, the border of the heart shadow)
//! the edge's own curvature swamps the wire's in the Hessian, and the skeleton breaks. A
//! fragment end is joined to the end of another fragment when they are close and both point
//! at each other, so the robot gets one wire instead of the longer half of it.

use super::Plane;

/// Parameters of gap bridging.
#[derive(Debug, Clone, Copy)]
pub struct BridgeParams {
    /// Longest gap (px) that is bridged.
    pub max_gap_px: f32,
    /// Largest angle (radians) between a fragment's end direction and the bridge.
    pub max_angle_rad: f32,
    /// Skeleton steps walked back from an end to estimate its direction.
    pub tangent_steps: usize,
}

impl Default for BridgeParams {
    fn default() -> Self {
        BridgeParams { max_gap_px: 24.0, max_angle_rad: 0.6, tangent_steps: 6 }
    }
}

/// Most fragment ends considered per frame (pairs are compared, so this bounds the work at
/// about 130 000 comparisons); beyond this the frame is noise, not wire.
const MAX_ENDS: usize = 512;
/// Most candidate bridges considered per frame.
const MAX_CANDIDATES: usize = 8192;

#[derive(Debug, Clone, Copy)]
struct End {
    pixel: u32,
    label: u32,
    /// Unit vector from the fragment's interior towards this end.
    direction: [f32; 2],
}

/// Gap bridging with scratch space sized at start.
#[derive(Debug)]
pub struct GapBridger {
    params: BridgeParams,
    width: usize,
    labels: Vec<u32>,
    stack: Vec<u32>,
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
            stack: Vec::with_capacity(pixels),
            ends: Vec::with_capacity(MAX_ENDS),
            candidates: Vec::with_capacity(MAX_CANDIDATES),
            used: Vec::with_capacity(MAX_ENDS),
            parent: Vec::with_capacity(pixels / 2 + 2),
        }
    }

    /// Draws bridges into `skeleton` (values 0 or 1); returns how many were drawn.
    pub fn apply(&mut self, skeleton: &mut Plane<u8>) -> usize {
        let count = self.label(skeleton);
        self.find_ends(skeleton);
        self.propose();
        self.parent.clear();
        self.parent.extend(0..=count);
        self.used.clear();
        self.used.resize(self.ends.len(), false);
        let mut drawn = 0;
        for k in 0..self.candidates.len() {
            let (_, a, b) = self.candidates[k];
            let (a, b) = (usize::from(a), usize::from(b));
            if self.used[a] || self.used[b] {
                continue;
            }
            let (ra, rb) = (find(&mut self.parent, self.ends[a].label), find(&mut self.parent, self.ends[b].label));
            if ra == rb {
                continue;
            }
            self.parent[ra as usize] = rb;
            self.used[a] = true;
            self.used[b] = true;
            draw_line(skeleton, self.ends[a].pixel, self.ends[b].pixel);
            drawn += 1;
        }
        drawn
    }

    /// Labels 8-connected fragments 1, 2, …; returns the number of fragments.
    fn label(&mut self, skeleton: &Plane<u8>) -> u32 {
        let (w, h) = (skeleton.width, skeleton.height);
        self.labels.fill(0);
        let mut next = 0u32;
        for start in 0..skeleton.data.len() {
            if skeleton.data[start] == 0 || self.labels[start] != 0 {
                continue;
            }
            next += 1;
            self.labels[start] = next;
            self.stack.clear();
            self.stack.push(start as u32);
            while let Some(i) = self.stack.pop() {
                for j in neighbours(i as usize, w, h) {
                    if skeleton.data[j] != 0 && self.labels[j] == 0 {
                        self.labels[j] = next;
                        self.stack.push(j as u32);
                    }
                }
            }
        }
        next
    }

    /// Fragment ends (pixels with one neighbour) and their outward directions.
    fn find_ends(&mut self, skeleton: &Plane<u8>) {
        let (w, h) = (skeleton.width, skeleton.height);
        self.ends.clear();
        for i in 0..skeleton.data.len() {
            if self.ends.len() == MAX_ENDS {
                break;
            }
            if skeleton.data[i] == 0 || neighbours(i, w, h).filter(|&j| skeleton.data[j] != 0).count() != 1 {
                continue;
            }
            let (mut prev, mut cur) = (i, i);
            let mut steps = 0;
            while steps < self.params.tangent_steps {
                let next = neighbours(cur, w, h).find(|&j| skeleton.data[j] != 0 && j != prev && j != i);
                match next {
                    Some(n) => {
                        prev = cur;
                        cur = n;
                        steps += 1;
                    }
                    None => break,
                }
            }
            if steps < 2 {
                continue;
            }
            let (dx, dy) = ((i % w) as f32 - (cur % w) as f32, (i / w) as f32 - (cur / w) as f32);
            let len = (dx * dx + dy * dy).sqrt();
            self.ends.push(End { pixel: i as u32, label: self.labels[i], direction: [dx / len, dy / len] });
        }
    }

    /// Candidate bridges between ends of different fragments, cheapest first.
    fn propose(&mut self) {
        self.candidates.clear();
        let cos_max = self.params.max_angle_rad.cos();
        'outer: for a in 0..self.ends.len() {
            for b in a + 1..self.ends.len() {
                let (ea, eb) = (self.ends[a], self.ends[b]);
                if ea.label == eb.label {
                    continue;
                }
                let Some((d, dist)) = between(self.width, ea.pixel, eb.pixel) else { continue };
                if dist > self.params.max_gap_px {
                    continue;
                }
                let cos_a = ea.direction[0] * d[0] + ea.direction[1] * d[1];
                let cos_b = -(eb.direction[0] * d[0] + eb.direction[1] * d[1]);
                if cos_a < cos_max || cos_b < cos_max {
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

/// Sets the pixels of the 8-connected digital line from pixel `a` to pixel `b` (Bresenham).
fn draw_line(plane: &mut Plane<u8>, a: u32, b: u32) {
    let w = plane.width;
    let (mut x, mut y) = ((a as usize % w) as isize, (a as usize / w) as isize);
    let (x1, y1) = ((b as usize % w) as isize, (b as usize / w) as isize);
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        plane.data[y as usize * w + x as usize] = 1;
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
        let drawn = GapBridger::new(60, 20, BridgeParams::default()).apply(&mut skel);
        assert_eq!(drawn, 1);
        assert!((2..58).all(|x| skel.data[10 * 60 + x] == 1));
    }

    #[test]
    fn fragments_that_do_not_point_at_each_other_stay_apart() {
        let mut skel = draw(60, 40, (2..25).map(|x| (x, 10)).chain((12..35).map(|y| (32, y))));
        let before = skel.clone();
        assert_eq!(GapBridger::new(60, 40, BridgeParams::default()).apply(&mut skel), 0);
        assert_eq!(skel, before);
    }

    #[test]
    fn gaps_longer_than_the_limit_stay_open() {
        let mut skel = draw(90, 20, (2..25).map(|x| (x, 10)).chain((55..88).map(|x| (x, 10))));
        assert_eq!(GapBridger::new(90, 20, BridgeParams::default()).apply(&mut skel), 0);
    }

    #[test]
    fn each_end_is_bridged_once_and_no_loop_is_made() {
        let mut skel =
            draw(90, 20, (2..25).map(|x| (x, 10)).chain((33..55).map(|x| (x, 10))).chain((63..88).map(|x| (x, 10))));
        assert_eq!(GapBridger::new(90, 20, BridgeParams::default()).apply(&mut skel), 2);
        assert!((2..88).all(|x| skel.data[10 * 90 + x] == 1));
    }
}
