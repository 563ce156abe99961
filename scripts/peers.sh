#!/usr/bin/env bash
# Peers side by side (not run in CI): SchNetPack's PaiNN trained on the same data for the same
# time on one thread, relaxing the same starts as a `minima bench-minima` run, and its speed.
#   scripts/peers.sh STEM MINUTES DATA.extxyz…   (STEM: the -o of a bench-minima run)
# e.g. after  minima bench-minima --model runs/molecules/best.safetensors --reference xtb \
#               -i held_out.extxyz -o out/bench_minima
#   scripts/peers.sh out/bench_minima 55 data/qm9_xtb.extxyz.bz2 data/qm9_xtb_near_minima.extxyz.bz2 …
# The environment (.venv-peers: Python >= 3.12 from pyenv or the system, schnetpack, torch
# 2.11, ase from PyPI) is made once; the report lands in STEM.peers/.
set -euo pipefail
cd "$(dirname "$0")/.."
(($# >= 3)) || { sed -n 2,9p "$0" >&2; exit 2; }
stem=$1 minutes=$2
shift 2
source scripts/peers-env.sh
exec .venv-peers/bin/python python/peers/painn_schnetpack.py --data "$@" --minutes "$minutes" \
  --bench "$stem" --out "$stem.peers"
