"""What `Method.register` returns: the displacement, and what sampling methods show besides."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# files `diffreg register` writes itself: an extra image must not overwrite them
RESERVED = re.compile(r"disp|warped|warped_labels|disp_step\d+")


@dataclass
class RegistrationResult:
    """One registration of a (moving, fixed) pair.

    displacement: (1, D, *S) in voxels, a backward map (warp(moving, displacement) ~ fixed);
        written as disp.nii.gz.
    trajectory: intermediate fields of an iterative sampler, each (1, D, *S), in sampling order
        (the last one usually equals `displacement`); written as disp_step<k>.nii.gz, k = 0, 1, ...
    images: further images by name, each (1, 1, *S) (e.g. a generated or denoised image);
        written as <name>.nii.gz.
    """
    displacement: torch.Tensor
    trajectory: list[torch.Tensor] = field(default_factory=list)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    # the deformation time in [0, 1] of each trajectory field, where it has one (DiffuseMorph's
    # eta, VM's zeta, VM-diff's 2^-v); scored against frames at those times (evaluation.trajectory)
    trajectory_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        d = self.displacement
        spatial = tuple(d.shape[2:])
        if d.ndim < 4 or d.shape[0] != 1 or d.shape[1] != len(spatial):
            raise ValueError(f"displacement must be (1, D, *S) with D spatial axes, got {tuple(d.shape)}")
        if self.trajectory_times and len(self.trajectory_times) != len(self.trajectory):
            raise ValueError(f"{len(self.trajectory_times)} trajectory times for {len(self.trajectory)} fields")
        for k, u in enumerate(self.trajectory):
            if tuple(u.shape) != tuple(d.shape):
                raise ValueError(f"trajectory[{k}] has shape {tuple(u.shape)}, displacement {tuple(d.shape)}")
        for name, img in self.images.items():
            if not _NAME.fullmatch(name) or RESERVED.fullmatch(name):
                raise ValueError(f"image name {name!r}: use letters, digits, _ or -, and not a name "
                                 "`diffreg register` writes itself")
            if tuple(img.shape) != (1, 1, *spatial):
                raise ValueError(f"image {name} must be (1, 1, *S) = {(1, 1, *spatial)}, got {tuple(img.shape)}")
