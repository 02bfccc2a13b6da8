#!/bin/sh
# Optional: the perf tool is the independent witness in tests/core/test_energy_perf.py
# (test_agrees_with_the_perf_tool skips, with this reason, when it is absent).
set -e
apt-get install -y --no-install-recommends linux-perf
