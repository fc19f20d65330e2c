"""DiffuseMorph (Kim, Han, Ye; ECCV 2022): a conditional diffusion network G and a deformation
network M trained jointly (paper Eq. 7-9):

    L = ||G(m, f, x_t, t) - eps||^2 + lam (-NCC(m o phi, f) + lambda_reg ||grad phi||^2),
    x_t = sqrt(abar_t) f + sqrt(1 - abar_t) eps,   phi = M(m, G(m, f, x_t, t)),

with linear betas 1e-6 .. 1e-2 over T = 2000 steps (diffusers' DDPMScheduler). Registration
(Eq. 10): phi = M(m, e), e = G(m, f, f, t = 0). The continuous trajectory (Eq. 11, Algorithm 1):
phi_eta = M(m, eta e), eta in [0, 1]. Generation (Eq. 12-13, Algorithm 2): forward-diffuse m to
step T_gen, then reverse steps conditioned on (m, f).

Networks (nets.sr3_unet, nets.diffusemorph_field) load the official state dicts strictly
(benchmarks/diffusemorph.py). Images enter in [0, 1] and are mapped to [-1, 1] as the
official data loaders do; the NCC compares the warped (m + 1) / 2 with (f + 1) / 2: squared local
cc in a 9^d box, cov^2 / (var var + 1e-5) on window sums (VoxelMorph's NCC, which the paper cites);
the smoothness term is VoxelMorph's Grad-l2 (mean over axes of mean squared forward differences).

Weights: `lam` is the paper's lambda of Eq. 7, the weight of the whole registration loss against
the diffusion loss (not a regularisation weight); `lambda_reg` is the smoothness weight inside the
registration loss, the paper's lambda_phi of Eq. 9 (accepted as the alias `lambda_phi`), so the
smoothness term weighs lam x lambda_reg in L.

Settings where paper and official code differ (docs/diffusemorph.md):
- lam: the paper gives it per dataset (faces 2, cardiac 20, brain 10); the official configs 2
  (2D, faces) and 20 (3D, cardiac). Default per dimensionality = the official configs' values,
  which are the paper's for the datasets those configs are for; set lam per task (the YAML does).
- lr: paper faces 5e-6, cardiac 2e-4, brain 1e-4; official configs 5e-6 (2D), 2e-4 (3D); default
  per dimensionality as the configs.
- betas: "adam" (0.9, 0.999; the paper cites Adam without other values) or "official" (0.5, 0.999,
  official model/model.py).
- init_weights: "pytorch" (PyTorch's default; the paper names none) or "official" (orthogonal U-Net,
  N(0, 0.02) deformation net, zero biases: official model/networks.py).
- augment: "none" (the paper names none) or "official" (the official loaders' random flips:
  2D left-right, 3D in-plane flips and swap). `full` selects the official betas, init_weights and
  augment (experiments/diffusemorph.yaml); methods.diffusemorph_official holds these and the
  loader of an official *_gen_G.pth (`DiffuseMorph.load_official`).
- eta0: "network" (phi_0 = M(m, 0), paper and code: "hardly warps") or "anchored"
  (phi_eta = M(m, eta e) - M(m, 0), so eta = 0 is exactly the identity; an option of ours).
- network: "official" (2D: 64-channel U-Net, 64..1024 deformation net; 3D: 8 channels,
  16..32) or "small" (test profiles).
- generation: T = 200 (paper and code); reverse steps: paper 80 (the default, spread evenly over
  199..0), code 200 (`gen_steps: 200`); `sampler: ddpm` (the default: ancestral, as the code's
  p_sample) or `ddim` (deterministic; an option of ours).
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F

from ..configs.diffusemorph import DiffuseMorphConfig
from ..losses import build_regulariser
from ..losses.similarity import LNCC
from ..nets.diffusemorph_field import OFFICIAL as FIELD_OFFICIAL, DeformationUNet
from ..nets.sr3_unet import OFFICIAL as UNET_OFFICIAL, SR3UNet
from ..training.objective import Objective
from ..training.training_set import TrainingSet
from .base import METHODS, Method
from .diffusemorph_official import load_official_checkpoint, official_flips, official_init
from .pairs import pad_to_multiple
from .result import RegistrationResult

NETWORKS = {
    "official": {nd: (dict(UNET_OFFICIAL[nd]), dict(FIELD_OFFICIAL[nd])) for nd in (2, 3)},
    "small": {
        2: (dict(UNET_OFFICIAL[2], inner_channel=32, channel_mults=(1, 2, 2, 2)),
            dict(in_channel=2, encoder_nc=(16, 32, 32, 32, 32), decoder_nc=(32, 32, 32, 8, 8, 2))),
        3: (dict(UNET_OFFICIAL[3], inner_channel=4, channel_mults=(1, 2, 2, 2)),
            dict(in_channel=2, encoder_nc=(8, 16, 16, 16, 16), decoder_nc=(16, 16, 16, 8, 8, 3))),
    },
}
NCC_WINDOW = 9


def make_scheduler(c: DiffuseMorphConfig):
    """diffusers' DDPM scheduler with the paper's betas; the posterior variance and the clipped x0
    of the official p_sample."""
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=c.timesteps, beta_start=c.beta_start, beta_end=c.beta_end,
                         beta_schedule="linear", clip_sample=True, clip_sample_range=1.0,
                         variance_type="fixed_small")


class DiffuseMorphObjective(Objective):
    def __init__(self, method: "DiffuseMorph"):
        self.method = method

    def sample(self, data: TrainingSet, rng: np.random.Generator, batch_size: int):
        moving, fixed = data.sample(rng, batch_size, self.method.cfg.inter_subject)
        if getattr(self.method.cfg, "augment", "none") == "official":     # (FSDiffReg reuses this sampler)
            moving, fixed = official_flips(moving, fixed, rng, self.method.ndim)
        return moving, fixed

    def __call__(self, nets, batch) -> dict[str, torch.Tensor]:
        moving, fixed = batch
        m, crop = pad_to_multiple(2 * moving - 1, self.method.multiple)
        f, _ = pad_to_multiple(2 * fixed - 1, self.method.multiple)
        t = torch.randint(0, self.method.cfg.timesteps, (m.shape[0],), device=m.device)
        return self.method.loss_terms(nets, m, f, torch.randn_like(f), t)


@METHODS.register("diffusemorph")
class DiffuseMorph(Method):
    name = "diffusemorph"
    OBJECTIVE = DiffuseMorphObjective       # the loss of one step (a subclass may bring its own)
    Config = DiffuseMorphConfig
    cfg: DiffuseMorphConfig

    def __init__(self, ndim: int, config: dict | DiffuseMorphConfig, device: torch.device):
        super().__init__(ndim, config, device)
        c = self.cfg
        unet, fld = NETWORKS[c.network][ndim]
        self.nets["unet"] = SR3UNet(ndim, **{**unet, **c.unet_kwargs}).to(device)
        self.nets["field"] = DeformationUNet(ndim, **{**fld, **c.field_kwargs}).to(device)
        if c.init_weights == "official":
            official_init(self.nets["unet"], self.nets["field"])
        self.multiple = int(np.lcm(self.nets["unet"].multiple, DeformationUNet.multiple))
        self.ncc = LNCC("box", size=NCC_WINDOW, squared=True, border="zeros",
                        eps=1e-5 / NCC_WINDOW ** (2 * ndim), eps_form="product").to(device)
        self.smooth = build_regulariser("diffusion").to(device)
        self.scheduler = make_scheduler(c)
        self.abar = self.scheduler.alphas_cumprod.to(device)

    # ------------------------------------------------------------------ training
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        a = self.abar.to(x0.device)[t].view(-1, *([1] * (x0.ndim - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def loss_terms(self, nets, m: torch.Tensor, f: torch.Tensor, noise: torch.Tensor,
                   t: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms of Eq. 7 for images in [-1, 1] (sides multiples of self.multiple); `sim` and
        `smooth` carry their weights, as the official loss terms do."""
        c = self.cfg
        eps_hat = nets["unet"](torch.cat([m, f, self.q_sample(f, t, noise)], 1), t)
        warped, flow = nets["field"](torch.cat([m, eps_hat], 1))
        pix = F.mse_loss(eps_hat, noise)
        sim = -c.lam * self.ncc.similarity(warped, (f + 1) / 2)
        smooth = c.lam * c.lambda_reg * self.smooth(flow)
        return {"loss": pix + sim + smooth, "pix": pix, "sim": sim, "smooth": smooth}

    def objective(self, data: TrainingSet) -> Objective:
        if any(n % self.multiple for n in data.shape):
            print(f"[train {self.name}] images {'x'.join(map(str, data.shape))} padded to multiples of "
                  f"{self.multiple}", flush=True)
        if getattr(self.cfg, "augment", "none") == "official" and self.ndim == 3 and data.shape[0] != data.shape[1]:
            print(f"[train {self.name}] augment official: in-plane sides {data.shape[0]} != {data.shape[1]}, "
                  "flips without the official swap of the two axes", flush=True)
        return self.OBJECTIVE(self)

    def fit(self, data, log_path=None) -> dict:
        summary = super().fit(data, log_path)
        c = self.cfg
        # (FSDiffReg inherits this fit: its settings have no init_weights / augment)
        summary.update({k: getattr(c, k) for k in ("init_weights", "augment") if hasattr(c, k)})
        summary.update(network=c.network, lam=c.lam, lr=c.lr, betas=c.betas,
                       parameters={k: v[0] for k, v in self.parameter_counts().items()})
        return summary

    def load_official(self, source) -> dict:
        """Both networks from an official `*_gen_G.pth` (path or state dict), strictly; returns
        the noise-schedule buffers it carried (methods.diffusemorph_official)."""
        return load_official_checkpoint(self, source)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def latent(self, m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """e = G(m, f, x_0 = f, t = 0) (Eq. 10), images in [-1, 1]."""
        t0 = torch.zeros(m.shape[0], dtype=torch.long, device=m.device)
        return self.nets["unet"](torch.cat([m, f, f], 1), t0)

    @torch.no_grad()
    def trajectory(self, moving: torch.Tensor, fixed: torch.Tensor, etas) -> list[torch.Tensor]:
        """phi_eta for each eta (Eq. 11), voxel displacements (1, D, *S) of images in [0, 1]."""
        self.nets.eval()
        moving, fixed = moving.to(self.device), fixed.to(self.device)
        m, crop = pad_to_multiple(2 * moving - 1, self.multiple)
        f, _ = pad_to_multiple(2 * fixed - 1, self.multiple)
        e = self.latent(m, f)
        base = self.nets["field"].field(torch.cat([m, torch.zeros_like(e)], 1)) if self.cfg.eta0 == "anchored" else 0
        return [(self.nets["field"].field(torch.cat([m, float(eta) * e], 1)) - base)[tuple(crop)] for eta in etas]

    @torch.no_grad()
    def generate(self, moving: torch.Tensor, fixed: torch.Tensor, t_gen: int | None = None,
                 steps: int | None = None, sampler: str | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Algorithm 2: x_T = sqrt(abar_T) m + sqrt(1 - abar_T) eps, then `steps` reverse steps
        conditioned on (m, f) down to t = 0, at `steps` timesteps spread evenly over T - 1 .. 0 (the
        official code: T = 200, all 200 ancestral steps from t = T - 1). With 0 steps, x_T itself.
        Returns an image in [0, 1]."""
        c = self.cfg
        t_gen, steps, sampler = t_gen or c.gen_t, c.gen_steps if steps is None else steps, sampler or c.sampler
        self.nets.eval()
        moving, fixed = moving.to(self.device), fixed.to(self.device)
        m, crop = pad_to_multiple(2 * moving - 1, self.multiple)
        f, _ = pad_to_multiple(2 * fixed - 1, self.multiple)
        noise = torch.randn(m.shape, generator=generator, device="cpu").to(m.device)
        x = self.q_sample(m, torch.full((m.shape[0],), t_gen, device=m.device), noise)
        if steps > 0:
            # `steps` timesteps spread evenly over t_gen - 1 .. 0 (all of them when steps >= t_gen:
            # the official 200 ancestral steps); respaced DDPM through diffusers' custom timesteps,
            # DDIM (eta 0) on the same alphas
            times = sorted({int(round(v)) for v in np.linspace(0, t_gen - 1, min(steps, t_gen))}, reverse=True)
            sched = make_scheduler(c)
            sched.set_timesteps(timesteps=times)
            abar = sched.alphas_cumprod
            for i, t in enumerate(times):
                tt = torch.full((m.shape[0],), t, device=m.device, dtype=torch.long)
                eps = self.nets["unet"](torch.cat([m, f, x], 1), tt)
                if sampler == "ddpm":
                    x = sched.step(eps.cpu(), t, x.cpu(), generator=generator).prev_sample.to(m.device)
                else:
                    a_t = abar[t].item()
                    a_prev = abar[times[i + 1]].item() if i + 1 < len(times) else 1.0
                    x0 = ((x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5).clamp(-1, 1)
                    x = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        return ((x + 1) / 2)[tuple(crop)]

    def register(self, moving: torch.Tensor, fixed: torch.Tensor,
                 generator: torch.Generator | None = None) -> RegistrationResult:
        etas = [float(e) for e in self.cfg.etas]
        if 1.0 not in etas:
            etas = etas + [1.0]
        fields = self.trajectory(moving, fixed, etas)
        images = {}
        if self.cfg.generate:
            images["generated"] = self.generate(moving, fixed, generator=generator).cpu()
        return RegistrationResult(fields[etas.index(1.0)].cpu(), [u.cpu() for u in fields], images, etas)
