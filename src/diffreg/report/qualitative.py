"""Qualitative figures of an artifact: which registrations each panel shows (a pair all runs of
a group registered), their images warped by the fields, and a trajectory's frames beside the
reference frames of the artifact's task."""
from __future__ import annotations

import numpy as np
import pandas as pd

from diffreg import spatial
from diffreg.errors import InputError
from diffreg.experiment_model import Artifact
from diffreg.io import read_field, read_image
from diffreg.registration_outputs import fixed_subject, load_pair
from diffreg.report.experiment_rows import Experiment, RAN

def _split_row(row: str) -> tuple[str, str | None]:
    """"lncc (be_nbe)" -> ("lncc", "be_nbe"): a figure drawn from several tables names the table's
    test set after the row."""
    if row.endswith(")") and " (" in row:
        base, _, rest = row.rpartition(" (")
        return base, rest[:-1]
    return row, None


def qualitative_rows(spec: Artifact, uses_all: pd.DataFrame, key: str, regs: list, images, df_all: pd.DataFrame):
    """QualitativeRow per listed run that ran, on the first pair (sorted) that all runs of a group
    registered (else the pair most of them registered). Groups: one per test set named after the
    figure's own rows ("lncc (be_be)"), else one per `from:` artifact when the figure has no rows."""
    from diffreg.report.figures import QualitativeRow  # deferred: pulls in matplotlib
    wanted = spec.row_names
    own = uses_all[uses_all["artifact"] == key]
    if len(own):
        groups = {}
        for _, u in own.iterrows():
            groups.setdefault(_split_row(u["row"])[1], []).append(u)
        groups = [(g, pd.DataFrame(rs)) for g, rs in groups.items()]
    else:
        sources = list(spec.from_ or [])
        groups = [(s if len(sources) > 1 else None, uses_all[uses_all["artifact"] == s]) for s in sources]
    rank = {r: i for i, r in enumerate(wanted)}
    rows, pairs, used = [], [], []
    for group, u in groups:
        listed = np.array([not wanted or _split_row(r)[0] in rank or r in rank for r in u["row"]], bool)
        u = u[(u["status"] == RAN).to_numpy() & listed]
        u = u.drop_duplicates("row")
        u = u.iloc[sorted(range(len(u)), key=lambda i: rank.get(_split_row(u["row"].iloc[i])[0], len(rank)))]
        by_label = {r: [g for g in regs if g.method == r] for r in u["label"]}
        u = u[[bool(by_label[r]) for r in u["label"]]]
        if u.empty:
            continue
        counts: dict[str, int] = {}
        for r in dict.fromkeys(u["label"]):
            for p in {g.pair for g in by_label[r]}:
                counts[p] = counts.get(p, 0) + 1
        pair = sorted(counts, key=lambda p: (-counts[p], p))[0]
        pairs.append(pair if group is None else f"{pair} ({group})")
        for _, x in u.iterrows():
            reg = next((g for g in by_label[x["label"]] if g.pair == pair), None)
            if reg is None:
                continue
            d = df_all[(df_all["method"] == x["label"]) & (df_all["pair"] == pair) & (df_all["metric"] == "dice")
                       & (df_all["label"] == "mean")]
            dice = float(d["value"].mean()) if len(d) else None
            label = x["row"] if len(own) or group is None else f"{x['row']} ({group})"
            rows.append(QualitativeRow(label, load_pair(reg, images.only(dataset_of(df_all, x["label"]))), dice))
            used.append(reg)
    return rows, pairs, used


def dataset_of(metrics: pd.DataFrame, label: str) -> str | None:
    """The dataset a registration set ran on, from its metrics (None when it has none)."""
    d = metrics.loc[metrics["method"] == label, "dataset"] if "dataset" in metrics else []
    return str(d.iloc[0]) if len(d) else None


def qualitative_view(show: str, rows: list, regs: list, title: str, exp: Experiment, spec: Artifact,
                     images) -> tuple[bytes | None, str]:
    """The PNG of a qualitative figure's view (``show`` in the YAML) and the caption's words (or
    None and why not): the registration panels, the trajectory, or the generated images."""
    # deferred: pulls in matplotlib
    from diffreg.report import figures
    from diffreg.report.figures.trajectory import generated_figure, trajectory_figure
    if show == "registration":
        return figures.qualitative_figure(rows, title), "the grid shows x + u(x), the backward map into the moving image"
    if show == "generated":
        made = [(r.method, r.data.moving, r.data.fixed, r.data.warped(), read_image(g.path / "generated.nii.gz")[0])
                for r, g in zip(rows, regs) if "generated" in (g.run.get("images") or [])]
        if not made:
            return None, "no listed run wrote a generated image (a row with generate: true)"
        return generated_figure(made, title), "generated: the moving image forward-diffused and denoised back " \
                                              "conditioned on (moving, fixed)"
    out, note = trajectory_rows(rows, regs, _task_trajectory(exp, spec), images)
    if not out:
        return None, "no listed run wrote a trajectory (trajectory settings of its method)"
    return trajectory_figure(out, title), "each column warps the moving image by the field at that time" + note


def trajectory_rows(rows: list, regs: list, traj: dict | None, images) -> tuple[list, str]:
    """TrajectoryRow per run that wrote a trajectory (its moving image warped by the field at each
    time strictly between 0 and 1), then the true frames of the fixed subject where the task has
    them; and a note when they are missing."""
    from diffreg.report.figures.trajectory import TrajectoryRow  # deferred: pulls in matplotlib
    out = []
    for r, g in zip(rows, regs):
        times = [float(t) for t in (g.run.get("trajectory_times") or [])]
        frames = {t: spatial.warp_numpy(r.data.moving, read_field(g.path / f"disp_step{k}.nii.gz")[0], mode="linear")
                  for k, t in enumerate(times) if 0 < t < 1}
        if frames:
            out.append(TrajectoryRow(r.method, r.data.moving, r.data.fixed, frames))
    note = ""
    if out and traj:
        subject = fixed_subject(regs[0])
        try:
            truth = {float(t): read_image(images.find(f"{subject}_{m}.nii.gz"))[0]
                     for m, t in zip(traj["references"], traj["times"])}
            out.append(TrajectoryRow("true frames", rows[0].data.moving, rows[0].data.fixed, truth))
        except InputError as err:
            note = f"; true frames not found ({err})"
    return out, note


def _task_trajectory(exp: Experiment, spec: Artifact) -> dict | None:
    """The reference frames of the figure's task (the real one first), or None."""
    names = [v for v in spec.tasks.values() if v in exp.tasks]
    return next((exp.tasks[n].trajectory for n in names if exp.tasks[n].trajectory), None)
