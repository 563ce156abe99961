#!/usr/bin/env bash
# The main job on the shipped data: QM9 molecules 1–10000 to extxyz, a summary, perceived
# bonds, and the neighbour-list benchmark. Results land in out/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
minima=target/release/minima
mkdir -p out

echo "== convert QM9 (../shared/data/qm9) to extxyz"
$minima convert --from qm9 ../shared/data/qm9/qm9_first10k.tar.bz2 -o out/qm9.extxyz
echo "== what is in it"
$minima info out/qm9.extxyz
echo "== bonds of the first molecules (single, double, triple, aromatic)"
$minima bonds -i out/qm9.extxyz | head -n 6
$minima bonds -i out/qm9.extxyz --json >out/qm9_bonds.jsonl
echo "   all 9727 molecules: out/qm9_bonds.jsonl"
echo "== neighbour lists of fcc Cu at 5 Å, one core"
$minima bench neighbors --atoms 10000,100000
