"""The TensorRT extras of pyproject.toml (issue 21.5): cuda-python pinned to the CUDA major of the TensorRT build
(cuda-python 13.x needs an R580+ driver), no TensorRT wheel on aarch64 (PyPI's are server-ARM builds, Jetson's
TensorRT comes with JetPack), and README says where JetPack's comes from."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _resolve(extra: str, machine: str) -> dict[str, Requirement]:
    """The requirements an extra installs on a machine (self-references like edgelstm[x] followed)."""
    env = {"platform_machine": machine, "sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11"}
    out: dict[str, Requirement] = {}
    for text in EXTRAS[extra]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if req.name == "edgelstm":
            for sub in req.extras:
                out.update(_resolve(sub, machine))
        else:
            assert req.name not in out, f"{req.name} twice for {extra} on {machine}"
            out[req.name] = req
    return out


def _allows(req: Requirement, version: str) -> bool:
    return req.specifier.contains(Version(version), prereleases=True)


@pytest.mark.parametrize("extra, major", [("tensorrt", 12), ("tensorrt-cu12", 12), ("tensorrt-cu13", 13)])
def test_x86_extras_pin_cuda_python_to_the_tensorrt_cuda_major(extra, major):
    reqs = _resolve(extra, "x86_64")
    assert "tensorrt" not in reqs                       # the metapackage pulls tensorrt-cu13 (11.4's does)
    assert f"tensorrt-cu{major}" in reqs and _allows(reqs[f"tensorrt-cu{major}"], "10.14.1.48")
    cp = reqs["cuda-python"]
    assert _allows(cp, f"{major}.9.0") and not _allows(cp, f"{major + 1}.0.0") and not _allows(cp, f"{major - 1}.9.0")


@pytest.mark.parametrize("extra", ["tensorrt", "tensorrt-cu12", "tensorrt-cu13"])
def test_aarch64_gets_no_tensorrt_wheel(extra):
    reqs = _resolve(extra, "aarch64")
    assert not [n for n in reqs if n.startswith("tensorrt")], reqs


def test_jetson_cuda_python_is_jetpack_6s_cuda_minor_and_readme_says_where_tensorrt_comes_from():
    cp = _resolve("tensorrt", "aarch64")["cuda-python"]
    assert _allows(cp, "12.6.2") and not _allows(cp, "12.9.0")
    readme = (ROOT / "README.md").read_text()
    assert "python3-libnvinfer" in readme and "server-ARM" in readme and "edgelstm[tensorrt-cu13]" in readme
