#!/usr/bin/env bash
# Regenerates the labelled data shipped in data/ (a few minutes on 2 cores):
#   qm9_xtb.extxyz.bz2     QM9 molecules 1..1000 (by index order) x 10 scales 0.90-1.50, GFN2-xTB
#   fcc_emt.extxyz.bz2     periodic fcc Al and Cu, cubic cell, 200 scales 0.90-1.50 each, EMT
#   growth_emt.extxyz.bz2  crystal growth, 2 growths per element to 40 atoms x 10 scales, EMT
# Every step is seeded and resumable: rerun after an interruption and it continues.
#   scripts/make_data.sh --paper   instead makes the paper-size augmented QM9 (the 9,727
#                                  molecules of ../shared, 97,270 xtb calls, ~20 min on 2 cores)
#                                  into data/qm9_xtb_paper.extxyz.bz2 (not committed).
#   scripts/make_data.sh --near-minima   instead remakes data/qm9_xtb_near_minima.extxyz.bz2
#                                  (configs/molecules.toml trains on it, ~10 min on 2 cores):
#                                  QM9 molecules 1..500 relaxed with xtb (equilibrium=T), those
#                                  minima rattled (σ 0.02, 0.05, 0.1 Å), normal-mode samples
#                                  about them (6 at 300 K, 4 at 1000 K; molecules whose xtb
#                                  Hessian fails are listed in .failed and left out), and their
#                                  scans (0.90-1.50) rattled by σ 0.1 Å; all labelled with xtb.
#   scripts/make_data.sh --compliance   adds xtb's compliance modes (minima data compliance) to
#                                  the minima of the two sets below, as --near-minima and
#                                  --spread do when they make them (~10 min on 2 cores).
#   scripts/make_data.sh --spread  the same for every 17th molecule of QM9 1..9000 (514, of
#                                  every size), with their scans, into
#                                  data/qm9_xtb_spread.extxyz.bz2 (~15 min on 2 cores).
#   scripts/make_data.sh --metals  remakes data/metals_emt.extxyz.bz2 (configs/metals.toml trains
#                                  on it with the two EMT sets above; ~3 min): Al and Cu with
#                                  EMT: clusters of 4 growths per element (15-40 atoms) relaxed
#                                  to their EMT minima (equilibrium=T), rattled (σ 0.05, 0.1,
#                                  0.2 Å) and scanned (0.90-1.50); 2×2×2 cubic crystals at 15
#                                  scales 0.92-1.20, rattled (σ 0.05, 0.1 Å); (100) slabs of
#                                  them with 10 Å of vacuum at 6 scales 0.95-1.10, rattled.
#   scripts/make_data.sh --explored [CHECKPOINT]   where a potential's relaxations end, into
#                                  data/qm9_xtb_explored.extxyz.bz2: the 1,014 xtb minima of the
#                                  two sets above (their first 500 and 514 frames) rattled
#                                  (σ 0.1 Å), compressed (0.9) and stretched (1.5), each relaxed
#                                  by CHECKPOINT (default models/molecules-round0.safetensors,
#                                  the recipe's model before this set existed) to fmax 0.01 or
#                                  500 steps, the end points labelled with xtb (~40 min).
#   scripts/make_data.sh --paths CHECKPOINT NAME   points along CHECKPOINT's relaxations of
#                                  the same 1,014 minima, into data/qm9_xtb_NAME.extxyz.bz2:
#                                  from stretched (1.5) starts at 10, 25, 45, 70 and 100 % of
#                                  each relaxation's steps, from compressed (0.8) ones at 5,
#                                  15, 30 and 60 % (FIRE, fmax 0.01, 500 steps), labelled with
#                                  xtb (~35 min on one core, most of it the relaxations).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v xtb >/dev/null || { echo "error: xtb is needed (apt-get install xtb)" >&2; exit 1; }
minima=target/release/minima
[[ -x $minima ]] || scripts/setup.sh
work=data/.work
mkdir -p "$work"
qm9=../shared/data/qm9/qm9_first10k.tar.bz2

label_only() { # calculator, raw file, labelled name (in $work)
  # label exits non-zero when frames failed (listed in .failed); a finished run (.done) goes on.
  "$minima" label --calc "$1" -i "$2" -o "$work/$3.extxyz" --jobs 2 || [[ -e "$work/$3.extxyz.done" ]]
}
label() { # calculator, raw file, labelled name (compressed into data/)
  label_only "$@"
  "$minima" convert --from extxyz "$work/$3.extxyz" -o "data/$3.extxyz.bz2"
}

# Near-minimum data of the molecules in $1 (extxyz) into data/$2.extxyz.bz2, in $work/$2/:
# xtb minima, the minima rattled, normal-mode samples about them, the scans rattled; with
# $3 = with-scans the scans themselves too.
near_minima() {
  local w="$work/$2"
  mkdir -p "$w"
  "$minima" data relaxed --reference xtb --optimizer lbfgs --jobs 2 -i "$1" -o "$w/minima.extxyz" ||
    [[ -e "$w/minima.extxyz.done" ]]
  "$minima" data rattle -i "$w/minima.extxyz" -o "$w/minima_rattled.extxyz" --amplitudes 0.02,0.05,0.1 --seed 2
  # Normal-mode sampling exits non-zero when some Hessians failed; their samples are left out.
  for t in 300:6:0 1000:4:1; do
    IFS=: read -r kelvin samples seed <<<"$t"
    "$minima" data normal-modes --reference xtb -i "$w/minima.extxyz" -o "$w/nm$kelvin.extxyz" \
      --temperature "$kelvin" --samples "$samples" --seed "$seed" || [[ -s "$w/nm$kelvin.extxyz" ]]
  done
  "$minima" data qm9-scan --qm9 "$1" --molecules 100000 -o "$w/scan.extxyz"
  "$minima" data rattle -i "$w/scan.extxyz" -o "$w/scan_rattled.extxyz" --amplitudes 0.1 --seed 3
  local sets=(minima_rattled scan_rattled nm300 nm1000)
  [[ "$3" == with-scans ]] && sets=(minima_rattled scan scan_rattled nm300 nm1000)
  local labelled=("$w/minima.extxyz")
  for set in "${sets[@]}"; do
    label_only xtb "$w/$set.extxyz" "$2/${set}_xtb"
    labelled+=("$w/${set}_xtb.extxyz")
  done
  cat "${labelled[@]}" >"$w/all.extxyz"
  with_compliance "$w/all.extxyz" "$2"
}

# xtb's compliance modes on the minima (equilibrium=T) of $1, for the minimum_shift loss,
# into data/$2.extxyz.bz2; the other frames pass unchanged.
with_compliance() {
  "$minima" data compliance --reference xtb --jobs 2 -i "$1" -o "$work/$2_compliance.extxyz" ||
    [[ -e "$work/$2_compliance.extxyz.done" ]]
  "$minima" convert --from extxyz "$work/$2_compliance.extxyz" -o "data/$2.extxyz.bz2"
}

if [[ "${1:-}" == "--compliance" ]]; then
  for set in qm9_xtb_near_minima qm9_xtb_spread; do
    "$minima" convert --from extxyz "data/$set.extxyz.bz2" -o "$work/$set.plain.extxyz"
    with_compliance "$work/$set.plain.extxyz" "$set"
  done
  exit 0
fi
if [[ "${1:-}" == "--near-minima" ]]; then
  "$minima" data qm9-scan --qm9 "$qm9" --molecules 500 --scales 1:1:1 -o "$work/qm9_first500.extxyz"
  near_minima "$work/qm9_first500.extxyz" qm9_xtb_near_minima without-scans
  exit 0
fi
if [[ "${1:-}" == "--spread" ]]; then
  "$minima" convert --from qm9 "$qm9" --first 9000 --every 17 -o "$work/qm9_spread.extxyz"
  near_minima "$work/qm9_spread.extxyz" qm9_xtb_spread with-scans
  exit 0
fi

if [[ "${1:-}" == "--metals" ]]; then
  w="$work/metals"
  mkdir -p "$w"
  "$minima" data growth --subset stable --seeds 4 --max-size 40 -o "$w/grown.extxyz"
  "$minima" data relaxed --reference emt --fmax 0.005 --jobs 2 -i "$w/grown.extxyz" \
    -o "$w/cluster_minima.extxyz" || [[ -e "$w/cluster_minima.extxyz.done" ]]
  "$minima" data rattle -i "$w/cluster_minima.extxyz" -o "$w/clusters_rattled.extxyz" --amplitudes 0.05,0.1,0.2 --seed 1
  "$minima" data qm9-scan --qm9 "$w/cluster_minima.extxyz" --molecules 100000 --scales 0.9:1.5:7 -o "$w/clusters_scan.extxyz"
  "$minima" data fcc --repeat 2 --scales 0.92:1.2:15 -o "$w/bulk.extxyz"
  "$minima" data rattle -i "$w/bulk.extxyz" -o "$w/bulk_rattled.extxyz" --amplitudes 0.05,0.1 --seed 2
  "$minima" data fcc --repeat 2 --vacuum 10 --scales 0.95:1.1:6 -o "$w/slab.extxyz"
  "$minima" data rattle -i "$w/slab.extxyz" -o "$w/slab_rattled.extxyz" --amplitudes 0.05,0.1 --seed 3
  labelled=("$w/cluster_minima.extxyz")
  for set in clusters_rattled clusters_scan bulk_rattled slab_rattled; do
    label_only emt "$w/$set.extxyz" "metals/${set}_emt"
    labelled+=("$w/${set}_emt.extxyz")
  done
  cat "${labelled[@]}" >"$w/all.extxyz"
  "$minima" convert --from extxyz "$w/all.extxyz" -o data/metals_emt.extxyz.bz2
  exit 0
fi
training_minima() { # into $1/minima.extxyz: the 1,014 xtb minima of the near-minimum and spread sets
  "$minima" convert --from extxyz data/qm9_xtb_near_minima.extxyz.bz2 --first 500 -o "$1/m1.extxyz"
  "$minima" convert --from extxyz data/qm9_xtb_spread.extxyz.bz2 --first 514 -o "$1/m2.extxyz"
  cat "$1/m1.extxyz" "$1/m2.extxyz" >"$1/minima.extxyz"
}

if [[ "${1:-}" == "--paths" ]]; then
  model=${2:?--paths needs the checkpoint whose relaxations to follow}
  name=${3:?--paths needs a name for the set}
  w="$work/$name"
  mkdir -p "$w"
  training_minima "$w"
  labelled=()
  for spec in scale:1.5/0.1,0.25,0.45,0.7,1 scale:0.8/0.05,0.15,0.3,0.6; do
    start=${spec%/*}
    tag=${start/:/_}
    # Relaxations with no point left (every one collapsed) are failures (.failed); a finished run goes on.
    "$minima" data explored --model "$model" --start "$start" --path "${spec#*/}" \
      --steps 500 -i "$w/minima.extxyz" -o "$w/$tag.extxyz" || [[ -e "$w/$tag.extxyz.done" ]]
    label_only xtb "$w/$tag.extxyz" "$name/${tag}_xtb"
    labelled+=("$w/${tag}_xtb.extxyz")
  done
  cat "${labelled[@]}" >"$w/all.extxyz"
  "$minima" convert --from extxyz "$w/all.extxyz" -o "data/qm9_xtb_$name.extxyz.bz2"
  exit 0
fi
if [[ "${1:-}" == "--explored" ]]; then
  w="$work/explored"
  mkdir -p "$w"
  training_minima "$w"
  labelled=()
  for start in rattle:0.1 scale:0.9 scale:1.5; do
    tag=${start/:/_}
    # Collapsed ends are failures (listed in .failed); a finished run (.done) goes on.
    "$minima" data explored --model "${2:-models/molecules-round0.safetensors}" --start "$start" \
      --seed 5 --steps 500 -i "$w/minima.extxyz" -o "$w/$tag.extxyz" || [[ -e "$w/$tag.extxyz.done" ]]
    label_only xtb "$w/$tag.extxyz" "explored/${tag}_xtb"
    labelled+=("$w/${tag}_xtb.extxyz")
  done
  cat "${labelled[@]}" >"$w/all.extxyz"
  "$minima" convert --from extxyz "$w/all.extxyz" -o data/qm9_xtb_explored.extxyz.bz2
  exit 0
fi
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
