r"""
# Images, self-tuning samplers, and scaling out

Three topics that matter once the data are bigger than a 2-D toy:

1. an **image energy** (`ConvEnergy`) trained by persistent contrastive
   divergence, on the 8x8 digits bundled with scikit-learn, for well under a
   minute;
2. **samplers that tune themselves**: warm-up adaptation of the step size and
   mass, ChEES-HMC, and parallel tempering for separated modes;
3. **several processes** with `torchrun`.
"""

# %%
# ## 1. A convolutional energy on digits
#
# `load_images("builtin:digits")` returns the 1,797 digits as `(N, 1, 8, 8)`
# floats in $[-1, 1]$, with the recorded map back to the original grey levels
# 0-16. The recipe is the one `ebmlab train --data builtin:digits` uses
# (`docs/images.md`): SGLD negatives with a large gradient step, small noise and a
# per-pixel gradient clamp, drawn from a replay buffer of persistent chains
# (restarted from uniform noise with probability 0.05), an $L^2$ penalty on the
# energies, and a little noise on the data.
import time

import matplotlib.pyplot as plt
import torch

import ebmlab
from ebmlab.data import load_images
from ebmlab.energies import ConvEnergy, GaussianMixture
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import Langevin, run
from ebmlab.train import TrainSettings, fit

torch.set_num_threads(1)  # small tensors: one thread is fastest
torch.manual_seed(0)
images = load_images("builtin:digits")
x = images.x
print(f"{images.source}: {tuple(x.shape)}, range [{float(x.min())}, {float(x.max())}]")
print(f"recorded scaling: {images.scaling}")


def uniform_noise(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Fresh chains: uniform noise in [-1, 1]."""
    return torch.rand(n, 1, 8, 8, generator=g) * 2 - 1


energy = ConvEnergy((1, 8, 8), channels=(32, 64), base_scale=2.0)
sgld = Langevin(10.0, noise_scale=0.005, grad_clamp=0.03, clamp=(-1.0, 1.0))
cd = ContrastiveDivergence(
    sgld, n_steps=15, mode="pcd", init_fn=uniform_noise, alpha=0.1, data_noise=0.04
)
buffer = cd.init_state(2048, reinit_prob=0.05, generator=torch.Generator().manual_seed(1))
settings = TrainSettings(
    steps=300, batch_size=64, lr=2e-4, betas=(0.0, 0.999), warmup_steps=0,
    lr_schedule="constant", log_every=20,
)  # fmt: skip
t0 = time.perf_counter()
result = fit(energy, x, cd, settings, state=buffer, progress=False)
print(f"{result.step} updates in {time.perf_counter() - t0:.1f} s")
last = result.metrics[-1]
print(f"last logged: energy gap {last['energy_gap']:.3f}, data energy {last['energy_pos']:.3f}")

# %%
# Samples: the replay buffer's chains (which have been refined over many
# updates) and fresh chains run from uniform noise for 100 SGLD steps.
g = torch.Generator().manual_seed(2)
buffer_samples = buffer.buffer[torch.randperm(len(buffer.buffer), generator=g)[:32]]
fresh = run(sgld, energy, uniform_noise(32, g), 100, generator=g).state.x
fig, axes = plt.subplots(3, 16, figsize=(10, 2.2))
for r, (name, imgs) in enumerate((("data", x[:16]), ("buffer", buffer_samples[:16]),
                                  ("fresh", fresh[:16]))):  # fmt: skip
    for c in range(16):
        axes[r, c].imshow(imgs[c, 0].detach().numpy(), cmap="gray_r", vmin=-1, vmax=1)
        axes[r, c].axis("off")
    axes[r, 0].set_title(name, loc="left", fontsize=8)
fig.tight_layout()
with torch.no_grad():
    print(f"mean energy: data {float(energy(x[:512]).mean()):.3f}, "
          f"buffer {float(energy(buffer_samples).mean()):.3f}, "
          f"fresh chains {float(energy(fresh).mean()):.3f}, "
          f"uniform noise {float(energy(uniform_noise(512, g)).mean()):.3f}")  # fmt: skip

# %%
# The fresh chains all land on nearly the same image. SGLD with noise 0.005 is
# almost plain gradient descent, and after this short training the energy has
# one dominant basin for chains that start from noise; the buffer's chains,
# refined across many updates and restarted only now and then, are more varied.
# This is why image runs report the quality of fresh chains separately
# (`fid_fresh` in `report.json`).
#
# Read the energies with tutorial 1's diagnostics: uniform noise sits well above
# the data, so the model has learned where digits are. If the samples' energy
# comes out *below* the data's (a negative energy gap), the chains have found
# low-energy regions that hold no data, which further training pushes up.
#
# This is 300 updates of batch 64 with 15 SGLD steps each, to keep the page
# fast. The image recipe's defaults (`train.steps: 1000`, batch 128, 20 SGLD
# steps, 8,192 chains) and the published numbers (`docs/benchmarks.md`, "Images": FID of
# samples in the features of a small classifier, and the dequantized
# log-likelihood of the digits with a BDMC bracket) come from longer runs.
# `ebmlab train --data builtin:mnist5k` does the same on 28x28 MNIST digits.
#
# ## 2. Samplers that tune themselves
#
# Every gradient sampler needs a step size; HMC also a trajectory length. With
# `ebmlab.sample(energy, x0, method)` and no `step_size`, MALA, HMC and ChEES-HMC
# adapt during a warm-up (dual averaging of the step size towards a target
# acceptance, and a diagonal mass from the chains' variances, as Stan does), then
# run frozen. The target: a narrow, elongated Gaussian (standard deviations 0.05
# and 5), where one fixed step size is wrong for one of the two axes.
target = GaussianMixture(
    torch.tensor([1.0]), torch.zeros(1, 2), torch.diag(torch.tensor([0.05, 5.0]) ** 2)[None]
)
x0 = torch.randn(256, 2, generator=g)
for method in ("mala", "hmc", "chees"):
    t0 = time.perf_counter()
    out = ebmlab.sample(target, x0, method, n_steps=300, generator=g, return_info=True)
    std = out.x.std(0)
    print(f"{method:<6} {out.warmup.summary()}")
    print(f"       sample std ({float(std[0]):.3f}, {float(std[1]):.2f}), true (0.050, 5.00); "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip

# %%
# The adapted inverse mass matches the target's variances, which turns the
# elongated Gaussian into a round one for the sampler.
#
# ## Parallel tempering for separated modes
#
# No local sampler crosses between modes separated by a wide low-density gap.
# Parallel tempering runs replicas at inverse temperatures
# $\beta_\mathrm{min} = b_0 < \dots < b_{R-1} = 1$ (the energy scaled by $b_k$)
# and swaps neighbours; hot replicas cross, and swaps carry the crossings down.
# Target: two Gaussians at $\pm 4$ with weights 0.2 and 0.8. All chains start in
# the *left* mode.
bimodal = GaussianMixture(
    torch.tensor([0.2, 0.8]), torch.tensor([[-4.0, 0.0], [4.0, 0.0]]), torch.tensor([0.3, 0.3])
)
start = torch.tensor([-4.0, 0.0]) + 0.3 * torch.randn(128, 2, generator=g)
mala = ebmlab.sample(bimodal, start, "mala", n_steps=500, generator=g)
pt = ebmlab.sample(bimodal, start, "pt", n_steps=500, base="mala", n_replicas=8,
                   beta_min=0.01, generator=g, return_info=True)  # fmt: skip
share_mala = float((mala[:, 0] > 0).float().mean())
share_pt = float((pt.x[:, 0] > 0).float().mean())
print(
    f"share of chains in the right mode (true 0.80): MALA {share_mala:.2f}, "
    f"parallel tempering {share_pt:.2f}"
)
print(f"swap acceptance per adjacent pair: {[round(a, 2) for a in pt.pt['swap_acceptance']]}")
fig, ax = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
ax[0].hist(mala[:, 0].numpy(), bins=40, range=(-6, 6))
ax[0].set_title("MALA from the left mode")
ax[1].hist(pt.x[:, 0].numpy(), bins=40, range=(-6, 6))
ax[1].set_title("parallel tempering, 8 replicas")
for a in ax:
    a.set_xlabel("x[0]")
fig.tight_layout()

# %%
# The same choices are available from the command line
# (`ebmlab sample RUN -o s.npy --method pt --replicas 8`) and in the `sampler:`
# section of a training config; `docs/sampling.md` is the guide.
#
# ## 3. Scaling out with torchrun
#
# Training spends nearly all its time in the sampler. ebmlab spreads it with
# PyTorch's own `torch.distributed`: one process per rank, gradients averaged by
# `DistributedDataParallel`, each rank with its own shard of the replay buffer
# and its own random stream (rank 0 uses the run's seed, so one process
# reproduces a plain run). `train.batch_size` is the global batch. Nothing to
# change in the config:
#
# ```bash
# ebmlab train config.yaml --nproc 2        # launches torchrun for you
# ebmlab resume runs/NAME --nproc 4         # resume with any number of processes
# torchrun --standalone --nproc_per_node 2 -m ebmlab train config.yaml   # by hand
# # several machines: the same command on every node, one rendezvous endpoint
# torchrun --nnodes 2 --nproc_per_node 4 --rdzv_id job17 --rdzv_backend c10d \
#     --rdzv_endpoint 10.0.0.1:29400 -m ebmlab train config.yaml --device cuda
# ```
#
# Resuming with the same number of processes continues bit for bit; with a
# different number the buffer is re-sharded. On one process, `compile=True` on
# `Langevin`, `MALA` and `HMC` takes the fast path (a fused value-and-gradient
# kernel for `MLPEnergy` on the CPU, `torch.compile` with CUDA graphs on a GPU).
# `docs/scaling.md` has the details and the measured speed-ups. In Python:
print(f"torch.distributed available: {torch.distributed.is_available()}")
