"""Config validation: defaults written out, unknown keys named with a suggestion."""

from __future__ import annotations

import pytest
import yaml

from ebmlab.config import RunConfig, load_config, parse_config
from ebmlab.errors import ConfigError


def test_defaults_round_trip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(RunConfig().to_yaml())
    assert load_config(p) == RunConfig()
    raw = yaml.safe_load(p.read_text())
    assert raw["objective"]["name"] == "pcd" and raw["data"]["toy"] == "eight_gaussians"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"trian": {}}, "did you mean 'train'"),
        ({"sampler": {"step_sise": 0.1}}, "did you mean 'step_size'"),
        ({"train": {"steps": -1}}, "train.steps"),
        ({"sampler": {"method": "gibbs"}}, "sampler.method"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_configs(raw, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        parse_config(raw)
    assert "\n" not in str(info.value)


def test_bad_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train: [1,\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)


@pytest.mark.parametrize("method", ["langevin", "ula", "mala", "hmc"])
def test_sampler_compile_reaches_the_sampler(method):
    from ebmlab.samplers import build_sampler

    cfg = parse_config({"sampler": {"method": method, "compile": True}})
    sampler = build_sampler(cfg.sampler.method, **cfg.sampler.hyperparameters())
    assert sampler.compile is True
    assert build_sampler(method, **RunConfig().sampler.hyperparameters()).compile is False


def test_sampler_adaptation_keys_reach_sample_options():
    default = RunConfig().sampler
    assert default.step_size is None and default.is_adaptive
    opts = default.sample_options()
    assert "step_size" not in opts and opts["warmup"] == 500 and opts["adapt_mass"] is True
    fixed = parse_config({"sampler": {"method": "hmc", "step_size": 0.1}}).sampler
    assert not fixed.is_adaptive and fixed.sample_options()["warmup"] == 0
    pt = parse_config(
        {"sampler": {"method": "pt", "pt_base": "chees", "n_replicas": 4, "beta_min": 0.05}}
    ).sampler
    o = pt.sample_options()
    assert (o["base"], o["n_replicas"], o["beta_min"]) == ("chees", 4, 0.05)
    with pytest.raises(ConfigError, match="target_accept"):
        parse_config({"sampler": {"target_accept": 1.5}})
