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

        return OpenVinoRunner(path, threads=threads, **{k: v for k, v in options.items() if k == "precision_hint"})
    if chosen == Backend.tensorrt:
        if kind != ArtifactKind.engine:
            raise BadInput(f"the tensorrt backend runs engines (.plan), not {kind.value} files; build one with "
                           "`edgelstm build`")
        from edgelstm.runners.tensorrt_runner import TensorRTRunner  # type: ignore[import-not-found]

        # TensorRT always runs on a GPU: "cpu" (every command's default) means the first one, "cuda:N" the N-th
        return TensorRTRunner(path, device="cuda" if device == "cpu" else device, **options)
    raise BadInput(f"unknown backend {backend!r}")  # pragma: no cover
