"""experiments/baselines.yaml: every learning baseline as a loss preset, its settings those the
method takes, its values the method's own defaults (one set of numbers, two places: held equal)."""
import pytest
import torch

from diffreg.experiments import BASELINES_YAML, load_experiment, shared_losses
from diffreg.methods import METHODS, build_method, check_config
from diffreg.nets.backbones import BACKBONES

PRESETS = shared_losses()
META = {"method", "status", "note"}


def test_every_registered_method_and_backbone_has_a_preset():
    methods = {p["method"] for p in PRESETS.values() if not p.get("status")}
    backbones = {p["backbone"] for p in PRESETS.values() if p.get("backbone")}
    # DGIR, DiffuseMorph, DiffuseReg, LDM-Morph and M2M-Reg are papers here, uniGradICON is pretrained
    # (no training preset)
    assert METHODS.names() == sorted(methods | {"dgir", "diffusemorph", "diffusereg", "ldm_morph", "m2m_reg",
                                                "unigradicon"})
    assert set(BACKBONES.names()) - backbones == {"dgir_official", "icon"}   # GradICON's / DGIR's own nets


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if not p.get("status")])
def test_preset_is_the_methods_own_default(name):
    """The preset's resolved settings equal the method's defaults but for the network it picks, and
    the method builds from it (2D)."""
    preset = PRESETS[name]
    method = preset["method"]
    settings = {k: v for k, v in preset.items() if k not in META}
    cls = METHODS.get(method).Config
    for ndim in (2, 3):
        check_config(method, ndim, settings)   # every setting known, every value in range
        ours = cls.from_dict(settings, ndim, method).to_dict()
        default = cls.from_dict({k: settings[k] for k in ("backbone", "backbone_kwargs") if k in settings},
                                ndim, method).to_dict()
        assert ours == default, {k: (ours[k], default[k]) for k in ours if ours[k] != default[k]}
    built = build_method(method, 2, {**settings, "iterations": 1}, torch.device("cpu"))
    assert sum(n for n, _ in built.parameter_counts().values()) > 0


def test_a_paper_row_finds_the_shared_preset_and_its_own_wins(tmp_path):
    import yaml
    src = BASELINES_YAML.parent / "diffusemorph.yaml"
    exp = load_experiment(src)
    assert exp.losses["symnet"] == PRESETS["symnet"] and exp.losses["ms_dirnet"]["status"] == "not_implemented"
    doc = yaml.safe_load(src.read_text())
    doc["losses"] = {"symnet": {"method": "symnet", "lr": 5.0e-4}}
    own = tmp_path / "diffusemorph.yaml"
    own.write_text(yaml.safe_dump(doc))
    assert load_experiment(own).losses["symnet"] == {"method": "symnet", "lr": 5.0e-4}
