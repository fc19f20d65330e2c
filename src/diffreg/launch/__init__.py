"""`diffreg launch`: everything the pipeline decides before its first task, in one place.

main.nf hands over its parameters as JSON; this checks every one of them (types against
nextflow_schema.json, ranges, choices, files, samplesheets, experiment YAMLs, --artifacts,
--dataset_args), lists the datasets the run makes or reads, plans the run once without data
(the same Planner the PLAN task runs) so that a plan error stops the launch too, and writes
``launch.json``, which Groovy only reads. The first problem is one line ``Parameter --NAME: ...``
or ``Samplesheet PATH: ...``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import configs, plan_inputs
from ..errors import InputError
from ..experiments import load_experiment
from ..planner import Planner
from .datasets import (TOY_MODALITIES, Dataset, check_preprocess_flags, dataset_args, datasets_2d,
                       standin_datasets, user_datasets)
from .papers import check_artifacts, load_papers, paper_files, toy_needed
from .params import check_types, check_values, fail, schema_specs, split_list, weight_params

PROJECT = Path(__file__).resolve().parents[3]


def _check_registered(params: dict) -> None:
    from ..baselines import BASELINES  # deferred: the baselines' modules import nibabel and scipy

    for param, known, what in (("methods", configs.method_names(), "method"),
                               ("baselines", BASELINES.names(), "baseline")):
        bad = [m.split("=")[0] for m in split_list(params.get(param)) if m.split("=")[0] not in known]
        if bad:
            fail(param, f"unknown {what}(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")


def plan_args(params: dict, main_dataset: str | None, given: list[str]) -> list[str]:
    """The PLAN task's flags: profile, seeds, artifacts, given user files and the main path."""
    methods, baselines = split_list(params.get("methods")), split_list(params.get("baselines"))
    baselines = [f"{b}={params[b + '_preset']}" if params.get(b + "_preset") else b for b in baselines]
    args = ["--profile", str(params.get("experiment_profile", "full"))]
    if (params.get("seeds") or 1) > 1:
        args += ["--seeds", str(params["seeds"])]
    sels = [s for s in split_list(params.get("artifacts")) if s != "all"]
    if sels:
        args += ["--artifacts", ",".join(sels)]
    if given:
        args += ["--given", ",".join(sorted(given))]
    if methods:
        args += ["--main-methods", ",".join(methods)]
    if baselines:
        args += ["--main-baselines", ",".join(baselines)]
    if methods or baselines:
        args += ["--main-dataset", str(main_dataset), "--main-moving", str(params.get("moving_modality")),
                 "--main-fixed", str(params.get("fixed_modality")),
                 "--main-pairing", "intra" if params.get("pair_scheme") == "intra" else "inter"]
        settings = {"backbone": params.get("backbone"), "similarity": params.get("similarity"),
                    "regulariser": params.get("regulariser"), "lambda_reg": params.get("lambda_reg"),
                    "batch_size": params.get("batch_size"), "lr": params.get("learning_rate"),
                    "iterations": params.get("train_iterations")}
        for k, v in settings.items():
            if v is not None:
                args += ["--main-set", f"{k}={v}"]
    return args


def dry_plan(files: list[Path], datasets: list[Dataset], sliced: list[str], args: list[str]) -> str:
    """The plan the PLAN task will make, made now from the datasets' dimensionalities alone."""
    ndims = [f"{d.name}={','.join(map(str, sorted({d.ndim} | ({2} if d.ndim == 3 and (d.name == 'toy' or d.name in sliced) else set()))))}"
             for d in datasets]
    words = ["plan", "--out", "-", *args] + [w for n in ndims for w in ("--ndims", n)]
    if files:
        words += ["--papers", *map(str, files)]
    parser = argparse.ArgumentParser(prog="diffreg plan")
    plan_inputs.add_arguments(parser)
    a = parser.parse_args(words[1:])
    nd, mods, order = plan_inputs.datasets_of(a)
    for d in datasets:   # the sheets' modalities are known now; the embedded data's when made
        mods[d.name] = set(d.modalities) if d.modalities else (set(TOY_MODALITIES) if d.name == "toy" else None)
    experiments = [load_experiment(p) for p in files]
    main = plan_inputs.main_path(a, nd, mods, order)
    if main is not None:
        experiments.insert(0, main)
    plan = Planner(experiments, nd, mods, {g for g in a.given.split(",") if g}, a.profile, a.seeds,
                   artifacts=a.artifacts.split(",")).build()
    return (f"{len(plan.trainings)} trainings, {len(plan.registrations)} registration sets, "
            f"{len(plan.figures)} figures")


def _main_sheet_checks(params: dict, main: Dataset) -> list[str]:
    """What the main path reads of the first dataset: its split for the pairs, training subjects
    for the learned methods, the reference modality for the alignment."""
    notes = []
    split = params.get("pair_split") or "test"
    if main.splits and split not in main.splits:
        fail("pair_split", f"no subject of {main.sheet} has split {split} (splits: {', '.join(main.splits)})")
    if split_list(params.get("methods")) and main.splits and "train" not in main.splits:
        fail("methods", f"no subject of {main.sheet} has split train: the learned methods need training "
                        f"subjects (or give --methods none)")
    ref = params.get("reference_modality")
    if main.modalities and ref not in main.modalities:
        notes.append(f"--reference_modality {ref}: no image_{ref} column in {main.sheet}; each subject is "
                     f"aligned with its first image ({main.modalities[0]})")
    return notes


def build_launch(params: dict, project: Path = PROJECT) -> dict:
    """launch.json's content; InputError with one line on the first problem."""
    check_types(params, schema_specs())
    check_values(params, project)
    if not params.get("input"):
        for p in ("moving_modality", "fixed_modality"):
            if params.get(p) not in TOY_MODALITIES:
                fail(p, f"'{params.get(p)}' is no modality of the embedded toy data "
                        f"(modalities: {', '.join(TOY_MODALITIES)})")
    _check_registered(params)
    files = paper_files(params.get("papers"), project / "experiments")
    experiments = load_papers(files)
    sels = check_artifacts(params.get("artifacts"), experiments)
    flags = dataset_args(params.get("dataset_args"))
    if params.get("preprocess_args"):
        check_preprocess_flags(str(params["preprocess_args"]), "Parameter --preprocess_args")
    for name, f in flags.items():
        check_preprocess_flags(f, f"Parameter --dataset_args: {name}")
    datasets = user_datasets(params)
    notes = _main_sheet_checks(params, datasets[0]) if params.get("input") else []
    given = {d.name for d in datasets[1 if params.get("input") else 0:]}
    if not params.get("input") and toy_needed(params, files, experiments, given, sels):
        datasets.insert(0, Dataset("toy", None, int(params.get("toy_ndim") or 3), modalities=TOY_MODALITIES))
    unknown = [n for n in flags if n.removesuffix(":2d") not in {d.name for d in datasets}]
    if unknown:
        fail("dataset_args", f"no dataset {', '.join(unknown)} (given: {', '.join(d.name for d in datasets)})")
    datasets += standin_datasets(datasets, experiments, params.get("standins"))
    sliced = datasets_2d(experiments)
    weights = {w: str(params[w]) for w in weight_params() if params.get(w)}
    args = plan_args(params, datasets[0].name if datasets else None, list(weights))
    try:
        summary = dry_plan(files, datasets, sliced, args)
    except InputError as exc:
        raise InputError(f"Plan: {exc}") from None
    return {"datasets": [d.to_json() for d in datasets], "papers": [str(f) for f in files],
            "weights": weights, "sliced": sliced,
            "recipes2d": [n.removesuffix(":2d") for n in flags if n.endswith(":2d")],
            "dataset_flags": flags, "plan_args": " ".join(args), "notes": notes, "summary": summary}


__all__ = ["build_launch", "plan_args", "dry_plan"]
