#!/usr/bin/env bash
# Sets up, then runs every check: formatting, lints, the Rust tests, and the Python tests that
# compare minima with ASE and RDKit. Needs ../shared beside the checkout (the QM9 archive).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --python
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo test --workspace --locked
MINIMA=target/release/minima .venv/bin/python -m pytest -q python/tests
