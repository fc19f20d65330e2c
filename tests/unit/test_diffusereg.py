"""DiffuseReg: the conditional SwinUNETR denoiser and the lowRes VTN against the official modules
(saved fixtures of benchmarks/diffusereg_fidelity.py), the conditional attention's tokens and
mask, the samplers, and the method's training and registration on data made here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffreg.methods import TrainingSet, build_method
from diffreg.methods.diffusereg import DiffuseRegConfig, field_from_net, make_schedulers, to_net
from diffreg.nets.diffusereg_swin import (ConditionalWindowAttention, DiffuseRegSwinUNETR, SwinBlock,
                                          compute_mask, tiled_bias)
from diffreg.nets.vtn_lowres import LowResVTN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffusereg"


def unpack(entry: dict) -> torch.Tensor:
    """4-bit integers (two per byte, offset 8) of benchmarks/diffusereg_fidelity.py."""
    p = entry["packed"]
    q = torch.stack([p // 16, p % 16], 1).flatten().to(torch.int16) - 8
    n = int(np.prod(entry["shape"]))
    return q[:n].reshape(entry["shape"]).float()


def state_of(packed: dict) -> dict:
    return {k: unpack(v) * v["scale"] if isinstance(v, dict) else v for k, v in packed.items()}


def test_denoiser_equals_official_on_fixture():
    fx = torch.load(FIXTURES / "denoiser_f12.pt", weights_only=True)
    net = DiffuseRegSwinUNETR(**fx["config"]).eval()
    net.load_state_dict(state_of(fx["state"]), strict=True)
    x = unpack(fx["x_over_7"]) / 7
    assert x.shape == (1, 5, 32, 64, 64)
    sub = (slice(None), slice(None), slice(None, None, 2), slice(None, None, 4), slice(None, None, 4))
    with torch.no_grad():
        for t, ref in fx["eps"].items():
            out = net(x, torch.tensor([t]))[sub]
            assert ref.abs().max() > 0.5            # non-trivial weights and outputs
            assert (out - ref).abs().max() <= 1e-5


def test_vtn_equals_official_on_fixture():
    """Each cascade (the affine stem and the three deformable ones) loads the official state dict
    strictly and gives the official flow on the same inputs. Cascade by cascade: the chain amplifies
    float rounding past 1e-5 between CPUs (benchmarks/diffusereg_fidelity.py, which compares the
    chain official beside ours on one machine)."""
    fx = torch.load(FIXTURES / "vtn_c4.pt", weights_only=True)
    vtn = LowResVTN(fx["size"], 3, fx["channels"]).eval()
    vtn.load_official({k: state_of(v) for k, v in fx["state"].items()})
    f = unpack(fx["fixed_over_7"]) / 7
    with torch.no_grad():
        for i, stem in enumerate(vtn.stems):
            ref = fx["flow"][i]
            out = stem(f, unpack(fx["moving_over_7"][i]) / 7)["flow"][:, :, ::2, ::4, ::4]
            assert ref.abs().max() > 0.1            # non-trivial weights and flows (0.3 to 3.6 voxels)
            assert (out - ref).abs().max() <= 1e-5, i


def reference_attention(attn: ConditionalWindowAttention, x, cond, mask):
    """Softmax over all [t, M, F, x] tokens with the official tiled bias and mask, written out."""
    b, n, c = x.shape
    h = attn.num_heads
    tokens = torch.cat([cond, x], 1)
    q, k, v = attn.qkv(tokens).reshape(b, 3 * n + 1, 3, h, c // h).permute(2, 0, 3, 1, 4)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    rpb = attn.relative_position_bias_table[attn.relative_position_index.reshape(-1)].reshape(n, n, h).permute(2, 0, 1)
    for i in range(3):
        for j in range(3):
            logits[:, :, 1 + i * n:1 + (i + 1) * n, 1 + j * n:1 + (j + 1) * n] += rpb
            if mask is not None:
                nw = mask.shape[0]
                for w in range(b):
                    logits[w, :, 1 + i * n:1 + (i + 1) * n, 1 + j * n:1 + (j + 1) * n] += mask[w % nw]
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, 3 * n + 1, c)[:, -n:]
    return attn.proj(out)


def test_conditional_attention_keeps_field_tokens_and_tiles_the_mask():
    torch.manual_seed(0)
    window, dim = (2, 2, 2), 12
    attn = ConditionalWindowAttention(dim, num_heads=3, window_size=window, qkv_bias=True).eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
    mask = compute_mask([4, 4, 4], window, (1, 1, 1), "cpu")          # 8 windows of 8 tokens
    n, nw = 8, mask.shape[0]
    x, cond = torch.randn(2 * nw, n, dim), torch.randn(2 * nw, 2 * n + 1, dim)
    with torch.no_grad():
        out = attn(x, mask, cond)
        assert out.shape == x.shape                                     # only the field tokens come back
        assert torch.allclose(out, reference_attention(attn, x, cond, mask), atol=1e-5)
        # the tiled mask blocks what the official mask blocks: a field token of window w, position
        # i, ignores the M / F tokens at positions j with mask[w, i, j] = -100, sees the others and t
        w = int(torch.nonzero((mask < 0).any(-1).any(-1))[0])
        i, j = [int(v) for v in torch.nonzero(mask[w] < 0)[0]]
        seen = int(torch.nonzero(mask[w, i] == 0)[0])
        for pos, blocked in ((1 + j, True), (1 + n + j, True), (1 + seen, False), (0, False)):
            c2 = cond.clone()
            c2[w, pos] += 10.0
            change = (attn(x, mask, c2)[w, i] - out[w, i]).abs().max()
            assert (change < 1e-6) if blocked else (change > 1e-3), (pos, change)
        # without the conditional mask (Table 2 "CM") the same token is seen
        attn.cond_mask = False
        c2 = cond.clone()
        c2[w, 1 + j] += 10.0
        assert (attn(x, mask, c2)[w, i] - attn(x, mask, cond)[w, i]).abs().max() > 1e-3
    assert torch.equal(tiled_bias(mask, n)[:, 0], torch.zeros(nw, 3 * n + 1))


def test_every_backbone_block_returns_the_field_tokens_shape():
    torch.manual_seed(1)
    net = DiffuseRegSwinUNETR(feature_size=12, window_size=(2, 2, 2)).eval()
    seen = []
    for blk in net.swinViT.modules():
        if isinstance(blk, SwinBlock):
            blk.register_forward_hook(lambda mod, inp, out: seen.append(out.shape == inp[0].shape))
    with torch.no_grad():
        net(torch.randn(1, 5, 16, 24, 20), torch.tensor([10]))
    assert len(seen) == 8 and all(seen)


def test_denoiser_batch_and_odd_sizes():
    torch.manual_seed(2)
    net = DiffuseRegSwinUNETR(feature_size=12, window_size=(2, 2, 2)).eval()
    x, t = torch.randn(2, 5, 10, 20, 18), torch.tensor([5, 1500])
    with torch.no_grad():
        both = net(x, t)
        one = net(x[1:], t[1:])
    assert both.shape == (2, 3, 10, 20, 18)
    assert (both[1:] - one).abs().max() < 1e-4


def test_ddim_eta1_full_schedule_equals_ddpm_ancestral_step():
    c = DiffuseRegConfig.from_dict({"use_phi0": False}, 3, "diffusereg")
    ddpm, ddim = make_schedulers(c)
    ddim.set_timesteps(c.diffusion_steps)
    torch.manual_seed(3)
    x, eps = torch.randn(1, 3, 4, 4, 4), torch.randn(1, 3, 4, 4, 4)
    for t in (1999, 1000, 1):
        a = ddpm.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        b = ddim.step(eps, t, x, eta=1.0, generator=torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from diffreg.stages import get_stage

    rng = np.random.default_rng(0)

    def image(shift):
        x = np.zeros((8, 16, 16), np.float32)
        x[2:6, 4 + shift:11 + shift, 5:12] = 1
        return x

    data = TrainingSet(["a", "b"], [image(1), image(2)], [image(0), image(0)])
    out = tmp_path_factory.mktemp("vtn") / "vtn.pt"
    get_stage("diffusereg_vtn")({"iterations": 2, "channels": 4, "batch": 2}, out, data, 0, "cpu", 1)
    method = build_method("diffusereg", 3, {"phi0": str(out), "network": "small", "iterations": 2,
                                            "sampling": "ddim", "sampling_steps": 3}, torch.device("cpu"))
    summary = method.fit(data)
    return method, data, summary, rng


def test_training_fits_field_stats_and_runs(trained):
    method, data, summary, _ = trained
    assert summary["iterations"] == 2 and np.isfinite(summary["loss_last_10pct"])
    st = method.nets["field_stats"]
    net = lambda side: to_net(data.images([0, 1], side), "zyx") * 2 - 1      # the networks' layout
    phi = method.phi0(method.nets, net("moving"), net("fixed"))
    assert torch.allclose(st.mean.flatten(), phi.mean(dim=(0, 2, 3, 4)), atol=1e-4)
    assert method.config["phi0"] == {"im_size": [16, 16, 16], "n_cascades": 3, "channels": 4}
    # the saved model rebuilds without the VTN file
    assert not any(p.requires_grad for p in method.nets["phi0"].parameters())


def test_seeded_sampling_reproducible_and_saved_steps(trained, tmp_path):
    from diffreg.methods import load_method

    method, data, _, _ = trained
    m, f = data.images([0], "moving"), data.images([0], "fixed")
    r1 = method.register(m, f, torch.Generator().manual_seed(4))
    r2 = method.register(m, f, torch.Generator().manual_seed(4))
    r3 = method.register(m, f, torch.Generator().manual_seed(5))
    assert torch.equal(r1.displacement, r2.displacement) and not torch.equal(r1.displacement, r3.displacement)
    assert r1.trajectory_times == [0.0, 1 / 3, 2 / 3, 1.0] and torch.equal(r1.trajectory[-1], r1.displacement)
    assert set(r1.images) == {"warped_step0", "warped_step1", "warped_step2", "warped_step3"}
    method.save(tmp_path)
    again = load_method(tmp_path, torch.device("cpu"))
    assert torch.equal(again.register(m, f, torch.Generator().manual_seed(4)).displacement, r1.displacement)
    # batch > 1: each sample's field from its own noise, same shapes
    fields, counts = method.sample(torch.cat([m, m]), torch.cat([f, f]), torch.Generator().manual_seed(4))
    assert fields[-1].shape == (2, 3, 8, 16, 16) and counts == [0, 1, 2, 3]


def test_settings_checked():
    from diffreg.errors import InputError

    with pytest.raises(InputError, match="ddim for fewer"):
        DiffuseRegConfig.from_dict({"sampling": "ddpm", "sampling_steps": 50}, 3, "diffusereg")
    with pytest.raises(InputError, match="3D"):
        DiffuseRegConfig.from_dict({}, 2, "diffusereg")
    with pytest.raises(InputError, match="phi0"):
        build_method("diffusereg", 3, {"network": "small"}, torch.device("cpu"))


def test_adamw_and_cosine_schedule_to_lr_min():
    import math

    c = DiffuseRegConfig.from_dict({"use_phi0": False}, 3, "diffusereg")
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = c.make_optimizer(params)
    sched = c.make_scheduler(opt, 10)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 1e-4
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[5] == pytest.approx(1e-6 + (1e-4 - 1e-6) * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)


def test_network_layout_round_trip():
    """A field in the networks' (z, y, x) layout warps as its conversion does in the stored layout."""
    from diffreg.nets.vtn_lowres import zero_padded_warp

    torch.manual_seed(6)
    img = torch.rand(1, 1, 6, 7, 5)
    u_net = torch.randn(1, 3, 5, 7, 6)
    a = zero_padded_warp(to_net(img, "zyx"), u_net)
    b = to_net(zero_padded_warp(img, field_from_net(u_net, "zyx")), "zyx")
    assert torch.allclose(a, b, atol=1e-5)
