"""What an evaluation scores: every metric name, the label names (``labels.json``) and the
evaluation config (``diffreg evaluate --config``: EvalConfig), whose key checks the experiment
YAML's tasks share. The scoring itself is diffreg.evaluation."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from diffreg.errors import InputError
from diffreg.io import load_json_object
from diffreg.trajectory_metrics import METRICS as SAVED_TRAJECTORY_METRICS

WHOLE = "all"    # label of whole-field / whole-image metrics
MEAN = "mean"    # label of the nanmean over foreground labels

# every metric name, by what it scores
LABEL_METRICS = ("dice", "dice_before", "hd95_vox", "hd95_mm",     # per label, per union, and their mean
                 "dice_structures", "dice_structures_before")      # mean Dice over labels and unions
FIELD_METRICS = ("pct_jac_nonpos", "sdlogj", "njd", "jsd", "pct_nondiff", "ndv_pct")
FIELD_KEYS = ("folding_percent", "sdlogj", "njd", "jsd", "strict_percent", "ndv_percent")  # in summary_jacobian
IMAGE_METRICS = ("mse", "psnr", "nmse", "ssim")
# the same of the moving image as given (the tables' "initial" row, as the papers print one)
IMAGE_BEFORE_METRICS = tuple(f"{m}_before" for m in IMAGE_METRICS)
# the moving image warped by each trajectory field against the true frame at that time
TRAJECTORY_METRICS = ("psnr_continuous", "nmse_continuous")
# squared landmark distance (voxels^2) of the field, of the identity, along the trajectory (Fig. 6)
LANDMARK_METRICS = ("landmark_mse", "landmark_mse_before", "landmark_mse_continuous")
RUN_METRICS = ("runtime_s", "threads")                              # from run.json
# a paper's official computation beside ours (metrics_official): only where an artifact names them
OFFICIAL_LABEL_METRICS = ("dice_official", "dice_structures_official")
# a registration's generated image (DiffuseMorph's Fig. 7) against the fixed image, and (`_before`)
# the moving image it was generated from
GENERATED_METRICS = ("nmse_generated", "ssim_generated", "nmse_generated_before", "ssim_generated_before")
METRIC_NAMES = (LABEL_METRICS + FIELD_METRICS + IMAGE_METRICS + IMAGE_BEFORE_METRICS + TRAJECTORY_METRICS
                + LANDMARK_METRICS + RUN_METRICS + OFFICIAL_LABEL_METRICS + GENERATED_METRICS
                + SAVED_TRAJECTORY_METRICS)
SCORE_ON = ("rgb",)   # versions of an image the intensity metrics can be scored on (config score_on)


def load_label_names(path: str | os.PathLike | None) -> dict[int, str]:
    """``labels.json`` ({"0": "background", "1": "CSF", ...}) -> {int: name}; {} when not given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        raw = json.loads(path.read_text())
        names = {int(k): str(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise InputError(f"{path}: not a JSON object of label id -> name ({exc})") from None
    if len(set(names.values())) != len(names):
        raise InputError(f"{path}: label names are not unique")
    return names


def label_name(label: int, names: dict[int, str]) -> str:
    return names.get(int(label), f"label {int(label)}")


@dataclass
class EvalConfig:
    """What an experiment asks of an evaluation (``diffreg evaluate --config``)."""
    experiment: str | None = None
    dataset: str | None = None
    label_unions: dict[str, list[int]] = field(default_factory=dict)   # name -> label values
    metrics: list[str] | None = None                                   # None: every metric
    trajectory: dict | None = None      # {references: [modality, ...], times: [t, ...]} (check_trajectory)
    landmarks: bool = False             # score the subjects' landmark files (landmark_mse*)
    score_on: str | None = None         # intensity metrics on this version of the images (SCORE_ON)
    scored_labels: list[int] | None = None   # the single labels scored (and averaged); None: every one

    KEYS = ("experiment", "dataset", "label_unions", "metrics", "trajectory", "landmarks", "score_on",
            "scored_labels")

    @classmethod
    def from_dict(cls, raw: dict, where: str = "evaluation config") -> "EvalConfig":
        unknown = sorted(set(raw) - set(cls.KEYS))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(cls.KEYS)})")
        for key in ("experiment", "dataset"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise InputError(f"{where}: {key} must be a string")
        traj = raw.get("trajectory")
        return cls(raw.get("experiment"), raw.get("dataset"),
                   check_unions(raw.get("label_unions") or {}, where), check_metrics(raw.get("metrics"), where),
                   check_trajectory(traj, where) if traj is not None else None,
                   check_landmarks(raw.get("landmarks", False), where), check_score_on(raw.get("score_on"), where),
                   check_scored_labels(raw.get("scored_labels"), where))

    def label_names(self, names: dict[int, str]) -> dict[int, str]:
        """The label map's names restricted to `scored_labels` (a paper's Dice over some labels:
        LDM-Morph's LV endocardium on CAMUS), so that the per-label rows and their mean are those."""
        if not self.scored_labels:
            return names
        return {k: label_name(k, names) for k in self.scored_labels}


def load_eval_config(path: str | os.PathLike | None) -> EvalConfig:
    if path is None:
        return EvalConfig()
    return EvalConfig.from_dict(load_json_object(path, "evaluation config"), str(path))


def check_scored_labels(raw, where: str = "scored_labels") -> list[int] | None:
    """None or a non-empty list of distinct nonzero label values."""
    if raw is None:
        return None
    ok = isinstance(raw, list) and raw and all(isinstance(v, int) and not isinstance(v, bool) and v != 0 for v in raw)
    if not ok or len(set(raw)) != len(raw):
        raise InputError(f"{where}: scored_labels must be a list of distinct nonzero label values, got {raw!r}")
    return sorted(raw)


def check_unions(unions, where: str = "label_unions") -> dict[str, list[int]]:
    """{name: [nonzero label values]}; names must not be the reserved 'mean' and 'all'."""
    if not isinstance(unions, dict):
        raise InputError(f"{where}: label_unions must map a name to a list of label values")
    out = {}
    for name, values in unions.items():
        if name in (MEAN, WHOLE) or not str(name).strip():
            raise InputError(f"{where}: label union name '{name}' is reserved or empty")
        ok = isinstance(values, list) and values and all(
            isinstance(v, int) and not isinstance(v, bool) and v != 0 for v in values)
        if not ok:
            raise InputError(f"{where}: label union {name}: expected a list of nonzero label values, got {values!r}")
        out[str(name)] = sorted(set(values))
    return out


def check_trajectory(raw, where: str = "trajectory") -> dict:
    """{references: [modality, ...], times: [t in (0, 1), ...]} of equal lengths: the frames of
    the fixed subject between moving (t = 0) and fixed (t = 1), e.g. ACDC's cine frames."""
    if not isinstance(raw, dict) or set(raw) != {"references", "times"}:
        raise InputError(f"{where}: trajectory must have exactly the keys references and times")
    refs, times = raw["references"], raw["times"]
    if not (isinstance(refs, list) and refs and all(isinstance(r, str) and r for r in refs)):
        raise InputError(f"{where}: trajectory references must be a list of modality names")
    if not (isinstance(times, list) and len(times) == len(refs)
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in times)):
        raise InputError(f"{where}: trajectory times must be {len(refs)} numbers in (0, 1), one per reference")
    return {"references": list(refs), "times": [float(t) for t in times]}


def check_landmarks(raw, where: str = "landmarks") -> bool:
    if not isinstance(raw, bool):
        raise InputError(f"{where}: landmarks must be true or false, got {raw!r}")
    return raw


def check_score_on(raw, where: str = "score_on") -> str | None:
    """None (the registered grey images) or one of SCORE_ON."""
    if raw is not None and raw not in SCORE_ON:
        raise InputError(f"{where}: score_on must be one of {', '.join(SCORE_ON)} or absent, got {raw!r}")
    return raw


def check_metrics(wanted, where: str = "metrics") -> list[str] | None:
    """None (every metric) or a list of names of METRIC_NAMES."""
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
        raise InputError(f"{where}: metrics must be a list of metric names or null")
    unknown = sorted(set(wanted) - set(METRIC_NAMES))
    if unknown:
        raise InputError(f"{where}: unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRIC_NAMES)})")
    return list(wanted)
