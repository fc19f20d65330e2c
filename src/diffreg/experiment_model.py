"""The typed experiment model: a paper's tasks, artifacts, rows and claims as the planner, the
launch and the report read them, built once by `experiments.parse_experiment` after it has
validated the YAML.

Each class is the one list of its protocol keys: a YAML key is a field (its name, or the
``key`` in its metadata where the YAML word is a Python keyword) and its default is the field's
default, so a new key is one new field here (plus its check in experiments.py when it has
one). `yaml_keys` gives the validator the keys it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


def yaml_keys(cls, exclude: tuple[str, ...] = ()) -> set[str]:
    """The YAML keys of a model class: its fields' names (or metadata ``key``)."""
    return {f.metadata.get("key", f.name) for f in fields(cls) if f.name not in exclude}


def _build(cls, raw: dict, **extra):
    """An instance of `cls` from a validated mapping: each field its key's value, else its default."""
    keys = {f.name: f.metadata.get("key", f.name) for f in fields(cls)}
    given = {name: raw[key] for name, key in keys.items() if raw.get(key) is not None}
    return cls(**{**given, **extra})


@dataclass(frozen=True)
class Modalities:
    """The modalities of a registration: the moving image's and the fixed image's."""
    moving: str
    fixed: str

    @classmethod
    def of(cls, raw: dict | None) -> "Modalities | None":
        return cls(str(raw["moving"]), str(raw["fixed"])) if raw else None


@dataclass(frozen=True)
class Task:
    """Where an artifact runs: a dataset and dimensionality, the modalities trained and tested
    on, how pairs are drawn, and what the evaluation scores besides the registered images."""
    ndim: int                                  # 2 or 3
    dataset: str                               # the test pairs' dataset (also the training data's)
    train_dataset: str | None = None           # trained on another dataset than the test pairs'
    train: Modalities | None = None            # training modalities
    test: Modalities | None = None             # test modalities; default: train's
    tests: dict = field(default_factory=dict)  # several named test sets: name -> Modalities
    pairing: str = "inter"                     # training pairs: inter, intra or atlas (experiments.PAIRINGS)
    pairs: str | None = None                   # the test pairs: a pairing of experiments/pairs/<dataset>.yaml
    labels: list | None = None                 # label names, label value 1 first
    label_unions: dict = field(default_factory=dict)   # name -> label values scored as one structure
    scored_labels: list | None = None          # the labels a paper's mean Dice averages (None: all)
    trajectory: dict | None = None             # reference frames of the registration trajectory
    landmarks: bool = False                    # landmark files scored
    score_on: str | None = None                # a colour version of the images scored
    # free-form by nature: per profile, the task's own method settings (e.g. a dataset's epochs)
    profiles: dict = field(default_factory=dict)
    note: str | None = None

    @classmethod
    def from_dict(cls, raw: dict) -> "Task":
        return _build(cls, raw, ndim=int(raw["ndim"]), dataset=str(raw["dataset"]), train=Modalities.of(raw.get("train")),
                      test=Modalities.of(raw.get("test")),
                      tests={str(k): Modalities.of(v) for k, v in (raw.get("tests") or {}).items()})


@dataclass(frozen=True)
class Claim:
    """A sentence of the paper and the check that judges it on our runs (report/claims.py)."""
    text: str = ""
    # free-form by nature: one of report/claims.py's checks (experiments.CHECK_KEYS), stored as
    # given in claims.json so that `diffreg report` judges it again from the published folder
    check: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict) -> "Claim":
        return cls(str(raw.get("text", "")), dict(raw.get("check") or {}))


@dataclass(frozen=True)
class Row:
    """A table row (or one point of a sweep): a learned method's training or a classical tool's
    preset, or a row that runs nowhere (`status`)."""
    name: str = ""
    loss: str | None = None         # a loss preset: the experiment's `losses:` or experiments/baselines.yaml
    method: str | None = None       # else the preset's method, else the experiment's
    baseline: str | None = None     # a classical tool: registered with it, nothing trained
    preset: str | None = None       # the tool's preset (default: the tool's own)
    train: Modalities | None = None  # training modalities; default: the task's
    status: str | None = None       # not_implemented: listed with the paper's number only
    note: str | None = None
    # free-form by nature: the method's settings, passed through to its config (each checked by
    # methods.check_config in experiments.py); every key of a row that is not a field above
    settings: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict) -> "Row":
        meta = {k: v for k, v in raw.items() if k in ROW_META}
        return _build(cls, meta, train=Modalities.of(raw.get("train")), settings={k: v for k, v in raw.items() if k not in ROW_META})


ROW_META = yaml_keys(Row, exclude=("settings",))        # row keys that are not method settings
CLASSICAL_KEYS = {"name", "baseline", "preset", "status", "note"}   # the keys of a classical row


@dataclass(frozen=True)
class Sweep:
    """A figure that trains one row per value of a setting (`values` of the artifact)."""
    param: str
    # free-form by nature: the row the swept setting varies in (method settings, row keys)
    fixed: dict = field(default_factory=dict)

    def row(self, value) -> Row:
        return Row.from_dict({**self.fixed, self.param: value})


@dataclass(frozen=True)
class Artifact:
    """A table or figure of the paper: rows it trains (`runs`), a sweep, a computed figure
    (`function`) or a qualitative figure drawn `from` tables."""
    kind: str                                              # table or figure
    title: str | None = None
    tasks: dict = field(default_factory=dict)              # {real: TASK, toy: TASK}
    test: str | None = None                                # a named test set of the task (task.tests)
    # a table's rows (Row); a figure drawn `from` tables: the names of the rows it shows (str)
    runs: list = field(default_factory=list)
    profiles: dict = field(default_factory=dict)           # profile -> the row names it runs
    columns: list | None = None                            # the paper's metric columns
    rows: dict | None = None                               # the paper's numbers: row -> key -> value
    claim: Claim | None = None
    claims: list = field(default_factory=list)             # more claims (Claim), each judged alone
    metrics: list | None = None                            # the metrics scored (None: all)
    sweep: Sweep | None = None
    values: dict = field(default_factory=dict)             # profile -> the swept setting's values
    paper: str | None = None                               # what the paper shows (caption text)
    from_: list | None = field(default=None, metadata={"key": "from"})   # source tables; None: not drawn from any
    function: str | None = None                            # a computed figure (report/figures)
    # free-form by nature: the figure function's settings, passed through to its config
    settings: dict = field(default_factory=dict)
    measures: list | None = None                           # for the reader: what the paper's figure compares
    pair: str | None = None                                # for the reader: the pair the paper shows
    show: str = "registration"                             # the view of a figure drawn `from` tables
    plot: str | None = None                                # per_label: box plots per label and row
    note: str | None = None

    @classmethod
    def from_dict(cls, raw: dict) -> "Artifact":
        src = raw.get("from")
        sources = None if src is None else [src] if isinstance(src, str) else list(src)
        runs = [Row.from_dict(r) if sources is None else str(r) for r in raw.get("runs") or []]
        sweep = Sweep(raw["sweep"]["param"], dict(raw["sweep"].get("fixed") or {})) if raw.get("sweep") else None
        claim = Claim.from_dict(raw["claim"]) if raw.get("claim") else None
        return _build(cls, raw, runs=runs, sweep=sweep, from_=sources, claim=claim,
                      claims=[Claim.from_dict(c) for c in raw.get("claims") or []])

    @property
    def all_claims(self) -> list[Claim]:
        """``claim`` (one) and then each of ``claims``: a paper sentence with several clauses is
        several checks, each judged on its own."""
        return ([self.claim] if self.claim else []) + list(self.claims)

    @property
    def row_names(self) -> list[str]:
        return [r.name if isinstance(r, Row) else str(r) for r in self.runs]


__all__ = ["Modalities", "Task", "Claim", "Row", "Sweep", "Artifact", "ROW_META", "CLASSICAL_KEYS", "yaml_keys"]
