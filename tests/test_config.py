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
