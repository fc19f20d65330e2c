"""DiffuseMorph's official-code settings (methods.diffusemorph_official): Adam betas, the
official initialisation, the official flips, and the loader of an official *_gen_G.pth (on a
checkpoint the official GaussianDiffusion saved: benchmarks/diffusemorph.py
--write-checkpoint-fixture tests/fixtures/diffusemorph)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.errors import InputError
from diffreg.methods.diffusemorph import DiffuseMorph
from diffreg.methods.diffusemorph_official import CONV, SCHEDULE_BUFFERS, official_flips
from diffreg.training.trainer import Trainer
from diffreg.training.training_set import TrainingSet

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "diffusemorph"
sys.path.insert(0, str(ROOT / "benchmarks"))
from diffusemorph import seeded  # noqa: E402  (the benchmark's input generator)

CPU = torch.device("cpu")
TINY2 = {"network": "small", "unet_kwargs": {"channel_mults": [1, 2]},
         "field_kwargs": {"encoder_nc": [4, 4, 4, 4, 4], "decoder_nc": [4, 4, 4, 4, 4, 2]}}
TINY3 = {"network": "small", "unet_kwargs": {"channel_mults": [1, 2]},
         "field_kwargs": {"encoder_nc": [4, 4, 4, 4, 4], "decoder_nc": [4, 4, 4, 4, 4, 3]}}


def test_official_betas_reach_the_optimiser():
    a = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    data = TrainingSet(["s0", "s1"], [a, a[::-1].copy()], [a[::-1].copy(), a])
    for betas, want in (("official", (0.5, 0.999)), ("adam", (0.9, 0.999))):
        method = DiffuseMorph(2, {**TINY2, "iterations": 1, "betas": betas}, CPU)
        trainer = Trainer(method.cfg, CPU, "diffusemorph")
        trainer.fit(method.nets, method.objective(data), data)
        assert tuple(trainer.optimizer.param_groups[0]["betas"]) == want


def _weights(net):
    return [m for m in net.modules() if isinstance(m, CONV)]


def test_official_init_orthogonal_unet_and_normal_field():
    torch.manual_seed(0)
    method = DiffuseMorph(3, {"network": "small", "init_weights": "official"}, CPU)
    for m in _weights(method.nets["unet"]):
        w = m.weight.detach().reshape(m.weight.shape[0], -1).double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w     # orthonormal rows or columns
        assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=gram.dtype), atol=1e-5)
        assert m.bias is None or not m.bias.any()
    field = _weights(method.nets["field"])
    w = torch.cat([m.weight.detach().reshape(-1) for m in field])
    assert abs(w.mean().item()) < 3 * 0.02 / w.numel() ** 0.5
    assert abs(w.std().item() - 0.02) < 0.02 * 5 / w.numel() ** 0.5 * 3   # SD of the SD: sigma / sqrt(2n)
    assert all(not m.bias.any() for m in field)
    norms = [m for m in method.nets["unet"].modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all((m.weight == 1).all() and not m.bias.any() for m in norms)   # untouched
    # PyTorch's default is neither (so the checks above can fail)
    plain = DiffuseMorph(3, {"network": "small"}, CPU)
    w0 = _weights(plain.nets["unet"])[1].weight.detach()
    w0 = w0.reshape(w0.shape[0], -1)
    assert not torch.allclose(w0 @ w0.T, torch.eye(w0.shape[0]), atol=1e-2)
    assert all(m.bias.any() for m in _weights(plain.nets["field"]))


def _dihedral(x):
    """The 8 symmetries of the first two spatial axes of (B, 1, X, Y, Z) (X = Y)."""
    out = []
    for swap in (False, True):
        y = x.transpose(2, 3) if swap else x
        for dims in ((), (2,), (3,), (2, 3)):
            out.append(y.flip(dims) if dims else y)
    return out


def test_official_flips_are_the_squares_symmetries_drawn_from_the_seed():
    x = torch.arange(4 * 4 * 3, dtype=torch.float32).reshape(1, 1, 4, 4, 3)
    variants = _dihedral(x)
    seen = []
    rng = np.random.default_rng(7)
    for _ in range(64):
        m, f = official_flips(x, x + 1000, rng, 3)
        assert torch.equal(f, m + 1000)                        # moving and fixed get the same one
        (k,) = [i for i, v in enumerate(variants) if torch.equal(m, v)]
        seen.append(k)
    assert set(seen) == set(range(8))
    # the same seed gives the same draws
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    batch = x.repeat(5, 1, 1, 1, 1)
    assert all(torch.equal(a, b) for a, b in zip(official_flips(batch, batch, rng_a, 3),
                                                 official_flips(batch, batch, rng_b, 3)))
    # 2D: identity or the left-right flip (spatial axis 0) only
    x2 = torch.arange(12, dtype=torch.float32).reshape(1, 1, 4, 3)
    outs = {tuple(official_flips(x2, x2, rng, 2)[0].flatten().tolist()) for _ in range(32)}
    assert outs == {tuple(x2.flatten().tolist()), tuple(x2.flip(2).flatten().tolist())}
    # unequal in-plane sides: flips only, the shape kept
    xr = torch.zeros(2, 1, 4, 6, 3)
    assert all(official_flips(xr, xr, rng, 3)[0].shape == xr.shape for _ in range(16))


def test_objective_draws_the_flips_from_the_trainers_generator():
    rng = np.random.default_rng(0)
    arrays = [rng.random((8, 8, 4)).astype(np.float32) for _ in range(3)]
    data = TrainingSet(["a", "b", "c"], arrays, arrays[::-1])
    method = DiffuseMorph(3, {**TINY3, "augment": "official"}, CPU)
    obj = method.objective(data)
    first = [obj.sample(data, np.random.default_rng(5), 2) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*first))
    batches = [obj.sample(data, np.random.default_rng(s), 1)[0] for s in range(16)]
    raw = {tuple(a.flatten()) for a in arrays}
    assert any(tuple(b.flatten().tolist()) not in raw for b in batches)     # some flipped


@pytest.fixture(scope="module")
def official_checkpoint():
    return (torch.load(FIX / "I2_E1_gen_G.pth", weights_only=True),
            torch.load(FIX / "I2_E1_outputs.pt", weights_only=True))


def _method(out):
    return DiffuseMorph(3, {"network": "small", "unet_kwargs": out["unet"], "field_kwargs": out["field"]}, CPU)


def test_official_checkpoint_loads_strictly_and_gives_the_official_outputs(official_checkpoint):
    state, out = official_checkpoint
    assert sum(not k.startswith(("denoise_fn.", "field_fn.")) for k in state) == 12
    method = _method(out)
    schedule = method.load_official(FIX / "I2_E1_gen_G.pth")
    assert set(schedule) == set(SCHEDULE_BUFFERS)
    method.nets.eval()
    shape = tuple(out["eps"].shape[2:])
    m, f, xt = (seeded((1, 1, *shape), s) for s in out["seeds"])
    with torch.no_grad():
        eps = method.nets["unet"](torch.cat([m, f, xt], 1), torch.tensor([out["t"]]))
        warped, flow = method.nets["field"](torch.cat([m, out["eps"]], 1))
    assert (eps - out["eps"]).abs().max().item() <= 1e-5
    assert (flow - out["flow"]).abs().max().item() <= 1e-5
    assert (warped - out["warped"]).abs().max().item() <= 1e-5


def test_official_checkpoint_errors(official_checkpoint):
    state, out = official_checkpoint
    with pytest.raises(InputError, match="unknown keys optG"):
        _method(out).load_official({**state, "optG.step": torch.zeros(1)})
    with pytest.raises(InputError, match="betas"):
        _method(out).load_official({**state, "betas": state["betas"] * 2})
    with pytest.raises(InputError, match="does not fit"):
        DiffuseMorph(3, TINY3, CPU).load_official(state)
    with pytest.raises(InputError, match="no denoise_fn"):
        _method(out).load_official({k: v for k, v in state.items() if not k.startswith("field_fn.")})
