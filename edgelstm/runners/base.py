"""Opening a runner for an artifact (``open_runner``); the runner contract itself is ``edgelstm.runners.contract``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgelstm.artifacts.artifact import ENGINE_SUFFIXES, TORCH_SUFFIXES, artifact_kind  # noqa: F401
from edgelstm.errors import BadInput
from edgelstm.options import ArtifactKind, Backend
from edgelstm.runners.contract import (Runner, RunnerBase, RunnerPrecision, as_runner, is_runner,  # noqa: F401
                                       typed_precision)


def default_backend(kind: ArtifactKind) -> Backend:
    return {ArtifactKind.onnx: Backend.onnxruntime, ArtifactKind.engine: Backend.tensorrt,
            ArtifactKind.openvino: Backend.openvino}.get(kind, Backend.torch)


def open_runner(artifact: Any, *, backend: str | Backend | None = None, threads: int | None = None,
                input_size: int | None = None, device: str = "cpu", **options: Any) -> RunnerBase:
    """Open a runner for a path (torch file, ONNX, engine) or an in-memory LoadedModel/nn.Module.

    Torch models take the loading options every command shares: ``factory``, ``trust_pickle`` and ``inputs`` (an
    ``edgelstm.models.inputs.InputOptions``: --input, --input-size, --state-arg, --static); other backends ignore
    them."""
    from edgelstm.models.loading import LoadedModel
    from edgelstm.options import check_int

    check_int(threads, "threads", optional=True)  # 0 or -1 would mean "the library's default" to some backends
    if options.pop("batch_parallel", False):
        return _batch_parallel(artifact, backend=backend, threads=threads, device=device, **options)
    torch_only = {k: options.pop(k) for k in ("factory", "trust_pickle", "inputs") if k in options}
    if not isinstance(artifact, (str, Path)):
        from edgelstm.runners.torch_runner import TorchRunner

        return TorchRunner(artifact, input_size=input_size, threads=threads, device=device,
                           inputs=torch_only.get("inputs"))
    path = Path(artifact)
    if not path.exists():
        from edgelstm.fileio import not_found

        raise BadInput(not_found("artifact", path))
    kind = artifact_kind(path)
    chosen = Backend(backend) if backend else default_backend(kind)
    if chosen == Backend.torch:
        if kind != ArtifactKind.torch:
            raise BadInput(f"the torch backend runs torch models, not {kind.value} files ({path.name})")
        from edgelstm.models.loading import load_model
        from edgelstm.runners.torch_runner import TorchRunner

        loaded: LoadedModel = load_model(path, factory=torch_only.get("factory"),
                                         trust_pickle=bool(torch_only.get("trust_pickle")))
        return TorchRunner(loaded, input_size=input_size, threads=threads, device=device,
                           inputs=torch_only.get("inputs"))
    if chosen == Backend.onnxruntime:
        if kind != ArtifactKind.onnx:
            raise BadInput(f"onnxruntime runs .onnx files, not {kind.value} files ({path.name})")
        from edgelstm.runners.onnxruntime_runner import OrtRunner

        return OrtRunner(path, threads=threads,
                         **{k: v for k, v in options.items() if k in ("providers", "opt_level", "amx")})
    if chosen == Backend.openvino:
        if kind != ArtifactKind.openvino:
            raise BadInput(f"the openvino backend runs OpenVINO IR files (.xml + .bin), not {kind.value} files "
                           f"({path.name}); make one with `edgelstm build MODEL.onnx -o MODEL.xml`")
        from edgelstm.runners.openvino_runner import OpenVinoRunner

        return OpenVinoRunner(path, threads=threads,
                              **{k: v for k, v in options.items() if k in ("precision_hint", "streams")})
    if chosen == Backend.tensorrt:
        if kind != ArtifactKind.engine:
            raise BadInput(f"the tensorrt backend runs engines (.plan), not {kind.value} files; build one with "
                           "`edgelstm build`")
        from edgelstm.runners.tensorrt_runner import TensorRTRunner  # type: ignore[import-not-found]

        # TensorRT always runs on a GPU: "cpu" (every command's default) means the first one, "cuda:N" the N-th
        return TensorRTRunner(path, device="cuda" if device == "cpu" else device, **options)
    raise BadInput(f"unknown backend {backend!r}")  # pragma: no cover


def _batch_parallel(artifact: Any, *, backend: str | Backend | None, threads: int | None, device: str,
                    **options: Any) -> RunnerBase:
    """``batch_parallel=True``: one single-threaded runner per thread (``threads``, default: the usable cores), each
    call's batch split between them (edgelstm.runners.batch_parallel); onnxruntime and OpenVINO on CPUs only. With
    one thread it is the plain runner."""
    from edgelstm.runners.batch_parallel import BATCH_PARALLEL_BACKENDS, BatchParallelRunner, usable_cores

    if not isinstance(artifact, (str, Path)):
        raise BadInput("batch-parallel runs ONNX files and OpenVINO IRs, not a model in memory")
    kind = artifact_kind(Path(artifact)) if Path(artifact).exists() else None
    chosen = Backend(backend) if backend else (default_backend(kind) if kind is not None else None)
    if chosen is not None and (str(chosen.value) not in BATCH_PARALLEL_BACKENDS or device != "cpu"):
        raise BadInput(f"batch-parallel runs {' and '.join(BATCH_PARALLEL_BACKENDS)} artifacts on the CPU, "
                       f"not {chosen.value}" + (f" on {device}" if device != "cpu" else ""))
    workers = threads or usable_cores()
    if workers < 2:  # one worker is plain execution
        return open_runner(artifact, backend=backend, threads=1, device=device, **options)
    if chosen == Backend.openvino:  # one compiled model with a stream per worker, a request (lane) per stream
        first = open_runner(artifact, backend=backend, threads=workers, device=device, streams=workers, **options)
        return BatchParallelRunner([first] + [first.lane() for _ in range(workers - 1)])
    return BatchParallelRunner([open_runner(artifact, backend=backend, threads=1, device=device, **options)
                                for _ in range(workers)])
