"""Turn an experiment declaration (experiments/<paper>.yaml) into the runs the pipeline executes.

A paper's tables and figures share trained networks: Table 1's Diffusion+LNCC row is also the
t = 50 point of Fig. 5b and a row of Fig. 4. The plan therefore names each distinct training
configuration once (a *run*), each registration set once (a run on one kind of test pair, a
*label* ``<run>@<test>``) and maps every (artifact, row) onto a label (*uses*).

Files written (all CSV, read by Nextflow and by `experiment-artifacts`):
- runs.csv   run,method,ndim,train_moving,train_fixed,config,features   (only runs to train;
             features: yes when the run reads the diffusion feature model)
- tests.csv  label,run,ndim,test,test_moving,test_fixed         (registration sets)
- uses.csv   artifact,row,run,status,note,param,value            (run = the label)
- configs/<run>.json    the method settings (`diffreg train --config`)
- figures.csv  artifact,command,ndim,moving,fixed              (figures made from one test subject)
- pretrain_args.txt     arguments of `diffreg pretrain-diffusion` for this profile, if any run needs it
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

PROFILES = ("test", "test_full", "full")
# files the user gives, staged by the pipeline under these names (configs refer to them)
STAGED = {"dgir_vgg_weights": "vgg_weights.pth", "dgir_dino_weights": "dino_weights.pth",
          "unigradicon_weights": "unigradicon_weights.pth"}
FEATURE_CHECKPOINT = "feature_model.pt"


@dataclass
class Use:
    artifact: str
    row: str
    run: str = ""          # the registration label <run>@<test>
    status: str = "run"    # run | needs_weights | not_implemented | skipped
    note: str = ""
    param: str = ""
    value: str = ""


@dataclass
class Plan:
    runs: dict[str, dict] = field(default_factory=dict)     # run -> row of runs.csv (+ config)
    tests: dict[str, dict] = field(default_factory=dict)    # label -> row of tests.csv
    uses: list[Use] = field(default_factory=list)
    pretrain: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)       # image figures: artifact, ndim, moving, fixed


def load_experiment(path: str | Path) -> dict:
    import yaml
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: experiment file not found")
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("artifacts"), dict):
        raise InputError(f"{path}: expected a mapping with 'artifacts'")
    return doc


def _task(doc: dict, spec: dict, data: str) -> tuple[str, dict]:
    tasks = spec.get("tasks") or {}
    name = tasks.get(data)
    if name not in (doc.get("tasks") or {}):
        raise InputError(f"artifact task '{name}' for {data} data is not declared under tasks:")
    return name, doc["tasks"][name]


def _test_modalities(task: dict, test: str | None) -> tuple[str, dict]:
    if test:
        spec = (task.get("tests") or {}).get(test)
        if not isinstance(spec, dict):
            raise InputError(f"test '{test}' has no moving/fixed modalities in the task")
        return test, spec
    return "test", task.get("test") or task.get("train")


def _selected(spec: dict, profile: str, names: list[str]) -> list[str]:
    chosen = (spec.get("profiles") or {}).get(profile)
    return names if chosen is None or profile == "full" else [n for n in names if n in chosen]


class Planner:
    def __init__(self, doc: dict, profile: str, data: str, ndims: set[int], given: set[str],
                 modalities: set[str] | None = None):
        if profile not in PROFILES:
            raise InputError(f"profile '{profile}' (known: {', '.join(PROFILES)})")
        self.doc, self.profile, self.data, self.ndims, self.given = doc, profile, data, ndims, given
        self.modalities = modalities   # None: not known, assume present
        self.lengths = (doc.get("profiles") or {}).get(profile) or {}
        self.plan = Plan()

    def add(self, artifact: str, row: str, task_name: str, task: dict, test: str | None, setting: dict,
            param: str = "", value="") -> None:
        use = Use(artifact, row, param=param, value=str(value))
        self.plan.uses.append(use)
        ndim = int(task["ndim"])
        loss_name = setting.get("loss")
        loss = dict((self.doc.get("losses") or {}).get(loss_name) or {})
        method = setting.get("method") or loss.get("method") or self.doc.get("method")
        if loss.get("status") == "not_implemented" or setting.get("status") == "not_implemented":
            use.status, use.note = "not_implemented", loss.get("note", "not implemented in diffreg")
            return
        needs = setting.get("needs") or loss.get("needs")
        if needs and needs not in self.given:
            use.status, use.note = "needs_weights", f"needs weights: give --{needs}"
            return
        if method != self.doc.get("method"):
            use.status, use.note = "not_implemented", f"method '{method}' is not part of diffreg yet"
            return
        if ndim not in self.ndims:
            use.status, use.note = "skipped", f"needs {ndim}D data for task {task_name}"
            return
        train = setting.get("train") or task.get("train") or (task.get("tests") or {}).get(test)
        test_name, mods = _test_modalities(task, test)
        missing = sorted({train["moving"], train["fixed"], mods["moving"], mods["fixed"]} - (self.modalities or set()))
        if self.modalities is not None and missing:
            use.status, use.note = "skipped", f"needs modality {', '.join(missing)} for task {task_name}"
            return
        config = {k: v for k, v in loss.items() if k not in ("needs", "note", "status", "method")}
        config.update({k: setting[k] for k in ("block", "t") if k in setting})
        config["iterations"] = int(self.lengths.get(f"iterations_{ndim}d", config.get("iterations", 0)) or 0) or None
        if "ae_iterations" in self.lengths:
            config["ae_iterations"] = int(self.lengths["ae_iterations"])
        if config.get("loss") == "diffusion":
            config["feature_checkpoint"] = FEATURE_CHECKPOINT
        for key, staged in STAGED.items():
            if key == needs:
                config[key.removeprefix("dgir_")] = staged
        config = {k: v for k, v in config.items() if v is not None}
        run = f"{ndim}d-{config.get('loss', method)}"
        if "block" in config or "t" in config:
            run += f"-b{config.get('block', 'd')}-t{config.get('t', 'd')}"
        run += f"-{train['moving']}_{train['fixed']}"
        self.plan.runs.setdefault(run, {"run": run, "method": method, "ndim": ndim, "train_moving": train["moving"],
                                        "train_fixed": train["fixed"], "config": f"{run}.json",
                                        "features": "yes" if "feature_checkpoint" in config else "no",
                                        "_config": config})
        label = f"{run}@{test_name}"
        self.plan.tests.setdefault(label, {"label": label, "run": run, "ndim": ndim, "test": test_name,
                                           "test_moving": mods["moving"], "test_fixed": mods["fixed"]})
        use.run = label

    def build(self) -> Plan:
        arts = self.doc["artifacts"]
        for name, spec in arts.items():
            if not isinstance(spec, dict):
                continue
            if spec.get("runs") and spec.get("kind") == "table":
                task_name, task = _task(self.doc, spec, self.data)
                runs = {r["name"]: r for r in spec["runs"]}
                chosen = _selected(spec, self.profile, list(runs))
                for row in runs:
                    if row in chosen:
                        self.add(name, row, task_name, task, spec.get("test"), runs[row])
                    else:   # the table still lists it, saying why it has no number of ours
                        self.plan.uses.append(Use(name, row, status="skipped",
                                                  note=f"not in the {self.profile} profile"))
            elif spec.get("sweep"):
                task_name, task = _task(self.doc, spec, self.data)
                sweep = spec["sweep"]
                values = (spec.get("values") or {}).get(self.profile) or []
                for v in values:
                    setting = {**sweep.get("fixed", {}), sweep["param"]: v}
                    self.add(name, f"{sweep['param']}_{v}", task_name, task, None, setting, sweep["param"], v)
        # qualitative figures reuse the rows of the tables they come from
        for name, spec in arts.items():
            if isinstance(spec, dict) and spec.get("from"):
                sources = spec["from"] if isinstance(spec["from"], list) else [spec["from"]]
                for src in sources:
                    # from several tables (e.g. two kinds of test pair): the row says which
                    suffix = f" ({arts[src].get('test', src)})" if len(sources) > 1 else ""
                    for use in [u for u in self.plan.uses if u.artifact == src and u.row in spec.get("runs", [])]:
                        self.plan.uses.append(Use(name, use.row + suffix, use.run, use.status, use.note))
        # figures drawn from two images of one test subject (e.g. DGIR Fig. 1 and 2)
        for name, spec in arts.items():
            if isinstance(spec, dict) and spec.get("command"):
                task_name, task = _task(self.doc, spec, self.data)
                if int(task["ndim"]) in self.ndims:
                    mods = _test_modalities(task, None)[1]
                    self.plan.figures.append({"artifact": name, "command": spec["command"], "ndim": int(task["ndim"]),
                                              "moving": mods["moving"], "fixed": mods["fixed"]})
        if any(r["_config"].get("loss") == "diffusion" for r in self.plan.runs.values()) or self.plan.figures:
            offline = ((self.doc.get("feature_model") or {}).get("offline") or {}).get("profiles", {})
            args = offline.get(self.profile) or {}
            self.plan.pretrain = [f"--{k} {v}" for k, v in args.items()]
        return self.plan


def write_plan(plan: Plan, out: str | Path) -> None:
    from .io import atomic_path
    out = Path(out)
    (out / "configs").mkdir(parents=True, exist_ok=True)

    def table(name: str, columns: list[str], rows: list[dict]) -> None:
        with atomic_path(out / name) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    for run in plan.runs.values():
        with atomic_path(out / "configs" / run["config"]) as tmp:
            tmp.write_text(json.dumps(run["_config"], indent=2, sort_keys=True))
    table("runs.csv", ["run", "method", "ndim", "train_moving", "train_fixed", "config", "features"],
          list(plan.runs.values()))
    table("tests.csv", ["label", "run", "ndim", "test", "test_moving", "test_fixed"], list(plan.tests.values()))
    table("uses.csv", ["artifact", "row", "run", "status", "note", "param", "value"],
          [u.__dict__ for u in plan.uses])
    table("figures.csv", ["artifact", "command", "ndim", "moving", "fixed"], plan.figures)
    with atomic_path(out / "pretrain_args.txt") as tmp:
        tmp.write_text(" ".join(plan.pretrain) + "\n")
