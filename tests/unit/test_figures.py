"""The figure registry and `diffreg figure`: each registered function writes its files on two small
synthetic images with a tiny ADM checkpoint; unknown names and settings fail with one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from diffreg.cli import main
from diffreg.errors import InputError
from diffreg.io import write_image
from diffreg.nets.adm import ADMUNet, small_config
from diffreg.report.figures import FIGURES, check_config, get_figure

FILES = {"dgir.similarity_heatmaps": ["fig1_heatmaps.csv", "fig1_heatmaps.png"],
         "dgir.correspondences": ["fig2_correspondences.csv", "fig2_correspondences.png"]}
SHIFT = (2, -3)   # fixed = moving rolled by this many pixels along (rows, cols)


@pytest.fixture(scope="module")
def adm_file(tmp_path_factory):
    torch.manual_seed(0)
    adm = ADMUNet(small_config(8, num_groups=8))
    path = tmp_path_factory.mktemp("adm") / "adm.pt"
    torch.save({"config": adm.config.to_dict(), "state_dict": adm.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A smooth textured 40 x 40 image and a copy rolled by SHIFT (so the true match is known)."""
    root = tmp_path_factory.mktemp("pair")
    g = torch.Generator().manual_seed(9)
    x = F.conv2d(torch.rand(1, 1, 40, 40, generator=g), torch.ones(1, 1, 5, 5) / 25, padding=2).clamp(0, 1)
    a = x[0, 0].numpy()
    write_image(root / "m.nii.gz", a)
    write_image(root / "f.nii.gz", np.roll(a, SHIFT, axis=(0, 1)))
    return root / "m.nii.gz", root / "f.nii.gz"


def test_registry_names_and_unknown_name():
    assert set(FILES) <= set(FIGURES.names())
    with pytest.raises(InputError, match=r"unknown figure function 'dgir.fig9' \(known: dgir.correspondences"):
        get_figure("dgir.fig9")
    with pytest.raises(InputError, match="figs.fig1: unknown setting.*colour.*for figure function dgir.correspondences"):
        check_config("dgir.correspondences", {"colour": "red"}, where="figs.fig1")
    assert check_config("dgir.correspondences", {"t": 10})["t"] == 10


def test_importing_the_registry_does_not_import_torch():
    code = "import sys, diffreg.report.figures as f; assert f.FIGURES.names(); print('torch' in sys.modules)"
    src = Path(__file__).resolve().parents[2] / "src"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(src)})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_figure_function_writes_its_files(name, adm_file, pair, tmp_path):
    config = {"feature_checkpoint": str(adm_file), "keypoints": 4, "point": "20,20", "aligned": True}
    files = get_figure(name)(*pair, config, tmp_path, 0, "cpu")
    assert sorted(p.name for p in files) == FILES[name]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in files)
    table = pd.read_csv(next(p for p in files if p.suffix == ".csv"))
    assert (table.error_px >= 0).all()


def test_heatmaps_find_the_known_shift(adm_file, pair, tmp_path):
    files = get_figure("dgir.similarity_heatmaps")(*pair, {"feature_checkpoint": str(adm_file), "point": [20, 20],
                                                            "aligned": True}, tmp_path, 0, "cpu")
    fig1 = pd.read_csv(files[0])
    assert {"MSE", "LNCC", "MIND", "NGF", "Diffusion (cosine)", "Diffusion + LNCC"} == set(fig1.measure)
    # image LNCC finds the roll of this textured image: (20, 20) -> (22, 17), |(2, -3)| px away
    lncc = fig1[fig1.measure == "LNCC"].iloc[0]
    assert (lncc.match_row, lncc.match_col) == (20 + SHIFT[0], 20 + SHIFT[1])
    assert lncc.error_px == pytest.approx(np.hypot(*SHIFT))


def test_figure_command_with_a_dependency(adm_file, pair, tmp_path):
    config = tmp_path / "fig.json"
    config.write_text(json.dumps({"feature_checkpoint": {"stage": "adm-1234"}, "keypoints": 3}))
    out = tmp_path / "out"
    assert main(["figure", "--function", "dgir.correspondences", "--config", str(config),
                 "--moving", str(pair[0]), "--fixed", str(pair[1]), "--dep", f"feature_checkpoint={adm_file}",
                 "--device", "cpu", "--outdir", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["function"] == "dgir.correspondences" and run["files"] == FILES["dgir.correspondences"]
    assert run["config"]["feature_checkpoint"] == str(adm_file)
    rows = pd.read_csv(out / "fig2_correspondences.csv")
    assert len(rows) == 3 * 2 and rows.error_px.isna().all()   # not aligned: no errors


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("diffreg: error: ")
    return err


def test_figure_command_errors_are_one_line(adm_file, pair, tmp_path, capsys):
    config = tmp_path / "fig.json"
    base = ["figure", "--config", str(config), "--moving", str(pair[0]), "--fixed", str(pair[1]),
            "--outdir", str(tmp_path / "out")]
    config.write_text(json.dumps({"feature_checkpoint": str(adm_file), "blok": 29}))
    assert "unknown setting(s) blok" in _error(capsys, base + ["--function", "dgir.similarity_heatmaps"])
    assert "unknown figure function 'nope'" in _error(capsys, base + ["--function", "nope"])
    config.write_text(json.dumps({"feature_checkpoint": {"stage": "adm"}}))
    assert "feature_checkpoint" in _error(capsys, base + ["--function", "dgir.similarity_heatmaps"])
    config.write_text(json.dumps({"feature_checkpoint": str(adm_file), "block": 99}))
    assert "block 99" in _error(capsys, base + ["--function", "dgir.similarity_heatmaps"])
    config.write_text("[1]")
    assert "JSON object" in _error(capsys, base + ["--function", "dgir.similarity_heatmaps"])
    assert not (tmp_path / "out" / "run.json").exists()
