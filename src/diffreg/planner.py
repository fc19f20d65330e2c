"""Every training, registration, evaluation and figure of a pipeline run, from experiments.

The planner knows no paper, method or weight file by name: it reads `Experiment`s (the papers'
YAMLs and the main path, made here from the --main-* flags) and writes the files of
docs/engine.md. A training is named by a hash of everything that makes it (method, data,
modalities, config), so two rows, artifacts or papers asking for the same training share one run;
every setting of a row, loss preset, sweep and profile reaches the config.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import configs
from .deps import format_needs, is_dependency
from .errors import InputError
from .experiment_model import Artifact, Modalities, Row, Task
from .experiments import PRESET_META, PROFILES, Experiment, pairs_file, parse_experiment, stage_uses_data
from .io import atomic_path
from .replicates import MAX_SEEDS, SEED_MARK, seed_label

STATUSES = ("run", "needs_weights", "not_implemented", "skipped")
LEGACY_INPUT = "input"      # the user's --input samplesheet: stands in for every real task's dataset
COLUMNS = {
    "stages.csv": ["stage", "kind", "ndim", "dataset", "data", "moving", "fixed", "config"],
    "trainings.csv": ["run", "method", "ndim", "dataset", "train_moving", "train_fixed", "config", "needs", "seed",
                      "atlas"],
    "registrations.csv": ["experiment", "label", "kind", "run", "method", "preset", "ndim", "dataset", "moving",
                          "fixed", "eval_config", "pairs", "settings"],
    "uses.csv": ["experiment", "artifact", "row", "label", "status", "note", "param", "value"],
    "figures.csv": ["figure", "experiment", "artifact", "function", "ndim", "dataset", "moving", "fixed", "config",
                    "needs"],
    "experiments.csv": ["experiment", "yaml"],
}


def hash8(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class Use:
    experiment: str
    artifact: str
    row: str
    label: str = ""
    status: str = "run"
    note: str = ""
    param: str = ""
    value: str = ""


@dataclass
class Plan:
    stages: dict[str, dict] = field(default_factory=dict)          # stage id -> row (+ _config)
    trainings: dict[str, dict] = field(default_factory=dict)       # run -> row (+ _config)
    registrations: dict[tuple, dict] = field(default_factory=dict)  # (experiment, label) -> row
    uses: list[Use] = field(default_factory=list)
    figures: dict[str, dict] = field(default_factory=dict)         # figure id -> row (+ _config)
    experiments: list[dict] = field(default_factory=list)
    evals: dict[str, dict] = field(default_factory=dict)           # eval config file -> content
    settings: dict[str, dict] = field(default_factory=dict)        # registration settings file -> content

    def counts(self) -> dict[str, int]:
        return {s: sum(u.status == s for u in self.uses) for s in STATUSES}


@dataclass
class Target:
    """Where a row runs: task, dataset (the available one) and the test set's modalities."""
    task: str
    spec: Task
    dataset: str
    test: str
    moving: str
    fixed: str
    train_dataset: str = ""    # the dataset the rows train on, when not `dataset` (task key train_dataset)

    @property
    def modalities(self) -> Modalities:
        return Modalities(self.moving, self.fixed)

    @property
    def trains_on(self) -> str:
        return self.train_dataset or self.dataset


def _value(v) -> str:
    return json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else str(v)


def parse_set(items: list[str] | None) -> dict:
    """`--main-set KEY=VALUE` -> {KEY: VALUE}, the value read as JSON when it is JSON."""
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--main-set {item}: expected KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def main_experiment(methods: list[str], baselines: list[str], settings: dict, dataset: str, ndim: int,
                    moving: str, fixed: str, pairing: str = "inter") -> Experiment:
    """The main path as an experiment: one table `results`, a row per method (label = the method)
    and per baseline (label = <tool>-<preset>), every --main-set setting in each learned row."""
    from .baselines import BASELINES  # deferred: the baselines' modules import nibabel and scipy
    if pairing not in ("inter", "intra"):
        raise InputError(f"--main-pairing {pairing}: expected inter or intra")
    rows = []
    for m in methods:
        if not configs.is_method(m):
            raise InputError(f"--main-methods {m}: unknown method (known: {', '.join(configs.method_names())})")
        for k, v in settings.items():
            configs.check_config(m, ndim, {k: v}, where=f"--main-set {k}")
        rows.append({"name": m, "method": m, **settings})
    for item in baselines:
        tool, _, preset = item.partition("=")
        if tool not in BASELINES:
            raise InputError(f"--main-baselines {tool}: unknown baseline (known: {', '.join(BASELINES.names())})")
        preset = preset or BASELINES.get(tool).default_preset
        if preset not in BASELINES.get(tool).presets:
            raise InputError(f"--main-baselines {item}: unknown preset '{preset}' of {tool} "
                             f"(known: {', '.join(BASELINES.get(tool).presets)})")
        rows.append({"name": f"{tool}-{preset}", "baseline": tool, "preset": preset})
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise InputError(f"--main-methods/--main-baselines: a row named twice ({', '.join(names)})")
    doc = {"paper": {"name": "main"},
           "tasks": {"main": {"ndim": ndim, "dataset": dataset, "train": {"moving": moving, "fixed": fixed},
                              "test": {"moving": moving, "fixed": fixed}, "pairing": pairing}},
           "artifacts": {"results": {"kind": "table", "title": "Main results", "tasks": {"real": "main"},
                                     "runs": rows}}}
    return parse_experiment(doc, "main", None, "main path (--main-*)")


class Planner:
    def __init__(self, experiments: list[Experiment], datasets: dict[str, set[int]],
                 modalities: dict[str, set[str] | None] | None = None, given: set[str] | None = None,
                 profile: str = "full", seeds: int = 1, artifacts: list[str] | None = None):
        if profile not in PROFILES:
            raise InputError(f"profile '{profile}' (known: {', '.join(PROFILES)})")
        if not 1 <= int(seeds) <= MAX_SEEDS:
            raise InputError(f"--seeds {seeds}: must be an integer in [1, {MAX_SEEDS}]")
        self.seeds = int(seeds)
        names = [e.name for e in experiments]
        if len(set(names)) != len(names):
            raise InputError(f"experiments named twice: {', '.join(names)}")
        self.experiments = experiments
        self.datasets = {k: set(v) for k, v in datasets.items()}
        self.modalities = {k: (set(v) if v is not None else None) for k, v in (modalities or {}).items()}
        self.given = set(given or ())
        self.profile = profile
        self.selected, self.rows_selected = select_artifacts(experiments, artifacts)
        self.plan = Plan()
        self._metrics: dict[tuple, list] = {}     # (experiment, label) -> metrics of the artifacts using it

    # ------------------------------------------------------------------ choices

    def unselected(self, exp: Experiment, name: str) -> str:
        """Why an artifact is not planned under --artifacts ("" when it is)."""
        if self.selected is None or exp.name == "main" or (exp.name, name) in self.selected:
            return ""
        return "not selected (--artifacts)"

    def target(self, exp: Experiment, art: Artifact) -> tuple[Target | None, str]:
        """The artifact's task: the real one when its dataset is here (or `input` stands in for
        it), else the toy one; (None, note) when neither dataset is."""
        tasks = art.tasks
        real, toy = tasks.get("real"), tasks.get("toy")
        choice = None
        if real and exp.tasks[real].dataset in self.datasets:
            choice = real, exp.tasks[real].dataset
        elif real and LEGACY_INPUT in self.datasets:
            choice = real, LEGACY_INPUT
        elif toy and exp.tasks[toy].dataset in self.datasets:
            choice = toy, exp.tasks[toy].dataset
        if choice is None:
            return None, f"needs dataset {exp.tasks[real or toy].dataset}"
        name, dataset = choice
        spec = exp.tasks[name]
        # trained on another dataset than the test pairs' (LDM-Morph Table 2: ECHO -> CAMUS)
        train_dataset = spec.train_dataset or ""
        if train_dataset and train_dataset not in self.datasets:
            return None, f"needs dataset {train_dataset} (the training data of task {name})"
        test = art.test
        if test:
            mods = spec.tests[test]
        else:
            test, mods = "test", spec.test or spec.train
        return Target(name, spec, dataset, test, mods.moving, mods.fixed, train_dataset), ""

    def unavailable(self, target: Target, modalities: set[str], dataset: str = "") -> str:
        """Why the data (`dataset`, default the test pairs') cannot serve the target ("" when they can)."""
        dataset = dataset or target.dataset
        of = f" of {dataset}" if dataset != target.dataset else ""
        ndim = target.spec.ndim
        if ndim not in self.datasets[dataset]:
            return f"needs {ndim}D data{of} for task {target.task}"
        have = self.modalities.get(dataset)
        missing = sorted(modalities - have) if have is not None else []
        return f"needs modality {', '.join(missing)}{of} for task {target.task}" if missing else ""

    def resolve(self, exp: Experiment, settings: dict, target: Target,
                train: Modalities | None = None) -> tuple[dict, dict, list[str]]:
        """Dependencies of `settings` -> (config with {"stage": ID} / {"param": P}, needs, missing
        params). A stage whose param the user gave is replaced by the user's file."""
        config, needs, missing = {}, {}, []
        for k, v in settings.items():
            if not is_dependency(v):
                config[k] = v
                continue
            kind, ref = next(iter(v.items()))
            if kind == "stage":
                st = exp.stages[ref]
                if st.get("param") and st["param"] in self.given:
                    kind, ref = "param", st["param"]
                else:
                    ref = self.stage_id(exp, ref, target, train)
            elif ref not in self.given:
                missing.append(ref)
            config[k] = {kind: ref}
            needs[k] = (kind, ref)
        return config, needs, missing

    def stage_id(self, exp: Experiment, name: str, target: Target, train: Modalities | None = None) -> str:
        st = exp.stages[name]
        config = dict((st.get("profiles") or {}).get(self.profile) or {})
        key = {"kind": st["kind"], "config": config}
        if stage_uses_data(st):   # trained on the run's data: one per dataset, dimensionality and modalities
            train = train or target.modalities
            key.update(dataset=target.trains_on, ndim=int(st.get("ndim") or target.spec.ndim),
                       moving=train.moving, fixed=train.fixed)
        return f"{name}-{hash8(key)}"

    def add_stages(self, exp: Experiment, settings: dict, target: Target, needs: dict,
                   train: Modalities | None = None) -> None:
        """Plan the stages a planned run or figure needs (and only those); a stage trained on data
        records the modalities it trains on (the same ones its id hashes: stage_id)."""
        for k, v in settings.items():
            if not is_dependency(v) or "stage" not in v or needs[k][0] != "stage":
                continue
            st = exp.stages[v["stage"]]
            sid = needs[k][1]
            data = stage_uses_data(st)
            ndim = st.get("ndim") or (target.spec.ndim if data else "")
            mods = (train or target.modalities) if data else Modalities("", "")
            self.plan.stages.setdefault(sid, {
                "stage": sid, "kind": st["kind"], "ndim": ndim, "dataset": target.trains_on if data else "",
                "data": "yes" if data else "no", "moving": mods.moving, "fixed": mods.fixed, "config": f"{sid}.json",
                "_config": dict((st.get("profiles") or {}).get(self.profile) or {})})

    # ------------------------------------------------------------------ rows

    def row(self, exp: Experiment, art_name: str, art: Artifact, row: Row, target: Target | None, why: str,
            row_name: str, param: str = "", value="") -> Use:
        use = Use(exp.name, art_name, row_name, param=param, value="" if value == "" else _value(value))
        self.plan.uses.append(use)
        preset = exp.losses.get(row.loss, {}) if row.loss is not None else {}
        method = row.method or preset.get("method") or exp.method
        own = {} if row.baseline else preset    # a classical row has no loss preset
        if row.status or own.get("status"):   # whatever the data: a row that runs nowhere is not "skipped"
            use.status = row.status or own["status"]
            use.note = row.note or own.get("note") or (
                "not implemented in diffreg" if row.baseline else f"method '{method}' is not part of diffreg yet")
            return use
        if target is None:
            use.status, use.note = "skipped", why
            return use
        if row.baseline:
            return self.classical(exp, art_name, art, row, target, use)
        cfg_class = configs.config_class(method)
        # the preset, then the row, each with a paper's alias renamed first, so that the row overrides
        canonical = cfg_class.canonical
        settings = canonical({k: v for k, v in preset.items() if k not in PRESET_META}, method)
        settings.update(canonical(dict(row.settings), method))
        train = row.train or target.spec.train or target.modalities
        config, needs, missing = self.resolve(exp, settings, target, train)
        if missing:
            use.status, use.note = "needs_weights", "needs weights: " + ", ".join(f"give --{p}" for p in missing)
            return use
        why = (self.unavailable(target, {train.moving, train.fixed}, target.trains_on)
               or self.unavailable(target, {target.moving, target.fixed}))
        if why:
            use.status, use.note = "skipped", why
            return use
        ndim = target.spec.ndim
        known = set(cfg_class.settings(ndim))
        # lowest first: the task's pairing, the experiment's profile, the preset and the row, then the
        # task's own profile: a dataset's setting for this profile (its epochs; a short run's larger
        # step where the rows carry the paper's rate) is the most specific, but never the swept one
        full = {}
        if target.spec.pairing == "intra":
            full["inter_subject"] = False
        # each level with a paper's alias renamed (lambda_phi -> lambda_reg) before it overrides the one below
        profile = ((exp.profiles.get(self.profile) or {}).get(f"{ndim}d") or {})
        full.update(canonical({k: v for k, v in profile.items() if k in known}, method))
        full.update(canonical(config, method))
        task_profile = target.spec.profiles.get(self.profile) or {}
        full.update(canonical({k: v for k, v in task_profile.items() if k in known and k != param}, method))
        # registration-only settings (a sampler, its steps) stay out of the training: rows that differ
        # only there share one trained model, each registered with its own settings
        inference = {k: full.pop(k) for k in cfg_class.INFERENCE if k in full}
        self.add_stages(exp, settings, target, needs, train)
        for k in range(self.seeds):    # replicate k trains with seed --seed + k (diffreg.replicates)
            run = self.training(method, ndim, target.trains_on, train, full, needs, k,
                                atlas="first" if target.spec.pairing == "atlas" else "")
            name = run + (f"+{hash8(inference)}" if inference else "")
            label = seed_label(method if exp.name == "main" else f"{name}@{target.task}.{target.test}", k)
            self.registration(exp, label, target, art, kind="learned", run=run, method=method, inference=inference)
            if k == 0:
                use.label = label
            else:
                self.plan.uses.append(dataclasses.replace(use, label=label))
        return use

    def classical(self, exp: Experiment, art_name: str, art: Artifact, row: Row, target: Target, use: Use) -> Use:
        from .baselines import BASELINES, get_baseline  # deferred: the baselines' modules import nibabel and scipy
        why = self.unavailable(target, {target.moving, target.fixed})
        if why:
            use.status, use.note = "skipped", why
            return use
        tool = row.baseline
        # a paper's row of an optional tool that is not installed (FireANTs) is skipped with its reason,
        # not a failed task; the main path's --baselines, asked by name, stop where the tool is missing
        reason = get_baseline(tool).available() if exp.name != "main" else None
        if reason:
            use.status, use.note = "skipped", reason
            return use
        preset = row.preset or BASELINES.get(tool).default_preset
        label = f"{tool}-{preset}" + ("" if exp.name == "main" else f"@{target.task}.{target.test}")
        self.registration(exp, label, target, art, kind="classical", method=tool, preset=preset)
        use.label = label
        return use

    def training(self, method: str, ndim: int, dataset: str, train: Modalities, config: dict, needs: dict,
                 seed: int = 0, atlas: str = "") -> str:
        key = {"method": method, "ndim": ndim, "dataset": dataset, "train_moving": train.moving,
               "train_fixed": train.fixed, "config": config}
        if seed:                       # replicate 0 keeps the name a one-seed run always had
            key["seed"] = seed
        if atlas:                      # atlas-based training (task pairing: atlas)
            key["atlas"] = atlas
        prefix = f"{ndim}d-{method}" + (f"-{config['loss']}" if isinstance(config.get("loss"), str) else "")
        run = f"{prefix}-{hash8(key)}"
        self.plan.trainings.setdefault(run, {
            "run": run, "method": method, "ndim": ndim, "dataset": dataset, "train_moving": train.moving,
            "train_fixed": train.fixed, "config": f"{run}.json", "needs": format_needs(needs),
            "seed": seed, "atlas": atlas, "_config": config})
        return run

    def registration(self, exp: Experiment, label: str, target: Target, art: Artifact, kind: str, run: str = "",
                     method: str = "", preset: str = "", inference: dict | None = None) -> None:
        key = (exp.name, label)
        settings = ""
        if inference:
            settings = f"register-{hash8(inference)}.json"
            self.plan.settings[settings] = dict(inference)
        self.plan.registrations.setdefault(key, {
            "experiment": exp.name, "label": label, "kind": kind, "run": run, "method": method, "preset": preset,
            "settings": settings,
            "ndim": target.spec.ndim, "dataset": target.dataset, "moving": target.moving,
            # <pairing file>/<pairing> (experiments/pairs/<file>.yaml of the task's dataset, aliases
            # resolved), "" = the dataset's own pairs
            "fixed": target.fixed,
            "pairs": f"{pairs_file(target.spec.dataset).stem}/{target.spec.pairs}" if target.spec.pairs else "",
            "_unions": dict(target.spec.label_unions),
            "_trajectory": target.spec.trajectory,
            "_landmarks": target.spec.landmarks, "_score_on": target.spec.score_on,
            "_scored_labels": target.spec.scored_labels})
        self._metrics.setdefault(key, []).append(art.metrics)

    def figure(self, exp: Experiment, art_name: str, art: Artifact, unselected: str = "") -> None:
        use = Use(exp.name, art_name, art_name)
        self.plan.uses.append(use)
        target, why = (None, unselected) if unselected else self.target(exp, art)
        if target is None:
            use.status, use.note = "skipped", why
            return
        settings = dict(art.settings)
        config, needs, missing = self.resolve(exp, settings, target)
        if missing:
            use.status, use.note = "needs_weights", "needs weights: " + ", ".join(f"give --{p}" for p in missing)
            return
        why = self.unavailable(target, {target.moving, target.fixed})
        if why:
            use.status, use.note = "skipped", why
            return
        ndim = target.spec.ndim
        fid = f"{art.function}-" + hash8({"config": config, "ndim": ndim, "dataset": target.dataset,
                                             "moving": target.moving, "fixed": target.fixed})
        self.add_stages(exp, settings, target, needs)
        self.plan.figures.setdefault(fid, {
            "figure": fid, "experiment": exp.name, "artifact": art_name, "function": art.function, "ndim": ndim,
            "dataset": target.dataset, "moving": target.moving, "fixed": target.fixed, "config": f"{fid}.json",
            "needs": format_needs(needs), "_config": config})
        use.label = fid

    # ------------------------------------------------------------------ the whole plan

    def build(self) -> Plan:
        for exp in self.experiments:
            self.plan.experiments.append({"experiment": exp.name, "yaml": str(exp.path) if exp.path else ""})
            for name, art in exp.artifacts.items():
                unselected = self.unselected(exp, name)
                if art.from_ is None and art.runs:
                    target, why = (None, unselected) if unselected else self.target(exp, art)
                    chosen = art.profiles.get(self.profile)
                    picked = self.rows_selected.get((exp.name, name))
                    for row in art.runs:
                        if picked is not None and row.name not in picked:
                            self.plan.uses.append(Use(exp.name, name, row.name, status="skipped",
                                                      note="not selected (--artifacts)"))
                        elif chosen is None or self.profile == "full" or row.name in chosen:
                            self.row(exp, name, art, row, target, why, row.name)
                        else:   # the table still lists it, saying why it has no number of ours
                            self.plan.uses.append(Use(exp.name, name, row.name, status="skipped",
                                                      note=f"not in the {self.profile} profile"))
                elif art.sweep:
                    target, why = (None, unselected) if unselected else self.target(exp, art)
                    sweep = art.sweep
                    for v in art.values.get(self.profile) or []:
                        self.row(exp, name, art, sweep.row(v), target, why, f"{sweep.param}_{v}", sweep.param, v)
                elif art.function:
                    self.figure(exp, name, art, unselected)
            # qualitative figures reuse the rows of the tables they come from
            for name, art in exp.artifacts.items():
                if art.from_ is None:
                    continue
                sources = art.from_
                wanted = art.row_names
                unselected = self.unselected(exp, name)
                if unselected:
                    self.plan.uses += [Use(exp.name, name, r, status="skipped", note=unselected) for r in wanted or [name]]
                    continue
                for src in sources:
                    # from several tables (e.g. two kinds of test pair): the row says which
                    suffix = f" ({exp.artifacts[src].test or src})" if len(sources) > 1 else ""
                    # replicate 0 only: a qualitative figure shows one registration per row
                    for u in [u for u in self.plan.uses if u.experiment == exp.name and u.artifact == src
                              and (not wanted or u.row in wanted) and SEED_MARK not in u.label]:
                        self.plan.uses.append(Use(exp.name, name, u.row + suffix, u.label, u.status, u.note))
        for key, reg in self.plan.registrations.items():
            specs = self._metrics[key]
            metrics = None if any(m is None for m in specs) else sorted({x for m in specs for x in m})
            content = {"experiment": reg["experiment"], "dataset": reg["dataset"], "label_unions": reg["_unions"],
                       "metrics": metrics}
            if reg.get("_trajectory"):
                content["trajectory"] = reg["_trajectory"]
            for k in ("landmarks", "score_on", "scored_labels"):   # only when set: other configs keep their names
                if reg.get(f"_{k}"):
                    content[k] = reg[f"_{k}"]
            name = f"eval-{hash8(content)}.json"
            self.plan.evals[name] = content
            reg["eval_config"] = name
        return self.plan


def select_artifacts(experiments: list[Experiment], selectors: list[str] | None
                     ) -> tuple[set[tuple[str, str]] | None, dict[tuple[str, str], set[str]]]:
    """--artifacts, the one check of it (`diffreg plan` and the launch): PAPER (all of it),
    PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or ARTIFACT (in every paper that has it) -> (the
    (paper, artifact) pairs to plan, None (all) without selectors; (paper, artifact) -> the rows
    to run, a table named without rows running all of its rows). A qualitative figure brings the
    tables it is drawn from."""
    selectors = [x.strip() for x in selectors or [] if x.strip() and x.strip() != "all"]
    if not selectors:
        return None, {}
    papers = {e.name: e for e in experiments if e.name != "main"}
    chosen: set[tuple[str, str]] = set()
    rows_of: dict[tuple[str, str], set[str]] = {}
    for sel in selectors:
        paper, _, art = sel.partition(":") if ":" in sel else (None, "", sel)
        art, _, rows = art.partition(":")
        if paper:
            hits = {(paper, art)} if paper in papers and art in papers[paper].artifacts else set()
        elif sel in papers:
            hits = {(sel, a) for a in papers[sel].artifacts}
        else:
            hits = {(e, sel) for e, x in papers.items() if sel in x.artifacts}
        if not hits:
            raise InputError(f"Parameter --artifacts: '{sel}' is no paper run nor an artifact of one (papers: "
                             f"{', '.join(papers) or 'none'}; give PAPER, PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW "
                             f"or ARTIFACT)")
        if rows:
            known = papers[paper].artifacts[art].row_names
            wrong = [r for r in rows.split("+") if r not in known]
            if wrong:
                raise InputError(f"Parameter --artifacts: '{sel}': {', '.join(wrong)} not a row of {paper}:{art} "
                                 f"(rows: {', '.join(known) or 'none'})")
            rows_of.setdefault((paper, art), set()).update(rows.split("+"))
        chosen |= hits
    for paper, art in list(chosen):
        chosen |= {(paper, s) for s in papers[paper].artifacts[art].from_ or []}
    return chosen, rows_of


def write_plan(plan: Plan, out: str | Path) -> None:
    """The plan's CSV files and configs (docs/engine.md); config columns name files in configs/."""
    out = Path(out)
    (out / "configs").mkdir(parents=True, exist_ok=True)

    def table(name: str, rows: list[dict]) -> None:
        with atomic_path(out / name) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS[name], extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    def config(name: str, content: dict) -> None:
        with atomic_path(out / "configs" / name) as tmp:
            tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")

    for group in (plan.stages, plan.trainings, plan.figures):
        for row in group.values():
            config(row["config"], row["_config"])
    for name, content in {**plan.evals, **plan.settings}.items():
        config(name, content)
    table("stages.csv", list(plan.stages.values()))
    table("trainings.csv", list(plan.trainings.values()))
    table("registrations.csv", list(plan.registrations.values()))
    table("uses.csv", [u.__dict__ for u in plan.uses])
    table("figures.csv", list(plan.figures.values()))
    table("experiments.csv", plan.experiments)


__all__ = ["Planner", "Plan", "Use", "Target", "main_experiment", "select_artifacts", "parse_set", "write_plan", "hash8",
           "COLUMNS"]
