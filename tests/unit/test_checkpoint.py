"""A training stopped part-way resumes from its last checkpoint and ends with the same weights
as an uninterrupted one (CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffreg.methods import build_method
from diffreg.training.checkpoint import Checkpoint, fingerprint
from diffreg.training.training_set import TrainingSet


def _data(n=3, shape=(16, 16)):
    g = np.random.default_rng(0)
    imgs = [g.random(shape).astype(np.float32) for _ in range(n)]
    return TrainingSet([f"s{i}" for i in range(n)], imgs, imgs[::-1])


def _method(iterations=12):
    torch.manual_seed(0)                        # the same initial weights (diffreg train seeds first)
    return build_method("voxelmorph", 2, {"iterations": iterations, "batch_size": 2, "lr": 1e-3, "seed": 3,
                                          "log_every": 100}, torch.device("cpu"))


class Stop(Exception):
    pass


def test_resumed_training_equals_uninterrupted(tmp_path, capsys):
    data = _data()
    ref = _method()
    ref_summary = ref.fit(data, tmp_path / "ref.csv")

    ck = Checkpoint(tmp_path / "ck" / "run.ckpt", every=4, key=fingerprint(run="a"))
    first = _method()
    first.checkpoint = ck
    objective = first.objective

    def stopping(d):                      # a kill at iteration 7, after the checkpoint of iteration 4
        obj = objective(d)
        calls = {"n": 0}
        orig = obj.__call__

        class Wrapped(type(obj)):
            def __call__(self, nets, batch):
                calls["n"] += 1
                if calls["n"] == 7:
                    raise Stop()
                return orig(nets, batch)
        obj.__class__ = Wrapped
        return obj
    first.objective = stopping
    with pytest.raises(Stop):
        first.fit(data)
    assert ck.path.exists()

    second = _method()
    second.checkpoint = ck
    summary = second.fit(data, tmp_path / "resumed.csv")
    assert "resumed from iteration 4" in capsys.readouterr().out
    for k, v in ref.state_dict().items():
        assert torch.equal(v, second.state_dict()[k]), k
    assert summary["loss_last_10pct"] == ref_summary["loss_last_10pct"]
    ref_log = np.genfromtxt(tmp_path / "ref.csv", delimiter=",", names=True)
    res_log = np.genfromtxt(tmp_path / "resumed.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(ref_log["loss"], res_log["loss"])    # the log covers all 12 iterations


def test_checkpoint_of_another_training_is_ignored(tmp_path, capsys):
    data = _data()
    a = _method(8)
    a.checkpoint = Checkpoint(tmp_path / "run.ckpt", every=4, key="aaaa")
    a.fit(data)                                  # leaves the checkpoint of iteration 4
    b = _method(8)
    b.checkpoint = Checkpoint(tmp_path / "run.ckpt", every=4, key="bbbb")
    b.fit(data)
    out = capsys.readouterr().out
    assert "belongs to another training; starting from iteration 0" in out and "resumed" not in out
