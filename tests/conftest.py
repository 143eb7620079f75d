"""Shared test fixtures: per-test seeded RNG, --device and --dtype options."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="torch device for tests (cpu, cuda)")
    parser.addoption(
        "--dtype", default="float64", choices=["float32", "float64"], help="numerics dtype"
    )


@pytest.fixture(autouse=True)
def _seeded_rng(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test runs under its own forked, seeded global RNG."""
    seed = zlib.crc32(request.node.nodeid.encode()) & 0x7FFFFFFF
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA requested but not available")
    return dev


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture
def generator(request: pytest.FixtureRequest) -> torch.Generator:
    """A CPU generator seeded from the test id (use ``device`` for CUDA ones)."""
    seed = zlib.crc32(request.node.nodeid.encode()) & 0x7FFFFFFF
    return torch.Generator().manual_seed(seed)
