"""The seeded fuzzing slice of ``make test`` and the regression inputs fuzzing found.

Hypothesis mutates the seeds of each target of :mod:`tests.fuzz.targets`
(bit flips, deletions, insertions, truncations; ``derandomize=True``, so the
slice is the same on every run, about 30 s in all). ``make fuzz`` runs the
same targets under atheris for a fixed budget each.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .targets import MARKER, TARGETS, seeds

EXAMPLES = {"csv": 500, "npy": 400, "npz": 400, "yaml": 500}  # run directories: 150


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds(target))))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        i = draw(st.integers(0, len(data)))
        if op == "flip" and i < len(data):
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            data = data[:i]
    return bytes(data)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzz_slice(target):
    MARKER.unlink(missing_ok=True)

    @settings(
        max_examples=EXAMPLES.get(target, 150),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(mutated(target))
    def run(data: bytes) -> None:
        TARGETS[target](data)

    run()


# --------------------------------------------- regressions: inputs that once escaped as crashes


def _npz(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _deflated_and_damaged() -> bytes:
    data = bytearray(
        _npz(**{"x.npy": io.BytesIO().getvalue() + b"\x93NUMPY" + bytes(range(256)) * 8})
    )
    start = data.index(b"x.npy") + 5  # the compressed bytes follow the local header's name
    for i in range(start + 4, start + 40):
        data[i] ^= 0x5A
    return bytes(data)


REGRESSIONS = [
    # A truncated .npy header reached Python's tokenizer: tokenize.TokenError.
    (
        "npy",
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': )1,), }"
        + b" " * 61
        + b"\n\x00\x00\x80?",
    ),
    # An .npz member that is not a .npy file came back as bytes: AttributeError.
    ("npz", _npz(**{"x.txt": b"1,2,3"})),
    # A damaged deflate stream: zlib.error.
    ("npz", _deflated_and_damaged()),
    # A config that is not UTF-8: UnicodeDecodeError.
    ("yaml", b"train:\n  steps: \xe5\xff\n"),
    # The image loaders, once they were fuzzed: a truncated header (tokenize.TokenError),
    # a damaged deflate stream in an image .npz and in a gzipped IDX file (zlib.error).
    (
        "image-npy",
        bytes.fromhex(
            "934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f726465"
            "72273a2046616c73652820277368617065273a2028332c20342c2035292c207d2020202020202020"
            "20202020202020202020202020202020202020202020202020202020202020202020202020202020"
            "202028202020200a000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"
        ),
    ),
    # An image .npy whose pixels are all NaN (read with NaN allowed, as denoise does) reached
    # the scaling's check: ValueError (found by atheris).
    (
        "image-npy",
        bytes.fromhex(
            "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f726465"
            "72273a2046616c73652c20277368617065273a2028312c20342c20352c2031292c207d2020202020"
            "20202020202020202020202020202020202020202020202020202020202020202020202020202020"
            "202020202020200a000000008180803b8180003cc1c0403c8180803ca1a0a03cc1c0c03ce1e0e03c"
            "8180003d9190103da1a0203db1b0303dc1c0403dd1d0503de1e0603df1f0703d8180803d8988883d"
            "9190903d999898ffffffffffffffff3db1b0b03db9b8b83dc1c0c03dc9c8c83dd1d0d03dd9d8d83d"
            "e1e0e03de9e8e83df1f0f03df9f8f83d8180003e8584043e8988083e8d8c0c3e9190103e9594143e"
            "9998183e9d9c1c3ea1a0203ea5a4243ea9a8283eadac2c3eb1b0303eb5b4343eb9b8383ebdbc3c3e"
            "c1c0403ec5c4443ec9c8483ecdcc4c3ed1d0503ed5d4143ed9d8583edddc5c3ee1e0603ee5e4643e"
            "e9e8683eedec6c3e"
        ),
    ),
    ("image-npz", _deflated_and_damaged()),
    (
        "image-idx-gz",
        bytes.fromhex(
            "1f8b080063be142f6b02ff6360e060666060006116206665606462666165632061717a48e5e7e0e4"
            "e2e6e1e5e3171014121611151397909492969195935750545256515553d7d0d4d2d6d1d5d3373034"
            "32363135b3b7b0b4b20600ec1a955b4c"
        ),
    ),
]


@pytest.mark.parametrize(("target", "data"), REGRESSIONS)
def test_fuzz_regressions(target, data):
    TARGETS[target](data)


def test_seeds_hold_live_payloads():
    """The hostile seeds would run code if loaded unsafely (so the targets test something)."""
    import yaml

    MARKER.unlink(missing_ok=True)
    np.load(io.BytesIO(seeds("npy")[1]), allow_pickle=True)  # what a careless loader would do
    assert MARKER.exists()
    MARKER.unlink()
    yaml.unsafe_load(seeds("yaml")[1])
    assert MARKER.exists()
    MARKER.unlink()


def test_gzipped_idx_bomb_is_refused_with_bounded_memory(tmp_path, monkeypatch):
    """A small .gz that inflates past the cap is refused after reading at most cap + 1 bytes."""
    import gzip

    from ebmlab.data import images, load_images
    from ebmlab.errors import DataError

    monkeypatch.setattr(images, "MAX_IDX_BYTES", 1 << 16)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(1 << 20)))  # 1 MiB of zeros
    assert p.stat().st_size < 4096
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: decompresses to more"):
        load_images(p)
