"""The injected TensorRT/CUDA mistakes: a table of source patches to the product code, and the checks that must
fail on each (tests/test_trt_mutants.py applies every patch to a copy of the repository and runs its checks there).

Issue 14's nine mistakes (1-9), issue 21's three the old stand-in let through (10-12), and ones of our own for
the defects issue 21 fixed (13-22). A patch is (file, old text, new text): the old text must occur exactly once in
the product file, so the table breaks loudly when the code it mutates changes.
"""

from __future__ import annotations

from dataclasses import dataclass

RUNNER = "edgelstm/runners/tensorrt_runner.py"
CALIB = "calibration/trt_calibrator.py"
CUDA_PY = "edgelstm/runners/cuda_python_backend.py"
MISTAKES = "tests/test_trt_mistakes.py::"
CALIB_TESTS = "tests/test_tensorrt_calibration.py::"
MODULES = "tests/test_trt_cuda_modules.py::"
ROUND_TRIP = MODULES + "test_backend_round_trip_events_and_placement_on_cuda_1"
ON_DEVICE = MODULES + "test_the_runner_runs_on_the_device_it_was_given"


@dataclass(frozen=True)
class Mutant:
    id: str
    mistake: str
    edits: tuple[tuple[str, str, str], ...]     # (file, old, new)
    checks: tuple[str, ...]                     # pytest node ids; at least one must fail


MUTANTS = (
    # ---------------------------------------------------------------------------------------- issue 14's nine
    Mutant("1-no-sync", "outputs read without synchronising the stream",
           ((RUNNER, "            self.cuda.dtoh(host, self._buffers[name], self.stream)\n"
                     "        self.cuda.synchronize(self.stream)\n",
             "            self.cuda.dtoh(host, self._buffers[name], self.stream)\n"),),
           (MISTAKES + "test_runner_outputs",)),
    Mutant("2-other-stream", "inputs uploaded on another stream than the enqueue's",
           ((RUNNER, "self.cuda.htod(self._buffers[name], host, self.stream)",
             "self.cuda.htod(self._buffers[name], host, self.cuda.stream())"),),
           (MISTAKES + "test_runner_outputs",)),
    Mutant("3-copies-timed", "device->host copies inside the timed region",
           ((RUNNER, "            self._enqueue()\n            self.cuda.record(end, self.stream)",
             "            self._enqueue()\n            self._fetch()\n            self.cuda.record(end, self.stream)"),),
           (MISTAKES + "test_runner_timing",)),
    Mutant("4a-logger-init", "an ILogger subclass that skips the base __init__",
           (("edgelstm/artifacts/trt.py", "                trt.ILogger.__init__(self)\n", ""),),
           (MISTAKES + "test_runner_outputs",)),
    Mutant("4b-calibrator-init", "a calibrator subclass that skips the base __init__",
           ((CALIB, "            base.__init__(self)  # required by the pybind11 trampoline (TensorRT docs)\n", ""),),
           (CALIB_TESTS + "test_int8_10_3_calibrates_then_reuses_the_cache",)),
    Mutant("5-float-dims", "float dimensions passed as a shape (a numpy integer array is fine: issue 21.7)",
           ((RUNNER, "if not self.context.set_input_shape(name, shape):",
             "if not self.context.set_input_shape(name, tuple(float(d) for d in shape)):"),),
           (MISTAKES + "test_runner_outputs",)),
    Mutant("6-float32-buffers", "float32 host buffers whatever the engine's dtype",
           ((RUNNER, "self._dtypes = {t.name: host_dtype(t.dtype, t.name) for",
             "self._dtypes = {t.name: np.dtype(np.float32) for"),),
           (MISTAKES + "test_runner_fp16_engine",)),
    Mutant("7-capture-cold", "CUDA-graph capture without an enqueue after the shape change",
           ((RUNNER, "                    self._execute()  # TensorRT needs one plain enqueue after a shape change "
                     "before capture\n                    self.cuda.synchronize(self.stream)\n", ""),),
           (MISTAKES + "test_runner_cuda_graph",)),
    Mutant("8-no-warmup", "the warm-up iterations ignored",
           ((RUNNER, "for _ in range(max(0, int(warmup))):", "for _ in range(0):"),),
           (MISTAKES + "test_runner_timing",)),
    Mutant("9-stream-object", "a stream object handed to TensorRT instead of its int handle (torch backend)",
           (("edgelstm/runners/torch_cuda_backend.py",
             "        self._streams[int(s.cuda_stream)] = s\n        return int(s.cuda_stream)",
             "        self._streams[s] = s\n        return s"),),
           (ON_DEVICE + "[torch]",)),
    # --------------------------------------------------------------------------------------- issue 21's three
    Mutant("10-sorted-pointers", "calibrator device pointers in sorted order instead of the order of `names`",
           ((CALIB, "        for name in names:\n            host = batch[name]",
             "        for name in sorted(names):\n            host = batch[name]"),),
           (CALIB_TESTS + "test_int8_calibration_feeds_every_input_with_its_own_dtype",)),
    Mutant("11-memcpy-kind", "a cuda-python host-to-device copy issued with the device-to-host kind",
           ((CUDA_PY, "host.nbytes,\n                                            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice",
             "host.nbytes,\n                                            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost"),),
           (ROUND_TRIP + "[cuda-python]",)),
    Mutant("12-elapsed-unsynced", "elapsed_ms read without synchronizing the end event (cuda-python)",
           ((CUDA_PY, '        self._check(self.rt.cudaEventSynchronize(end)[0], "cudaEventSynchronize")\n', ""),),
           (ROUND_TRIP + "[cuda-python]",)),
    # ----------------------------------------------------------------------------------------- our own
    Mutant("13-calib-unsynced", "a calibration batch handed to TensorRT before its upload finished",
           ((CALIB, "        cuda.synchronize(self._stream)\n        self.batches_fed += 1",
             "        self.batches_fed += 1"),),
           (CALIB_TESTS + "test_int8_10_3_calibrates_then_reuses_the_cache",)),
    Mutant("14-calib-float32", "calibration host buffers in float32 for every input (int64 lengths/tokens too)",
           ((CALIB, "        want = self.input_dtypes.get(name)\n", "        want = np.float32\n"),),
           (CALIB_TESTS + "test_int8_calibration_feeds_every_input_with_its_own_dtype",)),
    Mutant("15-inspector-10x-only", "the engine inspector read by its 10.x field only (11.x: all 'unknown')",
           (("converters/tensorrt/layers.py", '    dtype = tensor.get("Datatype", tensor.get("DataType", ""))\n'
                                              '    return " ".join(str(v) for v in (dtype, tensor.get("Format", "")) if v)',
             '    return ""'),
            ("converters/tensorrt/layers.py", '    dtype = tensor.get("Datatype", tensor.get("DataType"))\n',
             "    dtype = None\n")),
           ("tests/test_tensorrt_build.py::test_every_layer_precision_is_read_on_every_version[11.4.0.106]",)),
    Mutant("16-device-dropped", "--device cuda:N not passed to the TensorRT runner",
           (("edgelstm/runners/base.py",
             'return TensorRTRunner(path, device="cuda" if device == "cpu" else device, **options)',
             "return TensorRTRunner(path, **options)"),),
           (MODULES + "test_open_runner_and_bench_pass_the_device_to_tensorrt",)),
    Mutant("17-device-not-current", "the engine loaded and enqueued without making the runner's device current",
           ((RUNNER, '        activate = getattr(self.cuda, "activate", None)\n', "        activate = None\n"),),
           (ON_DEVICE + "[pycuda]",)),
    Mutant("18-strongly-typed-flag", "NetworkDefinitionCreationFlag.STRONGLY_TYPED passed on 11.x (deprecated there)",
           (("converters/tensorrt/build.py",
             'strongly_flag = route.strongly and not trt_info.capabilities(version).get("strongly_typed_only")',
             "strongly_flag = route.strongly"),),
           ("tests/test_tensorrt_versions.py::test_trt_11_fp16_is_strongly_typed_from_an_fp16_onnx",)),
    Mutant("19-no-onnx-check", "no check of what only TensorRT's ONNX parser refuses before building",
           (("converters/tensorrt/build.py",
             "    check_for_tensorrt(onnx.model, src.name, version, strongly_typed=strongly)  # what only TensorRT "
             "refuses\n", ""),),
           ("tests/test_tensorrt_onnx_support.py::test_build_refuses_before_building_in_one_line[lstm_layout_1]",)),
    Mutant("20-calibrator-deprecation-late", "the calibrator deprecation warned from 10.12 instead of 10.1",
           (("edgelstm/artifacts/trt.py", "CALIBRATOR_DEPRECATED_FROM = (10, 1, 0)",
             "CALIBRATOR_DEPRECATED_FROM = (10, 12, 0)"),),
           (CALIB_TESTS + "test_int8_10_3_calibrates_then_reuses_the_cache",
            "tests/test_trt_api_surface_data.py::test_deprecation_versions_edgelstm_warns_from_are_the_bindings")),
    Mutant("21-pycuda-no-context", "a pycuda allocation made without the backend's primary context pushed",
           (("edgelstm/runners/pycuda_backend.py",
             "        with self.activate():\n            alloc = self.cuda.mem_alloc(max(1, int(nbytes)))",
             "        if True:\n            alloc = self.cuda.mem_alloc(max(1, int(nbytes)))"),),
           (ROUND_TRIP + "[pycuda]",)),
    Mutant("22-graph-variant-refused", "bench refuses the TensorRT CUDA-graph variant",
           (("edgelstm/latency/targets.py", '"tensorrt": {"cuda-graph"},', '"tensorrt": set(),'),),
           (MODULES + "test_bench_times_tensorrt_with_cuda_graphs_on_the_device_asked",)),
)
