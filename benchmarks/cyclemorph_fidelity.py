"""CycleMorph against its official code, on identical weights and inputs.

    python benchmarks/cyclemorph_fidelity.py --cyclemorph /path/to/MEDIA_CycleMorph \
        [--write-fixtures tests/fixtures/cyclemorph] [--json out.json]

Imports `models` (cycleMorph_model, networks, loss) from a checkout of github.com/boahK/MEDIA_CycleMorph,
never part of diffreg. The official code calls .cuda() on tensors it creates; on a machine without
CUDA this script makes Tensor.cuda return the tensor itself (the computation is unchanged). Prints:
  - the released brain model checkpoints/.../30_net_G_A.pth: strict load into ours and the largest
    difference of the field and the warped image on a random volume (when the file is present);
  - on random weights (small widths) and random images: the official model's `backward_G` (both
    networks, all eight loss terms) against `CycleMorph.terms`, and flow_A / fake_B / back_A;
  - parameter counts 2D / 3D at the official widths.
With --write-fixtures it writes what tests/unit/test_cyclemorph.py checks without the official code.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from random_weights import seeded  # noqa: E402  (benchmarks/)
from diffreg.methods import build_method  # noqa: E402
from diffreg.methods.cyclemorph import apply  # noqa: E402
from diffreg.nets.cyclemorph import CycleMorphNet  # noqa: E402

SMALL = dict(encoder_nc=[4, 8, 8, 8, 8], decoder_nc=[8, 8, 8, 4, 4])
SHAPE = (1, 1, 16, 32, 48)          # anisotropic, so that an axis-order slip shows
SEEDS = (21, 22, 23, 24)            # G_A, G_B, A, B
LAMBDAS = dict(lambda_reg=1.0, alpha=0.1, beta=0.5)
CPU = torch.device("cpu")



def randomise(module, seed, head_scale=2.0):
    """Uniform weights; the last convolution scaled so that the fields reach a few voxels."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_((torch.rand(p.shape, generator=g) - 0.5) * (0.4 if p.ndim > 1 else 0.2))
            if "outconv" in name:
                p.mul_(head_scale)


def load_official(root: Path):
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self       # the official code's .cuda() calls
    sys.path.insert(0, str(root))
    from models import cycleMorph_model, networks
    return cycleMorph_model, networks


def official_model(cm, widths, ndim=3):
    opt = SimpleNamespace(batchSize=1, fineSize=list(SHAPE[2:]), input_nc=2, encoder_nc=widths["encoder_nc"],
                          decoder_nc=widths["decoder_nc"] + [ndim], which_model_net="registUnet",
                          init_type="normal", gpu_ids=[], continue_train=False, isTrain=True, lr=2e-4,
                          beta1=0.5, lambda_R=LAMBDAS["lambda_reg"], lambda_A=LAMBDAS["alpha"],
                          lambda_B=LAMBDAS["beta"], lr_policy="lambda", epoch_count=1, niter=30,
                          niter_decay=0, checkpoints_dir=tempfile.mkdtemp(), name="fidelity")
    model = cm.cycleMorph()
    with contextlib.redirect_stdout(io.StringIO()):        # it prints both networks
        model.initialize(opt)
    return model


def compare_released(networks, root: Path, report):
    counts = {nd: sum(p.numel() for p in CycleMorphNet(nd).parameters()) for nd in (2, 3)}
    report["parameters"] = dict(ours_2d=counts[2], ours_3d=counts[3])
    print(f"parameters of one network at the official widths: 2D {counts[2]:,}, 3D {counts[3]:,} (x2: G_A, G_B)")
    path = root / "checkpoints" / "MEDIA_CycleMorph_Brain" / "CycleMorph_Brain" / "30_net_G_A.pth"
    if not path.exists() or path.stat().st_size == 0:
        print(f"{path}: not in the checkout; released-weights comparison skipped")
        return
    state = torch.load(path, map_location="cpu", weights_only=True)
    ours = CycleMorphNet(3)
    ours.load_state_dict(state, strict=True)
    off = networks.registUnetGenerator(2, [16, 32, 32, 32, 32], [32, 32, 32, 8, 8, 3])
    off.load_state_dict(state, strict=True)
    x = torch.cat([seeded((1, 1, 32, 48, 64), 1), seeded((1, 1, 32, 48, 64), 2)], 1)
    with torch.no_grad():
        (w_off, f_off), (w_ours, f_ours) = off(x), ours(x)
    d = dict(flow=(f_off - f_ours).abs().max().item(), warped=(w_off - w_ours).abs().max().item())
    report["released_brain_G_A"] = dict(strict_load=True, parameters=sum(v.numel() for v in state.values()),
                                        max_abs_diff=d, flow_max_abs=f_off.abs().max().item())
    print(f"released brain G_A ({sum(v.numel() for v in state.values()):,} parameters): strict load ok; "
          f"on 32x48x64: |flow| up to {f_off.abs().max().item():.3f}, largest |diff| flow {d['flow']:.2g}, "
          f"warped {d['warped']:.2g}")


def compare_training(cm, report, fixture):
    model = official_model(cm, SMALL)
    randomise(model.netG_A, SEEDS[0])
    randomise(model.netG_B, SEEDS[1])
    a, b = seeded(SHAPE, SEEDS[2]), seeded(SHAPE, SEEDS[3])
    model.set_input({"A": a, "B": b, "path": ""})
    model.forward()
    model.backward_G()
    off = dict(similarity=model.lossA_RC + model.lossB_RC,
               regulariser=(model.lossA_RL + model.lossB_RL) / LAMBDAS["lambda_reg"],
               cycle=(model.lossA_CY + model.lossB_CY) / LAMBDAS["alpha"],
               identity=(model.lossA_ID + model.lossB_ID) / LAMBDAS["beta"], loss=model.loss)
    m = build_method("cyclemorph", 3, dict(**SMALL, **LAMBDAS), CPU)
    m.nets["G_A"].load_state_dict(model.netG_A.state_dict(), strict=True)
    m.nets["G_B"].load_state_dict(model.netG_B.state_dict(), strict=True)
    with torch.no_grad():
        mine = {k: v.item() for k, v in m.terms(m.nets["G_A"], m.nets["G_B"], a, b).items()}
        fake_b, flow_a = apply(m.nets["G_A"], a, b)
        fake_a, _ = apply(m.nets["G_B"], b, a)
        back_a, _ = apply(m.nets["G_B"], fake_b, fake_a)
        disp = m.register(a, b).displacement
    diffs = dict(flow_A=(model.flow_A - flow_a).abs().max().item(),
                 fake_B=(model.fake_B - fake_b).abs().max().item(),
                 back_A=(model.back_A - back_a).abs().max().item(),
                 register=(model.flow_A - disp).abs().max().item())
    rel = {k: abs(off[k] - mine[k]) / max(abs(off[k]), 1e-12) for k in off}
    report["training"] = dict(official=off, ours=mine, loss_rel_diff=rel, max_abs_diff=diffs,
                              flow_max_abs=model.flow_A.abs().max().item())
    print(f"backward_G on {list(SHAPE)}: |flow_A| up to {model.flow_A.abs().max().item():.2f} voxels; largest |diff| "
          + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
          + "; loss terms rel. diff " + ", ".join(f"{k} {v:.2g}" for k, v in rel.items()))
    if fixture is not None:
        fixture.update(state_A={k: v.clone() for k, v in model.netG_A.state_dict().items()},
                       state_B={k: v.clone() for k, v in model.netG_B.state_dict().items()},
                       flow_A=model.flow_A.clone(), back_A=model.back_A.clone(), terms=off,
                       widths=SMALL, lambdas=LAMBDAS, shape=list(SHAPE), seeds=list(SEEDS))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cyclemorph", required=True, type=Path, help="checkout of github.com/boahK/MEDIA_CycleMorph")
    ap.add_argument("--write-fixtures", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cm, networks = load_official(args.cyclemorph)
    report, fixture = {}, ({} if args.write_fixtures else None)
    compare_released(networks, args.cyclemorph, report)
    compare_training(cm, report, fixture)
    if args.write_fixtures:
        args.write_fixtures.mkdir(parents=True, exist_ok=True)
        torch.save(fixture, args.write_fixtures / "cyclemorph_small.pt")
        print(f"fixture written to {args.write_fixtures / 'cyclemorph_small.pt'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
