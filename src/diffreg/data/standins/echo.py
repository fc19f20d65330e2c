"""B-mode-like apical views of the beating-heart phantom (heart.py), shared by camus and echonet.

The image plane contains the LV long axis (apex near the probe at the top of the image).
Rendering: tissue reflectivity with partial volume (3 x 3 sub-samples), times a speckle envelope
|c| of a smoothed complex Gaussian field (Rayleigh-distributed; tissue speckle is attached to the
tissue, i.e. sampled at the ED position of every point, blood speckle is fresh every frame),
depth attenuation, log compression, a little electronic noise, and the sector mask (a 74 degree
fan from the probe). Arrays are (x, y) with y pointing up (the probe at the top row).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import heart as H

DEPTH_MM = 160.0
HALF_ANGLE_DEG = 37.0
REFLECTIVITY = {H.BODY: 0.28, H.LV: 0.03, H.MYO: 0.62, H.RV: 0.03, H.RV_WALL: 0.55, H.LA: 0.03, H.FAT: 0.8,
                H.LUNG: 0.2}
BLOOD = (H.LV, H.RV, H.LA)


def geometry(size: int) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    sp = DEPTH_MM / size
    aff = np.diag([sp, sp, 1.0, 1.0])
    aff[:2, 3] = -sp * (size - 1) / 2
    probe = np.array([0.0, sp * (size - 1) / 2 + 0.5 * sp, 0.0])
    return aff, (size, size), probe


def sector_mask(aff: np.ndarray, shape: tuple[int, int], probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = H.grid_points(aff, shape, (1, 1))[0] - probe
    depth = np.linalg.norm(x, axis=-1)
    angle = np.degrees(np.arctan2(x[..., 0], -x[..., 1]))
    return (np.abs(angle) < HALF_ANGLE_DEG) & (depth < 0.97 * DEPTH_MM) & (x[..., 1] < 0), depth


def apical_heart(rng: np.random.Generator, probe: np.ndarray, view: str) -> H.Heart:
    """A subject's heart seen from the apex: long axis pointing down the image (tilted a little),
    the RV in the plane on the image's left (4CH) or out of the plane (2CH)."""
    tilt = np.deg2rad(rng.uniform(-10, 10))
    e_l = np.array([np.sin(tilt), -np.cos(tilt), 0.0])
    e_1 = np.array([np.cos(tilt), np.sin(tilt), 0.0])
    axes = np.stack([e_1, np.cross(e_l, e_1), e_l], axis=1)
    axes[:, 1] = np.cross(axes[:, 2], axes[:, 0])
    apex = probe + e_l * rng.uniform(28.0, 38.0)
    hrt = H.random_heart(rng, apex, axes, twist=False)  # twist would move tissue out of the plane
    hrt.rv_angle = np.pi if view == "4CH" else np.pi / 2
    return hrt


class EchoRenderer:
    def __init__(self, hrt: H.Heart, size: int, rng: np.random.Generator):
        self.hrt, self.rng = hrt, rng
        self.aff, self.shape, self.probe = geometry(size)
        self.mask, depth = sector_mask(self.aff, self.shape, self.probe)
        alpha = np.log(rng.uniform(2.5, 4.0)) / DEPTH_MM
        self.att = np.exp(-alpha * depth)
        self.gain = rng.uniform(14.0, 22.0)
        self.speckle = self._complex_field()
        self.refl = {k: v * float(rng.uniform(0.85, 1.15)) for k, v in REFLECTIVITY.items()}

    def _complex_field(self) -> np.ndarray:
        c = self.rng.standard_normal((2, *self.shape))
        c = np.stack([ndimage.gaussian_filter(a, (1.0, 0.6), mode="wrap") for a in c])
        return c / np.sqrt((c ** 2).sum(0).mean())

    def frame(self, s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image in [0, 1], tissue fractions, true displacement in voxels) at phase s."""
        hrt = self.hrt
        frac = H.class_fractions(hrt, self.aff, self.shape, (3, 3), s)
        u = H.displacement_voxels(hrt, self.aff, self.shape, s)
        idx = np.indices(self.shape, dtype=np.float64) + u
        env_t = np.hypot(*(ndimage.map_coordinates(c, idx, order=1, mode="grid-wrap") for c in self.speckle))
        env_b = np.hypot(*self._complex_field())
        tissue = sum(self.refl[k] * frac[k] for k in range(H.N_CLASSES) if k not in BLOOD)
        blood = sum(self.refl[k] * frac[k] for k in BLOOD)
        env = (tissue * env_t + blood * env_b) * self.att
        img = np.log1p(self.gain * env) / np.log1p(self.gain)
        img = img + 0.02 * self.rng.standard_normal(self.shape)
        return np.clip(img, 0, 1) * self.mask, frac, u


@dataclass
class EchoConfig:
    """Settings every 2D echo stand-in has (CAMUS, EchoNet); each adds its own."""
    n_subjects: int = 8
    size: int = 112
    ndim: int = 2
    seed: int = 0
