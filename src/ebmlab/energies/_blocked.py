"""Energy and input gradient of an MLP in cache-sized row blocks (the CPU fast path).

Autograd over 10,000 chains streams every activation (megabytes per layer)
through main memory twice and allocates it anew at every step. This kernel
runs the forward pass and the hand-derived input-gradient pass one block of
rows at a time, in preallocated buffers small enough to stay in the CPU's
caches, and writes each block's energies and gradients straight into the
outputs. Arithmetic is the same as autograd's (the same BLAS products and the
same ATen activation derivatives), so results agree to rounding, usually
bit for bit. Measured speed-ups are in docs/benchmarks.md (§ Scale).
"""

from __future__ import annotations

__all__ = ["BlockedMLPGrad"]

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

_aten = torch.ops.aten

# Rows per block and thread. Measured on a 2-core AMD EPYC (1 MiB L2 per core,
# MKL GEMMs): for 3-layer MLPs of width 64 to 512, 512 to 1024 rows per block
# is fastest with one thread and 2048 with two; smaller blocks lose GEMM
# efficiency (and, threaded, synchronization), larger ones fall out of cache.
_ROWS_PER_THREAD = 1024
_MAX_ROWS = 8192


_Ops = tuple[bool, Callable[[Tensor, Tensor], object], Callable[[Tensor, Tensor, Tensor], object]]


def _activation_ops(act: nn.Module) -> _Ops:
    """``(in_place, forward(z, out), backward(grad, saved, out))`` of an activation.

    In-place activations (tanh, ELU) overwrite the pre-activation with their
    output and differentiate from the output; the others keep the
    pre-activation and write their output to a scratch buffer.
    """
    if isinstance(act, nn.SiLU):
        return (
            False,
            lambda z, out: _aten.silu.out(z, out=out),
            lambda g, z, out: _aten.silu_backward.grad_input(g, z, grad_input=out),
        )
    if isinstance(act, nn.Softplus):
        beta, threshold = act.beta, act.threshold
        return (
            False,
            lambda z, out: _aten.softplus.out(z, beta, threshold, out=out),
            lambda g, z, out: _aten.softplus_backward.grad_input(
                g, z, beta, threshold, grad_input=out
            ),
        )
    if isinstance(act, nn.GELU):
        approximate = act.approximate
        return (
            False,
            lambda z, out: _aten.gelu.out(z, approximate=approximate, out=out),
            lambda g, z, out: _aten.gelu_backward.grad_input(
                g, z, approximate=approximate, grad_input=out
            ),
        )
    if isinstance(act, nn.Tanh):
        return (
            True,
            lambda z, out: _aten.tanh.out(z, out=z),
            lambda g, y, out: _aten.tanh_backward.grad_input(g, y, grad_input=out),
        )
    if isinstance(act, nn.ELU):
        alpha = float(act.alpha)
        return (
            True,
            lambda z, out: _aten.elu.out(z, alpha, 1.0, 1.0, out=z),
            lambda g, y, out: _aten.elu_backward.grad_input(
                g, alpha, 1.0, 1.0, True, y, grad_input=out
            ),
        )
    raise TypeError(f"no blocked derivative for activation {type(act).__name__}")


def supported(net: nn.Sequential) -> bool:
    """Whether ``net`` is ``Linear, act, Linear, act, ..., Linear(-, 1)`` with known acts."""
    mods = list(net)
    if not mods or len(mods) % 2 != 1:
        return False
    for i, m in enumerate(mods):
        if i % 2 == 0:
            if not isinstance(m, nn.Linear):
                return False
        else:
            try:
                _activation_ops(m)
            except TypeError:
                return False
    return isinstance(mods[-1], nn.Linear) and mods[-1].out_features == 1


class BlockedMLPGrad:
    """``x -> (f(x), grad_x f(x))`` for ``f = Linear, act, ..., Linear(-, 1)``.

    Arguments:
        net: The network; checked with :func:`supported`. Its weights are read
            at every call (so training updates and spectral normalization are
            seen), never copied.

    Call with ``flat`` of shape ``(N, D)`` (contiguous rows, same dtype and
    device as the weights); returns energies ``(N,)`` and gradients ``(N, D)``,
    both newly allocated. Not differentiable: call it under ``no_grad``.
    """

    def __init__(self, net: nn.Sequential) -> None:
        if not supported(net):
            raise TypeError("BlockedMLPGrad needs Linear, act, ..., Linear(-, 1)")
        mods = list(net)
        self.linears: list[nn.Linear] = [m for m in mods if isinstance(m, nn.Linear)]
        self.acts = [_activation_ops(m) for m in mods[1::2]]
        self.widths = [lin.out_features for lin in self.linears[:-1]]
        self._plans: dict[tuple[int, torch.dtype, torch.device], _Plan] = {}

    @staticmethod
    def block_rows(n_threads: int) -> int:
        """Rows per block for ``n_threads`` intra-op threads."""
        return min(_ROWS_PER_THREAD * max(n_threads, 1), _MAX_ROWS)

    def _plan(self, rows: int, like: Tensor) -> _Plan:
        """Preallocated buffers, and the views of them each layer reads and writes."""
        key = (rows, like.dtype, like.device)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 8:  # shapes come and go: keep the cache small
                self._plans.clear()
            plan = self._plans[key] = _Plan(rows, self.widths, self.acts, like)
        return plan

    def __call__(self, flat: Tensor) -> tuple[Tensor, Tensor]:
        n, d = flat.shape
        weights = [lin.weight.detach() for lin in self.linears]
        w_t = [w.t() for w in weights]
        biases = [None if lin.bias is None else lin.bias.detach() for lin in self.linears]
        w_out = weights[-1][0]
        b_out = biases[-1] if biases[-1] is not None else flat.new_zeros(1)
        e = flat.new_empty(n)
        g = flat.new_empty(n, d)
        rows = self.block_rows(torch.get_num_threads())
        acts = self.acts
        last = len(self.widths) - 1
        addmm, mm = torch.addmm, torch.mm
        plan = None
        for xb, eb, gb in zip(flat.split(rows), e.split(rows), g.split(rows), strict=True):
            if plan is None or plan.rows != xb.shape[0]:
                plan = self._plan(xb.shape[0], flat)
            z, out, dz, grad_h = plan.z, plan.out, plan.dz, plan.grad_h
            h = xb
            for i in range(last + 1):  # forward: z_i = h W_i^T + b_i, h_i = act(z_i)
                bias = biases[i]
                if bias is None:
                    mm(h, w_t[i], out=z[i])
                else:
                    addmm(bias, h, w_t[i], out=z[i])
                acts[i][1](z[i], out[i])
                h = out[i]
            torch.addmv(b_out, h, w_out, out=eb)
            if last < 0:  # no hidden layer: the gradient is w_out itself
                gb.copy_(w_out.expand_as(gb))
                continue
            # backward: dE/dh = w_out on every row, then through each layer
            acts[last][2](w_out.expand(xb.shape[0], -1), z[last], dz[last])
            for i in range(last, 0, -1):
                mm(dz[i], weights[i], out=grad_h[i - 1])
                acts[i - 1][2](grad_h[i - 1], z[i - 1], dz[i - 1])
            mm(dz[0], weights[0], out=gb)
        return e, g


class _Plan:
    """Buffers for one block of ``rows`` rows.

    ``z[i]`` holds layer ``i``'s pre-activation, or for in-place activations its
    output; either way it is what the activation's derivative reads. ``out[i]``
    is the layer's output (``z[i]`` itself, or a view of scratch buffer A). In the
    backward pass ``dz[i]`` (the gradient at ``z[i]``) and ``grad_h[i]`` (at
    ``h_i``) alternate between scratch buffers A and B, written in place.
    """

    def __init__(
        self, rows: int, widths: Sequence[int], acts: Sequence[_Ops], like: Tensor
    ) -> None:
        self.rows = rows
        wmax = max(widths, default=1)
        a, b = like.new_empty(rows * wmax), like.new_empty(rows * wmax)
        self.z = [like.new_empty(rows, w) for w in widths]
        self.out = [
            z if in_place else a[: z.numel()].view_as(z)
            for z, (in_place, _, _) in zip(self.z, acts, strict=True)
        ]
        # dz[L-1] in A; then grad_h[i-1] and dz[i-1] share a buffer, alternating.
        last = len(widths) - 1
        self.dz: list[Tensor] = [a] * len(widths)
        self.grad_h: list[Tensor] = [a] * len(widths)
        buf, other = a, b
        for i in range(last, -1, -1):
            if i < last:
                self.grad_h[i] = buf[: rows * widths[i]].view(rows, widths[i])
            self.dz[i] = buf[: rows * widths[i]].view(rows, widths[i])
            buf, other = other, buf
