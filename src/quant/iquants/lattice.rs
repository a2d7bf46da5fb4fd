//! The quantization lattices of the grid i-quants, as ggml's `iq2xs_init_impl` / `iq3xs_init_impl`
//! build them: the grid points (coordinates `2l+1`), a map from every packed point of the cube to its
//! grid index, and for points off the grid the list of nearest grid points (all points at the
//! `nwant` smallest squared distances, ordered by distance then index, as ggml's qsort orders them).
//! Built once per type on first use.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::tables::{
    KGRID_1BIT_2048, KGRID_2BIT_1024, KGRID_2BIT_256, KGRID_2BIT_512, KGRID_3BIT_256,
    KGRID_3BIT_512,
};

pub(super) struct Lattice {
    /// Grid points, `dims` coordinates of `2l+1` each (the rest zero).
    pub grid: Vec<[i8; 8]>,
    /// Packed point -> grid index (>= 0), or `-(offset + 1)` of its neighbour list.
    map: Vec<i32>,
    /// At each list's offset: the count, then that many grid indices.
    neighbours: Vec<u16>,
    dims: usize,
}

pub(super) enum Lookup<'a> {
    OnGrid(usize),
    Off(&'a [u16]),
}

impl Lattice {
    fn build(kgrid: &[u16], dims: usize, bits: u32, kmap_size: usize, nwant: usize) -> Lattice {
        let mask = (1u16 << bits) - 1;
        let grid: Vec<[i8; 8]> = kgrid
            .iter()
            .map(|&g| {
                let mut pos = [0i8; 8];
                for (i, p) in pos.iter_mut().take(dims).enumerate() {
                    *p = (2 * ((g >> (bits as usize * i)) & mask) + 1) as i8;
                }
                pos
            })
            .collect();
        let mut map = vec![-1i32; kmap_size];
        for (i, pos) in grid.iter().enumerate() {
            let mut index = 0usize;
            for (k, &p) in pos.iter().take(dims).enumerate() {
                index |= (((p - 1) / 2) as usize) << (bits as usize * k);
            }
            map[index] = i as i32;
        }
        let off_grid: Vec<usize> = (0..kmap_size).filter(|&i| map[i] < 0).collect();
        let lists: Vec<Vec<u16>> = off_grid
            .par_iter()
            .map(|&i| {
                let mut pos = [0i32; 8];
                for (k, p) in pos.iter_mut().take(dims).enumerate() {
                    *p = 2 * ((i >> (bits as usize * k)) as i32 & mask as i32) + 1;
                }
                let d2: Vec<i32> = grid
                    .iter()
                    .map(|pg| {
                        (0..dims)
                            .map(|k| (pg[k] as i32 - pos[k]) * (pg[k] as i32 - pos[k]))
                            .sum()
                    })
                    .collect();
                // The `nwant` smallest distinct distances, ascending.
                let mut want: Vec<i32> = Vec::with_capacity(nwant + 1);
                for &d in &d2 {
                    if want.contains(&d) {
                        continue;
                    }
                    let at = want.partition_point(|&w| w < d);
                    if at < nwant {
                        want.insert(at, d);
                        want.truncate(nwant);
                    }
                }
                let mut list = vec![0u16];
                for &w in &want {
                    list.extend(
                        d2.iter()
                            .enumerate()
                            .filter(|&(_, &d)| d == w)
                            .map(|(j, _)| j as u16),
                    );
                }
                list[0] = (list.len() - 1) as u16;
                list
            })
            .collect();
        let mut neighbours = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for (&i, list) in off_grid.iter().zip(&lists) {
            map[i] = -(neighbours.len() as i32 + 1);
            neighbours.extend_from_slice(list);
        }
        Lattice {
            grid,
            map,
            neighbours,
            dims,
        }
    }

    /// Where packed point `u` is: on the grid, or off it with these neighbours.
    #[inline]
    pub fn lookup(&self, u: usize) -> Lookup<'_> {
        let m = self.map[u];
        if m >= 0 {
            Lookup::OnGrid(m as usize)
        } else {
            let at = (-m - 1) as usize;
            let n = self.neighbours[at] as usize;
            Lookup::Off(&self.neighbours[at + 1..at + 1 + n])
        }
    }

    /// `iq2_find_best_neighbour` / `iq3_find_best_neighbour`: the neighbour with the least weighted
    /// squared error at `scale`; writes its levels `(q-1)/2` to `l` and returns its grid index.
    pub fn best_neighbour(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> usize {
        // The group size as a constant lets the distance loop unroll without bounds checks; the
        // sum keeps ggml's order.
        let grid_index = match self.dims {
            8 => self.nearest::<8>(neighbours, xval, weight, scale),
            _ => self.nearest::<4>(neighbours, xval, weight, scale),
        };
        let pg = &self.grid[grid_index];
        for i in 0..self.dims {
            l[i] = (pg[i] - 1) / 2;
        }
        grid_index
    }

    fn nearest<const D: usize>(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
    ) -> usize {
        let xval: &[f32; D] = xval[..D].try_into().expect("a whole group");
        let weight: &[f32; D] = weight[..D].try_into().expect("a whole group");
        let mut best_d2 = f32::MAX;
        // ggml aborts when no distance compares below FLT_MAX (NaN input); take the first instead.
        let mut grid_index = neighbours[0] as usize;
        for &nb in neighbours {
            let pg = &self.grid[nb as usize];
            let mut d2 = 0.0f32;
            for i in 0..D {
                let q = pg[i] as f32;
                let diff = scale * q - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                grid_index = nb as usize;
            }
        }
        grid_index
    }

    /// The grid index of packed point `u` if it is on the grid.
    #[inline]
    pub fn index_of(&self, u: usize) -> Option<usize> {
        match self.map.get(u) {
            Some(&m) if m >= 0 => Some(m as usize),
            _ => None,
        }
    }
}

/// ggml's lattice sizes: the 2-bit (and 1-bit) maps cover indices up to 3 in every coordinate of 8.
const KMAP_2BIT: usize = 43692;
const KMAP_3BIT: usize = 4096;

pub(super) fn iq3xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_3BIT_256, 4, 3, KMAP_3BIT, 2))
}

pub(super) fn iq3s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_3BIT_512, 4, 3, KMAP_3BIT, 3))
}

pub(super) fn iq2xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_2BIT_256, 8, 2, KMAP_2BIT, 2))
}

pub(super) fn iq2xs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_2BIT_512, 8, 2, KMAP_2BIT, 2))
}

pub(super) fn iq2s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_2BIT_1024, 8, 2, KMAP_2BIT, 1))
}

pub(super) fn iq1s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::build(&KGRID_1BIT_2048, 8, 2, KMAP_2BIT, 3))
}
