"""The stage registry and `diffreg pretrain`: adm_natural_images trains a tiny ADM once per
configuration and serves it from the cache afterwards; bad kinds and settings fail with one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.stages import STAGES, check_config, get_stage

TINY = {"iterations": 2, "width": 8, "size": 32, "batch": 2, "images": ["astronaut", "chelsea"]}


def test_registry_names_unknown_kind_and_settings():
    assert "adm_natural_images" in STAGES.names()
    with pytest.raises(InputError, match=r"unknown stage kind 'vae' \(known: adm_natural_images"):
        get_stage("vae")
    with pytest.raises(InputError, match="stages.adm: unknown setting.*depth.*for stage kind adm_natural_images"):
        check_config("adm_natural_images", {"depth": 3}, where="stages.adm")
    assert check_config("adm_natural_images", {"width": 16})["width"] == 16


@pytest.mark.parametrize("bad, message", [({"size": 40}, "size 40"), ({"width": 12}, "width 12"),
                                          ({"iterations": 0}, "iterations 0"), ({"images": []}, "images")])
def test_adm_settings_are_checked_before_training(bad, message, tmp_path):
    with pytest.raises(InputError, match=message):
        get_stage("adm_natural_images")({**TINY, **bad}, tmp_path / "x.pt", None, 0, "cpu", 1)
    assert not (tmp_path / "x.pt").exists()


def _pretrain(tmp_path, out, config=TINY, *extra):
    cfg = tmp_path / "stage.json"
    cfg.write_text(json.dumps(config))
    return main(["pretrain", "--stage", "adm-0001", "--kind", "adm_natural_images", "--config", str(cfg),
                 "--device", "cpu", "--threads", "1", "--out", str(out), *extra])


def test_pretrain_trains_once_per_config(tmp_path, monkeypatch, capsys):
    from diffreg.nets.adm import load_adm
    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))
    assert _pretrain(tmp_path, tmp_path / "a" / "adm.pt") == 0
    assert "iter 2/2 loss" in capsys.readouterr().out
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["cached"] is False and run["stage"] == "adm-0001" and run["kind"] == "adm_natural_images"
    assert np.isfinite(run["loss_last_10pct"]) and run["config"]["width"] == 8
    model = load_adm(tmp_path / "a" / "adm.pt")
    assert model.config.model_channels == 8 and model.num_blocks == 37
    assert [p.parent.name for p in (tmp_path / "cache").rglob("*.pt")] == ["adm"]

    assert _pretrain(tmp_path, tmp_path / "b" / "adm.pt") == 0          # same config and seed: the cache
    assert "cached" in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / "run.json").read_text())["cached"] is True
    assert (tmp_path / "a" / "adm.pt").read_bytes() == (tmp_path / "b" / "adm.pt").read_bytes()
    assert _pretrain(tmp_path, tmp_path / "c" / "adm.pt", TINY, "--seed", "1") == 0   # another seed: trains
    assert "iter 2/2 loss" in capsys.readouterr().out


def test_pretrain_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFREG_CACHE", str(tmp_path / "cache"))

    def error(*args) -> str:
        assert _pretrain(tmp_path, tmp_path / "x.pt", *args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("diffreg: error: ")
        return err

    assert "unknown setting(s) lr_decay" in error({**TINY, "lr_decay": 0.5})
    assert "size 40" in error({**TINY, "size": 40})
    assert "nope: not a known natural image" in error({**TINY, "images": ["nope"]})
    assert "--subjects needs --data-dir" in error(TINY, "--subjects", "a,b")
    assert not (tmp_path / "x.pt").exists()
