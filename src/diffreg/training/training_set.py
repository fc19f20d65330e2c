"""The training images every learned method samples its steps from."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError
from ..io import read_image


@dataclass
class TrainingSet:
    """Images of the training subjects, one moving and one fixed modality each (may be the same)."""
    subjects: list[str]
    moving: list[np.ndarray]
    fixed: list[np.ndarray]
    atlas: int | None = None      # atlas-based training: every step registers a subject to this one
    # label maps of each side, where every subject has one (schemes that monitor Dice while training)
    moving_labels: list[np.ndarray] | None = None
    fixed_labels: list[np.ndarray] | None = None

    def use_atlas(self, subject: str) -> None:
        """Fix the atlas: a training subject's id, or "first" (the first by id, as make-pairs picks it)."""
        sid = sorted(self.subjects)[0] if subject == "first" else subject
        if sid not in self.subjects:
            raise InputError(f"--atlas-subject {subject}: not among the training subjects")
        if len(self.subjects) < 2:
            raise InputError("atlas-based training needs at least 2 training subjects (the atlas and one more)")
        self.atlas = self.subjects.index(sid)

    @classmethod
    def from_dir(cls, data_dir: str | Path, subjects: list[str], moving_modality: str,
                 fixed_modality: str) -> "TrainingSet":
        """Every subject's moving and fixed image; where no subject has both (e.g. knee DXA of some
        patients, X-rays of others: one image per samplesheet row), the two pools paired in turn
        (the shorter one cycled), so that each step draws a moving image of one pool and a fixed
        image of the other."""
        data_dir = Path(data_dir)
        has = {m: [s for s in subjects if (data_dir / f"{s}_{m}.nii.gz").exists()]
               for m in (moving_modality, fixed_modality)}
        pairs = [(s, s) for s in subjects]
        if moving_modality != fixed_modality and not set(has[moving_modality]) & set(has[fixed_modality]):
            a, b = has[moving_modality], has[fixed_modality]
            if a and b:
                n = max(len(a), len(b))
                pairs = [(a[k % len(a)], b[k % len(b)]) for k in range(n)]
                print(f"diffreg train: no training subject has both {moving_modality} and {fixed_modality}: "
                      f"{len(a)} {moving_modality} and {len(b)} {fixed_modality} images paired in turn",
                      file=sys.stderr)
        mov, fix = [], []
        for sm, sf in pairs:
            mov.append(read_image(_find(data_dir, sm, moving_modality))[0])
            fix.append(read_image(_find(data_dir, sf, fixed_modality))[0])
        subjects = [sm if sm == sf else f"{sm}+{sf}" for sm, sf in pairs]
        shapes = {a.shape for a in mov + fix}
        if len(shapes) != 1:
            raise InputError(f"{data_dir}: training images differ in shape {sorted(shapes)}; preprocess to one shape")
        labels = [_labels(data_dir, [p[k] for p in pairs], m, shapes) for k, m in enumerate((moving_modality, fixed_modality))]
        return cls(subjects, mov, fix, moving_labels=labels[0], fixed_labels=labels[1])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.moving[0].shape

    def sample(self, rng: np.random.Generator, batch_size: int, inter_subject: bool = True):
        """A batch of (moving, fixed) tensors (B, 1, *S); inter-subject pairs when possible, every
        other subject onto the atlas when one is set."""
        n = len(self.subjects)
        mov, fix = [], []
        if self.atlas is not None:
            for _ in range(batch_size):
                mov.append(int((self.atlas + rng.integers(1, n)) % n))
                fix.append(self.atlas)
            return self.images(mov, "moving"), self.images(fix, "fixed")
        for _ in range(batch_size):
            i = int(rng.integers(n))
            j = i
            if inter_subject and n > 1:
                j = int((i + rng.integers(1, n)) % n)
            mov.append(i)
            fix.append(j)
        return self.images(mov, "moving"), self.images(fix, "fixed")

    def sample_subjects(self, rng: np.random.Generator, k: int) -> list[int]:
        """Indices of `k` distinct subjects (schemes that tie several subjects into one step,
        e.g. M2M-Reg's source, target and bridge pair)."""
        n = len(self.subjects)
        if k > n:
            raise InputError(f"this training scheme takes {k} distinct subjects per step; "
                             f"only {n} training subject(s) given")
        return [int(i) for i in rng.choice(n, size=k, replace=False)]

    def images(self, indices: Sequence[int], side: str) -> torch.Tensor:
        """The `side` ("moving" or "fixed") images of subjects `indices` as (len, 1, *S) float."""
        arrays = {"moving": self.moving, "fixed": self.fixed}[side]
        return torch.from_numpy(np.stack([arrays[i] for i in indices])[:, None]).float()


def _labels(data_dir: Path, subjects: list[str], modality: str, shapes: set) -> list[np.ndarray] | None:
    """Each subject's `<subject>_<modality>_labels` or else `<subject>_labels` map; None unless every
    subject has one of the images' shape (labels are optional for training)."""
    out = []
    for s in subjects:
        path = next((p for p in (data_dir / f"{s}_{modality}_labels.nii.gz", data_dir / f"{s}_labels.nii.gz")
                     if p.exists()), None)
        if path is None:
            return None
        lab = read_image(path)[0]
        if {lab.shape} != shapes:
            return None
        out.append(np.rint(lab).astype(np.int16))
    return out


def _find(data_dir: Path, subject: str, modality: str) -> Path:
    path = data_dir / f"{subject}_{modality}.nii.gz"
    if not path.exists():
        raise InputError(f"{path}: missing (subject {subject}, modality {modality})")
    return path
