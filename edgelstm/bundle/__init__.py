"""Deployment bundles: a pipeline's ONNX models + a build recipe, checksummed, for building on the device.

TensorRT engines are tied to the GPU architecture and the TensorRT version that built them, so what travels
to a Jetson (or any other GPU box) is the ONNX, its manifest, a calibration cache if there is one, and a
`build_engine.sh` that runs `edgelstm build` on the device itself. Engines go in only when asked
(`include_engines`), marked with the GPU and TensorRT version they are tied to.

A bundle is a gzipped tar with flat, relative member names:

    README.txt         what it is and how to use it, for the person at the device
    build_engine.sh    the recipe: checks the checksums, runs `edgelstm build` per model, then validates
    model.onnx, model.onnx.json, ...   the models and their manifests (calibration cache, pipeline, reports)
    bundle.json        index: members (role, size, sha256), the build plan, edgelstm and library versions
    CHECKSUMS.sha256   `sha256sum -c` format, every member but itself

With a device check (`BundleOptions.check`, `edgelstm bundle --check`) it also carries what
`edgelstm device-check` judges with on the device, and edgelstm itself:

    check/check.json, check/data.npz, check/reference.npz   gates, bench plan, a stated data sample, the reference
                                                           model's outputs on it (check_inputs.prepare_check)
    wheels/*.whl       edgelstm and its pure-Python dependencies, built from what is installed (wheels.py)
    device_check.py    a stdlib-only starter: checks the wheels and runs the check with them (device_bootstrap.py)

Stages (pure: nothing printed, no sys.exit, atomic writes), one module each:

    pack.make_bundle(src_dir, out, options) -> BundleResult       collect -> plan -> recipe + readme -> tar.gz
    verify.verify_bundle(path) -> BundleCheck                     reads the archive, extracts nothing
    unpack.unpack_bundle(path, dest, verify=True) -> BundleCheck  temp dir beside dest, renamed in when all checks pass
    unpack.extract_bundle(path, dest, verify=True) -> Path        the same, returning where it went

types holds the vocabulary (names, limits, options, results, BundleRefused).
"""

from edgelstm.bundle.collect import SAFE_NAME, check_member_name, collect_sources, onnx_facts
from edgelstm.bundle.pack import make_bundle
from edgelstm.bundle.plan import plan_builds
from edgelstm.bundle.readme import render_readme
from edgelstm.bundle.recipe import BuildStep, render_recipe
from edgelstm.bundle.types import (BOOTSTRAP, BUNDLE_FORMAT, CHECK_DATA, CHECK_INDEX, CHECK_REFERENCE, CHECKSUMS,
                                   DEFAULT_CHECK_SAMPLES, GENERATED, INDEX, MAX_CHECK_SIZE, MAX_RATIO,
                                   MAX_UNPACKED_SIZE, MAX_WHEELS_SIZE, README, RECIPE, WHEELS_DIR, BundleCheck,
                                   BundleMember, BundleOptions, BundleRefused, BundleResult, CheckOptions, Source)
from edgelstm.bundle.unpack import extract_bundle, parse_size, unpack_bundle
from edgelstm.bundle.verify import check_dir, member_problem, safety_problems, size_problems, verify_bundle

__all__ = [
    "BOOTSTRAP", "CHECK_DATA", "CHECK_INDEX", "CHECK_REFERENCE", "DEFAULT_CHECK_SAMPLES", "MAX_CHECK_SIZE",
    "MAX_WHEELS_SIZE", "WHEELS_DIR", "CheckOptions", "check_dir",
    "BUNDLE_FORMAT", "CHECKSUMS", "GENERATED", "INDEX", "MAX_RATIO", "MAX_UNPACKED_SIZE", "README", "RECIPE",
    "SAFE_NAME", "BuildStep", "BundleCheck", "BundleMember", "BundleOptions", "BundleRefused", "BundleResult",
    "Source", "check_member_name", "collect_sources", "extract_bundle", "make_bundle", "member_problem",
    "onnx_facts", "parse_size", "plan_builds", "render_readme", "render_recipe", "safety_problems",
    "size_problems", "unpack_bundle", "verify_bundle",
]
