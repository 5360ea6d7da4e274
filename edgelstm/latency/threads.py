"""torch's intra-op thread count while a torch target is timed: set for the row (or the comparison's grid point)
and put back after. Only torch: onnxruntime and TensorRT take their thread count when a session is made."""

from __future__ import annotations

from typing import Callable


def torch_threads() -> int | None:
    """torch's thread count now, if torch is already imported (never imports it)."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def set_torch_threads(backend: str, threads: int | None) -> Callable[[], None]:
    """Set torch's thread count for timing a torch target (a no-op otherwise); returns the undo."""
    if backend != "torch" or threads is None:
        return lambda: None
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return lambda: torch.set_num_threads(before)
