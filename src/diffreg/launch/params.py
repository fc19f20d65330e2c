"""The pipeline parameters checked once, on the head node, before any task: types and names
against nextflow_schema.json, then each parameter's range or choices. Every message is one line
``Parameter --NAME: ...`` that main.nf prints as it is."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..data.pairs import SCHEMES
from ..errors import InputError
from ..preprocess.affine import TRANSFORMS
from ..preprocess.slices import parse_slice

SCHEMA = Path(__file__).resolve().parents[3] / "nextflow_schema.json"
PROFILES = ("test", "test_full", "full")
DEVICES = ("auto", "cpu", "cuda")


def fail(name: str, what: str) -> None:
    raise InputError(f"Parameter --{name}: {what}")


def schema_specs(schema: Path = SCHEMA) -> dict[str, dict]:
    """Every parameter of the schema, all groups together."""
    doc = json.loads(schema.read_text())
    out: dict[str, dict] = {}
    for group in doc.get("$defs", doc.get("definitions", {})).values():
        out.update(group.get("properties", {}))
    return out


def weight_params(schema: Path = SCHEMA) -> list[str]:
    """The user files a paper may depend on: the parameters of the schema's `weights` group."""
    doc = json.loads(schema.read_text())
    return list(doc.get("$defs", {}).get("weights", {}).get("properties", {}))


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower().replace("-", "_")


def _type_ok(value: Any, t: str) -> bool:
    return ((t == "string" and isinstance(value, str))
            or (t == "integer" and isinstance(value, int) and not isinstance(value, bool))
            or (t == "number" and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (t == "boolean" and isinstance(value, bool))
            or t == "null" and value is None)


def check_types(params: dict, specs: dict[str, dict]) -> None:
    """Unknown names (Nextflow also hands camelCase and kebab-case spellings of each) and types."""
    unknown = [k for k in params if k not in specs and _snake(k) not in specs]
    if unknown:
        raise InputError(f"Unknown parameter(s): {', '.join('--' + k for k in unknown)} "
                         "(see: nextflow run main.nf --help)")
    for name, spec in specs.items():
        value = params.get(name)
        if value is None:
            continue
        types = spec.get("type") if isinstance(spec.get("type"), list) else [spec.get("type")]
        if not any(_type_ok(value, t) for t in types):
            fail(name, f"expected {' or '.join(t for t in types if t != 'null')}, got '{value}'")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# name -> (predicate, what it must be): the ranges of diffreg.training.config.RANGES where they overlap
RANGES: dict[str, tuple] = {
    "train_iterations": (lambda v: v >= 1, "must be an integer >= 1"),
    "checkpoint_every": (lambda v: v >= 1, "must be an integer >= 1"),
    "seeds": (lambda v: 1 <= v <= 100, "must be an integer in [1, 100]"),
    "batch_size": (lambda v: v >= 1, "must be an integer >= 1"),
    "learning_rate": (lambda v: _finite(v) and 0 < v <= 1,
                      "must be a number in (0, 1] (Adam moves every weight by about lr per step)"),
    "lambda_reg": (lambda v: _finite(v) and v >= 0, "must be a finite number >= 0"),
    "toy_subjects": (lambda v: v >= 3, "must be an integer >= 3 (2 test, 1 train)"),
    "toy_size": (lambda v: 16 <= v <= 256, "must be an integer between 16 and 256"),
    "standin_subjects": (lambda v: v >= 3, "must be an integer >= 3 (2 test, 1 train)"),
    "standin_size": (lambda v: 16 <= v <= 256, "must be an integer between 16 and 256"),
    "max_pairs": (lambda v: v >= 1, "must be an integer >= 1"),
    "seed": (lambda v: 0 <= v < 2**32, "must be an integer in [0, 2^32)"),
}


def check_values(params: dict, project: Path) -> None:
    """Ranges and choices of the parameters that need no dataset to judge."""
    for name, (ok, what) in RANGES.items():
        if params.get(name) is not None and not ok(params[name]):
            fail(name, f"{what}, got {params[name]}")
    choices = {"toy_ndim": (2, 3), "device": DEVICES, "experiment_profile": PROFILES, "affine": TRANSFORMS,
               "pair_scheme": SCHEMES, "pair_split": ("train", "val", "test")}
    for name, allowed in choices.items():
        if params.get(name) is not None and params[name] not in allowed:
            fail(name, f"must be {', '.join(map(str, allowed[:-1]))} or {allowed[-1]}, got '{params[name]}'")
    if params.get("crop_shape") is not None:
        parts = str(params["crop_shape"]).replace(" ", "").split(",")
        if not (len(parts) in (2, 3) and all(p.isdigit() and int(p) > 0 for p in parts)):
            fail("crop_shape", f"expected 2 or 3 positive integers separated by commas (e.g. 48,48,48), "
                               f"got '{params['crop_shape']}'")
    if params.get("experiment_slice") is not None:
        try:
            axis, _ = parse_slice(str(params["experiment_slice"]))
        except InputError:
            axis = -1
        if axis not in (0, 1, 2):
            fail("experiment_slice", f"expected AXIS[:mid|label|INDEX] with AXIS 0, 1 or 2 (e.g. 2:mid), "
                                     f"got '{params['experiment_slice']}'")
    for name, spec in schema_specs().items():
        if spec.get("format") == "file-path" and params.get(name) and not Path(str(params[name])).exists():
            fail(name, f"file not found: {params[name]}")
    for name in ("input", "reference", "label_names"):
        if params.get(name) and not Path(str(params[name])).exists():
            fail(name, f"file not found: {params[name]}")
    if params.get("label_names"):
        path = str(params["label_names"])
        try:
            names = json.loads(Path(path).read_text())
        except ValueError as exc:
            fail("label_names", f"{path}: invalid JSON ({exc})")
        if not isinstance(names, dict) or not all(re.fullmatch(r"-?\d+", str(k)) for k in names):
            fail("label_names", f"{path}: expected a JSON object of label value -> name, e.g. {{\"1\": \"CSF\"}}")


def split_list(value) -> list[str]:
    """A comma-separated parameter as its items; 'none' and blanks dropped."""
    if value in (None, False, ""):
        return []
    return [s.strip() for s in str(value).split(",") if s.strip() and s.strip() != "none"]


__all__ = ["SCHEMA", "schema_specs", "weight_params", "check_types", "check_values", "split_list", "fail"]
