"""The method interface, the method registry, and building, checking and loading methods."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..io import atomic_path
from ..registry import Registry
from ..training.checkpoint import Checkpoint
from ..training.config import MethodConfig
from ..training.objective import Objective
from ..training.trainer import Trainer
from ..training.training_set import TrainingSet
from .pairs import pad_to_multiple  # noqa: F401  (re-exported)
from .result import RegistrationResult

METHODS: Registry["Method"] = Registry("method")


class Method(ABC):
    """A registration method = networks (`self.nets`, by name) x an objective x the Trainer.

    Subclasses set `name` and `Config` (a MethodConfig dataclass), build their networks in
    `__init__`, return their training loss in `objective(data)` and implement `register`.
    `fit` runs the one Trainer; optimisation-only methods override `fit` instead.
    """

    name: str = "method"
    Config: type[MethodConfig] = MethodConfig

    def __init__(self, ndim: int, config: dict | MethodConfig, device: torch.device):
        self.ndim = ndim
        self.device = device
        self.cfg = config if isinstance(config, self.Config) else self.Config.from_dict(dict(config), ndim, self.name)
        # every network registration or training needs; state_dict saves them all
        self.nets = nn.ModuleDict()

    @classmethod
    def settings(cls, ndim: int) -> set[str]:
        """The config keys this method accepts (the planner checks every row against them)."""
        return cls.Config.settings(ndim)

    @property
    def config(self) -> dict:
        """The resolved settings as a plain dict (config.json, run.json)."""
        return self.cfg.to_dict()

    def objective(self, data: TrainingSet) -> Objective:
        raise NotImplementedError(f"{self.name} has no training objective")

    # set by `diffreg train --checkpoint-dir`: where the Trainer saves and resumes (training.checkpoint)
    checkpoint: Checkpoint | None = None

    def fit(self, data: TrainingSet, log_path: Path | None = None) -> dict:
        return Trainer(self.cfg, self.device, self.name).fit(self.nets, self.objective(data), data, log_path,
                                                             self.checkpoint)

    @abstractmethod
    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        """Register one pair (1, 1, *S); `generator` seeds methods that sample."""

    def state_dict(self) -> dict:
        return self.nets.state_dict()

    def load_state_dict(self, state: dict) -> None:
        names = list(self.nets)
        if len(names) == 1 and not any(k.startswith(f"{names[0]}.") for k in state):
            # saved before methods named their networks: the bare state of the one network
            state = {f"{names[0]}.{k}": v for k, v in state.items()}
        self.nets.load_state_dict(state)

    def parameter_counts(self) -> dict[str, tuple[int, int]]:
        """{network: (parameters, trainable parameters)}."""
        return {name: (sum(p.numel() for p in net.parameters()),
                       sum(p.numel() for p in net.parameters() if p.requires_grad))
                for name, net in self.nets.items()}

    def describe(self) -> dict:
        """What config.json holds: enough to rebuild the method (weights come from model.pt)."""
        return {"method": self.name, "ndim": self.ndim, "config": self.config}

    def save(self, outdir: str | Path) -> None:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        with atomic_path(outdir / "model.pt") as tmp:
            torch.save(self.state_dict(), tmp)
        (outdir / "config.json").write_text(json.dumps(self.describe(), indent=2) + "\n")


def build_method(name: str, ndim: int, config: dict, device: torch.device) -> Method:
    return METHODS.build(name, ndim=ndim, config=config, device=device)


def build_saved(description: dict, device: torch.device) -> Method:
    """The method a saved description (config.json: method, ndim, config) rebuilds; settings saved
    under a former name are read under their present one (MethodConfig.RENAMED)."""
    name = description["method"]
    if name not in METHODS:
        raise InputError(f"unknown method '{name}' (known: {', '.join(METHODS.names())})")
    config = METHODS.get(name).Config.upgrade(dict(description["config"]))
    return build_method(name, description["ndim"], config, device)


def load_method(model_dir: str | Path, device: torch.device, inference: dict | None = None) -> Method:
    """The trained model of `model_dir`; `inference` sets registration-only settings of its method
    (`MethodConfig.INFERENCE`: a sampler, its steps), any other key is refused."""
    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.json"
    if not cfg_path.exists():
        raise InputError(f"{model_dir}: not a trained model folder (config.json missing)")
    cfg = json.loads(cfg_path.read_text())
    config = dict(cfg["config"])
    if inference:
        allowed = METHODS.get(cfg["method"]).Config.INFERENCE
        wrong = sorted(set(inference) - set(allowed))
        if wrong:
            raise InputError(f"{cfg['method']}: {', '.join(wrong)} not settable at registration (only "
                             f"{', '.join(allowed) or 'none'}: the others change what is trained)")
        config.update(inference)
    method = build_saved({**cfg, "config": config}, device)
    method.load_state_dict(torch.load(model_dir / "model.pt", map_location=device, weights_only=True))
    return method
