"""Point-to-image similarity maps and nearest-feature matches (DGIR Fig. 1 and Fig. 2).

For a point p of image A, each measure gives a map over every pixel q of image B saying how
similar q is to p. Images are (H, W) tensors, feature maps (C, H, W) at image resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from diffreg.losses.filters import gaussian_kernel
from diffreg.losses.mind import mind_ssc

from .base import window_size


def resize_features(f: torch.Tensor, size) -> torch.Tensor:
    """(C, h, w) -> (C, *size), bilinear ("features resized to image resolution")."""
    return F.interpolate(f[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def intensity_map(a: torch.Tensor, b: torch.Tensor, p) -> torch.Tensor:
    """Negative squared intensity difference (the pointwise view of MSE)."""
    return -(b - a[p]) ** 2


def ngf_map(a: torch.Tensor, b: torch.Tensor, p, eps: float = 1e-2) -> torch.Tensor:
    """Squared cosine of the gradients with the edge threshold eps (NGF's pointwise term)."""
    ga = torch.stack(torch.gradient(a))[:, p[0], p[1]]
    gb = torch.stack(torch.gradient(b))
    dot = (ga[:, None, None] * gb).sum(0)
    return dot ** 2 / (((ga ** 2).sum() + eps ** 2) * ((gb ** 2).sum(0) + eps ** 2))


def mind_map(a: torch.Tensor, b: torch.Tensor, p, radius: int = 2, dilation: int = 2) -> torch.Tensor:
    """Negative mean squared difference of MIND-SSC descriptors."""
    ma = mind_ssc(a[None, None], radius, dilation)[0]
    mb = mind_ssc(b[None, None], radius, dilation)[0]
    return -((mb - ma[:, p[0], p[1], None, None]) ** 2).mean(0)


def cosine_map(fa: torch.Tensor, fb: torch.Tensor, p) -> torch.Tensor:
    """Cosine similarity of the feature vector at p in A with every feature vector of B."""
    v = fa[:, p[0], p[1]]
    return F.cosine_similarity(fb, v[:, None, None].expand_as(fb), dim=0, eps=1e-8)


def window_ncc_map(fa: torch.Tensor, fb: torch.Tensor, p, sigma: float, eps: float = 1e-5) -> torch.Tensor:
    """LNCC between the Gaussian window around p in A and the window around each q in B, per
    channel, averaged over channels (zero padding outside the image, as the DGIR loss).
    With one channel this is the pointwise view of LNCC on images."""
    if fa.ndim == 2:
        fa, fb = fa[None], fb[None]
    c, h, w = fa.shape
    k1 = gaussian_kernel(sigma, window_size(sigma)).to(fa)
    r = k1.numel() // 2
    wgt = k1[:, None] * k1[None, :]                                     # (k, k), sums to 1
    pa = F.pad(fa, (r, r, r, r))
    tmpl = pa[:, p[0]:p[0] + 2 * r + 1, p[1]:p[1] + 2 * r + 1]          # window centred on p
    mu_t = (wgt * tmpl).sum((1, 2))
    var_t = ((wgt * tmpl * tmpl).sum((1, 2)) - mu_t ** 2).clamp_min(eps)
    x = fb[None]
    cross = F.conv2d(x, (wgt * tmpl)[:, None], padding=r, groups=c)[0]
    blur = lambda y: F.conv2d(y, wgt.expand(c, 1, -1, -1), padding=r, groups=c)[0]
    mu_b = blur(x)
    var_b = (blur(x * x) - mu_b ** 2).clamp_min(eps)
    cc = (cross - mu_t[:, None, None] * mu_b) / torch.sqrt(var_t[:, None, None] * var_b)
    return cc.mean(0)


def best_match(sim: torch.Tensor) -> tuple[int, int]:
    idx = int(torch.argmax(sim))
    return divmod(idx, sim.shape[1])


def spread_points(mask: torch.Tensor, n: int, generator: torch.Generator | None = None) -> list[tuple[int, int]]:
    """n points inside `mask` spread by farthest-point sampling from a random start."""
    cand = torch.nonzero(mask).float()
    if len(cand) == 0:
        raise ValueError("no foreground pixels to place keypoints on")
    first = int(torch.randint(len(cand), (1,), generator=generator))
    chosen = [first]
    d = ((cand - cand[first]) ** 2).sum(1)
    for _ in range(min(n, len(cand)) - 1):
        i = int(torch.argmax(d))
        chosen.append(i)
        d = torch.minimum(d, ((cand - cand[i]) ** 2).sum(1))
    return [tuple(int(v) for v in cand[i]) for i in chosen]


def boundary_point(img: torch.Tensor, threshold: float = 0.1) -> tuple[int, int]:
    """A point on the foreground/background boundary: along the middle row, the first pixel from
    the left whose intensity reaches `threshold` of the image maximum (DGIR Fig. 1's red dot)."""
    row = img.shape[0] // 2
    above = torch.nonzero(img[row] >= threshold * img.max()).flatten()
    return (row, int(above[0]) if len(above) else img.shape[1] // 2)
