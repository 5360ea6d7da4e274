"""Calibration data: one re-iterable source contract (`calibration.sources`), plus the onnxruntime
readers, TensorRT calibrators and range statistics built on it."""

from .sources import (  # noqa: F401
    DEFAULT_BATCH_SIZE,
    BatchSource,
    CalibrationSource,
    Dataset,
    as_calibration_source,
    calibration_source,
    dataset_from_arrays,
    load_dataset,
    require_min_samples,
    synthetic_dataset,
    with_default_state,
)
