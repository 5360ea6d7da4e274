"""README.txt: what a bundle holds and what to do with it, for the person at the device.

Plain text: names are shown with control characters escaped (a name cannot forge a line), and names inside the
commands the reader copies are shell-quoted."""

from __future__ import annotations

import shlex
from typing import Any

from edgelstm.bundle.recipe import BuildStep
from edgelstm.bundle.types import BOOTSTRAP, CHECK_REFERENCE, CHECKSUMS, INDEX, RECIPE, WHEELS_DIR, Source
from edgelstm.fileio import human_size

_ROLES = {"onnx": "ONNX model", "onnx-data": "ONNX external weights",
          "manifest": "edgelstm manifest (provenance, I/O, sha256)", "calib-cache": "INT8 calibration cache",
          "pipeline": "the pipeline that made these artifacts", "report": "accuracy/latency report",
          "engine": "TensorRT engine (see the warning below)", "extra": "extra file",
          "openvino": "OpenVINO IR (CPU; runs wherever OpenVINO does)", "openvino-bin": "OpenVINO IR weights"}


def _text(value: object) -> str:
    """value on one line of plain text: control and other unprintable characters as escapes (\\n, \\x1b)."""
    s = str(value)
    return s if s.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def render_readme(sources: list[Source], steps: list[BuildStep], *, src_name: str, created: str,
                  versions: dict[str, Any], bundle_name: str, check: dict[str, Any] | None = None) -> str:
    width = max([len(_text(s.name)) for s in sources] + [len(RECIPE), 16]) + 2
    lib = ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("torch", "onnx", "onnxruntime", "tensorrt"))
    tarball = shlex.quote(bundle_name)
    out = [
        f"edgelstm deployment bundle: {_text(src_name)}",
        f"created {_text(created)} by edgelstm {_text(versions.get('edgelstm'))} ({_text(lib)})",
        "",
        "CONTENTS",
    ]
    for s in sources:
        what = _ROLES.get(s.role, s.role)
        if s.role == "onnx":
            what = ", ".join(x for x in ("ONNX model", s.precision, s.note) if x)
        out.append(f"  {_text(s.name):<{width}}{_text(what)} ({human_size(s.path.stat().st_size)})")
    out += [f"  {RECIPE:<{width}}rebuilds the TensorRT engines on this device (below)",
            f"  {INDEX:<{width}}machine-readable index: members, sizes, sha256, build plan, versions",
            f"  {CHECKSUMS:<{width}}sha256 of every file (sha256sum -c {CHECKSUMS})",
            "",
            "ON THE DEVICE (Jetson or any NVIDIA GPU with TensorRT)",
            f"  1. Check and unpack:   edgelstm unbundle {_text(tarball)} -o model-bundle",
            f"     without edgelstm:   mkdir model-bundle && tar -xzf {_text(tarball)} -C model-bundle \\",
            f"                         && (cd model-bundle && sha256sum -c {CHECKSUMS})",
            "  2. Check the device:   edgelstm doctor     (TensorRT version, GPU, compute capability)",
            f"  3. Build the engines:  cd model-bundle && ./{RECIPE}",
            "     it verifies the checksums, builds, then compares each engine with its ONNX (VALIDATE=0 skips);",
            "     extra arguments go to `edgelstm build` (e.g. --dla-core 0 on a Jetson AGX Orin).",
            "",
            "  The recipe builds:"]
    for st in steps:
        calib = f", calibration cache {_text(st.calib_cache)}" if st.calib_cache else \
            ", calibration data from $CALIB" if st.needs_calib_data else ""
        out.append(f"    {_text(st.onnx)} -> engines/{_text(st.engine)}  ({st.precision}, batch "
                   f"{':'.join(map(str, st.batch))}, seq {':'.join(map(str, st.seq))}{calib}"
                   f"{', streaming h0/c0 -> hn/cn' if st.stateful else ''})")
    out += ["",
            "WHY NO ENGINE IS SHIPPED",
            "  A TensorRT engine only loads on the GPU architecture (compute capability) and the TensorRT version",
            "  that built it. So the bundle carries the portable ONNX and this recipe; building on a Jetson takes",
            "  minutes, and the timing cache (engines/timing.cache) makes rebuilds faster.",
            ""]
    engines = [s for s in sources if s.role == "engine"]
    if engines:
        out.append("WARNING: ENGINES INCLUDED (--include-engines)")
        for s in engines:
            t = {k: _text(v) for k, v in (s.tied_to or {}).items() if v is not None}
            out.append(f"  {_text(s.name)}: built on {t.get('gpu') or 'an unknown GPU'} (compute capability "
                       f"{t.get('compute_capability') or '?'}) with TensorRT {t.get('tensorrt') or '?'}; it will "
                       f"not load elsewhere (hardware compatibility: {t.get('hardware_compatibility', 'none')}).")
        out += ["  If `edgelstm inspect` or the runtime refuses one, rebuild it with ./build_engine.sh.", ""]
    out += _check_section(check, tarball)
    out += ["JETSON NOTES",
            "  TensorRT's Python bindings come with JetPack: create the venv with --system-site-packages.",
            "  Device buffers: pip install \"cuda-python>=12.6,<12.7\" (the CUDA of JetPack 6.1/6.2; 12.2 on 6.0).",
            "  Checksums prove the files arrived intact, not who made them: check the bundle's signature if you",
            "  were given one.",
            ""]
    return "\n".join(out)


def _check_section(check: dict[str, Any] | None, tarball: str) -> list[str]:
    """How to run the device check this bundle carries (`bundle --check`)."""
    if not check:
        return []
    lines = ["CHECK THIS DEVICE (accuracy and speed here, judged with the bundle's own data and gates)",
             f"  python3 {BOOTSTRAP} {_text(tarball)} -o results.json     (or: edgelstm device-check "
             f"{_text(tarball)} -o results.json)",
             f"  It builds the engines where TensorRT is installed, validates every artifact against the reference "
             f"outputs in {CHECK_REFERENCE}",
             f"  ({_text(check.get('samples'))} samples of {_text(check.get('data'))}, reference "
             f"{_text(check.get('reference'))}), benches each, records the device (Jetson: power mode, clocks,",
             "  energy per inference from tegrastats) and exits 1 when a gate fails. Bring results.json home and",
             "  merge several devices with `edgelstm compare results/*.json`."]
    if check.get("wheels"):
        needs = ", ".join(f"{r['name']}{r.get('spec', '')}" for r in check.get("device_requires") or [])
        lines.append(f"  edgelstm travels as wheels ({WHEELS_DIR}/): no package index is needed; the device must have "
                     f"{_text(needs or 'nothing else')}.")
    return lines + [""]
