"""The built-in demo: the whole pipeline on the sine-wave LSTM regressor, trained in seconds on CPU, plus the data
files (``val.npz``, ``calib.npz``) the README's commands use."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

DEMO_PIPELINE = """\
# edgelstm demo pipeline: the classic sine-wave LSTM forecaster, end to end.
# Re-run `edgelstm run {out}/pipeline.toml` (or `edgelstm demo`): unchanged stages come from the cache.
[model]
zoo = "lstm_regressor"
train_steps = {steps}
seed = {seed}

[export]
seq = 60
batch = 2
stateful = true

[quantize]
precisions = ["fp16", "int8-dynamic", "int8-static"]
calib_method = "minmax"
# INT8 that does not saturate on this CPU (x86 without VNNI gets 7-bit weights / unfused Q/DQ), and an
# accuracy fallback that keeps the most sensitive nodes float if the drift budget is still not met
target_cpu = "auto"
max_drift = "rel_l2<=0.009"

[data]
synthetic = 256
seq = 60

[validate]
gates = ["rel_l2<=0.01"]
[validate.precision_gates]
fp16 = ["rel_l2<=0.001"]

[bench]
batch = [1]
seq = [60]
threads = [1]
iters = 100
stream = true

[targets]
onnxruntime = true
tensorrt = false

[output]
dir = "."
"""


def check_demo_options(*, steps: int, seed: int) -> None:
    """Bad demo options are BadInput before anything is written."""
    from edgelstm.errors import BadInput, opt

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise BadInput(f"{opt('steps')} must be an integer >= 1, got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadInput(f"{opt('seed')} must be an integer >= 0, got {seed!r}")


def write_demo_pipeline(out_dir: Path, *, steps: int = 150, seed: int = 0) -> Path:
    """Write the demo's pipeline.toml into out_dir (unchanged content keeps the cache valid)."""
    from edgelstm.fileio import write_text_atomic
    from edgelstm.pipeline.lock import prepare_out_dir

    check_demo_options(steps=steps, seed=seed)
    prepare_out_dir(out_dir, what="demo directory")
    path = out_dir / "pipeline.toml"
    text = DEMO_PIPELINE.format(out=out_dir, steps=steps, seed=seed)
    if not path.exists() or path.read_text(errors="replace") != text:
        write_text_atomic(path, text)
    return path


def write_demo_data(out_dir: Path, *, seq: int = 60, seed: int = 1) -> dict[str, Path]:
    """``val.npz`` (256 labelled sequences of the demo model's task: the pipeline's own validation set) and
    ``calib.npz`` (128 other sequences) beside the demo's model, so that the README's ``--data val.npz`` and
    ``--calib calib.npz`` commands run as written in the demo folder. Unchanged files are left alone."""
    from edgelstm.fileio import npz_bytes, write_bytes_atomic
    from edgelstm.models import zoo

    x, y = zoo.synthetic_task("lstm_regressor", 256, seq, seed=seed)
    cx, _ = zoo.synthetic_task("lstm_regressor", 128, seq, seed=seed + 1000)
    paths = {}
    for name, arrays in (("val.npz", {"x": x, "y": y}), ("calib.npz", {"x": cx})):
        path = Path(out_dir) / name
        if not path.exists():
            write_bytes_atomic(path, npz_bytes(arrays))
        paths[name] = path
    return paths


def run_demo(out_dir: Path = Path("edgelstm-demo"), *, steps: int = 150, seed: int = 0,
             on_step: Callable[[str], None] | None = None, on_stage=None, wait: bool = False):
    """The demo pipeline written into ``out_dir`` and run there; the directory is locked while the pipeline
    file is written and run (a second demo on it fails at once, or waits with ``wait``)."""
    from edgelstm.pipeline.config import load_pipeline
    from edgelstm.pipeline.flow import run_pipeline
    from edgelstm.pipeline.lock import OutputLock, prepare_out_dir

    out_dir = Path(out_dir)
    check_demo_options(steps=steps, seed=seed)
    prepare_out_dir(out_dir, what="demo directory")
    with OutputLock(out_dir, wait=wait, on_wait=on_step):
        path = write_demo_pipeline(out_dir, steps=steps, seed=seed)
        result = run_pipeline(load_pipeline(path), on_step=on_step, on_stage=on_stage, lock=False)
        write_demo_data(out_dir)
        return result
