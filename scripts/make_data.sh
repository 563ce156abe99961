#!/usr/bin/env bash
# Regenerates the labelled data shipped in data/ (a few minutes on 2 cores):
#   qm9_xtb.extxyz.bz2     QM9 molecules 1..1000 (by index order) x 10 scales 0.90-1.50, GFN2-xTB
#   fcc_emt.extxyz.bz2     periodic fcc Al and Cu, cubic cell, 200 scales 0.90-1.50 each, EMT
#   growth_emt.extxyz.bz2  crystal growth, 2 growths per element to 40 atoms x 10 scales, EMT
# Every step is seeded and resumable: rerun after an interruption and it continues.
#   scripts/make_data.sh --paper   instead makes the paper-size augmented QM9 (the 9,727
#                                  molecules of ../shared, 97,270 xtb calls, ~20 min on 2 cores)
#                                  into data/qm9_xtb_paper.extxyz.bz2 (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v xtb >/dev/null || { echo "error: xtb is needed (apt-get install xtb)" >&2; exit 1; }
minima=target/release/minima
[[ -x $minima ]] || scripts/setup.sh
work=data/.work
mkdir -p "$work"
qm9=../shared/data/qm9/qm9_first10k.tar.bz2

label() { # calculator, raw file, labelled name
  # label exits non-zero when frames failed (listed in .failed); a finished run (.done) goes on.
  "$minima" label --calc "$1" -i "$2" -o "$work/$3.extxyz" --jobs 2 || [[ -e "$work/$3.extxyz.done" ]]
  "$minima" convert --from extxyz "$work/$3.extxyz" -o "data/$3.extxyz.bz2"
}

if [[ "${1:-}" == "--paper" ]]; then
  "$minima" data qm9-scan --qm9 "$qm9" --molecules 10000 -o "$work/qm9_scan_paper.extxyz"
  label xtb "$work/qm9_scan_paper.extxyz" qm9_xtb_paper
  exit 0
fi

"$minima" data qm9-scan --qm9 "$qm9" --molecules 1000 -o "$work/qm9_scan.extxyz"
label xtb "$work/qm9_scan.extxyz" qm9_xtb
"$minima" data fcc --scales 0.9:1.5:200 -o "$work/fcc.extxyz"
label emt "$work/fcc.extxyz" fcc_emt
"$minima" data growth --subset unstable --seeds 2 --max-size 40 -o "$work/growth.extxyz"
label emt "$work/growth.extxyz" growth_emt
rm -rf "$work"
ls -la data/
