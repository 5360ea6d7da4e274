"""Datasets and loaders (npz/npy/csv/synthetic): the data layer of validation, calibration and the pipeline."""
