"""What the export tests check with: an onnxruntime session on a file, and "close" relative to the reference's
scale (rel L2 <= 1e-4 and max |diff| <= 1e-3 x its spread, + 1e-6), so a small output cannot hide an error."""

from __future__ import annotations

import numpy as np


def session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def assert_close(ref, got, what: str, *, reshape: bool = False) -> None:
    if hasattr(ref, "detach"):
        ref = ref.detach().double().numpy()
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if reshape:
        assert got.size == ref.size, f"{what}: shape {got.shape} vs {ref.shape}"
        got = got.reshape(ref.shape)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} vs reference {ref.shape}"
    diff = np.abs(got - ref)
    spread = ref.std() if ref.size > 1 and ref.std() > 0 else np.abs(ref).max()
    assert np.linalg.norm(got - ref) <= 1e-4 * np.linalg.norm(ref) + 1e-6, f"{what}: rel L2"
    assert diff.max() <= 1e-3 * spread + 1e-6, f"{what}: max |diff| {diff.max():.3g} vs spread {spread:.3g}"
