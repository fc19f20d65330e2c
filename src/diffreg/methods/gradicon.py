"""GradICON (Tian et al., CVPR 2023) and uniGradICON (Tian et al., MICCAI 2024).

Both register with an ICON chain of tallUNet2 steps (nets.tallunet, the official layout, so the
official weights load strictly) and train with

    L = LNCC-loss(A o phi_AB, B) + LNCC-loss(B o phi_BA, A) + lambda_reg * mean_d ||d/dd (I_eps - phi_AB(phi_BA(I_eps)))||^2

(1 - LNCC with a Gaussian window sigma 5, ICON's `LNCC(sigma=5)`; the gradient of the
inverse-consistency error by finite differences, step 1e-3, at a noisy identity I_eps; `similarity:
lncc_squared` takes ICON's SquaredLNCC instead, 1 - mean cc^2, multiGradICON's LNCC^2), as the
official `GradientICON` (icon-registration) and `GradientICONSparse` (unigradicon) do:
- icon_loss "dense" (GradientICON): I_eps = id + N(0, 1) / N_last at every voxel; warps of the
  similarity pad with the border value.
- icon_loss "sparse" (uniGradICON): I_eps = id + 2 N(0, 1) / N_last at every other voxel; warps pad
  with zeros.

`gradicon` trains (Adam, the Trainer). `unigradicon` is the pretrained foundation model: it needs
the official weights (`weights`, e.g. unigradicon1.0/Step_2_final.trch; the row reads "needs
weights" without), trains nothing, and registers as the official command does: intensities
clipped to [min, 99th percentile] and scaled to [0, 1] (its MRI preprocessing), resized to
175^3, `io_iterations` steps of instance optimisation (Adam 2e-5 on the loss above; its command's
default 50), and the map resampled onto the input grid.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from ..configs.gradicon import GradICONConfig, UniGradICONConfig
from ..errors import InputError
from ..features.base import NeedsWeights
from ..features.similarity import lncc_window
from ..losses.similarity import LNCC
from ..nets import build_backbone
from ..nets.small import width_kwargs
from ..nets.tallunet import identity01, sample01
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .result import RegistrationResult

FD_STEP = 1e-3          # the official finite-difference step of the gradient of the ICON error


def icon_lncc(sigma: float, squared: bool = False) -> LNCC:
    """ICON's LNCC(sigma): Gaussian window 4 sigma + 1, zero-padded blur, relu(var) + 1e-5 (the
    pixel LNCC DGIR's code carries; benchmarks/dgir_fidelity.py checks it). `squared`: ICON's
    SquaredLNCC (multiGradICON's LNCC^2), the mean of cc^2 with the same window and floor."""
    return LNCC(**{**lncc_window(sigma, "zeros", "official"), "eps": 1e-5}, squared=squared)


def gradicon_terms(net, a: torch.Tensor, b: torch.Tensor, lncc: LNCC, lambda_reg: float,
                   sparse: bool) -> dict[str, torch.Tensor]:
    """The GradICON loss of the ICON chain `net` (DGIRNet.net) on images A, B (module docstring)."""
    ndim = a.ndim - 2
    ident = identity01(a.shape[2:], a.device, a.dtype)
    phi_ab, phi_ba = net(a, b), net(b, a)
    pad = "zeros" if sparse else "border"
    warped_a = sample01(a, phi_ab(ident, True), pad)
    warped_b = sample01(b, phi_ba(ident, True), pad)
    sim = (1 - lncc.similarity(warped_a, b)) + (1 - lncc.similarity(warped_b, a))
    # one noisy identity for the whole batch, as the official identity_map (batch 1)
    eps = ident + torch.randn(ident.shape, device=a.device, dtype=a.dtype) * (2 if sparse else 1) / a.shape[-1]
    if sparse:
        eps = eps[(slice(None), slice(None), *[slice(None, None, 2)] * ndim)]
    err = eps - phi_ab(phi_ba(eps))
    icon = 0
    for d in range(ndim):
        step = torch.zeros(1, ndim, *[1] * ndim, device=a.device, dtype=a.dtype)
        step[:, d] = FD_STEP
        err_d = eps + step - phi_ab(phi_ba(eps + step))
        icon = icon + torch.mean(((err - err_d) / FD_STEP) ** 2)
    return {"loss": lambda_reg * icon + sim, "similarity": sim, "icon": icon}


def clip_scale(x: torch.Tensor) -> torch.Tensor:
    """uniGradICON's MRI preprocessing: clip to [min, 99th percentile], scale to [0, 1]."""
    lo, hi = x.min(), torch.quantile(x.flatten().float(), 0.99)
    if not hi > lo:
        raise InputError("image has no intensity range below its 99th percentile")
    return ((x.clamp(lo, hi) - lo) / (hi - lo)).to(x.dtype)


class GradICONObjective(Objective):
    def __init__(self, method: "GradICON"):
        self.method = method

    def sample(self, data: TrainingSet, rng, batch_size: int):
        return data.sample(rng, batch_size, self.method.cfg.inter_subject)

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        a, b = (self.method.prepare(x) for x in batch)
        c = self.method.cfg
        chain = getattr(nets["net"], "module", nets["net"]).net     # the map functions (DDP: its module)
        return gradicon_terms(chain, a, b, self.method.lncc, c.lambda_reg, c.icon_loss == "sparse")


@METHODS.register("gradicon")
class GradICON(Method):
    name = "gradicon"
    Config = GradICONConfig
    cfg: GradICONConfig

    def __init__(self, ndim: int, config, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        kwargs = {**width_kwargs("gradicon", c.width, self.name), **c.backbone_kwargs}
        self.nets["net"] = build_backbone("dgir_official", ndim, levels=c.levels, last_step=c.last_step,
                                          **kwargs).to(device)
        self.lncc = icon_lncc(c.sigma, squared=c.similarity == "lncc_squared").to(device)
        if c.weights:
            self.load_weights(c.weights)

    def load_weights(self, path: str) -> None:
        if not Path(path).exists():
            raise InputError(f"{path}: {self.name} weights not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"{path}: not a {self.name} state dict ({type(exc).__name__})") from None
        try:
            self.nets["net"].net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InputError(f"{path}: does not fit the {self.name} network ({str(exc).splitlines()[0]})") from None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        need = self.nets["net"].min_side
        if c.input_shape is None and min(x.shape[2:]) < need:
            raise InputError(f"{self.name}: the ICON chain needs at least {need} voxels per axis in {self.ndim}D, "
                             f"got {'x'.join(map(str, x.shape[2:]))}; set input_shape to resample")
        if c.preprocess == "mri":
            x = torch.stack([clip_scale(xi) for xi in x])
        if c.input_shape is not None and list(x.shape[2:]) != list(c.input_shape):
            x = F.interpolate(x, size=list(c.input_shape), mode="bilinear" if self.ndim == 2 else "trilinear",
                              align_corners=False)
        return x

    def objective(self, data: TrainingSet) -> Objective:
        return GradICONObjective(self)

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        c = self.cfg
        moving, fixed = moving.to(self.device), fixed.to(self.device)
        a, b = self.prepare(moving), self.prepare(fixed)
        net = self.nets["net"]
        if c.io_iterations > 0:                       # instance optimisation on a copy
            net = copy.deepcopy(net).train()
            opt = torch.optim.Adam(net.parameters(), lr=c.io_lr)
            for _ in range(c.io_iterations):
                opt.zero_grad()
                gradicon_terms(net.net, a, b, self.lncc, c.lambda_reg, c.icon_loss == "sparse")["loss"].backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            phi = net.map01(a, b)                                     # on the network's grid
            shape = moving.shape[2:]
            ident = identity01(shape, moving.device, moving.dtype)
            phi = sample01(phi, ident) if tuple(phi.shape[2:]) != tuple(shape) else phi
            scale = torch.tensor([max(n - 1, 1) for n in shape], dtype=phi.dtype, device=phi.device)
            disp = (phi - ident) * scale.view(1, -1, *([1] * self.ndim))
        return RegistrationResult(disp.cpu())


@METHODS.register("unigradicon")
class UniGradICON(GradICON):
    """The pretrained uniGradICON: no training, the official weights, registration as its command."""
    name = "unigradicon"
    Config = UniGradICONConfig

    def __init__(self, ndim: int, config, device: torch.device):
        if ndim != 3:
            raise InputError("unigradicon registers 3D volumes (its network was trained at 175^3)")
        super().__init__(ndim, config, device)

    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict:
        if not self.cfg.weights:
            raise NeedsWeights("unigradicon needs weights: give weights (the official unigradicon1.0 "
                               "Step_2_final.trch; its download is not reachable from here)")
        return {"iterations": 0, "pretrained": str(self.cfg.weights),
                "parameters": sum(p.numel() for p in self.nets["net"].parameters())}
