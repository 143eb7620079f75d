"""The old ``ebmlab.models`` paths still import, each with a DeprecationWarning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import ebmlab

#: What ``ebmlab.models`` and its submodules exported before the move (their ``__all__``).
OLD_EXPORTS: dict[str, list[str]] = {
    "": ["CRITICAL_TEMPERATURE", "DBN", "RBM", "BernoulliEnergy", "BernoulliRBM",
         "BoltzmannMachine", "CDTrainer", "CategoricalEnergy", "ConditionalEnergy",
         "DiscreteConditionalEnergy", "ExponentialEnergy", "GaussianBernoulliRBM",
         "GaussianEnergy", "GibbsConditional", "HopfieldNetwork", "IsingDenoiser", "IsingModel",
         "JointEmbeddingEnergy", "KMeansEnergy", "LatentConditionalEnergy",
         "MLPConditionalEnergy", "ModernHopfield", "Modes", "PCAEnergy", "PottsModel",
         "QuadraticConditionalEnergy", "SparseCodingEnergy", "estimate_observables", "fit_cd",
         "fit_conditional", "fit_energy_loss", "fit_likelihood", "fit_mle", "flip_pixels",
         "gibbs_conditional", "infer", "kaufman_observables", "onsager_energy",
         "onsager_magnetization", "pixel_error", "reweight_observables", "run_ising",
         "sample_conditional", "simulate"],
    "_conditional_inference": ["GibbsConditional", "Modes", "cluster_answers", "descend",
                               "gibbs_conditional", "infer", "restart_points",
                               "sample_conditional"],
    "_rbm_ais": ["rbm_ais_log_z", "sm_schedule"],
    "boltzmann": ["BoltzmannMachine"],
    "conditional": ["ConditionalEnergy", "DiscreteConditionalEnergy", "GibbsConditional",
                    "JointEmbeddingEnergy", "LatentConditionalEnergy", "MLPConditionalEnergy",
                    "Modes", "QuadraticConditionalEnergy", "cluster_answers", "descend",
                    "fit_conditional", "gibbs_conditional", "infer", "latent_grid", "make_mlp",
                    "restart_points", "sample_conditional"],
    "dbn": ["DBN"],
    "denoise": ["METHODS", "IsingDenoiser", "flip_pixels", "pixel_error"],
    "hopfield": ["HOPFIELD_RULES", "HopfieldNetwork", "ModernHopfield", "RecallResult"],
    "ising": ["CRITICAL_TEMPERATURE", "IsingModel", "PottsModel", "greedy_coloring"],
    "latent": ["KMeansEnergy", "PCAEnergy", "SparseCodingEnergy", "fit_energy_loss"],
    "likelihood": ["FAMILIES", "BernoulliEnergy", "CategoricalEnergy", "ExponentialEnergy",
                   "GaussianEnergy", "fit_likelihood", "fit_mle"],
    "observables": ["ISING_METHODS", "Estimate", "IsingRun", "Observables",
                    "estimate_observables", "kaufman_log_z", "kaufman_observables",
                    "onsager_energy", "onsager_magnetization", "reweight_observables",
                    "run_ising", "simulate"],
    "rbm": ["LR_SCHEDULES", "MAX_ENUMERATION_UNITS", "RBM", "BernoulliRBM", "CDResult",
            "CDStepInfo", "CDTrainer", "GaussianBernoulliRBM", "enumerate_binary", "fit_cd",
            "parse_training", "_BernoulliFreeEnergy"],
}  # fmt: skip

NEW_HOMES = (
    "ebmlab.lattice",
    "ebmlab.boltzmann",
    "ebmlab.conditional",
    "ebmlab.energies",
    "ebmlab.objectives",
)

CASES = [(sub, name) for sub, names in OLD_EXPORTS.items() for name in names]


@pytest.mark.parametrize(("sub", "name"), CASES, ids=[f"{s or 'models'}.{n}" for s, n in CASES])
def test_old_path_warns_and_gives_the_new_object(sub: str, name: str) -> None:
    old = importlib.import_module("ebmlab.models" + (f".{sub}" if sub else ""))
    with pytest.warns(DeprecationWarning, match=rf"ebmlab\.models\..*{name} is deprecated") as rec:
        value = getattr(old, name)
    new_path = str(rec[0].message).rsplit("use ", 1)[1]
    assert new_path.startswith(NEW_HOMES) and new_path.endswith(f".{name}")
    module, _, attr = new_path.rpartition(".")
    assert getattr(importlib.import_module(module), attr) is value


def test_from_import_statements_still_work() -> None:
    with pytest.warns(DeprecationWarning):
        from ebmlab.models import IsingModel
    with pytest.warns(DeprecationWarning):
        from ebmlab.models.rbm import enumerate_binary
    with pytest.warns(DeprecationWarning):
        model = ebmlab.models.IsingModel  # the attribute path of the issue
    assert model is IsingModel and enumerate_binary(2).shape == (4, 2)


def test_unknown_old_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ebmlab.models.Nope  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ebmlab.models.rbm.Nope  # noqa: B018


def test_importing_ebmlab_does_not_warn() -> None:
    """Only the old paths warn: ``import ebmlab`` and the new packages stay silent."""
    code = "import ebmlab, ebmlab.lattice, ebmlab.boltzmann, ebmlab.conditional, ebmlab.runs"
    flag = "error:ebmlab.models:DeprecationWarning"  # ours only: others' warnings vary
    subprocess.run([sys.executable, "-W", flag, "-c", code], check=True)
