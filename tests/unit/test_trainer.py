"""Methods composed of networks x an Objective x the one Trainer: typed settings, the loop, and
tiny stand-ins (2D, 16 x 16, a few iterations) for the training schemes of the papers, each
written without a loop of its own:
(a) two networks, one optimiser (DiffuseMorph), (b) a frozen pretrained encoder in the loss
(LDM-Morph), (c) four subjects per step (M2M-Reg), (d) sampling at registration time
(RegistrationResult with a trajectory), (e) a first-stage run as a dependency (DiffuseReg)."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffreg import spatial
from diffreg.cli import build_parser, main
from diffreg.commands.train import run_config
from diffreg.errors import InputError
from diffreg.io import read_field, write_image
from diffreg.losses import build_regulariser
from diffreg.methods import (METHODS, Method, Objective, PairwiseObjective, RegistrationResult, Trainer,
                             TrainerConfig, TrainingSet, build_method, freeze, load_method)
from diffreg.methods.dgir import DGIR
from diffreg.methods.nested import attach_trained
from diffreg.methods.pairs import predict_pair

CPU = torch.device("cpu")
SIZE = 16


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random images: neighbouring subjects differ by a smooth change."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, SIZE, SIZE, generator=g)
    return list(F.avg_pool2d(x, 5, stride=1, padding=2)[:, 0].numpy())


def _data(n: int = 5) -> TrainingSet:
    imgs = _images(n)
    return TrainingSet([f"s{i}" for i in range(n)], imgs, [1 - x for x in imgs])


def _flow(cin: int) -> nn.Module:
    """A one-layer displacement head that starts near the identity map."""
    conv = nn.Conv2d(cin, 2, 3, padding=1)
    nn.init.normal_(conv.weight, std=1e-3)
    nn.init.zeros_(conv.bias)
    return conv


def _copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, module: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.fixture
def registered():
    """Register test methods under their `name` for the commands, and remove them afterwards
    (the registry is global: other tests list the known methods)."""
    added = []

    def add(cls):
        METHODS.register(cls.name)(cls)
        added.append(cls.name)
        return cls
    yield add
    for name in added:
        METHODS._items.pop(name)   # no public unregister: the registry never needs one outside tests


# --- typed settings -----------------------------------------------------------------------------
def test_settings_unknown_keys_types_and_paper_defaults():
    with pytest.raises(InputError, match="unknown setting.*lamda_reg for method voxelmorph"):
        build_method("voxelmorph", 2, {"lamda_reg": 1.0}, CPU)
    with pytest.raises(InputError, match="iterations = 'many' for method voxelmorph: expected an integer"):
        build_method("voxelmorph", 2, {"iterations": "many"}, CPU)
    m = build_method("voxelmorph", 2, {"lr": "1e-3", "iterations": 10.0, "lambda_reg": 2}, CPU)
    assert (m.cfg.lr, m.cfg.iterations, m.cfg.lambda_reg) == (1e-3, 10, 2.0)    # YAML's "1e-3" is a string
    # VoxelMorph's window belongs to its default similarity: another similarity starts without it
    assert m.config["similarity_kwargs"] == {"window": "box", "size": 9, "squared": True}
    assert build_method("voxelmorph", 2, {"similarity": "mse"}, CPU).config["similarity_kwargs"] == {}
    kept = build_method("voxelmorph", 2, {"similarity": "lncc", "similarity_kwargs": {"size": 5}}, CPU)
    assert kept.config["similarity_kwargs"] == {"size": 5}
    # every registered method names its settings, per dimensionality (the planner checks rows with them)
    assert {"similarity", "lambda_reg", "inter_subject"} <= METHODS.get("voxelmorph").settings(3)
    dgir = METHODS.get("dgir").settings(2)
    assert {"loss", "block", "t", "feature_checkpoint", "lambda_reg"} <= dgir and "similarity" not in dgir


def test_dgir_similarity_flag_names_its_loss(tmp_path, capsys):
    parser = build_parser("train")
    base = ["train", "--data-dir", str(tmp_path), "--subjects", "a", "--out", str(tmp_path / "m")]
    args = parser.parse_args(base + ["--method", "dgir", "--similarity", "mind", "--intra-subject"])
    config = run_config(args, METHODS.get("dgir"))
    assert config["loss"] == "mind" and "similarity" not in config and config["inter_subject"] is False
    args = parser.parse_args(base + ["--method", "voxelmorph", "--similarity", "mse"])
    assert run_config(args, METHODS.get("voxelmorph"))["similarity"] == "mse"
    # ssim is no DGIR loss: one clear error, not a silent training with the diffusion loss
    _write_subjects(tmp_path, 2)
    rc = main(base + ["--method", "dgir", "--similarity", "ssim", "--subjects", "s0,s1"])
    assert rc == 2 and "unknown DGIR loss 'ssim'" in capsys.readouterr().err
    with pytest.raises(InputError, match="similarity for method dgir"):
        DGIR(2, {"similarity": "mse"}, CPU)


# --- the loop -----------------------------------------------------------------------------------
def test_trainer_logs_terms_speed_and_summary(tmp_path, capsys):
    m = build_method("voxelmorph", 2, {"iterations": 4, "log_every": 2, "batch_size": 2, "similarity": "mse",
                                       "backbone_kwargs": {"variant": "vm1"}}, CPU)
    stats = m.fit(_data(), log_path=tmp_path / "log.csv")
    out = capsys.readouterr().out
    assert "[train voxelmorph] iter 2/4 loss" in out and "iter 4/4" in out and "iter 3/4" not in out
    assert "(similarity " in out and "regulariser " in out and "it/s" in out
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert list(rows[0]) == ["iteration", "loss", "similarity", "regulariser", "elapsed_s"] and len(rows) == 4
    assert stats["iterations"] == 4 and stats["loss_first_10pct"] == pytest.approx(float(rows[0]["loss"]))
    # seeded: the same settings give the same losses
    again = build_method("voxelmorph", 2, m.config, CPU)
    again.fit(_data(), log_path=tmp_path / "log2.csv")
    assert [r["loss"] for r in csv.DictReader(open(tmp_path / "log2.csv"))] == [r["loss"] for r in rows]


# --- (a) two networks trained jointly (DiffuseMorph) ------------------------------------------
@dataclass
class JointConfig(TrainerConfig):
    lambda_reg: float = 1.0
    noise_weight: float = 0.5


class JointObjective(Objective):
    """A diffusion net denoises the fixed image given the moving one; its output is an input of
    the deformation net, so the registration loss trains both."""

    def __init__(self, lambda_reg: float, noise_weight: float):
        self.lambda_reg, self.noise_weight = lambda_reg, noise_weight
        self.regulariser = build_regulariser("diffusion")

    def __call__(self, nets, batch):
        moving, fixed = batch
        noise = torch.randn_like(fixed)
        noise_hat = nets["diffusion"](torch.cat([fixed + self.noise_weight * noise, moving], 1))
        disp = nets["deformation"](torch.cat([moving, fixed, noise_hat], 1))
        diffusion = F.mse_loss(noise_hat, noise)
        sim = F.mse_loss(spatial.warp(moving, disp), fixed)
        reg = self.regulariser(disp)
        return {"loss": diffusion + sim + self.lambda_reg * reg, "diffusion": diffusion,
                "similarity": sim, "regulariser": reg}


class JointMethod(Method):
    name = "_test_joint"
    Config = JointConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        self.nets["diffusion"] = nn.Conv2d(2, 1, 3, padding=1)
        self.nets["deformation"] = _flow(3)

    def objective(self, data):
        return JointObjective(self.cfg.lambda_reg, self.cfg.noise_weight)

    @torch.no_grad()
    def register(self, moving, fixed, generator=None):
        noise_hat = self.nets["diffusion"](torch.cat([fixed, moving], 1))
        return RegistrationResult(self.nets["deformation"](torch.cat([moving, fixed, noise_hat], 1)))


def test_a_two_networks_one_optimiser(tmp_path):
    m = JointMethod(2, {"iterations": 3, "lr": 1e-2}, CPU)
    before = {name: _copy(net) for name, net in m.nets.items()}
    trainer = Trainer(m.cfg, CPU, m.name)
    trainer.fit(m.nets, m.objective(None), _data(), log_path=tmp_path / "log.csv")
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in m.nets.parameters()}          # one Adam over both networks
    assert all(_changed(before[name], net) for name, net in m.nets.items())
    assert list(next(csv.DictReader(open(tmp_path / "log.csv")))) == [
        "iteration", "loss", "diffusion", "similarity", "regulariser", "elapsed_s"]
    assert set(m.state_dict()) >= {"diffusion.weight", "deformation.weight"}
    assert m.register(torch.rand(1, 1, SIZE, SIZE), torch.rand(1, 1, SIZE, SIZE)).displacement.shape == (1, 2, SIZE, SIZE)


# --- (b) a frozen pretrained encoder inside the loss (LDM-Morph) ------------------------------
@dataclass
class LatentConfig(TrainerConfig):
    lambda_reg: float = 0.0     # no regulariser: the network learns from the latent loss alone


class LatentObjective(Objective):
    def __call__(self, nets, batch):
        moving, fixed = batch
        enc = nets["encoder"]
        disp = nets["net"](torch.cat([enc(moving), enc(fixed)], 1))
        sim = F.mse_loss(enc(spatial.warp(moving, disp)), enc(fixed))   # gradient through the encoder
        return {"loss": sim, "latent_similarity": sim}


class LatentMethod(Method):
    name = "_test_latent"
    Config = LatentConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        torch.manual_seed(1)   # "pretrained" weights; batch norm makes eval mode observable
        encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh())
        self.nets["encoder"] = freeze(encoder)
        self.nets["net"] = _flow(8)

    def objective(self, data):
        return LatentObjective()

    @torch.no_grad()
    def register(self, moving, fixed, generator=None):
        enc = self.nets["encoder"]
        return RegistrationResult(self.nets["net"](torch.cat([enc(moving), enc(fixed)], 1)))


def test_b_frozen_encoder_passes_gradients_but_keeps_its_weights():
    m = LatentMethod(2, {"iterations": 3, "lr": 1e-2, "batch_size": 2}, CPU)
    enc_before, net_before = _copy(m.nets["encoder"]), _copy(m.nets["net"])
    m.fit(_data())
    assert not _changed(enc_before, m.nets["encoder"])         # weights and batch-norm statistics
    assert all(p.grad is None for p in m.nets["encoder"].parameters())
    assert _changed(net_before, m.nets["net"])                 # learnt through the encoder only
    assert m.parameter_counts()["encoder"][1] == 0 and m.parameter_counts()["net"][1] > 0
    assert any(k.startswith("encoder.") for k in m.state_dict())   # saved with the method


# --- (c) four subjects per step (M2M-Reg's source, target and bridge pair) ---------------------
class CycleObjective(Objective):
    """S, S' of the moving modality, T, T' of the fixed one, from four distinct subjects; mono-modal
    similarity around the cycle S -> T -> S' -> T' -> S and GradCyCon on the cycle."""

    def __init__(self):
        self.drawn: list[list[int]] = []
        self.gcc = build_regulariser("gradcycon")

    def sample(self, data, rng, batch_size):
        i, j, k, l = idx = data.sample_subjects(rng, 4)
        self.drawn.append(idx)
        return {"S": data.images([i], "moving"), "T": data.images([j], "fixed"),
                "S2": data.images([k], "moving"), "T2": data.images([l], "fixed")}

    def __call__(self, nets, b):
        edge = lambda a, c: predict_pair(nets["net"], b[a], b[c], 1)   # noqa: E731
        st, ts2, s2t2, t2s = edge("S", "T"), edge("T", "S2"), edge("S2", "T2"), edge("T2", "S")
        sim = (F.mse_loss(spatial.warp(spatial.warp(b["S"], st), ts2), b["S2"])
               + F.mse_loss(spatial.warp(spatial.warp(b["S2"], s2t2), t2s), b["S"]))
        gcc = self.gcc([st, ts2, s2t2, t2s])
        return {"loss": sim + gcc, "m2m": sim, "gcc": gcc}


class CycleMethod(Method):
    name = "_test_cycle"
    Config = TrainerConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        self.nets["net"] = _flow(2)
        self.last_objective: CycleObjective | None = None

    def objective(self, data):
        self.last_objective = CycleObjective()
        return self.last_objective

    def register(self, moving, fixed, generator=None):
        with torch.no_grad():
            return RegistrationResult(predict_pair(self.nets["net"], moving, fixed, 1))


def test_c_four_subjects_per_step():
    m = CycleMethod(2, {"iterations": 4, "lr": 1e-2}, CPU)
    stats = m.fit(_data(5))
    drawn = m.last_objective.drawn
    assert len(drawn) == 4 and all(len(set(d)) == 4 for d in drawn) and len({tuple(d) for d in drawn}) > 1
    assert np.isfinite(stats["loss_last_10pct"])
    with pytest.raises(InputError, match="4 distinct subjects"):
        CycleMethod(2, {"iterations": 1}, CPU).fit(_data(3))


# --- (d) iterative sampling at registration time --------------------------------------------------
@dataclass
class SamplerConfig(TrainerConfig):
    steps: int = 4
    noise: float = 0.1


class SamplerMethod(Method):
    """Refines the field in `steps` noisy steps (the shape of a diffusion sampler)."""
    name = "_test_sampler"
    Config = SamplerConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        self.nets["net"] = _flow(2)

    def objective(self, data):
        return PairwiseObjective(nn.MSELoss(), build_regulariser("diffusion"), 1.0)

    @torch.no_grad()
    def register(self, moving, fixed, generator=None):
        disp, trajectory = torch.zeros(1, 2, *moving.shape[2:]), []
        for k in range(self.cfg.steps):
            scale = self.cfg.noise * (1 - k / self.cfg.steps)
            step = predict_pair(self.nets["net"], spatial.warp(moving, disp), fixed, 1)
            disp = disp + step + scale * torch.randn(disp.shape, generator=generator)
            trajectory.append(disp)
        halfway = spatial.warp(moving, trajectory[len(trajectory) // 2])
        return RegistrationResult(disp, trajectory=trajectory, images={"warped_halfway": halfway})


def test_d_sampler_result_is_seeded_and_written(tmp_path, registered):
    registered(SamplerMethod)
    m = SamplerMethod(2, {"iterations": 2}, CPU)
    m.fit(_data())
    mov, fix = (torch.from_numpy(x)[None, None] for x in _images(2, seed=5))
    run = lambda seed: m.register(mov, fix, torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    assert len(a.trajectory) == 4 and torch.equal(a.trajectory[-1], a.displacement)
    assert torch.equal(a.displacement, b.displacement) and not torch.equal(a.displacement, c.displacement)
    with pytest.raises(ValueError, match="name"):
        RegistrationResult(a.displacement, images={"disp": a.images["warped_halfway"]})
    with pytest.raises(ValueError, match="trajectory"):
        RegistrationResult(a.displacement, trajectory=[a.displacement[:, :1]])

    m.save(tmp_path / "model")
    write_image(tmp_path / "m.nii.gz", mov[0, 0].numpy())
    write_image(tmp_path / "f.nii.gz", fix[0, 0].numpy())
    args = ["register", "--model", str(tmp_path / "model"), "--moving", str(tmp_path / "m.nii.gz"),
            "--fixed", str(tmp_path / "f.nii.gz"), "--seed", "3", "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "r1")]) == 0
    assert main(args + ["--out", str(tmp_path / "r2")]) == 0
    out = tmp_path / "r1"
    names = {p.name for p in out.iterdir()}
    assert {f"disp_step{k}.nii.gz" for k in range(4)} | {"disp.nii.gz", "warped.nii.gz", "warped_halfway.nii.gz"} <= names
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["trajectory_steps"] == 4 and run_json["images"] == ["warped_halfway"]
    np.testing.assert_array_equal(read_field(out / "disp.nii.gz")[0], read_field(tmp_path / "r2" / "disp.nii.gz")[0])
    np.testing.assert_allclose(read_field(out / "disp.nii.gz")[0], a.displacement[0].numpy(), atol=1e-6)


# --- (e) a first-stage run as a dependency (DiffuseReg's φ₀) --------------------------------------
@dataclass
class RefineConfig(TrainerConfig):
    # the trained run to refine: its model folder (from --dep), then its description once saved
    first_stage: str | dict | None = None


class RefineObjective(Objective):
    def __call__(self, nets, batch):
        moving, fixed = batch
        return {"loss": F.mse_loss(spatial.warp(moving, RefineMethod.field(nets, moving, fixed)), fixed)}


class RefineMethod(Method):
    """u = u0 ∘ (a small correction), u0 from a frozen first-stage method."""
    name = "_test_refine"
    Config = RefineConfig

    def __init__(self, ndim, config, device):
        super().__init__(ndim, config, device)
        attach_trained(self, "first_stage")        # nets["first_stage"]: the first run's networks
        self.nets["net"] = _flow(2)

    @staticmethod
    def field(nets, moving, fixed):
        u0 = predict_pair(nets["first_stage"]["net"], moving, fixed, 16)
        return spatial.compose(u0, predict_pair(nets["net"], spatial.warp(moving, u0), fixed, 1))

    def objective(self, data):
        return RefineObjective()

    @torch.no_grad()
    def register(self, moving, fixed, generator=None):
        return RegistrationResult(self.field(self.nets, moving, fixed))


def _write_subjects(folder, n):
    for i, img in enumerate(_images(n)):
        write_image(folder / f"s{i}_be.nii.gz", img)


def test_e_first_stage_dependency_is_saved_inside(tmp_path, registered, capsys):
    registered(RefineMethod)
    _write_subjects(tmp_path, 4)
    common = ["--data-dir", str(tmp_path), "--subjects", "s0,s1,s2,s3", "--device", "cpu"]
    first_cfg = tmp_path / "first.json"
    first_cfg.write_text(json.dumps({"backbone_kwargs": {"variant": "vm1"}, "similarity": "mse", "iterations": 2}))
    assert main(["train", "--method", "voxelmorph", "--config", str(first_cfg), *common, "--out", str(tmp_path / "phi0")]) == 0
    phi0 = _copy(load_method(tmp_path / "phi0", CPU).nets)

    cfg = tmp_path / "refine.json"
    cfg.write_text(json.dumps({"first_stage": {"stage": "phi0-1234abcd"}, "iterations": 2, "lr": 1e-2}))
    train = ["train", "--method", "_test_refine", "--config", str(cfg), *common, "--out", str(tmp_path / "refine")]
    assert main(train) == 2 and "--dep" in capsys.readouterr().err       # the config declares a file
    assert main(train + ["--dep", f"first_stage={tmp_path / 'phi0'}"]) == 0
    out = capsys.readouterr().out
    assert "parameters (first_stage " in out and " frozen; net " in out     # several networks counted

    saved = json.loads((tmp_path / "refine" / "config.json").read_text())["config"]["first_stage"]
    assert saved["method"] == "voxelmorph" and saved["config"]["iterations"] == 2
    for path in (tmp_path / "phi0").iterdir():   # registration needs no file of the first stage
        path.unlink()
    again = load_method(tmp_path / "refine", CPU)
    assert all(torch.equal(v, again.nets["first_stage"].state_dict()[k]) for k, v in phi0.items())
    assert main(["register", "--model", str(tmp_path / "refine"), "--moving", str(tmp_path / "s0_be.nii.gz"),
                 "--fixed", str(tmp_path / "s1_be.nii.gz"), "--device", "cpu", "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "disp.nii.gz").exists()


# ---- divergence: stop before backward / before the step, naming the iteration and the terms ----

def test_non_finite_loss_stops_before_backward():
    from diffreg.training.trainer import DIVERGED_EXIT, TrainingDiverged, check_finite_terms

    terms = {"loss": torch.tensor(float("nan")), "similarity": torch.tensor(0.5), "regulariser": torch.tensor(float("inf"))}
    with pytest.raises(TrainingDiverged) as err:
        check_finite_terms("vm", 7, terms)
    assert str(err.value) == ("training vm diverged at iteration 7: non-finite loss, regulariser "
                              "(loss nan, similarity 0.5, regulariser inf); lower --lr or check --lambda-reg; "
                              "no model written")
    assert err.value.exit_code == DIVERGED_EXIT == 65
    assert DIVERGED_EXIT not in list(range(130, 146)) + [104, 175]  # conf/base.config retries those


def test_non_finite_gradient_stops_before_step():
    from diffreg.training.trainer import TrainingDiverged

    class SqrtAtZero(Objective):
        def sample(self, data, rng, batch_size):
            return torch.zeros(())

        def __call__(self, nets, batch):
            loss = torch.sqrt((nets["net"].w - 1.0) ** 2)  # finite (0), gradient NaN at w = 1
            return {"loss": loss}

    net = nn.Module()
    net.w = nn.Parameter(torch.ones(()))
    nets = nn.ModuleDict({"net": net})
    cfg = TrainerConfig(iterations=3, lr=0.1)
    with pytest.raises(TrainingDiverged, match=r"diverged at iteration 1: non-finite gradient \(loss terms loss 0\)"):
        Trainer(cfg, torch.device("cpu"), "t").fit(nets, SqrtAtZero(), None)
    assert float(net.w.detach()) == 1.0  # no step taken


def test_atlas_training_pairs_every_other_subject_with_the_atlas():
    import numpy as np
    from diffreg.errors import InputError
    from diffreg.training.training_set import TrainingSet
    imgs = [np.full((4, 4), float(k), np.float32) for k in range(4)]
    data = TrainingSet(["s2", "s0", "s3", "s1"], imgs, imgs)
    data.use_atlas("first")                      # the first by id: s0, at index 1
    assert data.atlas == 1
    mov, fix = data.sample(np.random.default_rng(0), 64)
    assert (fix == 1).all()
    assert set(mov[:, 0, 0, 0].tolist()) == {0.0, 2.0, 3.0}   # every other subject, never the atlas
    with pytest.raises(InputError, match="--atlas-subject s9: not among the training subjects"):
        data.use_atlas("s9")


def test_training_set_pairs_two_single_modality_pools(tmp_path, capsys):
    """Knee rows hold one image each: 3 subjects with DXA only, 2 with X-ray only. Each pseudo-pair
    takes a DXA of the first pool and an X-ray of the second (the shorter cycled), and a step's
    moving images are DXAs, its fixed images X-rays."""
    import numpy as np
    from diffreg.io import write_image
    from diffreg.training.training_set import TrainingSet
    for k, (sid, mod) in enumerate([("a1", "dxa"), ("a2", "dxa"), ("a3", "dxa"), ("b1", "xray"), ("b2", "xray")]):
        write_image(tmp_path / f"{sid}_{mod}.nii.gz", np.full((8, 8), float(k) + (0 if mod == "dxa" else 10),
                                                              np.float32), np.eye(4))
    data = TrainingSet.from_dir(tmp_path, ["a1", "a2", "a3", "b1", "b2"], "dxa", "xray")
    assert data.subjects == ["a1+b1", "a2+b2", "a3+b1"]
    assert [float(m[0, 0]) for m in data.moving] == [0, 1, 2] and [float(f[0, 0]) for f in data.fixed] == [13, 14, 13]
    mov, fix = data.sample(np.random.default_rng(0), 8)
    assert (mov < 10).all() and (fix >= 10).all()
    assert "paired in turn" in capsys.readouterr().err
