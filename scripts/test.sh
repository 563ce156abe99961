#!/usr/bin/env bash
# Sets up, then runs every check: formatting, lints, the Rust tests, and the Python tests that
# compare minima with ASE and RDKit. Needs ../shared beside the checkout (the QM9 archive).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --python
cargo fmt --all --check
# With MPI (the data-parallel training and its mpirun test; setup installed OpenMPI).
cargo clippy --workspace --all-targets --locked -q --features minima-cli/mpi -- -D warnings
cargo test --workspace --locked --features minima-cli/mpi
MINIMA=target/release/minima .venv/bin/python -m pytest -q python/tests
