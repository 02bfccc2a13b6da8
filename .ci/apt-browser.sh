#!/usr/bin/env bash
# Headless Chromium renders the dashboard and the gate report as a person sees them (the
# screenshot tests skip, with this reason, when it is absent); wrk offers the server an open
# loop of requests in the serving benchmarks.
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium wrk
