"""Datasets and loaders (npz/npy/csv/synthetic): the data layer of validation, calibration and the pipeline.

``dataset`` holds the Dataset and the one calibration contract (a re-iterable source of feed dicts),
``loaders`` the file formats, ``synthetic`` seeded data shaped from an I/O spec. Import from here."""

from edgelstm.data.dataset import (DATA_SUFFIXES, DEFAULT_BATCH_SIZE, LABEL_KEYS, BatchSource, CalibrationSource,
                                   Dataset, as_calibration_source, dataset_from_arrays, numpy_dtype,
                                   require_min_samples, sample_axis, with_default_state)
from edgelstm.data.loaders import calibration_source, load_dataset, parse_features
from edgelstm.data.synthetic import synthetic_dataset

__all__ = [
    "CalibrationSource",
    "BatchSource",
    "Dataset",
    "DATA_SUFFIXES",
    "LABEL_KEYS",
    "DEFAULT_BATCH_SIZE",
    "as_calibration_source",
    "calibration_source",
    "dataset_from_arrays",
    "load_dataset",
    "numpy_dtype",
    "parse_features",
    "require_min_samples",
    "sample_axis",
    "synthetic_dataset",
    "with_default_state",
]
