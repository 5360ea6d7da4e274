#!/usr/bin/env python3
"""Extract the API surface of cuda-python's runtime bindings and of pycuda.driver, without a GPU, for the
recording CUDA stand-ins (tests/fakes/cuda_modules.py; checked by tests/test_trt_cuda_modules.py).

- cuda-python: `cuda-python` itself is a metadata package (it requires `cuda-bindings`); `cuda-bindings` is a
  Cython wheel whose `cuda.bindings.runtime` imports without a driver (it also needs `cuda-pathfinder`). This
  script downloads both wheels for the asked version (`pip download --no-deps`), imports the module in a child
  interpreter and records every `cuda*` function (its signature line and what it returns, from the docstring),
  the members of the enums the stand-in uses, and which argument types the bindings take for a handle (it calls
  the real functions: without a driver they return cudaErrorInsufficientDriver after converting the arguments,
  or raise TypeError when they cannot).
- pycuda: the wheel needs the CUDA headers to build, so the source distribution is read instead:
  `src/wrapper/wrap_cudadrv.cpp` (Boost.Python) names the module functions with their argument names, the
  classes with their methods, static methods and properties.

    python scripts/cuda_api_surface.py                       # cuda-bindings 12.9.10, pycuda 2026.1
    python scripts/cuda_api_surface.py --cuda-bindings 13.0.3 --pycuda 2025.1.2 --out-dir /tmp/api
    python scripts/cuda_api_surface.py --check               # exit 1 when the committed files differ

Writes tests/cuda_api/cuda-bindings-<version>.json and tests/cuda_api/pycuda-<version>.json (sorted keys, stable).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "cuda_api"
ENUMS = ("cudaError_t", "cudaMemcpyKind", "cudaStreamCaptureMode")
HANDLES = ("cudaStream_t", "cudaEvent_t", "cudaGraph_t", "cudaGraphExec_t", "cudaDeviceProp")

_WALK = r'''
import json, sys
import numpy as np
from cuda.bindings import runtime as rt
out = {"functions": {}, "enums": {}, "classes": {}, "handle_arguments": {}}
for name in sorted(dir(rt)):
    obj = getattr(rt, name)
    if name.startswith("cuda") and callable(obj) and not isinstance(obj, type) and obj.__doc__:
        lines = obj.__doc__.strip().splitlines()
        doc = obj.__doc__
        ret = doc.split("Returns\n-------", 1)[1] if "Returns\n-------" in doc else ""
        returns = []
        for ln in ret.splitlines():
            if ln.startswith("See") or ln.startswith("--"):
                break
            if ln.strip() and not ln.startswith(" "):
                returns.append(ln.split(":")[0].strip())
        out["functions"][name] = {"signature": lines[0].strip(), "returns": returns[:4]}
for name in ENUMS:
    out["enums"][name] = {m.name: int(m.value) for m in getattr(rt, name)}
for name in HANDLES:
    obj = getattr(rt, name)()
    out["classes"][name] = sorted(n for n in dir(obj) if not n.startswith("_") or n in ("__int__", "__index__"))
probes = {"int": 5, "numpy_int": np.int64(5), "float": 1.5, "none": None, "str": "5", "object": object()}
for what, value in probes.items():
    try:
        rt.cudaStreamSynchronize(value)
        out["handle_arguments"][what] = "accepted"
    except TypeError as exc:
        out["handle_arguments"][what] = f"TypeError: {exc}"
print(json.dumps(out))
'''


def _run(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def cuda_bindings_surface(version: str, work: Path) -> dict:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work), f"cuda-bindings=={version}",
          "cuda-pathfinder"])
    site = work / "site"
    for wheel in work.glob("*.whl"):
        zipfile.ZipFile(wheel).extractall(site)
    code = f"ENUMS = {ENUMS!r}\nHANDLES = {HANDLES!r}\n" + _WALK
    data = json.loads(_run([sys.executable, "-c", code], env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}))
    return {"package": "cuda-bindings", "version": version,
            "source": "cuda.bindings.runtime imported without a GPU and walked by scripts/cuda_api_surface.py; "
                      "signatures and returns from the docstrings", **data}


_DEF = re.compile(r'py::def\("(\w+)",\s*\w+(?:<[^>]*>)?\s*,?\s*(.*?)\);', re.S)
_CLASS = re.compile(r'py::class_<[^(]*?>\s*\(\s*"(\w+)"(.*?);\s*\n', re.S)
_METHOD = re.compile(r'\.(?:def|DEF_SIMPLE_METHOD(?:_WITH_ARGS)?)\(\s*"?(\w+)"?')
_STATIC = re.compile(r'\.staticmethod\("(\w+)"\)')
_PROP = re.compile(r'\.(?:add_property|def_readonly|def_readwrite)\("(\w+)"')
_ARGS = re.compile(r'py::args?\(([^)]*)\)')


def pycuda_surface(version: str, work: Path) -> dict:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
          "-d", str(work), f"pycuda=={version}"])
    sdist = next(work.glob("pycuda-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("src/wrapper/wrap_cudadrv.cpp"))
        text = tar.extractfile(member).read().decode()
    functions = {}
    for name, rest in _DEF.findall(text):
        args = [a.strip().strip('"') for group in _ARGS.findall(rest) for a in group.split(",") if a.strip()]
        functions[name] = args
    classes = {}
    for name, body in _CLASS.findall(text):
        entry = classes.setdefault(name, {"methods": [], "static": [], "properties": []})
        entry["methods"] = sorted((set(entry["methods"]) | set(_METHOD.findall(body))) - {"py"})
        entry["static"] = sorted(set(entry["static"]) | set(_STATIC.findall(body)))
        entry["properties"] = sorted(set(entry["properties"]) | set(_PROP.findall(body)))
    return {"package": "pycuda", "version": version, "functions": functions, "classes": classes,
            "source": f"{sdist.name}: src/wrapper/wrap_cudadrv.cpp read by scripts/cuda_api_surface.py (module "
                      "functions with their argument names, classes with methods, static methods, properties)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuda-bindings", default="12.9.10")
    ap.add_argument("--pycuda", default="2026.1")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out-dir instead of writing")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        surfaces = {f"cuda-bindings-{args.cuda_bindings}.json": cuda_bindings_surface(args.cuda_bindings,
                                                                                      Path(tmp, "cb")),
                    f"pycuda-{args.pycuda}.json": pycuda_surface(args.pycuda, Path(tmp, "pc"))}
    status = 0
    for name, data in surfaces.items():
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        path = args.out_dir / name
        if args.check:
            same = path.is_file() and path.read_text() == text
            print(f"{name}: {'same' if same else 'DIFFERS'}")
            status |= 0 if same else 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
