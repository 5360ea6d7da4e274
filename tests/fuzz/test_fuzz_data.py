"""Data files (.npz, .npy, .csv): random arrays of every dtype and shape, mutated bytes of good files, and
random CSV text with random --window/--features/--target, through load_dataset (and on into batches) for a
plain and a stateful model."""

from __future__ import annotations

import functools
import io

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .fuzzing import NASTY_STRINGS, mutated, only_ours, scratch

DTYPES = st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.boolean_dtypes(),
                   hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=3),
                   hnp.datetime64_dtypes(), hnp.timedelta64_dtypes())
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))


@functools.lru_cache(maxsize=None)
def specs():
    from edgelstm.artifacts.iospec import IOSpec, TensorSpec

    plain = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 2)),), (TensorSpec("y", "float32", ("batch", 1)),))
    stateful = IOSpec((TensorSpec("x", "float32", ("batch", "seq", 2)), TensorSpec("h0", "float32", (1, "batch", 3), True),
                       TensorSpec("c0", "float32", (1, "batch", 3), True)),
                      (TensorSpec("y", "float32", ("batch", 1)), TensorSpec("hn", "float32", (1, "batch", 3), True)))
    ids = IOSpec((TensorSpec("tokens", "int64", ("batch", "seq")),), (TensorSpec("y", "float32", ("batch", 4)),))
    return plain, stateful, ids


def _load(path, **kw):
    from edgelstm.data import load_dataset

    for spec in specs():
        ds = only_ours(load_dataset, path, spec, **kw)
        if ds is not None and not isinstance(ds, Exception):
            for batch in only_ours(ds.batches, 3) or ():
                assert isinstance(batch, dict)


@given(st.dictionaries(st.one_of(st.sampled_from(["x", "y", "labels", "h0", "c0", "tokens", "X", "arr_0"]),
                                 st.text(min_size=1, max_size=8)), ARRAYS, max_size=4))
def test_npz_of_random_arrays(tmp_path_factory, arrays):
    path = scratch(tmp_path_factory, "data") / "d.npz"
    safe = {(k.replace("/", "_").replace("\x00", "_") or "_").replace("file", "file_"): v for k, v in arrays.items()}
    np.savez(path, **safe)
    _load(path)


@given(ARRAYS)
def test_npy_of_a_random_array(tmp_path_factory, arr):
    path = scratch(tmp_path_factory, "data") / "d.npy"
    np.save(path, arr)
    _load(path)


@functools.lru_cache(maxsize=None)
def good_files() -> dict[str, bytes]:
    x = np.random.default_rng(0).standard_normal((4, 5, 2)).astype(np.float32)
    out = {}
    for name, save in (("npz", lambda f: np.savez(f, x=x, y=np.arange(4.0))), ("npy", lambda f: np.save(f, x))):
        buf = io.BytesIO()
        save(buf)
        out[name] = buf.getvalue()
    return out


@given(st.sampled_from(["npz", "npy"]).flatmap(lambda k: st.tuples(st.just(k), mutated(good_files()[k]))))
def test_mutated_bytes(tmp_path_factory, kind_data):
    kind, data = kind_data
    path = scratch(tmp_path_factory, "data") / f"d.{kind}"
    path.write_bytes(data)
    _load(path)


CELLS = st.one_of(st.sampled_from(["", " ", "1", "-1", "0.5", "nan", "inf", "-inf", "1e400", "abc", "\"q\"", "1,2",
                                   "é", "\x00", "NaN", "x", "label", "f"]),
                  st.floats(allow_nan=True).map(repr), st.integers().map(str))


@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=12),
       window=st.one_of(st.none(), st.integers(-2, 12)),
       features=st.one_of(st.none(), st.sampled_from(["f", "0", "0,1", "5", "-1", "nope", ",", "f,f", "label"])),
       target=st.one_of(st.none(), st.sampled_from(["label", "0", "1", "9", "nope", ""])))
def test_csv_of_random_cells(tmp_path_factory, rows, window, features, target):
    path = scratch(tmp_path_factory, "data") / "d.csv"
    path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8", errors="surrogatepass")
    _load(path, window=window, features=features, target=target)


@given(st.binary(max_size=400), st.sampled_from(["d.csv", "d.npz", "d.npy"]), st.sampled_from(NASTY_STRINGS[:6]))
def test_arbitrary_bytes(tmp_path_factory, data, name, features):
    path = scratch(tmp_path_factory, "data") / name
    path.write_bytes(data)
    _load(path)
    if name.endswith(".csv"):
        _load(path, window=2, features=features or None)
