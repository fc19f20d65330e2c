"""Backbones: shapes, identity at initialisation, structure checks with known answers."""
import pytest
import torch

from diffreg import spatial
from diffreg.nets import BACKBONES, build_backbone
from diffreg.nets.swin import SwinBlock, window_partition, window_reverse

SHAPES = {2: (32, 32), 3: (16, 16, 16)}
# small settings so every backbone runs in well under a second per call on a laptop CPU
SMALL = {
    "voxelmorph": {},
    "vm-diff": {},
    "icon": dict(enc=(4, 8), dec=(8, 4), full=(4,)),
    # patch 2 keeps the 1/16 feature map of a 16^3 input above one voxel (instance norm needs two)
    "transmorph": dict(embed_dim=8, depths=(1, 1, 1, 1), heads=(2, 2, 2, 2), window=2, patch_size=2),
}


def test_registry_lists_the_four_backbones():
    assert {"voxelmorph", "vm-diff", "icon", "transmorph"} <= set(BACKBONES.names())


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_maps_pair_to_field_and_starts_near_identity(ndim, name):
    torch.manual_seed(0)
    net = build_backbone(name, ndim, **SMALL[name])
    x = torch.rand(2, 2, *SHAPES[ndim])
    u = net(x)
    assert u.shape == (2, ndim) + SHAPES[ndim]
    assert u.abs().max() < 0.05  # flow heads start at ~N(0, 1e-5)
    u.pow(2).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("ndim", [2, 3])
def test_backbones_accept_sizes_not_divisible_by_their_depth(ndim):
    shape = (18, 22) if ndim == 2 else (10, 12, 14)
    for name in sorted(SMALL):
        assert build_backbone(name, ndim, **SMALL[name])(torch.rand(1, 2, *shape)).shape == (1, ndim) + shape


def test_voxelmorph_widths_follow_the_paper():
    vm1 = build_backbone("voxelmorph", 3, variant="vm1")
    vm2 = build_backbone("voxelmorph", 3, variant="vm2")
    enc = [layer.conv.out_channels for layer in vm2.unet.down]
    assert enc == [16, 32, 32, 32]
    assert [layer.conv.out_channels for layer in vm1.unet.up] + [l.conv.out_channels for l in vm1.unet.full_convs] \
        == [32, 32, 32, 32, 8, 8]
    assert [layer.conv.out_channels for layer in vm2.unet.up] + [l.conv.out_channels for l in vm2.unet.half_convs] \
        + [l.conv.out_channels for l in vm2.unet.full_convs] == [32, 32, 32, 32, 32, 16, 16]
    with pytest.raises(ValueError):
        build_backbone("voxelmorph", 3, variant="vm3")


def test_vm_diff_integrates_its_velocity_at_half_resolution():
    torch.manual_seed(1)
    net = build_backbone("vm-diff", 2)
    torch.nn.init.normal_(net.velocity_net.flow.weight, 0, 0.05)
    x = torch.rand(1, 2, 32, 32)
    v = net.velocity(x)
    want = spatial.resize_field(spatial.integrate_velocity(spatial.resize_field(v, (16, 16)), 7), (32, 32))
    assert torch.allclose(net(x), want, atol=1e-6)
    assert v.abs().max() > 0.01  # not a trivially zero field


@pytest.mark.parametrize("ndim", [2, 3])
def test_icon_composes_its_steps(ndim):
    """Set each step's flow head to output a constant shift t_k (weights 0, bias t_k) at 1/s_k:
    resized to full resolution that is t_k (N - 1) / (n_k - 1) voxels; constant shifts compose by
    addition, so the output is their sum."""
    shape = SHAPES[ndim]
    net = build_backbone("icon", ndim, scales=(4, 2, 1), **SMALL["icon"])
    total = torch.zeros(ndim)
    for k, (s, head) in enumerate(zip(net.scales, net.heads)):
        t = torch.tensor([0.5 * (k + 1) * (-1) ** d for d in range(ndim)])
        torch.nn.init.zeros_(head.weight)
        with torch.no_grad():
            head.bias.copy_(t)
        scale = torch.tensor([(n - 1) / (n // s - 1) for n in shape])
        total += t * scale
    u = net(torch.rand(1, 2, *shape))
    assert torch.allclose(u, total.view(1, ndim, *[1] * ndim).expand_as(u), atol=1e-5)


def test_window_partition_round_trip():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float32).view(2, 8, 12, 3)
    win = window_partition(x, (4, 4))
    assert win.shape == (2 * 2 * 3, 16, 3)
    assert torch.equal(window_reverse(win, (4, 4), (8, 12), 2), x)
    # the first window holds the top-left 4x4 tokens in row-major order
    assert torch.equal(win[0], x[0, :4, :4].reshape(16, 3))


@pytest.mark.parametrize("shift, size, region", [
    (False, 8, (slice(0, 4), slice(0, 4))),   # plain windows: token (0, 0) reaches its 4x4 window
    (True, 8, (slice(0, 2), slice(0, 2))),    # shifted: the rolled corner region is 2x2
    (False, 6, (slice(0, 4), slice(0, 4))),   # padded map: same window, padding masked out
])
def test_swin_block_attends_within_its_window_only(shift, size, region):
    torch.manual_seed(0)
    block = SwinBlock(dim=8, heads=2, window=(4, 4), shift=shift).eval()
    x = torch.randn(1, size, size, 8)
    y0 = block(x)
    x2 = x.clone()
    x2[0, 0, 0] += torch.randn(8)  # not a constant: LayerNorm would remove that
    changed = (block(x2) - y0).abs().sum(-1)[0] > 1e-6
    want = torch.zeros(size, size, dtype=torch.bool)
    want[region] = True
    assert torch.equal(changed, want)


def test_swin_padding_does_not_leak_into_valid_tokens():
    """A 2x2 map in a 4x4 window is padded with 12 tokens. If they are masked out, the result equals
    a block with a 2x2 window (no padding) holding the same weights and the same relative position
    biases for offsets in [-1, 1]^2."""
    torch.manual_seed(0)
    big = SwinBlock(dim=8, heads=2, window=(4, 4), shift=False).eval()
    small = SwinBlock(dim=8, heads=2, window=(2, 2), shift=False).eval()
    state = {k: v for k, v in big.state_dict().items() if "bias_table" not in k}
    small.load_state_dict(state, strict=False)
    with torch.no_grad():
        for r0 in (-1, 0, 1):
            for r1 in (-1, 0, 1):
                small.attn.bias_table[(r0 + 1) * 3 + (r1 + 1)] = big.attn.bias_table[(r0 + 3) * 7 + (r1 + 3)]
    x = torch.randn(1, 2, 2, 8)
    assert torch.allclose(big(x), small(x), atol=1e-6)
