"""An analytic beating-heart phantom shared by the cardiac stand-ins (acdc, camus, echonet).

Anatomy (millimetres, in a local frame: rho = (r1, r2) across the left-ventricular long axis,
l along it, 0 at the epicardial apex, increasing towards the base at l = Lb):
- LV cavity: half of a prolate ellipsoid (radius a, half-length c) closed at the apex, open at
  the base plane l = Lb; LV myocardium: the shell of thickness t around it;
- RV: a thinner-walled half-ellipsoid wrapped on one side of the LV (direction `rv_angle`),
  its cavity touching the septum; LA: an ellipsoid beyond the mitral plane;
- a pericardial fat shell, a lung on the far side, body tissue elsewhere;
- a subject-specific low-frequency warp of the anatomy (a sum of a few sinusoids).

Motion (ED -> ES), a known backward map for every frame: a frame at phase s in [0, 1] is
``frame_s(x) = ED(x + s D(x))``, with D the end-systolic displacement in the local frame:
- radial contraction about the long axis, A rho exp(-|rho|^2 / R0^2) (largest at the
  endocardium, so the wall thickens), A set by the subject's fractional shortening;
- longitudinal descent of the base towards the (still) apex by `long_mm`, fading beyond the
  mitral plane (so the LA lengthens in systole) and away from the heart;
- a twist about the long axis (apex and base turning opposite ways; 3D only).
Frames are rendered from the continuous phantom (sub-voxel sampling for partial volume), not
resampled from the ED image, so interpolation differs from the truth as in real data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# tissue classes
BODY, LV, MYO, RV, RV_WALL, LA, FAT, LUNG = range(8)
N_CLASSES = 8


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _dsmoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return 6.0 * t * (1.0 - t) / (hi - lo)


@dataclass
class Heart:
    a: float            # LV cavity radius at ED (mm)
    c: float            # LV cavity half-length (mm)
    t: float            # LV wall thickness (mm)
    rv_a: float         # RV semi-axis away from the LV
    rv_b: float         # RV semi-axis around the LV
    rv_c: float         # RV half-length
    rv_angle: float     # direction of the RV in the (r1, r2) plane (radians)
    la_a: float         # LA radius
    la_c: float         # LA half-length
    apex: np.ndarray    # world position (mm) of the epicardial apex
    axes: np.ndarray    # (3, 3) world directions of r1, r2, l (columns)
    shortening: float   # fractional shortening of the LV cavity radius at ES
    long_mm: float      # base descent at ES (mm)
    twist_deg: float    # apex-to-base twist at ES (degrees, 0 in 2D views)
    warp_k: np.ndarray  # (M, 3) wave vectors of the anatomy warp (1/mm)
    warp_amp: np.ndarray  # (M, 3) amplitudes (mm)
    warp_phase: np.ndarray  # (M,)

    @property
    def base(self) -> float:
        return self.c + self.t

    @property
    def r0(self) -> float:
        return 0.9 * self.a

    @property
    def amp(self) -> float:
        """A of the radial term, so that the ES endocardial radius is a (1 - shortening)."""
        r_es = self.a * (1.0 - self.shortening)
        return (self.a / r_es - 1.0) * np.exp(r_es ** 2 / self.r0 ** 2)

    # ---- geometry ---------------------------------------------------------------------------
    def to_local(self, x: np.ndarray) -> np.ndarray:
        """(..., 3) world mm -> local (r1, r2, l)."""
        return (x - self.apex) @ self.axes

    def to_world(self, q: np.ndarray) -> np.ndarray:
        return q @ self.axes.T + self.apex

    def ed_displacement(self, q: np.ndarray) -> np.ndarray:
        """D(q): the ES -> ED backward displacement in local coordinates, (..., 3)."""
        r1, r2, l = q[..., 0], q[..., 1], q[..., 2]
        rr = r1 * r1 + r2 * r2
        lb = self.base
        # radial: along the ventricles, none in the atrium, fading beyond the apex
        m = (1.0 - smoothstep(lb, lb + 15.0, l)) * smoothstep(-25.0, 0.0, l)
        g = self.amp * np.exp(-rr / self.r0 ** 2) * m
        # longitudinal: 0 at the apex, long_mm at the base, back to 0 across the atrium
        w = np.where(l <= lb, smoothstep(0.0, lb, l), 1.0 - smoothstep(lb, lb + 2 * self.la_c + 10.0, l))
        dl = self.long_mm * w * np.exp(-rr / (2 * 45.0 ** 2))
        # twist (linearised rotation; small angles)
        theta = np.deg2rad(self.twist_deg) * (smoothstep(0.0, lb, l) - 0.5) * np.exp(-rr / (1.5 * self.r0) ** 2) * m
        d = np.empty_like(q)
        d[..., 0] = g * r1 - theta * r2
        d[..., 1] = g * r2 + theta * r1
        d[..., 2] = dl
        return d

    def anatomy_warp(self, q: np.ndarray) -> np.ndarray:
        ph = q @ self.warp_k.T + self.warp_phase  # (..., M)
        return q + np.sin(ph) @ self.warp_amp

    def classify(self, q: np.ndarray) -> np.ndarray:
        """Tissue class of ED local points (after the anatomy warp), (...,) uint8."""
        q = self.anatomy_warp(q)
        r1, r2, l = q[..., 0], q[..., 1], q[..., 2]
        rr = r1 * r1 + r2 * r2
        lb = self.base
        below = l <= lb
        dz = l - lb
        cav = below & (rr / self.a ** 2 + (dz / self.c) ** 2 < 1)
        epi = below & (rr / (self.a + self.t) ** 2 + (dz / (self.c + self.t)) ** 2 < 1)
        ca, sa = np.cos(self.rv_angle), np.sin(self.rv_angle)
        u = r1 * ca + r2 * sa - (self.a + self.t + 0.35 * self.rv_a)
        v = -r1 * sa + r2 * ca
        rv_out = below & ~epi & ((u / self.rv_a) ** 2 + (v / self.rv_b) ** 2 + (dz / self.rv_c) ** 2 < 1)
        w = 3.0
        rv_in = rv_out & ((u / (self.rv_a - w)) ** 2 + (v / (self.rv_b - w)) ** 2 + (dz / (self.rv_c - w)) ** 2 < 1)
        la = (l > lb + 1.0) & (rr / self.la_a ** 2 + ((l - lb - 1.0 - self.la_c) / self.la_c) ** 2 < 1)
        f = 3.0
        fat = (below & (rr / (self.a + self.t + f) ** 2 + (dz / (self.c + self.t + f)) ** 2 < 1)) | (
            below & ((u / (self.rv_a + f)) ** 2 + (v / (self.rv_b + f)) ** 2 + (dz / (self.rv_c + f)) ** 2 < 1))
        ul = r1 * ca + r2 * sa + (self.a + self.t + 38.0)
        lung = ((ul / 22.0) ** 2 + (v / 45.0) ** 2 + ((l - 0.5 * lb) / 70.0) ** 2) < 1
        out = np.full(q.shape[:-1], BODY, np.uint8)
        out[lung] = LUNG
        out[fat] = FAT
        out[la] = LA
        out[rv_out] = RV_WALL
        out[rv_in] = RV
        out[epi] = MYO
        out[cav] = LV
        return out


def random_heart(rng: np.random.Generator, apex: np.ndarray, axes: np.ndarray, twist: bool = True) -> Heart:
    """A subject: anatomy and motion drawn from ranges typical of adult hearts."""
    m = 4
    k = rng.normal(size=(m, 3))
    k *= (2 * np.pi / rng.uniform(50.0, 90.0, m) / np.linalg.norm(k, axis=1))[:, None]
    return Heart(
        a=rng.uniform(21.0, 27.0), c=rng.uniform(52.0, 64.0), t=rng.uniform(8.0, 11.0),
        rv_a=rng.uniform(16.0, 22.0), rv_b=rng.uniform(30.0, 38.0), rv_c=rng.uniform(48.0, 58.0),
        rv_angle=0.0, la_a=rng.uniform(17.0, 21.0), la_c=rng.uniform(18.0, 24.0),
        apex=np.asarray(apex, float), axes=np.asarray(axes, float),
        shortening=rng.uniform(0.25, 0.38), long_mm=rng.uniform(8.0, 14.0),
        twist_deg=rng.uniform(6.0, 12.0) * (1 if twist else 0),
        warp_k=k, warp_amp=rng.normal(0.0, 1.2, size=(m, 3)), warp_phase=rng.uniform(0, 2 * np.pi, m))


def rotation(angles_deg) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def phase(k: int, n: int) -> float:
    """Contraction phase s of frame k of n (0 = ED, 1 = ES), eased like a cosine."""
    return 0.5 * (1.0 - np.cos(np.pi * k / (n - 1))) if n > 1 else 0.0


def render_classes(heart: Heart, points: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Tissue classes at world points (..., 3) of the frame at phase s, and the ED world
    positions they come from."""
    q = heart.to_local(points)
    q_ed = q + s * heart.ed_displacement(q)
    return heart.classify(q_ed), heart.to_world(q_ed)


def grid_points(affine: np.ndarray, shape: tuple[int, ...], sub: tuple[int, ...]) -> np.ndarray:
    """World points of `sub` regularly spaced sub-samples per voxel: (n_sub, *shape, 3) (a 2D
    shape gives points in the plane of the first two affine columns)."""
    nd = len(shape)
    offs = [(np.arange(n) + 0.5) / n - 0.5 for n in sub]
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    out = []
    for o in np.stack(np.meshgrid(*offs, indexing="ij"), -1).reshape(-1, nd):
        vox = np.stack([g + oo for g, oo in zip(grids, o)], -1)
        out.append(vox @ affine[:3, :nd].T + affine[:3, 3])
    return np.stack(out)


def class_fractions(heart: Heart, affine: np.ndarray, shape: tuple[int, ...], sub: tuple[int, ...],
                    s: float) -> np.ndarray:
    """(N_CLASSES, *shape) fractions of each class in every voxel (partial volume)."""
    pts = grid_points(affine, shape, sub)
    cls, _ = render_classes(heart, pts, s)
    frac = np.stack([(cls == k).mean(axis=0) for k in range(N_CLASSES)])
    return frac


def displacement_voxels(heart: Heart, affine: np.ndarray, shape: tuple[int, ...], s: float) -> np.ndarray:
    """The true backward map ED <- frame at phase s at voxel centres, in voxel units (D, *shape)."""
    nd = len(shape)
    x = grid_points(affine, shape, (1,) * nd)[0]
    _, p = render_classes(heart, x, s)
    lin = affine[:3, :nd]
    u = np.linalg.lstsq(lin, (p - x).reshape(-1, 3).T, rcond=None)[0]  # mm -> voxels
    return u.reshape(nd, *shape)


def labels_from(frac: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Majority tissue class per voxel, mapped to dataset label values (others 0)."""
    cls = np.argmax(frac, axis=0)
    lut = np.zeros(N_CLASSES, np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[cls]
