"""The papers of a launch: --papers resolved to experiment YAMLs (each fully validated now, so a
typo stops the launch before any task), --artifacts checked against them, and whether any
selected artifact falls back to the embedded brain population."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..experiments import load_experiment
from ..planner import select_artifacts
from .params import fail, split_list


def paper_files(value, experiments_dir: Path) -> list[Path]:
    """--papers: names of experiments/<name>.yaml, paths to YAML files, or all."""
    known = sorted(p.stem for p in experiments_dir.glob("*.yaml") if p.stem != "baselines")
    names = split_list(value)
    if names == ["all"]:
        names = known
    out = []
    for name in names:
        is_path = name.endswith((".yaml", ".yml"))
        path = Path(name) if is_path else experiments_dir / f"{name}.yaml"
        if not path.is_file():
            fail("papers", f"no {name if is_path else f'experiments/{name}.yaml'} "
                           f"(known: {', '.join(known)}, or a path to a YAML file)")
        out.append(path.resolve())
    return out


def load_papers(files: list[Path]) -> list:
    out = []
    for f in files:
        try:
            out.append(load_experiment(f))
        except InputError as exc:
            fail("papers", str(exc))
    return out


def check_artifacts(value, experiments: list) -> list[str]:
    """--artifacts: each selector names a paper run, PAPER:ARTIFACT, PAPER:ARTIFACT:ROW+ROW or an
    artifact some paper has; checked by the planner's selection, the one check of it."""
    sels = [s for s in split_list(value) if s != "all"]
    select_artifacts(experiments, sels)
    return sels


def toy_needed(params: dict, files: list[Path], experiments: list, given: set[str], sels: list[str]) -> bool:
    """The embedded brain population: for the main path, a launch with nothing else to run, or a
    selected artifact whose task falls back to dataset `toy` because its real dataset is not given."""
    if split_list(params.get("methods")) or split_list(params.get("baselines")) or not experiments:
        return True
    for f, exp in zip(files, experiments):
        for name, art in exp.artifacts.items():
            if sels and not (f.stem in sels or name in sels or any(x.startswith(f"{f.stem}:{name}") and
                                                                    x[len(f"{f.stem}:{name}"):][:1] in ("", ":") for x in sels)):
                continue
            choice = art.tasks
            real, toy = exp.tasks.get(choice.get("real")), exp.tasks.get(choice.get("toy"))
            on_toy = (lambda t: t is not None and t.dataset == "toy")
            if on_toy(real) or (on_toy(toy) and not (real is not None and real.dataset in given)):
                return True
    return False


__all__ = ["paper_files", "load_papers", "check_artifacts", "toy_needed"]
