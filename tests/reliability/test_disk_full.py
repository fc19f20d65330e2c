"""A full disk under --outdir: Nextflow's own error lines say only "Failed to publish file ... --
See log file for details"; the completion handler (PIPELINE_COMPLETION) adds one error line with the cause and the
file that did not fit (after Nextflow's; files are published in parallel, so a late "Failed to
publish" line may still follow it), and records it in runs.tsv when there is room.

The full disk is a 64 KiB tmpfs mounted on the case's folder (the toy data published first does
not fit), so the case needs root and a kernel that lets it mount: skipped otherwise."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.pipeline.conftest import run_nextflow

pytestmark = pytest.mark.pipeline

CAUSE = re.compile(r"ERROR ~ No space left on device writing (?P<path>\S+): free space there \(or give "
                   r"--outdir / -work-dir on a larger disk\), then rerun with -resume")


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def disk_full(cwd: Path) -> tuple[int, list[str], Path]:
    """rc, the lines starting with "ERROR ~", the outdir (shared with benchmarks/reliability_table.py)."""
    full = cwd / "full"
    if not _mount_tmpfs(full, "64k"):
        pytest.skip("needs root and tmpfs mounts (a 64 KiB file system as --outdir)")
    try:
        proc = run_nextflow(cwd, "-profile", "test", "--papers", "none", "--outdir", str(full), timeout=600)
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("ERROR ~")]
        return proc.returncode, errors, full
    finally:
        subprocess.run(["umount", "-l", str(full)], capture_output=True)


def cause_line(errors: list[str]) -> str | None:
    """The handler's line among the error lines (the one naming the cause), or None."""
    return next((e for e in errors if CAUSE.fullmatch(e)), None)


def test_disk_full_names_the_cause_in_an_error_line(tmp_path):
    rc, errors, full = disk_full(tmp_path)
    assert rc != 0
    assert errors and errors[0].startswith("ERROR ~ Failed to publish file: ")   # Nextflow's own
    assert sum(bool(CAUSE.fullmatch(e)) for e in errors) == 1, errors
    others = [e for e in errors if not CAUSE.fullmatch(e)]
    assert all(e.startswith("ERROR ~ Failed to publish file: ") for e in others), others
    m = CAUSE.fullmatch(cause_line(errors))
    assert Path(m["path"]).parent == full / "toy_data"
