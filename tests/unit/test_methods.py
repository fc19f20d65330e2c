"""The learned-method interface: training lowers the loss and improves overlap, save/load round trip,
padding to the U-Net multiple, and the CUDA request without a GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffreg import spatial
from diffreg.device import resolve_device
from diffreg.errors import InputError
from diffreg.methods import TrainingSet, build_method, load_method
from diffreg.methods.base import pad_to_multiple
from diffreg.metrics import dice_per_label


def _blobs(n: int, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Discs of random centre and radius: pairs differ by a smooth deformation-like change."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(12, 20, 2)
        r = rng.uniform(6, 9)
        out.append(((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32))
    return out


def test_pad_to_multiple_round_trip():
    x = torch.rand(1, 2, 19, 33)
    padded, crop = pad_to_multiple(x, 16)
    assert padded.shape[2:] == (32, 48)
    assert torch.equal(padded[tuple(crop)], x)


def test_training_improves_dice_and_round_trips(tmp_path):
    torch.manual_seed(0)
    imgs = _blobs(6)
    data = TrainingSet([f"s{i}" for i in range(6)], imgs, imgs)
    cfg = {"iterations": 120, "lr": 3e-3, "batch_size": 4, "log_every": 1000,
           "backbone_kwargs": {"variant": "vm1"}, "similarity": "mse", "similarity_kwargs": {}}
    method = build_method("voxelmorph", 2, cfg, torch.device("cpu"))
    stats = method.fit(data, log_path=tmp_path / "log.csv")
    assert stats["loss_last_10pct"] < 0.7 * stats["loss_first_10pct"]

    m = torch.from_numpy(imgs[0])[None, None]
    f = torch.from_numpy(imgs[1])[None, None]
    disp = method.register(m, f).displacement
    assert disp.shape == (1, 2, 32, 32)
    warped = spatial.warp(m, disp, mode="nearest")[0, 0].numpy()
    before = dice_per_label(imgs[0].astype(int), imgs[1].astype(int), [1])[1]
    after = dice_per_label(warped.astype(int), imgs[1].astype(int), [1])[1]
    assert after > before + 0.05

    method.save(tmp_path / "model")
    again = load_method(tmp_path / "model", torch.device("cpu"))
    assert torch.allclose(again.register(m, f).displacement, disp)


def test_cuda_without_gpu_is_one_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_unknown_method_lists_known():
    with pytest.raises(KeyError, match="voxelmorph"):
        build_method("nope", 2, {}, torch.device("cpu"))


def test_model_folders_of_one_unnamed_network_still_load(tmp_path):
    """model.pt written before methods named their networks: the bare state of the network."""
    cfg = {"backbone_kwargs": {"variant": "vm1"}, "similarity": "mse"}
    method = build_method("voxelmorph", 2, cfg, torch.device("cpu"))
    method.save(tmp_path)
    torch.save(method.nets["net"].state_dict(), tmp_path / "model.pt")
    again = load_method(tmp_path, torch.device("cpu"))
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in method.state_dict().items())


@pytest.mark.parametrize("key,value,what", [
    ("iterations", 0, "an integer >= 1"), ("iterations", -5, "an integer >= 1"), ("batch_size", 0, "an integer >= 1"),
    ("lr", 0.0, "a number in (0, 1]"), ("lr", 1.5, "a number in (0, 1]"), ("lr", float("nan"), "a number in (0, 1]"),
    ("lambda_reg", float("nan"), "a finite number >= 0"), ("lambda_reg", -0.1, "a finite number >= 0"),
    ("lambda_reg", float("inf"), "a finite number >= 0"), ("seed", -1, "an integer in [0, 2^32)"),
    ("seed", 2**32, "an integer in [0, 2^32)"), ("log_every", 0, "an integer >= 1")])
def test_config_ranges(key, value, what):
    import re

    with pytest.raises(InputError, match=rf"setting {key} = .* for method voxelmorph: must be {re.escape(what)}"):
        build_method("voxelmorph", 2, {key: value}, torch.device("cpu"))


def test_config_range_edges_accepted():
    m = build_method("voxelmorph", 2, {"iterations": 1, "lr": 1.0, "lambda_reg": 0.0, "seed": 0}, torch.device("cpu"))
    assert m.cfg.lr == 1.0 and m.cfg.lambda_reg == 0.0


def test_voxelmorph_trajectories_scaled_and_squaring():
    """VM's trajectory is zeta * u; VM-diff's the scaling-and-squaring stages, whose last stage is
    the registration field and whose first is v / 2^steps (DiffuseMorph's comparison)."""
    import torch
    from diffreg.methods import build_method
    torch.manual_seed(0)
    mov, fix = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    vm = build_method("voxelmorph", 2, {"trajectory": "scaled", "etas": [0.0, 0.5, 1.0]}, torch.device("cpu"))
    with torch.no_grad():
        for p in vm.nets["net"].flow.parameters():
            p.normal_(0, 0.05)
    r = vm.register(mov, fix)
    assert len(r.trajectory) == 3 and r.trajectory[0].abs().max() == 0
    torch.testing.assert_close(r.trajectory[1], 0.5 * r.displacement)
    torch.testing.assert_close(r.trajectory[2], r.displacement)
    diff = build_method("voxelmorph", 2, {"backbone": "vm-diff", "backbone_kwargs": {"steps": 4, "int_downsize": 1},
                                          "trajectory": "squaring"}, torch.device("cpu"))
    with torch.no_grad():
        for p in diff.nets["net"].velocity_net.flow.parameters():
            p.normal_(0, 0.05)
    r = diff.register(mov, fix)
    assert len(r.trajectory) == 5
    torch.testing.assert_close(r.trajectory[-1], r.displacement, atol=1e-6, rtol=0)
    with torch.no_grad():
        v = diff.nets["net"].velocity(torch.cat([mov, fix], 1))
    torch.testing.assert_close(r.trajectory[0], v / 16)
