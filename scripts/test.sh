#!/usr/bin/env bash
# One command for the whole test suite on a fresh Debian machine: installs the
# dependencies (apt-get, as root), builds, and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
# Each rank of the MPI tests and each test process uses one thread: ctest runs
# tests in parallel on the machine's cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" "$@"
