#!/usr/bin/env bash
# System packages for the TPM 2.0 KeyProvider tests: swtpm (a software TPM the tests start
# themselves) and libtss2-dev (tpm2-pytss, the `tpm` extra, builds against it).
set -euo pipefail
DEBIAN_FRONTEND=noninteractive apt-get install -y -q swtpm swtpm-tools libtss2-dev pkg-config
