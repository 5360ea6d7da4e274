"""Drift metrics, gates and budgets, validation (``pairing`` of the I/O, ``streaming`` of stateful
candidates) and its reports."""
