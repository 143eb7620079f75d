r"""
# Maximum likelihood with a tractable normalizer

The losses everyone already uses are energy-based maximum likelihood with a
normalizer known in closed form. A conditional energy $F(x, y)$ defines

$$P(y \mid x) = \frac{e^{-F(x, y)}}{Z(x)}, \qquad
-\log P(y \mid x) = F(x, y) + \log Z(x).$$

When $Z(x)$, an integral (or sum) over the *answers* $y$, has a formula, the NLL
can be minimized directly, and the "push the model's answers up" term of the
previous tutorial is simply the gradient of that formula. This page checks, with
`ebmlab.conditional`, that

* squared error is the NLL of a Gaussian energy,
* cross-entropy is the NLL of a categorical energy,

and shows why squared error on a sigmoid output learns slowly.
"""

# %%
# ## Squared error is a Gaussian likelihood
#
# `GaussianEnergy` has $F(x, y) = |y - m(x)|^2 / (2\sigma^2)$. Its normalizer is
# a Gaussian integral, $\log Z(x) = \tfrac{D}{2}\log(2\pi\sigma^2)$, the same for
# every $x$. So the NLL is the squared error up to a scale and a constant, and
# least squares *is* maximum likelihood under Gaussian noise.
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebmlab.conditional import (
    BernoulliEnergy,
    CategoricalEnergy,
    GaussianEnergy,
    fit_likelihood,
    fit_mle,
)

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)

x = torch.randn(500, 3, generator=g, dtype=torch.float64)
true_w = torch.tensor([[1.5], [-2.0], [0.5]], dtype=torch.float64)
y = x @ true_w + 0.3 + 0.4 * torch.randn(500, 1, generator=g, dtype=torch.float64)

F = GaussianEnergy(3, 1, sigma=1.0, generator=torch.Generator().manual_seed(1)).double()
mse_half = 0.5 * (y - F.mean(x)).pow(2).squeeze(1)
print("NLL - squared error / 2 (should be log(2 pi)/2 = 0.9189 for every point):")
print("  ", (F.nll(x, y) - mse_half)[:5].detach().numpy().round(4))

# %%
# Minimizing this NLL (`fit_likelihood`, full-batch L-BFGS) must therefore give
# the least-squares solution. Compare with `torch.linalg.lstsq`:
fit_likelihood(F, x, y)
design = torch.cat([x, torch.ones(500, 1, dtype=torch.float64)], 1)
lstsq = torch.linalg.lstsq(design, y).solution.squeeze(1)
layer = F.network[0]  # the linear map m(x) = w x + b
mle = torch.cat([layer.weight.detach().squeeze(0), layer.bias.detach()])
print(f"maximum likelihood: {mle.numpy().round(4)}")
print(f"least squares:      {lstsq.numpy().round(4)}")
print(f"largest difference: {float((mle - lstsq).abs().max()):.2e}")

# %%
# With `learn_sigma=True` the noise level is a parameter too; its maximum
# likelihood value is the root-mean-square residual, which `fit_mle` gives in
# closed form for a plain sample:
F_sigma = GaussianEnergy(3, 1, sigma=1.0, learn_sigma=True).double()
fit_likelihood(F_sigma, x, y)
residual = (y - F_sigma.mean(x)).detach()
closed = fit_mle("gaussian", residual)
print(f"learned sigma {float(F_sigma.log_sigma.detach().exp()):.4f}")
print(f"rms residual  {float(closed['covariance'].sqrt()):.4f} (true noise 0.4)")

# %%
# ## Cross-entropy is a categorical likelihood
#
# `CategoricalEnergy` gives each class an energy $F(x, k) = -s_k(x)$ (minus a
# logit). Its normalizer is a finite sum, $\log Z(x) = \log\sum_k e^{s_k(x)}$,
# and the NLL is exactly the cross-entropy of the softmax:
C = CategoricalEnergy(4, 3, generator=torch.Generator().manual_seed(2))
xc = torch.randn(6, 4, generator=g)
yc = torch.tensor([0, 1, 2, 2, 1, 0])
ce = nn.functional.cross_entropy(-C.energies(xc), yc, reduction="none")
print("categorical NLL:", C.nll(xc, yc).detach().numpy().round(4))
print("cross-entropy:  ", ce.detach().numpy().round(4))

# %%
# Its gradient shows the two forces of maximum likelihood from tutorial 1. For
# the logit $s_k$, $\partial\,\mathrm{NLL} / \partial s_k = P(k \mid x) -
# [k = y]$: the correct class's energy is pushed down with weight 1, and every
# class's energy is pushed up in proportion to its model probability, the
# expectation under the model, computed exactly.
logits = -C.energies(xc[:1]).detach().requires_grad_(True)
nll = (-logits[0, yc[0]] + torch.logsumexp(logits, 1)).sum()
(grad,) = torch.autograd.grad(nll, logits)
print(f"softmax probabilities     {torch.softmax(logits, 1).detach().numpy().round(4)}")
print(f"d NLL / d logits (y = {int(yc[0])}) {grad.numpy().round(4)}")

# %%
# ## Why squared error on a sigmoid learns slowly
#
# For a binary target there are two energies on a sigmoid output
# $p = \sigma(s)$:
#
# * squared error, the Gaussian NLL of $p$: $\partial/\partial s =
#   (p - y)\,p(1-p)$;
# * binary cross-entropy, the NLL of `BernoulliEnergy` ($F = -ys$,
#   $\log Z = \mathrm{softplus}(s)$): $\partial/\partial s = p - y$.
#
# The first has the sigmoid's slope $p(1-p)$ as an extra factor. When the output
# saturates on the *wrong* side, the error is largest and the gradient of squared
# error is almost zero. Autograd through the library's two energies, target
# $y = 0$:
s = torch.linspace(-8, 8, 161, requires_grad=True)
zeros = torch.zeros(161)
gauss = GaussianEnergy(0, 1, network=nn.Identity(), sigma=1.0)  # mean = its input
bern = BernoulliEnergy(0, network=nn.Identity())  # logit = its input
(g_mse,) = torch.autograd.grad(gauss.nll(torch.sigmoid(s)[:, None], zeros[:, None]).sum(), s)
(g_bce,) = torch.autograd.grad(bern.nll(s[:, None], zeros).sum(), s)
for value in (0.0, 4.0, 8.0):
    i = int((s.detach() - value).abs().argmin())
    print(
        f"s = {value:>3.0f}  p = {float(torch.sigmoid(s[i].detach())):.4f}  "
        f"MSE grad {float(g_mse[i]):.2e}  BCE grad {float(g_bce[i]):.2e}"
    )

fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
ax[0].plot(s.detach().numpy(), g_mse.numpy(), label="squared error on sigmoid")
ax[0].plot(s.detach().numpy(), g_bce.numpy(), label="cross-entropy")
ax[0].set_xlabel("logit s (target y = 0)")
ax[0].set_ylabel("d loss / d s")
ax[0].set_title("gradient with respect to the logit")
ax[0].legend()

# %%
# The effect on training: logistic regression started confidently wrong (the
# true direction flipped and scaled up), plain gradient descent with the same
# learning rate for both losses. (Adam rescales each step by the gradient's
# running size, which hides the effect.) The full example with more steps is
# `examples/mse_vs_bce_saturation.py`.
xl = torch.randn(2000, 2, generator=g)
labels = (xl @ torch.tensor([1.5, -1.0]) > 0).float()


def wrong_start() -> nn.Linear:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-12.0, 8.0]]))
        layer.bias.zero_()
    return layer


mse_net, bce_net = wrong_start(), wrong_start()
mse_model = GaussianEnergy(2, 1, network=nn.Sequential(mse_net, nn.Sigmoid()))
bce_model = BernoulliEnergy(2, network=bce_net)
opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (mse_model, bce_model)]
curve: dict[str, list[float]] = {"mse": [], "bce": []}
for _step in range(201):
    with torch.no_grad():
        for name, net in (("mse", mse_net), ("bce", bce_net)):
            curve[name].append(float(((net(xl)[:, 0] > 0).float() == labels).float().mean()))
    losses = (mse_model.nll(xl, labels[:, None]).mean(), bce_model.nll(xl, labels).mean())
    for opt, loss in zip(opts, losses, strict=True):
        opt.zero_grad()
        loss.backward()
        opt.step()
for step in (0, 10, 50, 100, 200):
    print(f"step {step:>3}: accuracy MSE {curve['mse'][step]:.1%}, BCE {curve['bce'][step]:.1%}")
ax[1].plot(curve["mse"], label="squared error on sigmoid")
ax[1].plot(curve["bce"], label="cross-entropy")
ax[1].set_xlabel("gradient-descent step")
ax[1].set_ylabel("training accuracy")
ax[1].set_title("from a saturated, wrong start")
ax[1].legend()
fig.tight_layout()

# %%
# Both losses are maximum likelihood, under different models of the target. The
# Bernoulli energy is the right model for a 0/1 label, and its NLL has no
# saturating factor: the gradient is proportional to the error. For energies
# whose normalizer has no formula, the same principle needs samples from the
# model: tutorial 1. In least squares the only trace of $Z$ is the constant
# $\tfrac12\log(2\pi\sigma^2)$ per point, which never changes the fit:
print(f"log(2 pi) / 2 = {math.log(2 * math.pi) / 2:.4f} nats per point at sigma = 1")
