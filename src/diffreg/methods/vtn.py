"""VTN with recursive cascades (Zhao et al., ICCV 2019 "Recursive Cascaded Networks"; the VTN
base network of Zhao et al., JBHI 2019), after the official TensorFlow 1 code
(microsoft/Recursive-Cascaded-Networks, network/recursive_cascaded_networks.py).

An optional affine stem, then `n_cascades` deformable VTN networks (nets.vtn). Cascade k sees
(fixed, moving warped by the aggregate so far) and predicts u_k; the aggregate is
phi_k = phi_{k-1} o (x + u_k), i.e. u_agg,k = u_k + u_agg,k-1(x + u_k) (exactly A u_k + u_affine
after the affine stem), and the moving image is always warped once, by the aggregate.

Loss (the code's): 1 - Pearson correlation of the fixed image and the moving image warped by the
final aggregate (whole image) + lambda_reg * per deformable cascade the half sum of squared forward
differences of its own field divided by the field's size per pair (the code's `regularize_loss`) +
the affine stem's lambda_det * determinant loss + lambda_ortho * orthogonality loss (nets.vtn).
Every term is summed over the batch, as the code does (tf.reduce_sum, tf.nn.l2_loss).

Settings where paper, code and DiffuseReg differ (docs/methods.md, "VTN"):
- n_cascades, a number or a name: default "diffusereg" = 3, DiffuseReg's phi_0 network (affine
  stem + 3 cascades, the reason this method is in the registry); "paper" = 10, the paper's
  headline model; "code" = 1, the code's train.py default.
- affine: the code always puts the affine stem first; `affine: false` drops it (ours).
The code's sizes: channels 16, batch 4, Adam 1e-4; each deformable cascade's field is scaled by 20
and by 1 / n_cascades. Warps clamp to the border (the code's transformer clamps indices). Images
are padded at their ends to multiples of 64 (six stride-2 convolutions); the losses are computed
on the original grid. The affine stem's last convolutions span the whole last feature map, so it
is built for one (padded) grid: `affine_size`, taken from the training images when not given.
"""
from __future__ import annotations


import torch

from .. import spatial
from ..configs.vtn import VTNConfig
from ..errors import InputError
from ..nets.vtn import VTNAffineStem, VTNNet, det_loss, ortho_loss
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .pairs import pad_to_multiple
from .result import RegistrationResult


def pearson_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over the batch of 1 - r, r the correlation coefficient over each whole image, with the
    code's 1e-6 added to each variance."""
    a, b = a.flatten(1), b.flatten(1)
    da, db = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    r = (da * db).mean(1) / torch.sqrt(((da * da).mean(1) + 1e-6) * ((db * db).mean(1) + 1e-6))
    return (1 - r).sum()


def l2_variation(u: torch.Tensor) -> torch.Tensor:
    """The code's regularize_loss: sum of squared forward differences (all axes, the whole batch)
    / 2 / (voxels x channels of one field)."""
    ndim = u.ndim - 2
    total = sum((u.diff(dim=2 + d) ** 2).sum() for d in range(ndim))
    return 0.5 * total / u[0].numel()


class VTNObjective(Objective):
    def __init__(self, method: "VTN"):
        self.method = method

    def sample(self, data: TrainingSet, rng, batch_size: int):
        return data.sample(rng, batch_size, self.method.cfg.inter_subject)

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        return self.method.terms(nets, *batch)


@METHODS.register("vtn")
class VTN(Method):
    name = "vtn"
    Config = VTNConfig
    cfg: VTNConfig
    multiple = VTNNet.multiple

    def __init__(self, ndim: int, config, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        for k in range(c.n_cascades):
            self.nets[f"deform{k}"] = VTNNet(ndim, 2, c.channels, 1.0 / c.n_cascades, c.flow_scale).to(device)
        if c.affine and c.affine_size is not None:
            self._build_affine(c.affine_size)

    def _build_affine(self, size) -> None:
        self.cfg.affine_size = [int(n) for n in size]        # config.json rebuilds the same stem
        self.nets["affine"] = VTNAffineStem(self.ndim, size, 2, self.cfg.affine_channels).to(self.device)

    def _padded(self, shape) -> list[int]:
        return [n + (-n) % self.multiple for n in shape]

    def _check_grid(self, shape) -> None:
        """Build the affine stem for this grid, or fail in one line when it was built for another."""
        if not self.cfg.affine:
            return
        padded = self._padded(shape)
        if "affine" not in self.nets:
            self._build_affine(padded)
        elif list(self.nets["affine"].size) != padded:
            raise InputError(f"vtn: the affine stem was built for images padded to "
                             f"{'x'.join(map(str, self.cfg.affine_size))}, got {'x'.join(map(str, shape))} "
                             f"(padded {'x'.join(map(str, padded))}); train on images of this size")

    def stages(self, nets, moving: torch.Tensor, fixed: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per stem (affine first when on): its own field `flow`, the aggregate `agg` and the moving
        image warped by it `warped`, all on the padded grid; the affine stem adds `W`."""
        c = self.cfg
        m, crop = pad_to_multiple(moving, self.multiple)
        f, _ = pad_to_multiple(fixed, self.multiple)
        out: list[dict[str, torch.Tensor]] = []
        if c.affine:
            flow, W, _ = nets["affine"](torch.cat([f, m], 1))
            out.append(dict(flow=flow, agg=flow, W=W, warped=spatial.warp(m, flow)))
        for k in range(c.n_cascades):
            prev = out[-1]["warped"] if out else m
            flow = nets[f"deform{k}"](torch.cat([f, prev if c.warp_gradient else prev.detach()], 1))
            if not out:
                agg = flow
            elif "W" in out[-1]:          # after the affine stem: exact, A u_k + u_affine
                eye = torch.eye(self.ndim, dtype=flow.dtype, device=flow.device)
                agg = torch.einsum("bij,bj...->bi...", out[-1]["W"] + eye, flow) + out[-1]["agg"]
            else:
                agg = spatial.compose(out[-1]["agg"], flow)
            out.append(dict(flow=flow, agg=agg, warped=spatial.warp(m, agg)))
        for s in out:
            s["crop"] = crop
        return out

    def terms(self, nets, moving: torch.Tensor, fixed: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg
        st = self.stages(nets, moving, fixed)
        crop = tuple(st[0]["crop"])
        sim = pearson_loss(fixed, st[-1]["warped"][crop])
        zero = sim.new_zeros(())
        reg = sum((l2_variation(s["flow"][crop]) for s in st if "W" not in s), zero)
        det = det_loss(st[0]["W"]) if c.affine else zero
        ortho = ortho_loss(st[0]["W"]) if c.affine else zero
        loss = sim + c.lambda_reg * reg + c.lambda_det * det + c.lambda_ortho * ortho
        return {"loss": loss, "similarity": sim, "reg": reg, "det": det, "ortho": ortho}

    def objective(self, data: TrainingSet) -> Objective:
        return VTNObjective(self)

    def fit(self, data: TrainingSet, log_path=None) -> dict:
        self._check_grid(data.shape)     # the affine stem exists before the optimiser is made
        summary = super().fit(data, log_path)
        summary.update(n_cascades=self.cfg.n_cascades, affine=self.cfg.affine)
        return summary

    @torch.no_grad()
    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        self._check_grid(moving.shape[2:])
        self.nets.eval()
        st = self.stages(self.nets, moving.to(self.device), fixed.to(self.device))
        return RegistrationResult(st[-1]["agg"][tuple(st[-1]["crop"])].cpu())
