"""The one reader of experiment YAMLs (experiments/<paper>.yaml, docs/engine.md).

`load_experiment(path)` parses and validates a paper's declaration; the planner, the artifacts and
the report all read through it, so a typo stops the plan before anything runs. Every error is an
`InputError` naming the file and the key path of the offending key, e.g.
``experiments/<paper>.yaml: artifacts.fig5a.sweep.fixed.lamda_reg: unknown setting(s) ...``.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import configs
from .deps import is_dependency
from .errors import InputError
from .evaluation_config import check_landmarks, check_score_on, check_scored_labels, check_trajectory
from .yaml_text import parse_yaml
from .experiment_model import CLASSICAL_KEYS, ROW_META, Artifact, Claim, Sweep, Task, yaml_keys

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = REPO / "experiments"
PROFILES = ("test", "test_full", "full")
NAME_RE = re.compile(r"^[a-z0-9_-]+$")

TOP_KEYS = {"paper", "method", "stages", "files", "profiles", "tasks", "losses", "artifacts"}
PAPER_KEYS = {"name", "title", "code", "url"}
STAGE_KEYS = {"kind", "param", "ndim", "data", "profiles", "note"}
FILE_KEYS = {"note"}
TASK_KEYS = yaml_keys(Task)
# how training pairs are drawn: two training subjects, one subject's two modalities (ED -> ES),
# or every training subject onto one atlas (the first training subject by id)
PAIRINGS = ("inter", "intra", "atlas")
PAIRS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "pairs"   # experiments/pairs/<dataset>.yaml
BASELINES_YAML = PAIRS_DIR.parent / "baselines.yaml"   # loss presets of the learning baselines
PRESET_META = {"method", "status", "note"}          # the rest of a loss preset are method settings
ARTIFACT_KEYS = yaml_keys(Artifact)
QUALITATIVE_VIEWS = ("registration", "trajectory", "generated")
TABLE_PLOTS = ("per_label",)   # `plot` of a table: box plots of the claim's metric per label and row   # `show` of a figure `from` a table
STATUSES = {"not_implemented"}
# the keys of a claim check (src/diffreg/report/claims.py judges them)
CHECK_KEYS = {"metric", "best", "among", "run", "within", "of", "file", "compare", "argmax_in", "argmax_in_range",
              "better", "than", "order", "median_iqr", "trend", "margin", "at_most"}


@dataclass
class Experiment:
    name: str                      # file stem (the experiment column of the plan); "main" for the main path
    path: Path | None
    paper: dict
    method: str | None
    stages: dict[str, dict]
    files: dict[str, dict]
    profiles: dict[str, dict]
    tasks: dict[str, Task]
    losses: dict[str, dict]
    artifacts: dict[str, Artifact]  # YAML order
    doc: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return str(self.paper.get("name") or self.paper.get("title") or self.name)

    def paper_rows(self) -> dict[str, dict[str, dict]]:
        """artifact -> row -> key -> the paper's value."""
        return {a: {str(m): {str(k): v for k, v in vals.items()} for m, vals in s.rows.items()}
                for a, s in self.artifacts.items() if isinstance(s.rows, dict)}

    def paper_columns(self) -> dict[str, list[str]]:
        return {a: [str(c) for c in s.columns] for a, s in self.artifacts.items() if s.columns is not None}


# ----------------------------------------------------------------------------- reading

def read_yaml(path: str | Path) -> dict:
    import yaml
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        doc = parse_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    return doc


def paper_numbers(doc: dict, where: str) -> tuple[str | None, dict, dict]:
    """(paper name, artifact -> row -> key -> value, artifact -> columns): the paper's numbers,
    checked for shape only (also what `diffreg tabulate --paper` reads from a looser file)."""
    meta = doc.get("paper")
    name = (meta.get("name") or meta.get("title")) if isinstance(meta, dict) else meta
    arts = doc.get("artifacts") or {}
    if not isinstance(arts, dict):
        raise InputError(f"{where}: artifacts: must map artifact -> {{rows: ...}}")
    rows, columns = {}, {}
    for art, spec in arts.items():
        if not isinstance(spec, dict):
            continue
        if spec.get("columns") is not None:
            if not isinstance(spec["columns"], list):
                raise InputError(f"{where}: artifacts.{art}.columns must be a list of metric names")
            columns[str(art)] = [str(c) for c in spec["columns"]]
        table = spec.get("rows")
        if table is None:
            continue
        if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
            raise InputError(f"{where}: artifacts.{art}.rows must map method -> metric -> value")
        rows[str(art)] = {str(m): {str(k): v for k, v in vals.items()} for m, vals in table.items()}
    return (str(name) if name else None), rows, columns


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    return parse_experiment(read_yaml(path), path.stem, path, str(path))


def find_experiments(names: list[str], root: Path = EXPERIMENTS_DIR) -> list[Path]:
    """`--papers` values -> YAML paths: a name (experiments/<name>.yaml), a path, `all` or `none`."""
    out: list[Path] = []
    for item in names:
        for name in filter(None, (s.strip() for s in str(item).split(","))):
            if name == "none":
                continue
            if name == "all":
                out += paper_yamls(root)
            elif name.endswith((".yaml", ".yml")) or "/" in name:
                if not Path(name).is_file():
                    raise InputError(f"--papers {name}: file not found")
                out.append(Path(name))
            else:
                p = root / f"{name}.yaml"
                if not p.is_file() or p not in paper_yamls(root):
                    known = ", ".join(q.stem for q in paper_yamls(root)) or "none"
                    raise InputError(f"--papers {name}: no {p} (known: {known})")
                out.append(p)
    seen: dict[str, Path] = {}
    for p in out:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise InputError(f"--papers: two experiments named {p.stem} ({seen[p.stem]}, {p})")
        seen[p.stem] = p
    return list(seen.values())


def _pair_docs(root: Path) -> list[tuple[Path, dict]]:
    import yaml
    out = []
    for p in sorted((root / "pairs").glob("*.yaml")):
        try:
            doc = parse_yaml(p.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and doc.get("dataset"):
            out.append((p, doc))
    return out


def known_datasets(root: Path = EXPERIMENTS_DIR) -> set[str]:
    """Dataset names the pair files declare (with their `aliases`), plus the embedded `toy`."""
    names = {"toy"}
    for _, doc in _pair_docs(root):
        names.add(str(doc["dataset"]))
        names.update(str(a) for a in doc.get("aliases") or [])
    return names


def optional_module(module: str):
    """A module that a checkout may not have (stage kinds, figure functions): None if absent."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def stage_uses_data(stage: dict) -> bool:
    """Whether a stage trains on the study's training subjects: its `data:`, else its kind's."""
    if stage.get("data") is not None:
        return bool(stage["data"])
    mod = optional_module("diffreg.stages")
    return bool(getattr(mod, "USES_DATA", {}).get(stage["kind"], False)) if mod else False


# ----------------------------------------------------------------------------- validation

class _Check:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, msg: str):
        raise InputError(f"{self.where}: {key}: {msg}")

    def mapping(self, value, key: str, allowed: set[str] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    self.fail(f"{key}.{k}" if key else str(k),
                              f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def name(self, value, key: str, what: str) -> str:
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.fail(key, f"{what} '{value}' must match [a-z0-9_-]+")
        return value

    def modalities(self, value, key: str) -> dict:
        spec = self.mapping(value, key, {"moving", "fixed"})
        for side in ("moving", "fixed"):
            if not isinstance(spec.get(side), str) or not spec[side]:
                self.fail(f"{key}.{side}", "expected a modality name")
        return spec


def _settings_check(chk: _Check, method: str, ndims: set[int], settings: dict, key: str) -> None:
    """Every key a setting of `method` for every dimensionality the row may run in."""
    if not configs.is_method(method):
        chk.fail(key, f"unknown method '{method}' (known: {', '.join(configs.method_names())})")
    for k, v in settings.items():
        for ndim in sorted(ndims):
            configs.check_config(method, ndim, {k: v}, where=f"{chk.where}: {key}.{k}")


def _deps_check(chk: _Check, settings: dict, key: str, stages: dict, params: set[str]) -> None:
    for k, v in settings.items():
        if not is_dependency(v):
            continue
        kind, ref = next(iter(v.items()))
        if kind == "stage" and ref not in stages:
            chk.fail(f"{key}.{k}", f"unknown stage '{ref}' (declared: {', '.join(stages) or 'none'})")
        if kind == "param" and ref not in params:
            chk.fail(f"{key}.{k}", f"unknown file parameter '{ref}' (declare it under files:; "
                                   f"known: {', '.join(sorted(params)) or 'none'})")


def _check_pairs(chk: "_Check", key: str, dataset: str, name) -> None:
    path = pairs_file(dataset)
    if not isinstance(name, str):
        chk.fail(key, "expected the name of a pairing")
    elif not path.is_file():
        chk.fail(key, f"no pairing file experiments/pairs/{path.name} for dataset {dataset}")
    else:
        known = (parse_yaml(path.read_text()) or {}).get("pairings") or {}
        if name not in known:
            chk.fail(key, f"no pairing '{name}' in experiments/pairs/{path.name} (known: {', '.join(known)})")


def pairs_file(dataset: str) -> Path:
    """experiments/pairs/<dataset>.yaml, '-' written '_' (dataset neurite-oasis: neurite_oasis.yaml),
    as the dataset adapters name it; else the file that lists `dataset` under `aliases` (one
    adapter, several samplesheets: CAMUS's views camus-2ch / camus-4ch use camus.yaml)."""
    path = PAIRS_DIR / f"{dataset.replace('-', '_')}.yaml"
    if not path.is_file():
        for p, doc in _pair_docs(PAIRS_DIR.parent):
            if dataset in [str(a) for a in doc.get("aliases") or []]:
                return p
    return path


def parse_experiment(doc: dict, name: str, path: Path | None, where: str) -> Experiment:
    """Validate a parsed experiment document (a YAML's, or the main path's made from flags)."""
    chk = _Check(where)
    chk.mapping(doc, "", TOP_KEYS)
    paper = doc.get("paper")
    paper = {"name": paper} if isinstance(paper, str) else chk.mapping(paper, "paper", PAPER_KEYS)
    method = doc.get("method")
    if method is not None and not configs.is_method(method):
        chk.fail("method", f"unknown method '{method}' (known: {', '.join(configs.method_names())})")

    # stages and user files
    stage_mod = optional_module("diffreg.stages")
    stages = chk.mapping(doc.get("stages"), "stages")
    for sname, st in stages.items():
        key = f"stages.{sname}"
        st = chk.mapping(st, key, STAGE_KEYS)
        chk.name(str(sname), key, "stage name")
        if not isinstance(st.get("kind"), str):
            chk.fail(f"{key}.kind", "expected the name of a stage kind")
        if stage_mod is not None and st["kind"] not in stage_mod.STAGES:
            chk.fail(f"{key}.kind", f"unknown stage kind '{st['kind']}' (known: {', '.join(stage_mod.STAGES.names())})")
        if st.get("param") is not None:
            chk.name(st["param"], f"{key}.param", "parameter")
        if st.get("ndim") is not None and st["ndim"] not in (2, 3):
            chk.fail(f"{key}.ndim", "expected 2 or 3")
        if st.get("data") is not None and not isinstance(st["data"], bool):
            chk.fail(f"{key}.data", "expected true or false")
        for prof, cfg in chk.mapping(st.get("profiles"), f"{key}.profiles", set(PROFILES)).items():
            chk.mapping(cfg, f"{key}.profiles.{prof}")
            if stage_mod is not None:
                for k, v in cfg.items():
                    stage_mod.check_config(st["kind"], {k: v}, where=f"{where}: {key}.profiles.{prof}.{k}")
    files = chk.mapping(doc.get("files"), "files")
    for param, spec in files.items():
        chk.name(str(param), f"files.{param}", "parameter")
        chk.mapping(spec, f"files.{param}", FILE_KEYS)
    params = set(files) | {st["param"] for st in stages.values() if st.get("param")}

    # tasks
    tasks = chk.mapping(doc.get("tasks"), "tasks")
    for tname, task in tasks.items():
        key = f"tasks.{tname}"
        task = chk.mapping(task, key, TASK_KEYS)
        if task.get("ndim") not in (2, 3):
            chk.fail(f"{key}.ndim", "expected 2 or 3")
        if "dataset" not in task:
            chk.fail(f"{key}.dataset", f"missing (e.g. {', '.join(sorted(known_datasets()))})")
        chk.name(task["dataset"], f"{key}.dataset", "dataset")
        if task.get("train_dataset") is not None:   # trained on another dataset than the test pairs'
            chk.name(task["train_dataset"], f"{key}.train_dataset", "dataset")
        for side in ("train", "test"):
            if task.get(side) is not None:
                chk.modalities(task[side], f"{key}.{side}")
        for test, mods in chk.mapping(task.get("tests"), f"{key}.tests").items():
            chk.modalities(mods, f"{key}.tests.{test}")
        if not (task.get("train") or task.get("test") or task.get("tests")):
            chk.fail(key, "needs train:, test: or tests: (the modalities)")
        if task.get("pairing") is not None and task["pairing"] not in PAIRINGS:
            chk.fail(f"{key}.pairing", f"'{task['pairing']}' (known: {', '.join(PAIRINGS)})")
        if task.get("labels") is not None and not isinstance(task["labels"], list):
            chk.fail(f"{key}.labels", "expected a list")
        for u, vals in chk.mapping(task.get("label_unions"), f"{key}.label_unions").items():
            if not isinstance(vals, list):
                chk.fail(f"{key}.label_unions.{u}", "expected a list of label values")
        # the test pairs of the paper's protocol: a pairing of experiments/pairs/<dataset>.yaml
        if task.get("pairs") is not None:
            _check_pairs(chk, f"{key}.pairs", str(task["dataset"]), task["pairs"])
        # a task's own training lengths (e.g. a dataset's epochs) over the experiment's profile
        for prof, cfg in chk.mapping(task.get("profiles"), f"{key}.profiles", set(PROFILES)).items():
            chk.mapping(cfg, f"{key}.profiles.{prof}")
        if task.get("trajectory") is not None:
            try:
                check_trajectory(task["trajectory"], f"{key}.trajectory")
            except InputError as exc:
                chk.fail(f"{key}.trajectory", str(exc).split(": ", 1)[-1])
        # what the evaluation scores besides the registered images: landmark files, colour versions;
        # the labels a paper's Dice averages
        for tkey, check in (("landmarks", check_landmarks), ("score_on", check_score_on),
                            ("scored_labels", check_scored_labels)):
            if task.get(tkey) is not None:
                try:
                    check(task[tkey], f"{key}.{tkey}")
                except InputError as exc:
                    chk.fail(f"{key}.{tkey}", str(exc).split(": ", 1)[-1])
    all_ndims = {int(t["ndim"]) for t in tasks.values()} or {2, 3}

    # loss presets
    losses = chk.mapping(doc.get("losses"), "losses")
    used_methods = {method} if method else set()
    for lname, preset in losses.items():
        key = f"losses.{lname}"
        preset = chk.mapping(preset, key)
        if preset.get("status") is not None and preset["status"] not in STATUSES:
            chk.fail(f"{key}.status", f"expected one of {', '.join(sorted(STATUSES))}")
        settings = {k: v for k, v in preset.items() if k not in PRESET_META}
        _deps_check(chk, settings, key, stages, params)
        if preset.get("status"):
            continue
        m = preset.get("method") or method
        if not m:
            chk.fail(key, "no method (give method: here or at the top level)")
        _settings_check(chk, m, all_ndims, settings, key)
        used_methods.add(m)
    # the learning baselines every paper may name (experiments/baselines.yaml); the paper's own win
    losses = {**shared_losses(), **losses}

    artifacts = chk.mapping(doc.get("artifacts"), "artifacts")
    if not artifacts:
        chk.fail("artifacts", "missing: an experiment declares at least one table or figure")
    figure_mod = optional_module("diffreg.report.figures")
    figures = getattr(figure_mod, "FIGURES", None)
    for aname, art in artifacts.items():
        key = f"artifacts.{aname}"
        art = chk.mapping(art, key, ARTIFACT_KEYS)
        if art.get("kind") not in ("table", "figure"):
            chk.fail(f"{key}.kind", "must be 'table' or 'figure'")
        ndims = _artifact_tasks(chk, art, key, tasks)
        rows = art.get("runs")
        if art.get("from") is None and rows is not None:
            if not isinstance(rows, list) or not rows:
                chk.fail(f"{key}.runs", "expected a list of rows")
            seen = set()
            for i, row in enumerate(rows):
                rkey = f"{key}.runs[{i}]"
                if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                    chk.fail(rkey, "expected a mapping with a name")
                if row["name"] in seen:
                    chk.fail(f"{rkey}.name", f"row '{row['name']}' listed twice")
                seen.add(row["name"])
                used_methods |= _check_row(chk, row, f"{key}.runs.{row['name']}", ndims, method, losses, stages,
                                           params)
            for prof, names in chk.mapping(art.get("profiles"), f"{key}.profiles", set(PROFILES)).items():
                if not isinstance(names, list):
                    chk.fail(f"{key}.profiles.{prof}", "expected a list of row names")
                for n in names:
                    if n not in seen:
                        chk.fail(f"{key}.profiles.{prof}", f"unknown row '{n}' (rows: {', '.join(seen)})")
        if art.get("sweep") is not None:
            sw = chk.mapping(art["sweep"], f"{key}.sweep", yaml_keys(Sweep))
            if not isinstance(sw.get("param"), str):
                chk.fail(f"{key}.sweep.param", "expected the name of the swept setting")
            fixed = chk.mapping(sw.get("fixed"), f"{key}.sweep.fixed")
            values = chk.mapping(art.get("values"), f"{key}.values", set(PROFILES))
            for prof, vals in values.items():
                if not isinstance(vals, list):
                    chk.fail(f"{key}.values.{prof}", "expected a list of values")
            # the swept setting is checked with the first value it takes
            first = next((v[0] for v in values.values() if v), None)
            row = {**fixed, sw["param"]: first}
            used_methods |= _check_row(chk, row, f"{key}.sweep.fixed", ndims, method, losses, stages, params,
                                       swept=sw["param"], swept_key=f"{key}.sweep.param")
        if art.get("from") is not None:
            sources = art["from"] if isinstance(art["from"], list) else [art["from"]]
            for src in sources:
                if src not in artifacts or not isinstance(artifacts[src], dict) or not artifacts[src].get("runs"):
                    chk.fail(f"{key}.from", f"'{src}' is not a table artifact of this experiment")
            names = {r.get("name") for s in sources for r in artifacts[s]["runs"] if isinstance(r, dict)}
            if not isinstance(rows or [], list):
                chk.fail(f"{key}.runs", "expected a list of row names")
            for r in rows or []:
                if r not in names:
                    chk.fail(f"{key}.runs", f"unknown row '{r}' of {', '.join(sources)}")
            if art.get("show") is not None and art["show"] not in QUALITATIVE_VIEWS:   # default: Artifact.show
                chk.fail(f"{key}.show", f"'{art['show']}' (known: {', '.join(QUALITATIVE_VIEWS)})")
        elif art.get("show") is not None:
            chk.fail(f"{key}.show", "only a figure made from a table's runs (`from`) has a view")
        if art.get("function") is not None:
            fn = art["function"]
            if not isinstance(fn, str):
                chk.fail(f"{key}.function", "expected the name of a figure function")
            if figures is not None and fn not in figures:
                known = ", ".join(sorted(figures.names() if hasattr(figures, "names") else figures))
                chk.fail(f"{key}.function", f"unknown figure function '{fn}' (known: {known})")
            if not art.get("tasks"):
                chk.fail(f"{key}.tasks", "a computed figure needs tasks: {real: TASK, toy: TASK}")
            settings = chk.mapping(art.get("settings"), f"{key}.settings")
            _deps_check(chk, settings, f"{key}.settings", stages, params)
            if figures is not None and hasattr(figure_mod, "check_config"):
                for k, v in settings.items():
                    figure_mod.check_config(fn, {k: v}, where=f"{where}: {key}.settings.{k}")
        if art.get("plot") is not None and (art.get("kind") != "table" or art["plot"] not in TABLE_PLOTS):
            chk.fail(f"{key}.plot", f"'{art['plot']}': a table's plot is one of {', '.join(TABLE_PLOTS)}")
        if art.get("metrics") is not None and (not isinstance(art["metrics"], list)
                                               or not all(isinstance(m, str) for m in art["metrics"])):
            chk.fail(f"{key}.metrics", "expected a list of metric names")
        if art.get("claims") is not None and (not isinstance(art["claims"], list) or not art["claims"]):
            chk.fail(f"{key}.claims", "expected a non-empty list of {text, check}")
        for i, c in enumerate(_raw_claims(art)):
            where_c = f"{key}.claim" if art.get("claim") and i == 0 else f"{key}.claims[{i - bool(art.get('claim'))}]"
            chk.mapping(c, where_c, yaml_keys(Claim))
            chk.mapping(c.get("check"), f"{where_c}.check", CHECK_KEYS)
    paper_numbers(doc, where)   # the paper's rows: shape

    # profile settings apply to every training of the paper whose method has them
    profiles = chk.mapping(doc.get("profiles"), "profiles", set(PROFILES))
    for prof, per_ndim in profiles.items():
        per_ndim = chk.mapping(per_ndim, f"profiles.{prof}", {"2d", "3d"})
        for nd, settings in per_ndim.items():
            _profile_check(chk, chk.mapping(settings, f"profiles.{prof}.{nd}"), f"profiles.{prof}.{nd}",
                           int(nd[0]), used_methods)
    return Experiment(name, path, dict(paper), method, stages, files, profiles,
                      {str(k): Task.from_dict(v) for k, v in tasks.items()}, losses,
                      {str(k): Artifact.from_dict(v) for k, v in artifacts.items()}, doc)


def _raw_claims(art: dict) -> list:
    """The claims of an artifact's YAML mapping, in the order Artifact.all_claims gives them."""
    return ([art["claim"]] if art.get("claim") else []) + list(art.get("claims") or [])


def _artifact_tasks(chk: _Check, art: dict, key: str, tasks: dict) -> set[int]:
    """The dimensionalities the artifact's tasks run in; checks the names and the test set."""
    spec = chk.mapping(art.get("tasks"), f"{key}.tasks", {"real", "toy"})
    needs_task = art.get("sweep") is not None or (art.get("from") is None and art.get("runs") is not None)
    if needs_task and not spec:
        chk.fail(f"{key}.tasks", "missing: {real: TASK, toy: TASK}")
    ndims = set()
    for which, tname in spec.items():
        if tname not in tasks:
            chk.fail(f"{key}.tasks.{which}", f"unknown task '{tname}' (declared: {', '.join(tasks) or 'none'})")
        ndims.add(int(tasks[tname]["ndim"]))
        test = art.get("test")
        if test is not None and test not in (tasks[tname].get("tests") or {}):
            chk.fail(f"{key}.test", f"task {tname} has no test set '{test}'")
        if test is None and (needs_task or art.get("function")) and \
                not (tasks[tname].get("test") or tasks[tname].get("train")):
            chk.fail(f"{key}.test", f"task {tname} has several test sets: name one")
    return ndims or {2, 3}


def paper_yamls(root: Path) -> list[Path]:
    """The papers' YAMLs in `root`: every *.yaml but the shared baseline presets."""
    return sorted(p for p in root.glob("*.yaml") if p.name != BASELINES_YAML.name)


def shared_losses(path: Path = BASELINES_YAML) -> dict[str, dict]:
    """The `losses` of experiments/baselines.yaml: presets a paper's rows name without declaring them."""
    if not path.is_file():
        return {}
    doc = parse_yaml(path.read_text()) or {}
    if not isinstance(doc.get("losses"), dict):
        raise InputError(f"{path}: expected a mapping `losses:` of loss presets")
    return doc["losses"]


def _check_row(chk: _Check, row: dict, key: str, ndims: set[int], method: str | None, losses: dict,
               stages: dict, params: set[str], swept: str | None = None, swept_key: str | None = None) -> set[str]:
    """One table row or a sweep's settings: classical or learned, every setting known."""
    from .baselines import BASELINES  # deferred: the baselines' modules import nibabel and scipy
    if row.get("baseline") is not None:
        for k in row:
            if k not in CLASSICAL_KEYS:
                chk.fail(f"{key}.{k}", f"unknown key for a classical row (known: {', '.join(sorted(CLASSICAL_KEYS))})")
        tool = row["baseline"]
        if tool not in BASELINES:
            chk.fail(f"{key}.baseline", f"unknown baseline '{tool}' (known: {', '.join(BASELINES.names())})")
        presets = BASELINES.get(tool).presets
        preset = row.get("preset") or BASELINES.get(tool).default_preset
        if preset not in presets:
            chk.fail(f"{key}.preset", f"unknown preset '{preset}' of {tool} (known: {', '.join(presets)})")
        return set()
    if row.get("status") is not None and row["status"] not in STATUSES:
        chk.fail(f"{key}.status", f"expected one of {', '.join(sorted(STATUSES))}")
    if row.get("train") is not None:
        chk.modalities(row["train"], f"{key}.train")
    preset = {}
    if row.get("loss") is not None:
        if row["loss"] not in losses:
            k = swept_key if swept == "loss" else f"{key}.loss"
            chk.fail(k, f"unknown loss preset '{row['loss']}' (declared: {', '.join(losses) or 'none'})")
        preset = losses[row["loss"]]
    own = {k: v for k, v in row.items() if k not in ROW_META}
    _deps_check(chk, own, key, stages, params)
    if row.get("status") or preset.get("status"):
        return set()
    m = row.get("method") or preset.get("method") or method
    if not m:
        chk.fail(key, "no method (give method: in the row, its loss preset or at the top level)")
    if not configs.is_method(m):
        chk.fail(f"{key}.method", f"unknown method '{m}' (known: {', '.join(configs.method_names())}); "
                                  "mark the row status: not_implemented")
    for k, v in own.items():
        where = swept_key if k == swept and swept_key else f"{key}.{k}"
        for ndim in sorted(ndims):
            configs.check_config(m, ndim, {k: v}, where=f"{chk.where}: {where}")
    # a preset written for another method than the row's
    for k, v in preset.items():
        if k not in PRESET_META:
            for ndim in sorted(ndims):
                configs.check_config(m, ndim, {k: v}, where=f"{chk.where}: losses.{row['loss']}.{k} (row {key})")
    return {m}


def _profile_check(chk: _Check, settings: dict, key: str, ndim: int, methods: set[str]) -> None:
    known: set[str] = set()
    for m in methods:
        if configs.is_method(m):
            known |= set(configs.config_class(m).settings(ndim))
    for k in settings:
        if methods and k not in known:
            chk.fail(f"{key}.{k}", f"unknown setting for every method of this experiment "
                                   f"({', '.join(sorted(methods))})")


__all__ = ["Experiment", "PROFILES", "load_experiment", "parse_experiment", "read_yaml", "paper_numbers",
           "find_experiments", "known_datasets", "optional_module", "stage_uses_data", "EXPERIMENTS_DIR"]
