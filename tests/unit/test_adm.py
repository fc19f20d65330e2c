"""The ADM U-Net (guided-diffusion architecture) used as DGIR's feature model."""
from __future__ import annotations

import pytest
import torch

from diffreg.features.diffusion import DiffusionFeatures
from diffreg.nets.adm import ADM_256_UNCOND, ADMUNet, load_adm, small_config, timestep_embedding


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return ADMUNet(small_config(16, num_groups=16)).freeze()


def test_official_architecture_parameter_count_and_names():
    # 552,814,086 parameters and 566 tensors: guided-diffusion's 256x256_diffusion_uncond
    with torch.device("meta"):
        m = ADMUNet(ADM_256_UNCOND)
    sd = m.state_dict()
    assert sum(p.numel() for p in m.parameters()) == 552_814_086
    assert len(sd) == 566
    # names as in the official checkpoint
    for key, shape in {
        "time_embed.0.weight": (1024, 256),
        "input_blocks.0.0.weight": (256, 3, 3, 3),
        "input_blocks.3.0.emb_layers.1.weight": (512, 1024),      # scale-shift: 2 x channels
        "input_blocks.10.1.qkv.weight": (1536, 512, 1),             # attention at 32x32
        "input_blocks.13.0.skip_connection.weight": (1024, 512, 1, 1),
        "middle_block.1.proj_out.weight": (1024, 1024, 1),
        "output_blocks.2.2.in_layers.2.weight": (1024, 1024, 3, 3),  # resblock up-sampler
        "output_blocks.17.0.skip_connection.weight": (256, 512, 1, 1),
        "out.2.weight": (6, 256, 3, 3),                              # learn_sigma
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any("attention" in k or "h_upd" in k for k in sd)    # no parameters there


def test_block_numbering_37_blocks_and_resolutions(small):
    assert small.num_blocks == 37
    strides = [b.stride for b in small.blocks]
    assert strides == ([1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32] + [32]
                       + [32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2, 1, 1, 1, 1])
    assert small.blocks[11].name == "input_blocks.11" and small.blocks[18].name == "middle_block"
    assert small.blocks[29].name == "output_blocks.10"
    x = torch.randn(1, 3, 64, 64)
    for n in (0, 3, 11, 17, 18, 21, 29, 36):
        f = small.features(x, 50, n)
        assert f.shape == (1, small.blocks[n].channels, 64 // strides[n], 64 // strides[n])
    # the paper's choices: block 29 at 1/4 with 2x width, block 11 at 1/8 with 2x width
    assert (small.blocks[29].stride, small.blocks[29].channels) == (4, 32)
    assert (small.blocks[11].stride, small.blocks[11].channels) == (8, 32)
    with pytest.raises(ValueError):
        small.features(x, 50, 37)
    # an encoder block needs only its own stride to divide the input size, the decoder all levels
    assert small.required_multiple(11) == 8 and small.required_multiple(29) == 32
    assert small.features(torch.randn(1, 3, 40, 24), 50, 11).shape == (1, 32, 5, 3)
    with pytest.raises(ValueError, match="divisible by 32"):
        small.features(torch.randn(1, 3, 40, 24), 50, 29)


def test_features_stop_at_the_requested_block(small):
    calls = []
    hooks = [b.register_forward_hook(lambda *a, i=i: calls.append(i)) for i, b in enumerate(small.output_blocks)]
    hooks.append(small.out.register_forward_hook(lambda *a: calls.append("out")))
    try:
        small.features(torch.randn(1, 3, 32, 32), 10, 11)
        assert calls == []                   # encoder block: no decoder block runs
        small.features(torch.randn(1, 3, 32, 32), 10, 29)
        assert calls == list(range(11))      # output_blocks[0..10], nothing after
    finally:
        for h in hooks:
            h.remove()
    # the block output equals the same block inside a full forward pass
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    h = small.output_blocks[10].register_forward_hook(lambda m, i, o: seen.setdefault("f", o))
    small(x, torch.tensor([5, 700]))
    h.remove()
    torch.testing.assert_close(small.features(x, torch.tensor([5, 700]), 29), seen["f"])


def test_frozen_for_real(small):
    assert all(not p.requires_grad for p in small.parameters())
    assert not small.training
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    small.features(x, 60, 29).square().sum().backward()   # no checkpoint function to trip over
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in small.parameters())


def test_strict_load_of_own_state_dict(tmp_path, small):
    path = tmp_path / "adm.pt"
    torch.save({"config": small.config.to_dict(), "state_dict": small.state_dict()}, path)
    loaded = load_adm(path)
    assert loaded.config == small.config
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([123])
    torch.testing.assert_close(loaded(x, t), small(x, t), rtol=0, atol=0)
    # an official-style bare state dict loads with an explicit config; a missing key fails
    torch.save(small.state_dict(), tmp_path / "bare.pt")
    assert load_adm(tmp_path / "bare.pt", config=small.config).config == small.config
    broken = dict(small.state_dict())
    broken.pop("middle_block.1.qkv.bias")
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(RuntimeError, match="middle_block.1.qkv.bias"):
        load_adm(tmp_path / "broken.pt", config=small.config)


def test_timestep_embedding_formula():
    e = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(4) / 4)
    torch.testing.assert_close(e[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]))
    torch.testing.assert_close(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def _shift_errors(model, block, k, size=128):
    """Relative max differences, away from the borders, between the features of a shifted image
    and (shifted, unshifted) features of the original. Content sits inside a zero background."""
    g = torch.Generator().manual_seed(1)
    img = torch.zeros(1, 1, size, size)
    img[..., 40:88, 40:88] = torch.rand(1, 1, 48, 48, generator=g)
    feats = DiffusionFeatures(model, block=block, t=50)
    zero = torch.zeros(1, 3, size, size)        # same (zero) noise: compare the network alone
    fa = feats.extract(img, zero)
    fb = feats.extract(torch.roll(img, k, dims=(2, 3)), zero)
    s = feats.stride
    ks = (k[0] // s, k[1] // s)
    margin = max(3, 8 // s) + max(abs(v) for v in ks)
    inner = (..., slice(margin, fa.shape[2] - margin), slice(margin, fa.shape[3] - margin))
    scale = fa[inner].abs().max()
    shifted = (fb - torch.roll(fa, ks, dims=(2, 3)))[inner].abs().max() / scale
    unshifted = (fb - fa)[inner].abs().max() / scale
    return float(shifted), float(unshifted)


def test_features_of_a_shifted_image_are_shifted_by_k_over_stride(small):
    # block 2 (stride 1): only convolutions and normalisation over a background-only border,
    # so the features are exactly shifted by k away from the border
    shifted, unshifted = _shift_errors(small, 2, (3, -5))
    assert shifted < 1e-4 and unshifted > 0.5
    # block 11 (stride 8): shifts by k / 8 feature pixels; attention and normalisation see the
    # whole image, so equality is approximate
    shifted, unshifted = _shift_errors(small, 11, (8, -16))
    assert shifted < 0.02 and unshifted > 0.5
    # block 29 (stride 4, decoder): depends on the 1/32 level, so shifts by multiples of 32
    shifted, unshifted = _shift_errors(small, 29, (32, -32))
    assert shifted < 0.15 and unshifted > 0.5
