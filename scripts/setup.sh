#!/usr/bin/env bash
# Idempotent set-up; a second run takes seconds.
#   scripts/setup.sh           build the minima binary (target/release/minima)
#   scripts/setup.sh --python  also the Python reference tools the tests compare against
#                              (ASE, RDKit, pytest) in the project-local .venv
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }

if [[ "${1:-}" == "--python" ]]; then
  command -v python3 >/dev/null || { echo "error: python3 is required for the tests" >&2; exit 1; }
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  stamp=.venv/.requirements.sha256
  want=$(sha256sum python/requirements-test.txt | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "setup: installing Python reference tools into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check -r python/requirements-test.txt
    echo "$want" >"$stamp"
  fi
fi

echo "setup: building minima (release)" >&2
cargo build --release --locked -q
