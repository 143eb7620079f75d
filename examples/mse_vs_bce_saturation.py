"""# Why squared error on a sigmoid output learns slowly when the output saturates.

Both losses are negative log-likelihoods of energies with a known normalizer:

- squared error = NLL of the Gaussian energy F = (y - p)^2 / 2, with the
  prediction p = sigmoid(s) coming out of a sigmoid;
- binary cross-entropy = NLL of the Bernoulli energy F = -y s, whose
  normalizer is log Z = softplus(s).

Their gradients with respect to the logit s (computed here by autograd through
the library's energies) differ by the sigmoid's slope p (1 - p):

    d MSE / d s = (p - y) p (1 - p)        d BCE / d s = p - y

When the output saturates on the wrong side (s = 8 for a target 0, p = 0.9997),
the first is about 3e-4 and the second about 1: the error is largest exactly
where squared error stops learning. Part 2 trains logistic regression from such
a saturated, wrong start with both losses and plain gradient descent.

Run:

```
.venv/bin/python examples/mse_vs_bce_saturation.py   (a few seconds)
```
"""

from __future__ import annotations

import torch
from torch import nn

from ebmlab.conditional import BernoulliEnergy, GaussianEnergy

torch.set_num_threads(1)  # small tensors: one thread is fastest

# -- part 1: the gradient with respect to the logit, target y = 0 --------------------------
print("Gradient with respect to the logit s for the target y = 0")
print(f"{'s':>5} {'p = sigmoid(s)':>15} {'MSE grad':>10} {'BCE grad':>10}")
logits = torch.tensor([[-4.0], [0.0], [2.0], [4.0], [8.0]], requires_grad=True)
gaussian = GaussianEnergy(0, 1, network=nn.Identity(), sigma=1.0)  # mean = its input
bernoulli = BernoulliEnergy(0, network=nn.Identity())  # logit = its input
zeros = torch.zeros(5, 1)
(g_mse,) = torch.autograd.grad(gaussian.nll(torch.sigmoid(logits), zeros).sum(), logits)
(g_bce,) = torch.autograd.grad(bernoulli.nll(logits, zeros[:, 0]).sum(), logits)
for s, gm, gb in zip(logits.detach()[:, 0], g_mse[:, 0], g_bce[:, 0], strict=True):
    print(
        f"{float(s):>5.0f} {float(torch.sigmoid(s)):>15.4f} {float(gm):>10.2e} {float(gb):>10.2e}"
    )

# -- part 2: logistic regression from a saturated, wrong start ------------------------------
g = torch.Generator().manual_seed(0)
x = torch.randn(2000, 2, generator=g)
labels = (x @ torch.tensor([1.5, -1.0]) > 0).float()


def saturated_wrong_start() -> nn.Linear:
    layer = nn.Linear(2, 1)
    with torch.no_grad():  # the true direction, flipped and scaled: confidently wrong
        layer.weight.copy_(torch.tensor([[-12.0, 8.0]]))
        layer.bias.zero_()
    return layer


mse_net = saturated_wrong_start()
mse_model = GaussianEnergy(2, 1, network=nn.Sequential(mse_net, nn.Sigmoid()))
bce_net = saturated_wrong_start()
bce_model = BernoulliEnergy(2, network=bce_net)
# Plain gradient descent: its steps are proportional to the gradient. (Adam
# divides each step by the gradient's running scale, which hides the effect.)
optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (mse_model, bce_model)]
print("\nLogistic regression from a saturated wrong start (full-batch gradient descent, lr 0.5)")
print(f"{'steps':>6} {'accuracy (MSE)':>15} {'accuracy (BCE)':>15}")
for step in range(401):
    if step in (0, 10, 25, 50, 100, 200, 400):
        with torch.no_grad():
            acc = [
                float(((n(x)[:, 0] > 0).float() == labels).float().mean())
                for n in (mse_net, bce_net)
            ]
        print(f"{step:>6} {acc[0]:>15.1%} {acc[1]:>15.1%}")
    for opt, loss in zip(
        optimizers,
        (mse_model.nll(x, labels[:, None]).mean(), bce_model.nll(x, labels).mean()),
        strict=True,
    ):
        opt.zero_grad()
        loss.backward()
        opt.step()
