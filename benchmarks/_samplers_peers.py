"""Peer runs for ``samplers.py``: blackjax and NumPyro NUTS/HMC with window adaptation.

Runs only inside ``.bench-venv-jax`` (JAX on the CPU, no torch): reads a JSON
job from argv[1], writes draws and counts to the ``.npz`` named in the job.
Nothing here is copied from the peers: only their documented entry points
(``blackjax.window_adaptation``, ``blackjax.nuts``/``blackjax.hmc``,
``numpyro.infer.MCMC(NUTS(potential_fn=...))``) are called. Each peer is
compiled and run once on a throw-away key, then timed on a second key, so the
times exclude compilation.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)


def make_logdensity(target: dict):
    kind = target["kind"]
    if kind == "gaussian":
        mu = jnp.asarray(target["mu"])
        var = jnp.asarray(target["var"])
        return lambda x: -0.5 * jnp.sum((x - mu) ** 2 / var)
    if kind == "funnel":
        d, sv = target["d"], target["sv"]

        def funnel(x):
            v, z = x[0], x[1:]
            return -(0.5 * v * v / sv**2 + 0.5 * jnp.sum(z * z) * jnp.exp(-v) + 0.5 * (d - 1) * v)

        return funnel
    if kind == "mixture":
        w, sep = target["weight"], target["sep"]

        def mixture(x):
            a = -0.5 * (x[0] - sep / 2) ** 2 + jnp.log(w)
            b = -0.5 * (x[0] + sep / 2) ** 2 + jnp.log1p(-w)
            return jnp.logaddexp(a, b)

        return mixture
    raise ValueError(kind)


def blackjax_run(job: dict, algo: str, seed: int) -> tuple[np.ndarray, int, float, int]:
    import blackjax

    logdensity = make_logdensity(job["target"])
    n_warm, n_draws, n_chains = job["warmup"], job["draws"], job["chains"]
    x0 = jnp.asarray(job["x0"])[:n_chains]
    if algo == "nuts":
        adapt = blackjax.window_adaptation(blackjax.nuts, logdensity)
        kernel_of = lambda p: blackjax.nuts(logdensity, **p)  # noqa: E731
    else:
        adapt = blackjax.window_adaptation(
            blackjax.hmc, logdensity, num_integration_steps=job["n_leapfrog"]
        )
        kernel_of = lambda p: blackjax.hmc(  # noqa: E731
            logdensity, **{**p, "num_integration_steps": job["n_leapfrog"]}
        )

    def one_chain(key, x):
        k1, k2 = jax.random.split(key)
        (state, params), winfo = adapt.run(k1, x, num_steps=n_warm)
        kern = kernel_of(params)

        def body(st, k):
            st, info = kern.step(k, st)
            return st, (st.position, info.num_integration_steps)

        _, (pos, nsteps) = jax.lax.scan(body, state, jax.random.split(k2, n_draws))
        return pos, nsteps.sum(), winfo.info.num_integration_steps.sum()

    fn = jax.jit(jax.vmap(one_chain))
    keys = jax.random.split(jax.random.PRNGKey(seed + 1000), n_chains)
    jax.block_until_ready(fn(keys, x0))  # compile
    keys = jax.random.split(jax.random.PRNGKey(seed), n_chains)
    t = time.perf_counter()
    pos, nsteps, nwarm = jax.block_until_ready(fn(keys, x0))
    seconds = time.perf_counter() - t
    draws = np.asarray(pos).transpose(1, 0, 2)  # (n_draws, n_chains, d)
    return draws, int(np.asarray(nsteps).sum()), seconds, int(np.asarray(nwarm).sum())


def numpyro_run(job: dict, seed: int) -> tuple[np.ndarray, int, float, int]:
    from numpyro.infer import MCMC, NUTS

    logdensity = make_logdensity(job["target"])
    n_chains = job["chains"]
    x0 = jnp.asarray(job["x0"])[:n_chains]

    def potential(x):
        return -logdensity(x)

    def make() -> MCMC:
        return MCMC(
            NUTS(potential_fn=potential),
            num_warmup=job["warmup"],
            num_samples=job["draws"],
            num_chains=n_chains,
            chain_method="vectorized",
            progress_bar=False,
        )

    mcmc = make()
    mcmc.run(jax.random.PRNGKey(seed + 1000), init_params=x0, extra_fields=("num_steps",))
    t = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), init_params=x0, extra_fields=("num_steps",))
    jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - t
    draws = np.asarray(mcmc.get_samples(group_by_chain=True)).transpose(1, 0, 2)
    nsteps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
    return draws, nsteps, seconds, -1


def main() -> None:
    with open(sys.argv[1]) as fh:
        job = json.load(fh)
    out: dict[str, np.ndarray] = {}
    for impl in job["impls"]:
        try:
            if impl == "blackjax-nuts":
                d, n, s, w = blackjax_run(job, "nuts", job["seed"])
            elif impl == "blackjax-hmc":
                d, n, s, w = blackjax_run(job, "hmc", job["seed"])
            else:
                d, n, s, w = numpyro_run(job, job["seed"])
        except Exception as exc:  # report, do not hide
            print(f"[peer] {impl} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        out[f"{impl}/draws"] = d
        out[f"{impl}/grads"] = np.asarray(n)
        out[f"{impl}/seconds"] = np.asarray(s)
        out[f"{impl}/warm_grads"] = np.asarray(w)
    versions = {}
    for name in ("jax", "blackjax", "numpyro"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # pragma: no cover
            versions[name] = None
    out["versions"] = np.asarray(json.dumps(versions))
    np.savez(job["out"], **out)


if __name__ == "__main__":
    main()
