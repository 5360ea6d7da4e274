"""Drift metrics, gates and budgets, validation and its reports."""
