"""Pretraining loops stop on a non-finite loss (before `backward`) or gradient (before the step)
with the trainer's one line and exit code 65, and write no checkpoint, run.json or cache entry.
The real `diffreg pretrain` loop runs; only the network's output is made non-finite."""
from __future__ import annotations

import json

import numpy as np
import pytest

from diffreg.cli import main
from diffreg.nets.adm import ADMUNet

TINY = {"iterations": 3, "width": 8, "size": 32, "batch": 1, "images": ["astronaut"]}


def _poison(monkeypatch, how: str, from_call: int = 2):
    """ADMUNet.forward gives NaN from its `from_call`-th training call on ("loss"), or a finite output
    whose gradient is NaN ("grad": 0 * sqrt(0) has derivative 0 * inf)."""
    forward, calls = ADMUNet.forward, {"n": 0}

    def poisoned(self, x, t, *args, **kwargs):
        out = forward(self, x, t, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] < from_call:
            return out
        return out * float("nan") if how == "loss" else out + 0 * (out.sum() * 0).sqrt()

    monkeypatch.setattr(ADMUNet, "forward", poisoned)


@pytest.mark.parametrize("how,message", [
    ("loss", "training adm_natural_images diverged at iteration 2: non-finite loss (loss nan); "
             "lower the stage's lr; no checkpoint written"),
    ("grad", "training adm_natural_images diverged at iteration 2: non-finite gradient (loss terms loss "),
])
def test_pretrain_stops_on_non_finite_exit_65(how, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))
    _poison(monkeypatch, how)
    (tmp_path / "stage.json").write_text(json.dumps(TINY))
    out = tmp_path / "out" / "adm.pt"
    rc = main(["pretrain", "--stage", "adm-0001", "--kind", "adm_natural_images", "--config", str(tmp_path / "stage.json"),
               "--device", "cpu", "--threads", "1", "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 65
    assert len(err) == 1 and err[0].startswith("diffreg: error: " + message), err
    assert err[0].endswith("; lower the stage's lr; no checkpoint written")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))


def test_autoencoder_pretraining_stops_on_nan_images():
    """DGIR's feature autoencoder (trained inside `diffreg train`) uses the same check."""
    from diffreg.features.autoencoder import train_autoencoder
    from diffreg.training.trainer import TrainingDiverged

    images = [np.full((16, 16), np.nan, np.float32)] * 2
    with pytest.raises(TrainingDiverged) as exc:
        train_autoencoder(images, iterations=3, batch=2, channels=(4,), log=None)
    assert str(exc.value) == ("training autoencoder diverged at iteration 1: non-finite loss (loss nan); "
                              "check the training images; no model written")
    assert exc.value.exit_code == 65
