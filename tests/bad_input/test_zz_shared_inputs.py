"""Runs last (by name): no case wrote into, or changed, the shared inputs every case reads."""

from __future__ import annotations

from .conftest import WS_SNAPSHOT, tree


def test_no_case_changed_the_shared_inputs(ws):
    assert WS_SNAPSHOT and tree(ws) == WS_SNAPSHOT
