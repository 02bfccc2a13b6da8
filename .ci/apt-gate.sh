#!/usr/bin/env bash
# The release gate's report test renders its HTML plots in headless Chromium.
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
