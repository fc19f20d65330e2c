"""M2M-Reg (Choo et al., MICCAI 2025): multi-modal registration trained with mono-modal similarity
only, a training scheme around any backbone.

Each step draws A (modality 1) and B (modality 2) from two subjects and a bridge pair (Ac of
modality 1, Bc of modality 2), and registers five pairs with one network:
phi_AB = net(A, B), phi_BA = net(B, A), phi_BcA = net(Bc, A), phi_BAc = net(B, Ac), phi_AcBc =
net(Ac, Bc). Around the cycle A -> B -> Ac -> Bc -> A every image reaches the other image of its
own modality through two maps (paper Eq. 2):

    L_m2m = sim(A o phi_AB o phi_BAc, Ac) + sim(Ac o phi_AcBc o phi_BcA, A)
          + sim(B o phi_BAc o phi_AcBc, Bc) + sim(Bc o phi_BcA o phi_AB, B)

with sim = 1 - LNCC (ICON's, Gaussian sigma 5), and GradCyCon (Eq. 3) is the Jacobian-identity
penalty of GradICON on the composed cycle phi_AB o phi_BAc o phi_AcBc o phi_BcA. The loss (Eq. 6) is
L_m2m + lambda_reg L_reg + lambda_gcc L_gcc, where L_reg is the backbone's own regulariser:
GradICON on (phi_AB, phi_BA) for the GradICON chain; for TransMorph / CorrMLP the code's mean
squared forward difference of the [0, 1] map phi_AB INCLUDING the identity (models.py Grad3d on
phi_AB_vectorfield; `regulariser: diffusion` takes the voxel displacement instead).

Semi-supervised (Sec. 2.4): with `prealigned_pairs` k > 0 (or `prealigned_fraction`), a fixed set of
k training subjects is drawn once; every step's bridge is one of them with both of its modalities
(pre-aligned, same subject), phi_AcBc is the identity and the cycle has three maps. k = 0 is the
unsupervised scheme.

Maps compose in ICON's order (the first map of a path outermost, `icon_maps`); the official code's
reversed order is `composition: reversed`. Backbones that return voxel displacements (TransMorph,
CorrMLP) are converted to [0, 1] units explicitly (`icon_maps.voxels_to_unit`); the official code
reads their output as [0, 1] units although their internal warps are in voxels (docs/m2m-reg.md).
"""
from __future__ import annotations


import numpy as np
import torch

from ..configs.m2m_reg import M2MRegConfig
from ..errors import InputError
from ..losses import build_regulariser
from ..nets import build_backbone
from ..nets.small import width_kwargs
from ..nets.tallunet import identity01, sample01
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .gradicon import icon_lncc
from .icon_maps import (compose_maps, field_map, jacobian_identity_penalty, noisy_identity,
                        unit_to_voxels, voxels_to_unit)
from .pairs import predict_pair, register_pair
from .result import RegistrationResult

# which modality each image of a step has (the cycle's similarity terms compare equal ones only)
MODALITY = {"A": 1, "Ac": 1, "B": 2, "Bc": 2}


def cycle_paths(semi: bool) -> list[tuple[str, list[str], str]]:
    """(source, maps in path order, target) of each L_m2m term; without phi_AcBc when `semi`."""
    acbc = [] if semi else ["AcBc"]
    return [("A", ["AB", "BAc"], "Ac"),
            ("Ac", acbc + ["BcA"], "A"),
            ("B", ["BAc"] + acbc, "Bc"),
            ("Bc", ["BcA", "AB"], "B")]


def cycle_maps(semi: bool) -> list[str]:
    """The cycle A -> B -> Ac (-> Bc) -> A in path order (GradCyCon)."""
    return ["AB", "BAc"] + ([] if semi else ["AcBc"]) + ["BcA"]


def check_mono_modal(paths) -> None:
    """ValueError when a similarity term of `paths` compares images of different modalities."""
    for src, _, dst in paths:
        if MODALITY[src] != MODALITY[dst]:
            raise ValueError(f"L_m2m term {src} -> {dst} compares modality {MODALITY[src]} with {MODALITY[dst]}")


class M2MObjective(Objective):
    def __init__(self, method: "M2MReg", data: TrainingSet):
        self.method = method
        c = method.cfg
        n = len(data.subjects)
        self.repeat = c.subject_draw == "repeat"
        k = c.prealigned_count(n)
        self.semi = k > 0
        # the fixed subset of pre-aligned bridge subjects, drawn once (the code's random.sample)
        self.bridges = sorted(int(i) for i in np.random.default_rng(c.seed).choice(n, size=k, replace=False)) if k else []
        self.lncc = icon_lncc(c.sigma).to(method.device)
        self.reg_diffusion = build_regulariser("diffusion")
        self.with_labels = False          # A's and B's label maps in each batch (Fig. 1a's monitoring)
        check_mono_modal(cycle_paths(self.semi))

    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int) -> dict:
        """Per sample: A, B of different subjects; a bridge of two more subjects (unsupervised) or
        one pre-aligned subject of the fixed set, not A's or B's (semi-supervised)."""
        names = {"A": [], "B": [], "Ac": [], "Bc": []}
        for _ in range(batch_size):
            if self.semi:
                bridge = self.bridges[int(rng.integers(len(self.bridges)))]
                rest = [i for i in range(len(data.subjects)) if i != bridge] or [bridge]
                if len(rest) < 2 and not self.repeat:
                    raise InputError("m2m_reg (semi-supervised) needs at least 3 training subjects "
                                     "(subject_draw: repeat lets subjects repeat)")
                a, b = (rest[int(i)] for i in rng.choice(len(rest), size=2, replace=len(rest) < 2))
                ac = bc = bridge
            elif self.repeat and len(data.subjects) < 4:
                a, b, ac, bc = (int(i) for i in np.resize(rng.permutation(len(data.subjects)), 4))
            else:
                a, b, ac, bc = data.sample_subjects(rng, 4)
            swap = bool(self.method.cfg.swap_modalities and rng.integers(2))
            first, second = ("fixed", "moving") if swap else ("moving", "fixed")
            names["A"].append(data.images([a], first))
            names["Ac"].append(data.images([ac], first))
            names["B"].append(data.images([b], second))
            names["Bc"].append(data.images([bc], second))
            if self.with_labels and data.moving_labels is not None and data.fixed_labels is not None:
                labels = {"moving": data.moving_labels, "fixed": data.fixed_labels}
                names.setdefault("A_labels", []).append(torch.from_numpy(labels[first][a][None, None].astype(np.int64)))
                names.setdefault("B_labels", []).append(torch.from_numpy(labels[second][b][None, None].astype(np.int64)))
        return {k: torch.cat(v) for k, v in names.items()}

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        return m2m_terms(self.method.mapper(nets["net"]), batch, self.lncc, self.method.cfg, self.semi,
                         self.reg_diffusion)


def m2m_terms(mapper, batch: dict, lncc, cfg: M2MRegConfig, semi: bool, diffusion=None) -> dict[str, torch.Tensor]:
    """The M2M-Reg loss (module docstring) for images batch["A" | "B" | "Ac" | "Bc"] (B, 1, *S);
    mapper(X, Y) -> (phi_XY as a function of [0, 1] coordinates, its voxel displacement or None)."""
    a = batch["A"]
    shape = a.shape[2:]
    ident = identity01(shape, a.device, a.dtype)
    pairs = {"AB": ("A", "B"), "BcA": ("Bc", "A"), "BAc": ("B", "Ac")}
    if not semi:
        pairs["AcBc"] = ("Ac", "Bc")
    if cfg.regulariser == "gradicon":
        pairs["BA"] = ("B", "A")
    maps, disps = {}, {}
    for key, (x, y) in pairs.items():
        maps[key], disps[key] = mapper(batch[x], batch[y])
    order = cfg.composition
    sim = 0
    for src, path, dst in cycle_paths(semi):
        warped = sample01(batch[src], compose_maps([maps[p] for p in path], order)(ident), "zeros")
        sim = sim + (1 - lncc.similarity(warped, batch[dst]))
    # the code draws I_epsilon for the inverse consistency first, then for the cycle
    if cfg.regulariser == "gradicon":
        eps_inv = noisy_identity(shape, a.device, a.dtype)
        reg = jacobian_identity_penalty(compose_maps([maps["AB"], maps["BA"]], "icon"), eps_inv)
    elif cfg.regulariser == "map_gradient":
        reg = diffusion(maps["AB"](ident))
    else:
        disp = disps["AB"] if disps["AB"] is not None else unit_to_voxels(maps["AB"](ident) - ident)
        reg = diffusion(disp)
    terms = {"m2m": sim, "reg": reg}
    loss = sim + cfg.lambda_reg * reg
    if cfg.lambda_gcc:
        eps_can = noisy_identity(shape, a.device, a.dtype)
        gcc = jacobian_identity_penalty(compose_maps([maps[p] for p in cycle_maps(semi)], order), eps_can)
        terms["gcc"] = gcc
        loss = loss + cfg.lambda_gcc * gcc
    return {"loss": loss, **terms}


@METHODS.register("m2m_reg")
class M2MReg(Method):
    name = "m2m_reg"
    Config = M2MRegConfig
    cfg: M2MRegConfig

    def __init__(self, ndim: int, config, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        kwargs = {**width_kwargs(c.backbone, c.width, self.name), **c.backbone_kwargs}
        if c.backbone == "gradicon":
            self.nets["net"] = build_backbone("dgir_official", ndim, levels=c.levels, **kwargs).to(device)
        else:
            self.nets["net"] = build_backbone(c.backbone, ndim, **kwargs).to(device)

    def mapper(self, net):
        """(X, Y) -> (phi_XY on [0, 1] coordinates, voxel displacement or None) for the backbone."""
        net = getattr(net, "module", net)             # DDP: its module
        if self.cfg.backbone == "gradicon":
            need = net.min_side
            def chain(x, y):
                if min(x.shape[2:]) < need:
                    raise InputError(f"m2m_reg: the GradICON chain needs at least {need} voxels per axis "
                                     f"in {self.ndim}D, got {'x'.join(map(str, x.shape[2:]))}")
                phi = net.net(x, y)
                return (lambda p: phi(p)), None
            return chain

        def voxel_backbone(x, y):
            disp = predict_pair(net, x, y, self.cfg.pad_multiple)
            return field_map(voxels_to_unit(disp)), disp
        return voxel_backbone

    def objective(self, data: TrainingSet) -> Objective:
        return M2MObjective(self, data)

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        moving, fixed = moving.to(self.device), fixed.to(self.device)
        net = self.nets["net"]
        if self.cfg.backbone != "gradicon":
            return register_pair(net, moving, fixed, self.cfg.pad_multiple)
        net.eval()
        with torch.no_grad():
            ident = identity01(moving.shape[2:], moving.device, moving.dtype)
            phi, _ = self.mapper(net)(moving, fixed)
            return RegistrationResult(unit_to_voxels(phi(ident) - ident).cpu())
