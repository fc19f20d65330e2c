"""Classical baselines: field conversions against analytic answers, and recovery of a known warp.

Conversion tests compare our voxel field with (a) the closed-form answer for a known transform
and (b) the tool's own resampling, which must equal our warp with that field. Recovery tests run
each baseline's `test` preset on a pair made with a known smooth warp (2D 64^2, 3D 24^3).
Everything runs on one thread: the machines running the tests are small and shared.
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from diffreg import metrics, spatial
from diffreg.baselines import BASELINES, Volume, run_baseline
from diffreg.baselines import lddmm_solver as lddmm_mod
from diffreg.baselines import niftyreg as nr
from diffreg.baselines.geometry import itk_geometry_from_affine, physical_to_voxel_displacement
from diffreg.baselines.synthetic import known_pair
from diffreg.errors import InputError
from diffreg.io import read_field, read_image, read_labels

ROOT = Path(__file__).resolve().parents[2]

NIFTYREG_BIN, NIFTYREG_WHY = nr.find_bin()
needs_niftyreg = pytest.mark.skipif(NIFTYREG_BIN is None, reason=f"NiftyReg not built: {NIFTYREG_WHY}")


@pytest.fixture(scope="module")
def ants():
    from diffreg.baselines.syn import import_ants
    return import_ants(1)


def rotation(deg: float, ndim: int, axes=(0, 1)) -> np.ndarray:
    r = np.eye(ndim)
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    i, j = axes
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def oblique_affine(deg: float, spacing, origin, axes=(0, 1)) -> np.ndarray:
    """NIfTI affine (RAS) with a rotated direction matrix and anisotropic spacing."""
    a = np.eye(4)
    a[:3, :3] = rotation(deg, 3, axes) @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def smooth_image(shape, seed=0) -> np.ndarray:
    """A smooth random image: linear interpolation of it is close to exact."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 2.0).astype(np.float32)


def sampled_inside(u: np.ndarray) -> np.ndarray:
    """Voxels whose sample point x + u(x) lies at least a voxel inside the moving grid, where
    every tool's linear interpolation is defined the same way."""
    shape = u.shape[1:]
    grid = spatial.identity_grid(shape)[0].numpy()
    return np.all([(u[d] + grid[d] > 1) & (u[d] + grid[d] < shape[d] - 2) for d in range(len(shape))], axis=0)


def interior(shape, margin):
    return tuple(slice(margin, n - margin) for n in shape)


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("ndim", [2, 3])
def test_ants_image_has_the_nifti_geometry(ants, ndim):
    """Voxel index -> physical point of the ANTs image equals the NIfTI affine, flipped to LPS."""
    from diffreg.baselines.syn import to_ants
    shape = (7, 9, 5)[:ndim]
    affine = oblique_affine(25.0, (1.2, 0.8, 1.5), (-10.0, 5.0, 3.0))
    img = to_ants(ants, Volume(smooth_image(shape), affine))
    assert img.shape == shape
    for idx in [(0, 0, 0), (3, 1, 4), (6, 8, 2)]:
        idx = idx[:ndim]
        ras = affine @ np.array([*idx, *([0] * (3 - ndim)), 1.0])
        lps = np.array([-ras[0], -ras[1], ras[2]])[:ndim]
        assert np.allclose(ants.transform_index_to_physical_point(img, idx), lps, atol=1e-5)


def test_canonical_array_matches_itk_reading_of_a_non_canonical_file(ants, tmp_path):
    """diffreg.io reorders a LPI/permuted file to RAS; the ANTs image built from that array holds
    the same physical content as ITK's own reading of the file."""
    from diffreg.baselines.syn import to_ants
    shape = (10, 12, 8)
    arr = smooth_image(shape, seed=3)
    affine = np.array([[0.0, -1.1, 0.0, 20.0],   # file axis 1 -> -x
                       [-0.9, 0.0, 0.0, 15.0],   # file axis 0 -> -y
                       [0.0, 0.0, 1.3, -4.0],
                       [0.0, 0.0, 0.0, 1.0]])
    path = tmp_path / "lp.nii.gz"
    nib.save(nib.Nifti1Image(arr, affine), str(path))
    canon, canon_affine = read_image(path)
    assert canon.shape != arr.shape  # axes really were permuted
    ours = to_ants(ants, Volume(canon, canon_affine))
    theirs = ants.image_read(str(path))
    resampled = ants.resample_image_to_target(theirs, ours, interp_type="nearestNeighbor").numpy()
    assert np.allclose(resampled, canon, atol=1e-6)


# ----------------------------------------------------------------------------- ANTs conversion

def _ants_affine(ants, tmp_path, ndim, matrix, center, translation):
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=ndim,
                                    matrix=np.asarray(matrix), center=tuple(center),
                                    translation=tuple(translation))
    path = str(tmp_path / "tx.mat")
    ants.write_transform(tx, path)
    return path


@pytest.mark.parametrize("ndim", [2, 3])
def test_ants_known_shift_on_oblique_grid(ants, tmp_path, ndim):
    """A physical translation t becomes the constant voxel shift (D S)^-1 t on a rotated,
    anisotropic grid, and ANTs' own resampling equals our warp with that field."""
    from diffreg.baselines.syn import to_ants, transforms_to_voxel_displacement
    shape = (20, 18, 16)[:ndim]
    affine = oblique_affine(30.0, (1.5, 0.75, 1.2), (4.0, -3.0, 7.0))
    fixed = Volume(smooth_image(shape, 1), affine)
    moving = Volume(smooth_image(shape, 2), affine)
    fi, mi = to_ants(ants, fixed), to_ants(ants, moving)
    t = np.array([2.0, -1.5, 1.0])[:ndim]
    tx = _ants_affine(ants, tmp_path, ndim, np.eye(ndim), np.zeros(ndim), t)
    u = transforms_to_voxel_displacement(ants, fi, mi, [tx], str(tmp_path / "c_"))

    geom = itk_geometry_from_affine(affine, ndim)
    expected = np.linalg.solve(geom.direction @ np.diag(geom.spacing), t)
    assert np.abs(expected).max() > 1.0  # a shift of more than a voxel along some axis
    assert np.allclose(u, expected.reshape(ndim, *([1] * ndim)), atol=1e-4)

    theirs = ants.apply_transforms(fi, mi, [tx]).numpy()
    ours = spatial.warp_numpy(moving.array, u)
    sl = interior(shape, 3)
    assert np.abs(theirs[sl] - ours[sl]).max() < 1e-4


@pytest.mark.parametrize("ndim", [2, 3])
def test_ants_rotation_with_different_directions(ants, tmp_path, ndim):
    """Fixed and moving grids with different direction matrices, spacings and origins, and a
    rotation about a centre: the field equals M_m^-1 T(M_f x) - x, and resampling agrees."""
    from diffreg.baselines.syn import geometry_of, to_ants, transforms_to_voxel_displacement
    shape = (22, 20, 18)[:ndim]
    fixed = Volume(smooth_image(shape, 4), oblique_affine(20.0, (1.0, 1.25, 0.9), (-5.0, 2.0, 1.0)))
    moving = Volume(smooth_image(shape, 5), oblique_affine(12.0, (1.1, 1.0, 1.0), (-5.5, 1.5, 0.5)))
    fi, mi = to_ants(ants, fixed), to_ants(ants, moving)
    rot = rotation(8.0, ndim)
    center = np.array(ants.transform_index_to_physical_point(fi, tuple(n // 2 for n in shape)))
    t = np.array([1.0, 0.5, -0.5])[:ndim]
    tx = _ants_affine(ants, tmp_path, ndim, rot, center, t)
    u = transforms_to_voxel_displacement(ants, fi, mi, [tx], str(tmp_path / "c_"))

    mf, mm = geometry_of(fi).index_to_physical, geometry_of(mi).index_to_physical
    x = spatial.identity_grid(shape)[0].numpy().astype(np.float64).reshape(ndim, -1)
    pf = mf[:ndim, :ndim] @ x + mf[:ndim, ndim:]
    pm = rot @ (pf - center[:, None]) + center[:, None] + t[:, None]
    expected = (np.linalg.inv(mm) @ np.vstack([pm, np.ones((1, pm.shape[1]))]))[:ndim] - x
    assert np.allclose(u.reshape(ndim, -1), expected, atol=1e-4)
    assert np.abs(u).max() > 1.0

    theirs = ants.apply_transforms(fi, mi, [tx]).numpy()
    ours = spatial.warp_numpy(moving.array, u)
    inside = sampled_inside(u)
    assert inside.mean() > 0.4
    assert np.abs(theirs[inside] - ours[inside]).max() < 1e-4


# ----------------------------------------------------------------------------- NiftyReg conversion

@needs_niftyreg
@pytest.mark.parametrize("ndim", [2, 3])
def test_niftyreg_known_affine_on_oblique_grids(tmp_path, ndim):
    """An affine text file (floating = M reference, RAS mm) through reg_transform -disp gives
    A_m^-1 M A_f x - x, and reg_resample agrees with our warp of that field."""
    shape = (20, 18, 16)[:ndim]
    fa = oblique_affine(25.0, (1.2, 0.9, 1.1), (3.0, -2.0, 5.0))
    ma = oblique_affine(18.0, (1.0, 1.1, 1.0), (3.5, -2.5, 4.5))
    fixed, moving = Volume(smooth_image(shape, 6), fa), Volume(smooth_image(shape, 7), ma)
    ref, flo = tmp_path / "f.nii.gz", tmp_path / "m.nii.gz"
    nr.write_tool_nifti(ref, fixed)
    nr.write_tool_nifti(flo, moving)
    m = np.eye(4)
    m[:3, :3] = rotation(6.0, 3)
    m[:3, 3] = [1.5, -2.0, 0.0 if ndim == 2 else 1.0]
    aff = tmp_path / "aff.txt"
    np.savetxt(aff, m)
    u = nr.transform_to_voxel_displacement(NIFTYREG_BIN, aff, ref, fixed, moving, tmp_path)

    x = spatial.identity_grid(shape)[0].numpy().astype(np.float64).reshape(ndim, -1)
    xh = np.vstack([x, np.zeros((3 - ndim, x.shape[1])), np.ones((1, x.shape[1]))])
    expected = (np.linalg.inv(ma) @ m @ fa @ xh)[:ndim] - x
    assert np.allclose(u.reshape(ndim, -1), expected, atol=1e-3)
    assert np.abs(u).max() > 1.0

    res = tmp_path / "res.nii.gz"
    nr._run([str(NIFTYREG_BIN / "reg_resample"), "-ref", str(ref), "-flo", str(flo), "-trans", str(aff),
             "-res", str(res), "-inter", "1", "-voff"], 1)
    theirs = np.asarray(nib.load(str(res)).dataobj, dtype=np.float64).reshape(shape)
    ours = spatial.warp_numpy(moving.array.astype(np.float64), u)
    inside = sampled_inside(u)
    assert inside.mean() > 0.4
    assert np.abs(theirs[inside] - ours[inside]).max() < 1e-3


def test_physical_to_voxel_identity_and_shift():
    """Same grid, zero physical displacement -> zero; a shift of one voxel's spacing -> one voxel."""
    affine = oblique_affine(40.0, (2.0, 0.5, 1.0), (1.0, 2.0, 3.0))
    shape = (4, 5, 6)
    zero = physical_to_voxel_displacement(np.zeros((3, *shape)), affine, affine)
    assert np.abs(zero).max() < 1e-12
    step = affine[:3, 1]  # physical vector of one step along array axis 1
    u = physical_to_voxel_displacement(np.broadcast_to(step.reshape(3, 1, 1, 1), (3, *shape)), affine, affine)
    assert np.allclose(u[1], 1.0) and np.allclose(u[[0, 2]], 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- LDDMM parts

def test_lddmm_kernel_and_constant_flow():
    k = lddmm_mod.kernel_hat((16, 12), a=5.0, p=2)
    assert k.shape == (16, 7) and float(k[0, 0]) == pytest.approx(1.0)
    # symbol at the Nyquist frequency of axis 0: 1 / (1 + 4 a^2)^(2p)
    assert float(k[8, 0]) == pytest.approx(1.0 / (1 + 4 * 25.0) ** 4, rel=1e-5)
    import torch
    v = torch.zeros(5, 2, 16, 12)
    v[:, 0] = 1.5  # constant velocity along axis 0: phi_1^-1 = x - 1.5 in the interior
    disp = lddmm_mod.flow_inverse(v, 1 / 5)[0]
    assert torch.allclose(disp[0, 4:, :], torch.full_like(disp[0, 4:, :], -1.5), atol=1e-5)
    assert torch.allclose(disp[1], torch.zeros_like(disp[1]), atol=1e-6)


# ----------------------------------------------------------------------------- recovery of a known warp

RECOVERY = [  # method, shape, bound on the mean displacement error over the labelled voxels
    ("syn", (64, 64), 0.75), ("syn", (24, 24, 24), 0.75),
    ("niftyreg", (64, 64), 0.5), ("niftyreg", (24, 24, 24), 0.6),
    ("lddmm", (64, 64), 0.75), ("lddmm", (24, 24, 24), 0.75),
]


@pytest.mark.parametrize("method,shape,bound", RECOVERY, ids=[f"{m}-{len(s)}d" for m, s, _ in RECOVERY])
def test_baseline_recovers_known_warp(tmp_path, method, shape, bound):
    if method == "niftyreg" and NIFTYREG_BIN is None:
        pytest.skip(f"NiftyReg not built: {NIFTYREG_WHY}")
    kp = known_pair(shape)
    paths = kp.write(tmp_path / "in")
    out = tmp_path / "out"
    rec = run_baseline(method, paths["fixed"], paths["moving"], paths["moving_labels"], out, threads=1,
                       preset="test", fixed_labels_path=paths["fixed_labels"], seed=1)

    disp, affine = read_field(out / "disp.nii.gz")
    assert disp.shape == (len(shape), *shape) and np.allclose(affine, kp.affine)
    fg = kp.fixed_labels > 0
    err = np.linalg.norm(disp - kp.u_true, axis=0)[fg].mean()
    size = np.linalg.norm(kp.u_true, axis=0)[fg].mean()
    print(f"{method} {shape}: mean displacement error {err:.3f} vox over labels (|u_true| {size:.2f}), "
          f"{rec['register_time_s']:.2f} s")
    assert err < bound and err < 0.35 * size

    warped_labels, _ = read_labels(out / "warped_labels.nii.gz")
    before = metrics.dice_per_label(kp.moving_labels, kp.fixed_labels)
    after = metrics.dice_per_label(warped_labels, kp.fixed_labels)
    assert min(after.values()) >= 0.9 > min(before.values())
    assert metrics.folding_percent(disp) == 0.0

    # the written images come from the project's warp with the written field
    warped, _ = read_image(out / "warped.nii.gz")
    assert np.allclose(warped, spatial.warp_numpy(kp.moving, disp), atol=1e-5)
    assert np.array_equal(warped_labels, spatial.warp_numpy(kp.moving_labels, disp, mode="nearest"))

    run = json.loads((out / "run.json").read_text())
    for key in ("method", "pair", "fixed", "moving", "moving_labels", "fixed_labels", "tool_version",
                "preset", "config", "register_time_s", "wall_time_s"):
        assert run.get(key) not in (None, ""), key
    assert run["threads"] == 1 and run["tool_threads"] == 1 and run["seed"] == 1
    assert run["method"] == f"{method}-test" and run["preset"] == "test"
    assert sorted(p.name for p in out.iterdir()) == ["disp.nii.gz", "run.json", "warped.nii.gz",
                                                      "warped_labels.nii.gz"]


AFFINE_STAGE = [("syn", {"type_of_transform": "SyN"}), ("niftyreg", {"affine": True})]


@pytest.mark.parametrize("method,config", AFFINE_STAGE, ids=[m for m, _ in AFFINE_STAGE])
def test_affine_stage_is_part_of_the_field(tmp_path, method, config):
    """With an affine stage (ANTs 'SyN', reg_aladin before reg_f3d) the written field is the whole
    map: a translation of (3, -2) voxels plus the smooth warp is recovered."""
    if method == "niftyreg" and NIFTYREG_BIN is None:
        pytest.skip(f"NiftyReg not built: {NIFTYREG_WHY}")
    from diffreg.baselines.synthetic import KnownPair
    base = known_pair((64, 64))
    u = base.u_true + np.array([3.0, -2.0]).reshape(2, 1, 1)
    kp = KnownPair(fixed=spatial.warp_numpy(base.moving.astype(np.float64), u).astype(np.float32),
                   moving=base.moving, fixed_labels=spatial.warp_numpy(base.moving_labels, u, mode="nearest"),
                   moving_labels=base.moving_labels, u_true=u, affine=base.affine)
    p = kp.write(tmp_path / "in")
    # in its own process, as a pipeline task runs it: ITK fixes its thread count at its first use in a
    # process, and another test's ANTs call before this one would change the affine stage's sampling
    proc = subprocess.run([str(ROOT / "bin/diffreg"), "baseline", "--method", method, "--preset", "test",
                           "--config", json.dumps(config), "--fixed", str(p["fixed"]), "--moving", str(p["moving"]),
                           "--moving-labels", str(p["moving_labels"]), "--threads", "1",
                           "--outdir", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    disp, _ = read_field(tmp_path / "out" / "disp.nii.gz")
    fg = kp.fixed_labels > 0
    err = np.linalg.norm(disp - u, axis=0)[fg].mean()
    assert err < 0.75 and err < 0.2 * np.linalg.norm(u, axis=0)[fg].mean()
    warped_labels, _ = read_labels(tmp_path / "out" / "warped_labels.nii.gz")
    assert min(metrics.dice_per_label(warped_labels, kp.fixed_labels).values()) >= 0.9


# ----------------------------------------------------------------------------- errors and CLI

def test_bad_inputs_are_one_line_errors(tmp_path):
    kp = known_pair((16, 16))
    p = kp.write(tmp_path)
    with pytest.raises(InputError, match="unknown baseline 'nope'"):
        run_baseline("nope", p["fixed"], p["moving"], None, tmp_path / "o")
    with pytest.raises(InputError, match="unknown preset 'fast'"):
        run_baseline("lddmm", p["fixed"], p["moving"], None, tmp_path / "o", preset="fast")
    with pytest.raises(InputError, match="unknown option"):
        run_baseline("lddmm", p["fixed"], p["moving"], None, tmp_path / "o", config={"iters": 3})
    other = known_pair((16, 18)).write(tmp_path / "b")
    with pytest.raises(InputError, match="differs from the fixed image"):
        run_baseline("lddmm", p["fixed"], other["moving"], None, tmp_path / "o")
    with pytest.raises(InputError, match="file not found"):
        run_baseline("lddmm", tmp_path / "missing.nii.gz", p["moving"], None, tmp_path / "o")
    assert not (tmp_path / "o" / "run.json").exists()


def test_missing_niftyreg_is_reported_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NIFTYREG_BIN", str(tmp_path))
    p = known_pair((16, 16)).write(tmp_path / "in")
    with pytest.raises(InputError, match="NIFTYREG_BIN=.* does not hold reg_aladin"):
        run_baseline("niftyreg", p["fixed"], p["moving"], None, tmp_path / "o")


def test_fireants_is_optional(tmp_path):
    fa = BASELINES.build("fireants")
    p = known_pair((64, 64)).write(tmp_path / "in")
    if fa.available() is not None:
        assert "optional" in fa.available() and "\n" not in fa.available()
        with pytest.raises(InputError, match="fireants: FireANTs is an optional dependency"):
            run_baseline("fireants", p["fixed"], p["moving"], None, tmp_path / "o")
        return
    kp = known_pair((64, 64))  # installed: it must recover the known warp like the others
    run_baseline("fireants", p["fixed"], p["moving"], p["moving_labels"], tmp_path / "o", preset="test")
    disp, _ = read_field(tmp_path / "o" / "disp.nii.gz")
    fg = kp.fixed_labels > 0
    assert np.linalg.norm(disp - kp.u_true, axis=0)[fg].mean() < 0.35 * np.linalg.norm(kp.u_true, axis=0)[fg].mean()


def test_cli_baseline(tmp_path, capsys):
    from diffreg.cli import main
    kp = known_pair((32, 32))
    p = kp.write(tmp_path / "in")
    out = tmp_path / "out"
    rc = main(["baseline", "--method", "lddmm", "--preset", "test", "--config", '{"niter": 30}',
               "--fixed", str(p["fixed"]), "--moving", str(p["moving"]), "--moving-labels", str(p["moving_labels"]),
               "--fixed-labels", str(p["fixed_labels"]), "--pair", "a__b", "--name", "LDDMM",
               "--outdir", str(out), "--threads", "1", "--seed", "3"])
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "LDDMM" and run["pair"] == "a__b" and run["config"]["niter"] == 30
    assert run["seed"] == 3 and run["command"] == "baseline"
    disp, _ = read_field(out / "disp.nii.gz")
    err = np.linalg.norm(disp - kp.u_true, axis=0)[kp.fixed_labels > 0].mean()
    assert err < 0.5 * np.linalg.norm(kp.u_true, axis=0)[kp.fixed_labels > 0].mean()
    assert main(["baseline", "--method", "lddmm", "--fixed", str(tmp_path / "none.nii.gz"),
                 "--moving", str(p["moving"]), "--outdir", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err
