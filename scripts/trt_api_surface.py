#!/usr/bin/env python3
"""Extract the Python API surface of TensorRT from its binding wheels, without a GPU.

The TensorRT Python bindings are published on PyPI as small wheels (``tensorrt-cu12-bindings``,
``tensorrt-cu13-bindings``, ~1 MB) that hold one pybind11 extension, ``tensorrt_bindings/tensorrt.so``.
They ship no ``.pyi`` stubs. The extension needs only nine C entry points from TensorRT's own
libraries (``createInferBuilder_INTERNAL``, ``getPluginRegistry``, ...), which are called when a Builder
or Runtime is created, never at import. So this script:

1. downloads the wheel for each requested version with ``pip download --no-deps`` (or takes local
   wheel files), records its sha256;
2. extracts it to a temporary folder and compiles stand-in ``libnvinfer.so.N``,
   ``libnvonnxparser.so.N`` and ``libnvinfer_plugin.so.N`` (empty functions, with ``gcc``) next to
   ``tensorrt.so``, adding any further symbol the loader reports missing;
3. imports the real binding in a fresh interpreter and walks it: classes (bases, methods with their
   pybind11 signatures, properties and whether they are read-only), enums (members and values),
   module-level functions and aliases, and what the docstrings mark ``[DEPRECATED]``;
4. writes ``tests/trt_api/tensorrt-<version>.json`` (sorted keys, stable: no timestamps, no addresses).

If the binding cannot be imported (no ``gcc``, a wheel built for another CPU), ``--method auto`` falls
back to reading the strings of ``tensorrt.so``: a flat list of identifiers, with no classes and no
signatures (pybind11 builds signatures at run time from ``({%}, {str}) -> %`` templates), and says so in
the file's ``source``.

The wheel must match the interpreter that imports it (``cp311`` for Python 3.11); pip picks that wheel
by default. Use ``--python`` to import with another interpreter.

Examples::

    python scripts/trt_api_surface.py 10.3.0 10.13.3.9 11.4.0.106
    python scripts/trt_api_surface.py --package tensorrt-cu13-bindings 11.4.0.106 --out-dir /tmp/api
    python scripts/trt_api_surface.py --wheel ~/Downloads/tensorrt_cu12_bindings-10.3.0-cp311-...whl
    python scripts/trt_api_surface.py --check 10.3.0        # compare with the committed file
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SCHEMA = 1
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "trt_api"
DEFAULT_PACKAGE = "tensorrt-cu12-bindings"
PKG_DIR = "tensorrt_bindings"          # the import name inside the wheel
EXT_NAME = "tensorrt.so"

# C entry points the extension takes from libnvinfer / libnvonnxparser / libnvinfer_plugin (10.x, 11.x).
# More are added automatically when the loader names one ("undefined symbol: X").
KNOWN_SYMBOLS = [
    "createInferBuilder_INTERNAL", "createInferRefitter_INTERNAL", "createInferRuntime_INTERNAL",
    "createNvOnnxParserRefitter_INTERNAL", "createNvOnnxParser_INTERNAL", "getNvOnnxParserVersion",
    "getBuilderPluginRegistry", "getPluginRegistry", "initLibNvInferPlugins", "getInferLibVersion",
]
STUB_LIBS = ["libnvinfer", "libnvonnxparser", "libnvinfer_plugin"]

# Dunder methods worth recording (constructors, containers, context managers); others are pybind11 noise.
KEPT_DUNDERS = {"__init__", "__len__", "__getitem__", "__setitem__", "__iter__", "__contains__",
                "__enter__", "__exit__", "__call__"}

IMPORT_SOURCE = (
    "import: the wheel's tensorrt_bindings/tensorrt.so imported by CPython with empty stand-in "
    "libnvinfer/libnvonnxparser/libnvinfer_plugin libraries (nothing of TensorRT's C++ ran: those are "
    "only called when a Builder/Runtime/OnnxParser is created), then walked with inspect."
)
IMPORT_LIMITS = [
    "Signatures are pybind11's docstring signatures: 'self' dropped, 'tensorrt_bindings.tensorrt.' "
    "and 'tensorrt.tensorrt.' prefixes removed, object addresses removed.",
    "Members are a class's own (its __dict__); follow 'bases' for inherited ones.",
    "'deprecated' comes from '[DEPRECATED]' / 'Deprecated in TensorRT X' in docstrings (property "
    "deprecation from the class's ':ivar' lines, enum members from the enum's 'Members:' list); "
    "the value is the version named, or '' if none is named.",
    "Property types are the getter's return annotation; pybind11 does not expose setter types.",
    "Not covered: the pure-Python tensorrt.plugin subpackage (10.8+) and anything the real "
    "libraries register at run time (plugin creators, the ONNX parser's supported operators).",
    "API surface only: nothing here says what a GPU or a given TensorRT build supports at run time.",
]
STRINGS_SOURCE = (
    "strings: identifier-like strings read from tensorrt.so because the binding could not be "
    "imported. LOW FIDELITY: names are not tied to classes, there are no signatures, and a name that "
    "appears may be a docstring word or a C++ symbol; a name that does not appear is not in the API."
)


# --------------------------------------------------------------------------------------------------
# Introspection (runs in a child interpreter: python trt_api_surface.py --_introspect DIR)
# --------------------------------------------------------------------------------------------------

_PREFIX_RE = re.compile(r"\b(?:tensorrt_bindings|tensorrt)\.tensorrt\.")
_PKG_RE = re.compile(r"\btensorrt_bindings\.")
_ADDR_RE = re.compile(r"\s+at 0x[0-9a-fA-F]+")
_DEPR_RE = re.compile(r"\[DEPRECATED\]|Deprecated in TensorRT", re.I)
_DEPR_VER_RE = re.compile(r"Deprecated in TensorRT[- ]?(\d+(?:\.\d+)*)", re.I)


def _clean(text: str) -> str:
    text = _PREFIX_RE.sub("", text)
    text = _PKG_RE.sub("tensorrt.", text)
    return _ADDR_RE.sub("", text)


def _deprecation(text: str | None) -> str | None:
    """None if *text* does not mark something deprecated, else the version it names ('' if none)."""
    if text:   # "(... the IAlgorithmSelector interface ([DEPRECATED] ...))" is about something else
        text = re.sub(r"\([^()]*\[DEPRECATED\][^()]*\)", "", text)
    if not text or not _DEPR_RE.search(text):
        return None
    m = _DEPR_VER_RE.search(text)
    return m.group(1) if m else ""


def _split_params(params: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in params:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _pybind_signatures(name: str, doc: str | None, drop_self: bool) -> list[str]:
    """Signatures from a pybind11 docstring, '(a: T, b: U = 1) -> R', one per overload."""
    if not doc:
        return []
    sigs = []
    pat = re.compile(r"^(?:\d+\.\s+)?" + re.escape(name) + r"\((.*)\)\s*->\s*(.+?)\s*$")
    for line in doc.splitlines():
        m = pat.match(line.strip())
        if not m or m.group(1) == "*args, **kwargs":
            continue
        params = _split_params(m.group(1))
        if drop_self and params and (params[0].startswith("self") or params[0].startswith("arg0")):
            params = params[1:]
        sigs.append(_clean("(" + ", ".join(params) + ") -> " + m.group(2)))
    return sigs


def _py_signature(fn, drop_self: bool) -> list[str]:
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ["(...)"]
    params = list(sig.parameters.values())
    if drop_self and params:
        params = params[1:]
    return [_clean(str(sig.replace(parameters=params)))]


def _callable_sigs(name: str, obj, drop_self: bool) -> list[str]:
    fn = getattr(obj, "__func__", obj)
    sigs = _pybind_signatures(name, getattr(fn, "__doc__", None), drop_self)
    if sigs:
        return sigs
    if type(fn).__name__ == "function":   # plain Python, added by tensorrt/__init__.py
        return _py_signature(fn, drop_self)
    return ["(...)"]


def _ivar_deprecations(class_doc: str | None) -> dict[str, str]:
    out = {}
    if not class_doc:
        return out
    for m in re.finditer(r":ivar\s+(\w+):(.*?)(?=:ivar\s+\w+:|\n\s*\n|\Z)", class_doc, re.S):
        d = _deprecation(m.group(2))
        if d is not None:
            out[m.group(1)] = d
    return out


def _enum_member_deprecations(enum_doc: str | None, members) -> dict[str, str]:
    out = {}
    if not enum_doc or "Members:" not in enum_doc:
        return out
    body = enum_doc.split("Members:", 1)[1]
    names = "|".join(re.escape(n) for n in sorted(members, key=len, reverse=True))
    if not names:
        return out
    pieces = re.split(r"^\s{2}(" + names + r")\s*:", body, flags=re.M)
    for name, text in zip(pieces[1::2], pieces[2::2]):
        d = _deprecation(text)
        if d is not None:
            out[name] = d
    return out


def _is_enum(cls) -> bool:
    return isinstance(getattr(cls, "__members__", None), dict) and hasattr(cls, "value") and hasattr(cls, "name")


def _enum_ref(v) -> str:
    """'DataType.FLOAT' for a pybind11 enum member."""
    return f"{type(v).__qualname__}.{v.name}"


def _class_deprecation(doc: str | None) -> str | None:
    """Deprecation stated at the top of a class docstring (not in its ':ivar' lines)."""
    lines = [ln.strip() for ln in (doc or "").strip().splitlines() if ln.strip()]
    if not lines or lines[0].startswith(":ivar"):
        return None
    return _deprecation(lines[0])


def _enum_value(v):
    try:
        return int(v)
    except Exception:  # noqa: BLE001
        return str(v)


def _describe_class(cls, modname: str) -> dict:
    doc = cls.__doc__
    info: dict = {"bases": [b.__name__ for b in cls.__bases__ if b.__module__ == modname]}
    d = _class_deprecation(doc)
    if d is not None:
        info["class_deprecated"] = d
    if _is_enum(cls):
        members = {k: _enum_value(v) for k, v in cls.__members__.items()}
        info["kind"] = "enum"
        info["members"] = dict(sorted(members.items()))
        deps = _enum_member_deprecations(doc, members)
        if deps:
            info["deprecated"] = dict(sorted(deps.items()))
        return info

    info["kind"] = "class"
    info["constructible"] = True
    methods, statics, props, attrs = {}, {}, {}, {}
    deps = {}
    ivar_deps = _ivar_deprecations(doc)
    for name, raw in cls.__dict__.items():
        if name.startswith("__") and name not in KEPT_DUNDERS:
            continue
        if name.startswith(("_pybind11", "__pybind11")):
            continue
        if isinstance(raw, property):
            getter_sigs = _pybind_signatures("", getattr(raw.fget, "__doc__", None), drop_self=True)
            ptype = getter_sigs[0].split("->", 1)[1].strip() if getter_sigs else ""
            props[name] = {"readonly": raw.fset is None, "type": ptype}
            if name in ivar_deps:
                deps[name] = ivar_deps[name]
            continue
        if isinstance(raw, staticmethod):
            statics[name] = _callable_sigs(name, raw.__func__, drop_self=False)
            dep = _deprecation(getattr(raw.__func__, "__doc__", None))
        elif isinstance(raw, classmethod):
            statics[name] = _callable_sigs(name, raw.__func__, drop_self=True)
            dep = _deprecation(getattr(raw.__func__, "__doc__", None))
        elif isinstance(raw, type):
            attrs[name] = "class " + raw.__qualname__
            continue
        elif callable(raw):
            sigs = _callable_sigs(name, raw, drop_self=True)
            if name == "__init__" and sigs == ["(...)"]:
                info["constructible"] = False      # pybind11's "No constructor defined!"
                continue
            methods[name] = sigs
            dep = _deprecation(getattr(getattr(raw, "__func__", raw), "__doc__", None))
        else:
            value = getattr(cls, name)
            attrs[name] = _enum_ref(value) if _is_enum(type(value)) else type(value).__name__
            continue
        if dep is not None and not name.startswith("__"):
            deps[name] = dep
    for key, val in (("methods", methods), ("staticmethods", statics), ("properties", props),
                     ("attributes", attrs), ("deprecated", deps)):
        if val:
            info[key] = dict(sorted(val.items()))
    return info


def introspect(pkg_parent: str) -> dict:
    import importlib
    import warnings

    sys.path.insert(0, pkg_parent)
    warnings.simplefilter("ignore")
    pkg = importlib.import_module(PKG_DIR)
    if not os.path.realpath(pkg.__file__).startswith(os.path.realpath(pkg_parent)):
        raise RuntimeError(f"imported {pkg.__file__}, not the extracted wheel under {pkg_parent}")
    ext = pkg.tensorrt
    modname = ext.__name__
    classes, enums, functions, aliases = {}, {}, {}, {}
    for name in sorted(set(dir(pkg)) | set(dir(ext))):
        if name.startswith("_"):
            continue
        obj = getattr(pkg, name, None)
        if obj is None:
            obj = getattr(ext, name)
        if isinstance(obj, type):
            if obj.__module__ != modname:
                continue
            if obj.__name__ != name:                 # e.g. an alias of a class under another name
                aliases[name] = obj.__qualname__
                continue
            todo = [obj]
            while todo:                              # the class and the types nested in it (ILogger.Severity)
                cls = todo.pop()
                qual = cls.__qualname__
                if qual in classes or qual in enums:
                    continue
                info = _describe_class(cls, modname)
                (enums if info.pop("kind") == "enum" else classes)[qual] = info
                todo += [v for v in cls.__dict__.values() if isinstance(v, type) and v.__module__ == modname]
        elif type(obj).__name__ == "module":
            continue
        elif callable(obj):
            if type(obj).__name__ == "function" and getattr(obj, "__module__", "") != pkg.__name__:
                continue                              # imported helpers (e.g. from ctypes)
            functions[name] = _callable_sigs(name, obj, drop_self=False)
        elif _is_enum(type(obj)):
            aliases[name] = _enum_ref(obj)
    return {
        "version": getattr(pkg, "__version__", None),
        "module": {"functions": functions, "aliases": aliases},
        "classes": classes,
        "enums": enums,
    }


# --------------------------------------------------------------------------------------------------
# Wheel handling, stand-in libraries, strings fallback
# --------------------------------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_version(path: Path) -> str:
    # name-version-pyTag-abiTag-platformTag.whl
    return path.name.split("-")[1]


def download_wheel(package: str, version: str, dest: Path, python: str) -> Path:
    pyver = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", pyver, "--disable-pip-version-check", "-q",
           f"{package}=={version}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pip download {package}=={version} failed:\n{proc.stderr.strip()}")
    norm = package.replace("-", "_")
    found = [p for p in dest.glob(f"{norm}-{version}-*.whl")]
    if not found:
        raise SystemExit(f"pip download {package}=={version}: no wheel found in {dest}")
    return sorted(found)[0]


def _build_stubs(libdir: Path, major: str, symbols: list[str], workdir: Path) -> None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise RuntimeError("no C compiler (gcc/cc) to build stand-in TensorRT libraries")
    src = workdir / "trt_stub.c"
    src.write_text("".join(f"void *{s}(void) {{ return 0; }}\n" for s in sorted(set(symbols))))
    for lib in STUB_LIBS:
        name = f"{lib}.so.{major}"
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(libdir / name), str(src),
                        f"-Wl,-soname,{name}"], check=True, capture_output=True)


def surface_by_import(extract: Path, major: str, python: str, workdir: Path) -> dict:
    libdir = extract / PKG_DIR
    symbols = list(KNOWN_SYMBOLS)
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir) + os.pathsep + os.environ.get("LD_LIBRARY_PATH", ""),
               PYTHONDONTWRITEBYTECODE="1")
    last = ""
    for _ in range(20):
        _build_stubs(libdir, major, symbols, workdir)
        proc = subprocess.run([python, str(Path(__file__).resolve()), "--_introspect", str(extract)],
                              capture_output=True, text=True, env=env)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc={proc.returncode}"
        missing = re.search(r"undefined symbol: (\w+)", proc.stderr)
        if missing and missing.group(1) not in symbols:
            symbols.append(missing.group(1))
            continue
        lib = re.search(r"(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object file", proc.stderr)
        if lib and lib.group(1).startswith("libnv"):
            stem, _, ver = lib.group(1).partition(".so.")
            if stem not in STUB_LIBS:
                STUB_LIBS.append(stem)
                continue
        break
    raise RuntimeError(f"importing the binding failed: {last}")


_IDENT_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{1,63}")
_NOISE_RE = re.compile(r"^(_Z|_?Py|GLIBC|CXXABI|GCC_|_ITM|__)")


def surface_by_strings(so_path: Path) -> dict:
    data = so_path.read_bytes()
    names = set()
    for m in re.finditer(rb"[\x20-\x7e]{2,}", data):
        s = m.group(0)
        if _IDENT_RE.fullmatch(s):
            t = s.decode()
            if not _NOISE_RE.match(t):
                names.add(t)
    return {"identifiers": sorted(names)}


def build_surface(wheel: Path, package: str, method: str, python: str) -> dict:
    version = wheel_version(wheel)
    with zipfile.ZipFile(wheel) as zf:
        contents = sorted(n for n in zf.namelist() if ".dist-info/" not in n)
        with tempfile.TemporaryDirectory(prefix="trt_api_") as tmp:
            extract = Path(tmp) / "site"
            zf.extractall(extract)
            so_path = extract / PKG_DIR / EXT_NAME
            if not so_path.exists():
                raise SystemExit(f"{wheel.name}: no {PKG_DIR}/{EXT_NAME} in the wheel")
            so_size = so_path.stat().st_size
            result, source, err = None, None, None
            if method in ("auto", "import"):
                try:
                    result = surface_by_import(extract, version.split(".")[0], python, Path(tmp))
                    source = {"method": "import", "description": IMPORT_SOURCE, "limits": IMPORT_LIMITS}
                except (RuntimeError, subprocess.CalledProcessError) as exc:
                    err = str(exc)
                    if method == "import":
                        raise SystemExit(f"{wheel.name}: {err}")
            if result is None:
                result = surface_by_strings(so_path)
                source = {"method": "strings", "description": STRINGS_SOURCE,
                          "limits": [f"import failed: {err}" if err else "import not attempted (--method strings)"]}
    reported = result.pop("version", None)
    if reported and reported != version:
        source.setdefault("limits", []).append(f"wheel file says {version}, tensorrt.__version__ says {reported}")
    pyi = [c for c in contents if c.endswith(".pyi")]
    out = {
        "schema": SCHEMA,
        "generator": "scripts/trt_api_surface.py",
        "package": package,
        "version": version,
        "wheel": {"filename": wheel.name, "sha256": sha256_of(wheel), "size": wheel.stat().st_size,
                  "extension_size": so_size, "contents": contents, "has_pyi_stubs": bool(pyi)},
        "source": source,
    }
    out.update(result)
    if "classes" in out:
        out["summary"] = {
            "classes": len(out["classes"]), "enums": len(out["enums"]),
            "functions": len(out["module"]["functions"]),
            "methods": sum(len(c.get("methods", {})) + len(c.get("staticmethods", {}))
                           for c in out["classes"].values()),
            "properties": sum(len(c.get("properties", {})) for c in out["classes"].values()),
        }
    return out


def dump(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Extract the TensorRT Python API surface from the binding wheels on PyPI (no GPU "
                    "needed) into tests/trt_api/tensorrt-<version>.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: python scripts/trt_api_surface.py 10.3.0 10.13.3.9 11.4.0.106\n"
               "List versions: python -m pip index versions tensorrt-cu12-bindings")
    ap.add_argument("versions", nargs="*", help="exact versions to download, e.g. 10.3.0 11.4.0.106")
    ap.add_argument("--wheel", action="append", default=[], type=Path, metavar="PATH",
                    help="a local binding wheel to read instead of downloading (repeatable)")
    ap.add_argument("--package", default=DEFAULT_PACKAGE,
                    help=f"PyPI project to download (default {DEFAULT_PACKAGE}; also tensorrt-cu13-bindings)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help=f"where to write (default {DEFAULT_OUT})")
    ap.add_argument("--download-dir", type=Path, default=None,
                    help="keep downloaded wheels here (default: a temporary folder)")
    ap.add_argument("--method", choices=["auto", "import", "strings"], default="auto",
                    help="import the binding with stand-in libraries (needs gcc and a wheel for this "
                         "interpreter), or only read strings; auto: import, else strings")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that imports the binding (the wheel must match it; default: this one)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a committed file differs from the regenerated surface")
    ap.add_argument("--_introspect", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._introspect:
        sys.stdout.write(json.dumps(introspect(args._introspect)))
        return 0
    if not args.versions and not args.wheel:
        ap.error("give at least one version or --wheel")

    tmp = None
    dl = args.download_dir
    if dl is None:
        tmp = tempfile.TemporaryDirectory(prefix="trt_wheels_")
        dl = Path(tmp.name)
    dl.mkdir(parents=True, exist_ok=True)
    status = 0
    try:
        wheels = [p.expanduser().resolve() for p in args.wheel]
        wheels += [download_wheel(args.package, v, dl, args.python) for v in args.versions]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            package = wheel.name.split("-")[0].replace("_", "-")
            data = build_surface(wheel, package, args.method, args.python)
            text = dump(data)
            target = args.out_dir / f"tensorrt-{data['version']}.json"
            if args.check:
                same = target.exists() and target.read_text() == text
                print(f"{target}: {'up to date' if same else 'DIFFERS'}")
                status |= 0 if same else 1
                continue
            tmp_target = target.with_suffix(".json.tmp")
            tmp_target.write_text(text)
            tmp_target.replace(target)
            summary = data.get("summary") or {"identifiers": len(data.get("identifiers", []))}
            print(f"{target}: {data['source']['method']}, {len(text) // 1024} KiB, "
                  f"sha256 {data['wheel']['sha256'][:12]}…, {summary}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
