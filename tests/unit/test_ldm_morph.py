"""LDM-Morph: the networks against a fixture from the official code
(`benchmarks/ldm_morph_fidelity.py --write-fixtures tests/fixtures/ldm_morph`), the latent
diffusion features, and the method's hierarchical loss."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffreg.features.latent_diffusion import (OFFICIAL_UNET, LatentDiffusion, encoder_block_outputs,
                                               feature_channels, scaled_linear_alphas_cumprod)
from diffreg.nets.adm import ADMUNet
from diffreg.nets.ldm_morph import LDMMorphNet
from diffreg.nets.vq_autoencoder import OFFICIAL_VQ, VQAutoencoder, VQConfig

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "ldm_morph"


def seeded(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIX / "ldm_morph_small.pt", weights_only=True)


def fixture_inputs(fx):
    shape = tuple(fx["shape"])
    mov, fix = seeded(shape, fx["seeds"][0]), seeded(shape, fx["seeds"][1])
    feats = [seeded((1, c, shape[2] // 2 ** (k + 2), shape[3] // 2 ** (k + 2)), fx["seeds"][2] + k) * 2 - 1
             for k, c in enumerate(fx["config"]["feature_channels"])]
    return mov, fix, feats


def test_network_equals_the_official_code(fixture):
    """The official LDMMorph's forward at a small width, random weights loaded strictly."""
    net = LDMMorphNet(**fixture["config"]).eval()
    net.load_state_dict(fixture["state"], strict=True)
    mov, fix, feats = fixture_inputs(fixture)
    with torch.no_grad():
        field = net(mov, fix, feats)
    assert (field - fixture["field"]).abs().max().item() < 1e-5
    assert field.abs().max().item() > 0.05                      # a field that shows the comparison means something


def test_full_network_has_the_official_names_shapes_and_size(fixture):
    with torch.device("meta"):
        net = LDMMorphNet()
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == fixture["full_names"]
    assert len(fixture["full_names"]) == 316
    assert sum(p.numel() for p in net.parameters()) == fixture["full_parameters"] == 31_510_854


def test_vq_encoder_equals_the_official_code(fixture):
    vq = VQAutoencoder(VQConfig.from_dict(fixture["vq_config"])).eval()
    missing, unexpected = vq.load_state_dict(fixture["vq_state"], strict=False)
    assert not unexpected and all(k.startswith(("decoder.", "post_quant_conv.", "quantize.")) for k in missing)
    with torch.no_grad():
        z = vq.encode(seeded((1, 1, 64, 64), fixture["seeds"][0]))
    assert (z - fixture["vq_latent"]).abs().max().item() < 1e-5


def test_official_latent_shapes():
    """f = 4: a 128^2 image gives a 32^2 latent of one channel; the U-Net's features of a pair
    have the shapes the official network takes."""
    with torch.device("meta"):
        vq = VQAutoencoder(OFFICIAL_VQ)
        unet = ADMUNet(OFFICIAL_UNET)
    assert OFFICIAL_VQ.factor == 4 and OFFICIAL_VQ.embed_dim == 1
    assert feature_channels(unet) == (256, 384, 640, 896)
    assert [unet.blocks[b].stride for b in (0, 3, 6, 9)] == [1, 2, 4, 8]
    assert sum(p.numel() for p in unet.parameters()) == 22_409_537
    del vq


def test_schedule_is_diffusers_scaled_linear():
    from diffusers import DDPMScheduler

    s = DDPMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear")
    ours = scaled_linear_alphas_cumprod()
    assert torch.allclose(ours.float(), s.alphas_cumprod, atol=1e-6)
    betas = 1 - ours[1:] / ours[:-1]
    assert abs(float(betas[0]) - (0.0015 ** 0.5 + (0.0195 ** 0.5 - 0.0015 ** 0.5) / 999) ** 2) < 1e-12


def tiny_ldm(seed=0, inversion="q_sample"):
    torch.manual_seed(seed)
    vq = VQAutoencoder(VQConfig(ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), resolution=32,
                                n_embed=16, num_groups=4))
    unet = ADMUNet(OFFICIAL_UNET.__class__(**{**OFFICIAL_UNET.__dict__, "model_channels": 8,
                                               "num_head_channels": 8, "num_groups": 4}))
    return LatentDiffusion(vq, unet, inversion=inversion)


def test_features_shapes_same_noise_and_determinism():
    ldm = tiny_ldm()
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    f1 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f2 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f3 = ldm.features(a, b, torch.Generator().manual_seed(6))
    assert [tuple(f.shape) for f in f1] == [(1, c, 8 // 2 ** k, 8 // 2 ** k) for k, c in enumerate(ldm.channels)]
    assert all(torch.equal(x, y) for x, y in zip(f1, f2))
    assert not torch.equal(f1[0], f3[0])
    # the same image as moving and fixed: identical halves (one noise for both latents)
    g = ldm.features(a, a, torch.Generator().manual_seed(5))
    for f in g:
        c = f.shape[1] // 2
        assert torch.equal(f[:, :c], f[:, c:])
    # each level is [M_a, M_b, F_a, F_b] of the U-Net's encoder blocks at t = 1
    zm = ldm.q_sample(ldm.encode(a), 1, torch.randn((1, 1, 8, 8), generator=torch.Generator().manual_seed(5)))
    blocks = encoder_block_outputs(ldm.unet, zm, 1)
    c0 = blocks[0].shape[1]
    assert torch.allclose(f1[0][:, :c0], blocks[0], atol=1e-5)
    assert torch.allclose(f1[0][:, c0:2 * c0], blocks[2], atol=1e-5)


def test_ddim_inversion_is_deterministic_and_differs_from_q_sample():
    ldm = tiny_ldm(inversion="ddim")
    a, b = seeded((1, 1, 32, 32), 1), seeded((1, 1, 32, 32), 2)
    f1 = ldm.features(a, b, torch.Generator().manual_seed(5))
    f2 = ldm.features(a, b, torch.Generator().manual_seed(9))
    assert all(torch.equal(x, y) for x, y in zip(f1, f2))      # no noise drawn
    z = ldm.encode(a)
    # with a U-Net predicting zero noise, DDIM inversion only rescales: sqrt(abar_t) z
    for p in ldm.unet.out.parameters():
        p.data.zero_()
    assert torch.allclose(ldm.ddim_invert(z, 1), ldm.alphas_cumprod[1].sqrt() * z, atol=1e-6)
