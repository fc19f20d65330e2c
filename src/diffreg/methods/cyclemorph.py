"""CycleMorph (Kim et al., MedIA 2021; MICCAI 2019): two registration networks G_A (A -> B) and
G_B (B -> A) (nets.cyclemorph, the official layout) trained jointly with

    L = sum over (X, Y) in {(A, B), (B, A)} of
          -NCC(X o phi_XY, Y) + lambda_reg Grad-l2(phi_XY)            (registration)
        + alpha |G_YX(X o phi_XY, Y o phi_YX) - X|_1                     (cycle: warped back)
        + beta  -NCC(G_XY(Y, Y), Y)                                      (identity: Y to itself)

where G(m, f) is the network's warped m; the official models/cycleMorph_model.py `backward_G`
term by term. NCC is VoxelMorph's squared local cc in a 9^d box (cov^2 / (var var + 1e-5) on window
sums, zero-padded; its crossCorrelation3D), Grad-l2 the `diffusion` regulariser (its gradientLoss
('l2')), the cycle term a mean absolute difference. Registration: G_A only (its `test`). Warps are
linear with zeros outside the image (its spatial transformer).

Defaults are the official brain settings (scripts/Brain_train.sh, options/*.py): widths
16,32,32,32,32 / 32,32,32,8,8; alpha (lambda_A) 0.1, beta (lambda_B, the identity weight) 0.5,
lambda_reg (lambda_R) 1; Adam lr 2e-4 at a constant rate (the script's step policy never runs:
train.py does not call update_learning_rate), batch 1; conv weights initialised N(0, 1e-5).
betas: "adam" (0.9, 0.999; the paper names Adam only) or "official" (0.5, 0.999, the code's beta1).
The code and the paper's brain experiment are 3D; 2D runs the same network with 2D convolutions.
"""
from __future__ import annotations


import torch

from .. import spatial
from ..configs.cyclemorph import CycleMorphConfig
from ..losses import build_regulariser
from ..nets.cyclemorph import CycleMorphNet
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .pairs import pad_to_multiple
from .result import RegistrationResult
from .symnet import voxelmorph_ncc          # the same VoxelMorph NCC (window sums, eps 1e-5)


class CycleMorphObjective(Objective):
    def __init__(self, method: "CycleMorph"):
        self.method = method

    def sample(self, data: TrainingSet, rng, batch_size: int):
        return data.sample(rng, batch_size, self.method.cfg.inter_subject)

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        return self.method.terms(nets["G_A"], nets["G_B"], *batch)


def apply(net, moving: torch.Tensor, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(moving warped, field) on the images' grid; the network sees them padded to a multiple of 16."""
    x, crop = pad_to_multiple(torch.cat([moving, fixed], 1), CycleMorphNet.multiple)
    flow = net.field(x)[tuple(crop)] if hasattr(net, "field") else net(x)[1][tuple(crop)]
    return spatial.warp(moving, flow, padding="zeros"), flow


@METHODS.register("cyclemorph")
class CycleMorph(Method):
    name = "cyclemorph"
    Config = CycleMorphConfig
    cfg: CycleMorphConfig

    def __init__(self, ndim: int, config, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        for key in ("G_A", "G_B"):
            self.nets[key] = CycleMorphNet(ndim, 2, c.encoder_nc, c.decoder_nc, c.init).to(device)
        self.ncc = voxelmorph_ncc(ndim, c.ncc_window).to(device)
        self.grad = build_regulariser("diffusion")

    def terms(self, g_a, g_b, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg

        def cc_loss(a, b):
            return -self.ncc.similarity(a, b)

        fake_b, flow_a = apply(g_a, real_a, real_b)
        fake_a, flow_b = apply(g_b, real_b, real_a)
        back_a, _ = apply(g_b, fake_b, fake_a)
        back_b, _ = apply(g_a, fake_a, fake_b)
        idt_a, _ = apply(g_a, real_b, real_b)
        idt_b, _ = apply(g_b, real_a, real_a)
        t = {"similarity": cc_loss(fake_b, real_b) + cc_loss(fake_a, real_a),
             "regulariser": self.grad(flow_a) + self.grad(flow_b),
             "cycle": (back_a - real_a).abs().mean() + (back_b - real_b).abs().mean(),
             "identity": cc_loss(idt_a, real_b) + cc_loss(idt_b, real_a)}
        t["loss"] = t["similarity"] + c.lambda_reg * t["regulariser"] + c.alpha * t["cycle"] + c.beta * t["identity"]
        return t

    def objective(self, data: TrainingSet) -> Objective:
        return CycleMorphObjective(self)

    @torch.no_grad()
    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        net = self.nets["G_A"].eval()
        _, flow = apply(net, moving.to(self.device), fixed.to(self.device))
        return RegistrationResult(flow.cpu())
