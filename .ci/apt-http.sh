#!/usr/bin/env bash
# System packages for the model server's tests: chromium (the dashboard screenshot test in
# tests/serving/test_dashboard.py skips, with this reason, when it is absent). wrk is not
# needed: the serving benchmark and gate use benches/serving/loadgen.py.
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
