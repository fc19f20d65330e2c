"""Brain structures finer than CSF / GM / WM, derived from the head template alone (no atlas).

The template (diffreg.data.anatomy) is in MNI space, so a coordinate box is an anatomical
statement; the rules use only the tissue map and such boxes, and each is one a reader can check:

- lateral ventricles: the largest connected CSF component inside a central MNI box (the bodies,
  frontal horns and atria); split left / right by the sign of MNI x. The third and fourth
  ventricles are too thin to survive the toy resolution and stay ordinary CSF.
- deep grey matter: grey-matter voxels inside the box of the basal ganglia and thalami, at least
  8 mm from anything outside the brain or from extra-ventricular CSF (so neither cortex nor the
  insula), minus the anterior midline strip (cingulate cortex); left / right by MNI x. Caudate,
  putamen, pallidum and thalamus are not told apart.
- cortex: every other grey-matter voxel (cerebral and cerebellar cortex together).

Values keep the tissue-class meaning of the brain population (1 CSF, 2 GM, 3 WM) for what is
left of each class, so merging (4, 5 -> 1), (6, 7 -> 2) gives back its labels exactly.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

NAMES = {0: "background", 1: "CSF (outside the lateral ventricles)", 2: "cortex", 3: "white matter",
         4: "left lateral ventricle", 5: "right lateral ventricle",
         6: "left deep grey matter", 7: "right deep grey matter"}
TISSUE_OF = {0: 0, 1: 1, 2: 2, 3: 3, 4: 1, 5: 1, 6: 2, 7: 2}   # fine value -> CSF/GM/WM value

VENTRICLE_BOX_MM = ((-32, -45, -2), (32, 35, 38))     # MNI (x, y, z) lower and upper corners
DEEP_GM_BOX_MM = ((-32, -38, -14), (32, 28, 22))
DEEP_GM_DEPTH_MM = 8.0
MIDLINE_MM = 5.0                                       # |x| below this, anterior (y > 5): cingulate


def _world(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    ijk = np.indices(shape).reshape(len(shape), -1).astype(np.float64)
    ijk = np.vstack([ijk, np.zeros((3 - len(shape), ijk.shape[1]))])
    return (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape(3, *shape)


def _inside(xyz: np.ndarray, box) -> np.ndarray:
    lo, hi = box
    return np.all([(xyz[d] >= lo[d]) & (xyz[d] <= hi[d]) for d in range(3)], axis=0)


def fine_labels(tissue: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Tissue labels (0 bg, 1 CSF, 2 GM, 3 WM) on a template grid in MNI space -> NAMES values."""
    tissue = np.asarray(tissue)
    xyz = _world(affine, tissue.shape)
    spacing = float(np.sqrt((affine[:3, 0] ** 2).sum()))
    left = xyz[0] < 0
    out = tissue.astype(np.uint8).copy()

    comp, n = ndimage.label((tissue == 1) & _inside(xyz, VENTRICLE_BOX_MM))
    vent = np.zeros(tissue.shape, bool)
    if n:
        sizes = ndimage.sum_labels(np.ones(comp.shape), comp, range(1, n + 1))
        vent = comp == int(np.argmax(sizes)) + 1
    out[vent & left] = 4
    out[vent & ~left] = 5

    outer = (tissue == 0) | ((tissue == 1) & ~vent)
    depth = ndimage.distance_transform_edt(~outer) * spacing
    deep = (tissue == 2) & (depth > DEEP_GM_DEPTH_MM) & _inside(xyz, DEEP_GM_BOX_MM)
    deep &= ~((np.abs(xyz[0]) < MIDLINE_MM) & (xyz[1] > 5))
    out[deep & left] = 6
    out[deep & ~left] = 7
    return out


def to_tissue(fine: np.ndarray) -> np.ndarray:
    lut = np.zeros(max(TISSUE_OF) + 1, dtype=np.uint8)
    for k, v in TISSUE_OF.items():
        lut[k] = v
    return lut[np.asarray(fine, dtype=np.int64)]
