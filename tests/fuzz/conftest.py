"""Property-based fuzzing of every loader that reads a user's file: whatever the bytes, the loader returns or
raises one of edgelstm's own errors (an ``EdgeLSTMError``: one line, an exit code), never anything else.

Budget: the ``ci`` profile (default) tries 25 examples per loader, in seconds. A long run:

    EDGELSTM_FUZZ=long pytest tests/fuzz -q          # 2,000 examples per loader
    EDGELSTM_FUZZ=long EDGELSTM_FUZZ_EXAMPLES=20000 pytest tests/fuzz -q

Hypothesis keeps the failing examples it finds in ``.hypothesis/`` and replays them first next time."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=25, derandomize=False, print_blob=True, **_COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("EDGELSTM_FUZZ_EXAMPLES", "2000")),
                          print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("EDGELSTM_FUZZ", "ci"))
