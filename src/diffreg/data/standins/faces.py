"""``faces``: RaFD stand-in for DiffuseMorph (Table 1, Figs. 5-7), real face photographs under known
"expression" warps, with landmarks carried by the warp.

Faces: scikit-image's ``astronaut`` and matplotlib's ``grace_hopper`` (RGB photographs) and the
first 100 images of scikit-image's ``lfw_subset`` (Labeled Faces in the Wild, 25 x 25 grey, face
detector crops), all shipped inside the packages. Face 1 is Grace Hopper (train), the last face
the astronaut (test); between them LFW faces in a seed-drawn order. Landmarks (eyes, brows, nose,
mouth corners, lips, chin) were placed once by eye on the two photographs (source pixels, below);
the LFW crops share one template (from their mean image), so on them a landmark is where the warp
acts, within a pixel or two of the feature. Ground truth does not depend on that: every expression
landmark is its neutral landmark moved by the known warp.

An expression is a stationary velocity f = sum_k m_k exp(-|x - c_k|^2 / 2 s_k^2): Gaussian bumps at
landmarks c_k moving them by about m_k (smile: mouth corners out and up; surprise: brows up, jaw
down; anger: brows down and in; sadness: mouth corners down, inner brows up; disgust: upper lip and
nose up), in units of the eye distance, scaled per face and jittered per landmark. Features move
with phi = exp(f); the expression image is E(x) = N(x + u(x)) with u = exp(-f), both images sampled
from the same photograph (no double interpolation). Landmarks q = phi(p) and u, by RK4 on the analytic f.

Per face ``faceNNN`` and expression X, one samplesheet row ``faceNNN_X`` (all rows of a face share
its split): ``image_neutral`` / ``image_expression`` (grey, what the networks register),
``labels_neutral`` / ``labels_expression`` (regions: 1 face oval, 2 eyes, 3 eyebrows, 4 mouth;
ellipses around the landmarks, the expression's pulled back through the true map), and extra
columns ``landmarks`` (CSV: name, region, x/y_neutral, x/y_expression, voxel coordinates in array
order), ``disp`` (u, voxel units, (X, Y, 2)), ``rgb_neutral`` / ``rgb_expression`` ((X, Y, 1, 3)
colour images, as DiffuseMorph scores its faces; empty for the grey LFW faces).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ...errors import InputError
from .. import deform
from ..toy import splits
from . import StandIn, Writer, check_common, register

LABELS = {0: "background", 1: "face", 2: "eyes", 3: "eyebrows", 4: "mouth"}
LANDMARKS = ("brow_l", "brow_r", "eye_l", "eye_r", "nose", "mouth_l", "mouth_r", "lip_top", "lip_bottom", "chin")
REGION_OF = {"brow_l": "eyebrows", "brow_r": "eyebrows", "eye_l": "eyes", "eye_r": "eyes", "nose": "face",
             "mouth_l": "mouth", "mouth_r": "mouth", "lip_top": "mouth", "lip_bottom": "mouth", "chin": "face"}

# expression -> {landmark: (dx, dy, sigma)}, in eye distances; x to the image's right, y up.
# "_l" / "_r" are the image's left and right.
EXPRESSIONS = {
    "smile": {"mouth_l": (-0.10, 0.08, 0.22), "mouth_r": (0.10, 0.08, 0.22), "lip_top": (0.0, 0.02, 0.18),
              "lip_bottom": (0.0, -0.03, 0.18)},
    "surprise": {"brow_l": (0.0, 0.12, 0.30), "brow_r": (0.0, 0.12, 0.30), "lip_bottom": (0.0, -0.13, 0.22),
                 "chin": (0.0, -0.10, 0.35), "mouth_l": (0.03, -0.02, 0.2), "mouth_r": (-0.03, -0.02, 0.2)},
    "anger": {"brow_l": (0.07, -0.08, 0.28), "brow_r": (-0.07, -0.08, 0.28), "mouth_l": (0.04, -0.03, 0.2),
              "mouth_r": (-0.04, -0.03, 0.2)},
    "sadness": {"brow_l": (0.03, 0.05, 0.25), "brow_r": (-0.03, 0.05, 0.25), "mouth_l": (0.0, -0.08, 0.22),
                "mouth_r": (0.0, -0.08, 0.22)},
    "disgust": {"lip_top": (0.0, 0.08, 0.2), "nose": (0.0, 0.04, 0.25), "brow_l": (0.02, -0.05, 0.28),
                "brow_r": (-0.02, -0.05, 0.28)},
}


@dataclass(frozen=True)
class Face:
    """A photograph (H, W) or (H, W, 3) in [0, 1], its square face crop (row0, col0, side) and, in
    source pixels (row, col), its landmarks and face oval (row, col, half height, half width)."""
    name: str
    pixels: np.ndarray
    crop: tuple[float, float, float]
    landmarks: dict
    oval: tuple[float, float, float, float]


# placed by eye on the photographs (source pixels, row, col)
_ASTRONAUT = dict(crop=(40, 140, 170), oval=(128, 226, 52, 46), landmarks={
    "brow_l": (92, 200), "brow_r": (94, 246), "eye_l": (101, 202), "eye_r": (103, 246), "nose": (126, 224),
    "mouth_l": (141, 204), "mouth_r": (142, 245), "lip_top": (139, 224), "lip_bottom": (152, 224), "chin": (176, 225)})
_HOPPER = dict(crop=(125, 152, 220), oval=(235, 262, 95, 82), landmarks={
    "brow_l": (172, 217), "brow_r": (170, 307), "eye_l": (188, 220), "eye_r": (187, 305), "nose": (243, 265),
    "mouth_l": (277, 232), "mouth_r": (277, 298), "lip_top": (272, 263), "lip_bottom": (283, 263), "chin": (320, 265)})
# LFW crops: one template from the mean of the 100 faces (eyes dark at row 8, nostrils row 14)
_LFW = dict(crop=(0, 0, 25), oval=(12.5, 10.5, 12.0, 8.5), landmarks={
    "brow_l": (6.0, 6.5), "brow_r": (6.0, 14.5), "eye_l": (8.0, 6.5), "eye_r": (8.0, 14.5), "nose": (13.5, 10.5),
    "mouth_l": (18.0, 7.5), "mouth_r": (18.0, 13.5), "lip_top": (17.3, 10.5), "lip_bottom": (18.9, 10.5),
    "chin": (22.5, 10.5)})
N_LFW = 100


@dataclass
class FacesConfig:
    n_subjects: int = 8        # faces (2 photographs + LFW), at most 102
    size: int = 128            # voxels a side (RaFD in the paper: 128 x 128)
    ndim: int = 2
    seed: int = 0
    n_expressions: int = 3     # smile, surprise, anger, sadness, disgust: the first N
    amplitude: float = 1.0     # scales every expression


@lru_cache(maxsize=1)
def _lfw() -> np.ndarray:
    from skimage import data
    return np.asarray(data.lfw_subset()[:N_LFW], dtype=np.float64)


def _photo(name: str) -> np.ndarray:
    from PIL import Image

    from ...features.natural import image_path  # deferred: pulls in torch
    with Image.open(image_path(name)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0


def faces_for(n: int, seed: int) -> list[Face]:
    """Face 1 Grace Hopper, face n the astronaut, LFW faces between (a seed-drawn order)."""
    if not 3 <= n <= N_LFW + 2:
        raise InputError(f"--n-subjects {n}: faces has between 3 and {N_LFW + 2} faces")
    lfw = _lfw()
    order = np.random.default_rng([seed, 0xFACE]).permutation(N_LFW)[: n - 2]
    faces = [Face("grace_hopper", _photo("grace_hopper"), **_HOPPER)]
    faces += [Face(f"lfw{k:03d}", lfw[k], **_LFW) for k in order]
    return faces + [Face("astronaut", _photo("astronaut"), **_ASTRONAUT)]


class Frame:
    """The output grid of one face: voxel (i, j) <-> source pixel (row, col); x = i to the right,
    y = j upwards (the NIfTI convention the adapters use for photographs: rows flipped)."""

    def __init__(self, face: Face, size: int):
        self.face, self.size = face, size
        self.row0, self.col0, side = face.crop
        self.scale = side / size          # source pixels per voxel

    def to_voxel(self, row, col) -> np.ndarray:
        x = (np.asarray(col) - self.col0 + 0.5) / self.scale - 0.5
        y = self.size - 1 - ((np.asarray(row) - self.row0 + 0.5) / self.scale - 0.5)
        return np.stack([x, y], axis=-1)

    def to_source(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(2, ...) voxel points -> (row, col) source pixel coordinates."""
        col = self.col0 + (pts[0] + 0.5) * self.scale - 0.5
        row = self.row0 + (self.size - 1 - pts[1] + 0.5) * self.scale - 0.5
        return row, col

    def sample(self, pts: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
        """The photograph at voxel points (2, X, Y): (X, Y) grey or (X, Y, 3) colour. A Gaussian
        pre-filter when the crop is shrunk (no aliasing); cubic splines in between pixels."""
        px = self.face.pixels if pixels is None else pixels
        chans = px[..., None] if px.ndim == 2 else px
        sigma = 0.45 * self.scale if self.scale > 1 else 0.0
        row, col = self.to_source(pts)
        out = []
        for c in range(chans.shape[-1]):
            ch = ndimage.gaussian_filter(chans[..., c], sigma, mode="nearest") if sigma else chans[..., c]
            out.append(ndimage.map_coordinates(ch, [row, col], order=3, mode="nearest"))
        out = np.clip(np.stack(out, axis=-1), 0, 1)
        return out[..., 0] if px.ndim == 2 else out

    def landmarks(self) -> dict[str, np.ndarray]:
        return {k: self.to_voxel(*self.face.landmarks[k]) for k in LANDMARKS}


def to_grey(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.ndim == 2 else rgb @ np.array([0.2125, 0.7154, 0.0721])   # ITU-R 709 luminance


def expression_bumps(lm: dict[str, np.ndarray], name: str, rng: np.random.Generator,
                     amplitude: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """[(centre, motion, sigma)] in voxels for one expression of one face."""
    eye = float(np.linalg.norm(lm["eye_r"] - lm["eye_l"]))
    gain = amplitude * rng.uniform(0.75, 1.2)
    bumps = []
    for k, (dx, dy, s) in EXPRESSIONS[name].items():
        m = gain * np.array([dx, dy]) + rng.normal(0.0, 0.012, 2)
        bumps.append((lm[k], m * eye, s * eye))
    return bumps


def velocity_at(bumps, pts: np.ndarray) -> np.ndarray:
    """f at points (2, ...)."""
    v = np.zeros_like(pts, dtype=np.float64)
    for c, m, s in bumps:
        g = np.exp(-((pts[0] - c[0]) ** 2 + (pts[1] - c[1]) ** 2) / (2 * s * s))
        v += m.reshape(2, *([1] * (pts.ndim - 1))) * g
    return v


def flow_points(bumps, pts: np.ndarray, steps: int = 64) -> np.ndarray:
    """exp(f) at points (N, 2): RK4 on the analytic velocity."""
    x = np.asarray(pts, dtype=np.float64).T.copy()
    h = 1.0 / steps
    for _ in range(steps):
        k1 = velocity_at(bumps, x)
        k2 = velocity_at(bumps, x + 0.5 * h * k1)
        k3 = velocity_at(bumps, x + 0.5 * h * k2)
        k4 = velocity_at(bumps, x + h * k3)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x.T


def backward_displacement(bumps, grid: np.ndarray) -> np.ndarray:
    """u = exp(-f) - id on the grid (2, X, Y), by the same RK4 as the landmarks (exact to 1e-6 voxel,
    unlike scaling and squaring's interpolation), so that q + u(q) = p holds to interpolation."""
    back = [(c, -m, s) for c, m, s in bumps]
    pts = flow_points(back, grid.reshape(2, -1).T, steps=32)
    return pts.T.reshape(grid.shape) - grid


def regions(frame: Frame, lm: dict[str, np.ndarray], pts: np.ndarray) -> np.ndarray:
    """Region labels at voxel points (2, X, Y) of the neutral face: ellipses around the landmarks."""
    eye = float(np.linalg.norm(lm["eye_r"] - lm["eye_l"]))

    def ellipse(c, rx, ry):
        return ((pts[0] - c[0]) / rx) ** 2 + ((pts[1] - c[1]) / ry) ** 2 <= 1.0

    orow, ocol, ory, orx = frame.face.oval
    out = np.zeros(pts.shape[1:], dtype=np.uint8)
    out[ellipse(frame.to_voxel(orow, ocol), orx / frame.scale, ory / frame.scale)] = 1
    for k in ("eye_l", "eye_r"):
        out[ellipse(lm[k], 0.22 * eye, 0.12 * eye)] = 2
    for k in ("brow_l", "brow_r"):
        out[ellipse(lm[k], 0.25 * eye, 0.08 * eye)] = 3
    centre = (lm["mouth_l"] + lm["mouth_r"] + lm["lip_top"] + lm["lip_bottom"]) / 4
    half_w = 0.5 * float(np.linalg.norm(lm["mouth_r"] - lm["mouth_l"])) + 0.06 * eye
    half_h = 0.5 * float(np.linalg.norm(lm["lip_top"] - lm["lip_bottom"])) + 0.07 * eye
    out[ellipse(centre, half_w, half_h)] = 4
    return out


def generate(outdir: str | Path, cfg: FacesConfig, absolute_paths: bool = False) -> pd.DataFrame:
    check_common(cfg, 32, 256)
    if not 1 <= cfg.n_expressions <= len(EXPRESSIONS):
        raise InputError(f"--n-expressions {cfg.n_expressions}: between 1 and {len(EXPRESSIONS)}")
    faces = faces_for(cfg.n_subjects, cfg.seed)
    out = Writer(outdir, absolute_paths)
    aff = np.eye(4)
    grid = deform.identity((cfg.size, cfg.size))
    rows = []
    for i, (face, sp) in enumerate(zip(faces, splits(cfg.n_subjects)), start=1):
        fid = f"face{i:03d}"
        rng = np.random.default_rng([cfg.seed, i])
        frame = Frame(face, cfg.size)
        lm = frame.landmarks()
        colour = face.pixels.ndim == 3
        neutral = frame.sample(grid)
        n_img = out.image(f"{fid}_neutral.nii.gz", to_grey(neutral), aff)
        n_lab = out.labels(f"{fid}_neutral_gt.nii.gz", regions(frame, lm, grid), aff)
        n_rgb = out.image(f"{fid}_neutral_rgb.nii.gz", neutral[:, :, None, :], aff) if colour else ""
        for name in list(EXPRESSIONS)[: cfg.n_expressions]:
            stem = f"{fid}_{name}"
            bumps = expression_bumps(lm, name, rng, cfg.amplitude)
            u = backward_displacement(bumps, grid)   # E(x) = N(x + u(x))
            pts = grid + u
            expr = frame.sample(pts)
            q = flow_points(bumps, np.stack([lm[k] for k in LANDMARKS]))
            table = pd.DataFrame({"name": LANDMARKS, "region": [REGION_OF[k] for k in LANDMARKS],
                                  "x_neutral": [lm[k][0] for k in LANDMARKS], "y_neutral": [lm[k][1] for k in LANDMARKS],
                                  "x_expression": q[:, 0], "y_expression": q[:, 1]})
            out.csv(f"{stem}_landmarks.csv", table)
            rows.append({"subject": stem, "split": sp, "image_neutral": n_img,
                         "image_expression": out.image(f"{stem}.nii.gz", to_grey(expr), aff),
                         "labels_neutral": n_lab,
                         "labels_expression": out.labels(f"{stem}_gt.nii.gz", regions(frame, lm, pts), aff),
                         "prealigned": "true", "landmarks": out.ref(f"{stem}_landmarks.csv"),
                         "disp": out.field(f"{stem}_disp.nii.gz", u, aff),
                         "rgb_neutral": n_rgb,
                         "rgb_expression": out.image(f"{stem}_rgb.nii.gz", expr[:, :, None, :], aff) if colour else "",
                         "face": face.name})
    return out.finish(rows, LABELS)


register(StandIn("faces", FacesConfig, generate, None,
                 "face photographs (scikit-image, matplotlib) under known expression warps, landmarks, "
                 "region labels, RGB copies", ndims=(2,), pairing="intra"))
