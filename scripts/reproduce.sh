#!/usr/bin/env bash
# Reruns the two papers' experiments with minima at a stated budget and writes their tables
# beside the papers' figures (docs/results.md explains them; this writes the numbers):
#   VIMPNN paper: Table 2 (MPNN and VIMPNN on augmented QM9, the infinite fcc crystals, and
#     the Stable and Unstable crystal growth at 15-75 atoms as the paper and at 15-114),
#     Table 1 (each physics integration strategy on augmented QM9), Fig. 6 (energy MAE by size,
#     trained on all sizes and on <= 25 atoms), Fig. 7 (node contributions of a moving atom);
#   physics-transformer paper: Table 1 (energy-only against the full model: MAE_E, MAE_F, ΔP,
#     ΔE_g) and Table 2 (the ten ablation rows) on QM9 molecules of ../shared.
#
#   scripts/reproduce.sh                        # --budget full --jobs 2 (about 4 hours on 2 cores)
#   scripts/reproduce.sh --budget quick         # every row end to end, a smoke test (< 20 min)
#   scripts/reproduce.sh --jobs 1 t2-qm9-mpnn   # named rows only
#   scripts/reproduce.sh --list                 # the rows
#
# Budgets (CPU time of each training run, `train.clock = "cpu"`, one thread, so rows that
# run side by side or beside other work get the same compute):
#   full:  Table 2, Table 1 of the transformer and Fig. 6: 20 CPU-minutes per model; the
#          ablation rows (VIMPNN Table 1, transformer Table 2): 10 CPU-minutes each.
#   quick: 3 CPU-seconds per model (at least one epoch, at most two) on small data: 150 QM9
#          molecules, 5 growths per element to 20 atoms, the transformer on 300 molecules.
# Every run decays its rate exponentially over its budget (`train.lr_final`) and runs to its
# end (no early stop; the checkpoint kept is the one of the best validation loss), the same
# for both models of a comparison; the papers' plateau schedules assume far longer runs.
#
# Resumable: a killed or timed-out row continues where it stopped (training resumes from its
# last epoch, labelling from its journal); a finished row (its eval.json) is not rerun.
# Output: runs/reproduce/BUDGET/{data,rows/ROW}/, the tables in runs/reproduce/BUDGET/tables.md,
# figures fig6.png and rows/f7-contributions/*.png. A full-budget row, once finished, is also
# recorded in docs/results/rows/ROW/ (its metrics, learning curve and run settings: kilobytes,
# tracked in git), and the tables draw on that record for rows not in runs/, so the full set
# can be measured over several sittings on fresh checkouts. Seeds: every split, initialisation and
# batch order uses seed 0 (recorded in each row's run.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

budget=full jobs=2 only=() list=false
while (($#)); do
  case $1 in
    --budget) budget=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --list) list=true; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) only+=("$1"); shift ;;
  esac
done
case $budget in
  full) long=20 short=10 epochs=100000 limit="" relax=(--smallest 128 --random 128) ;;
  quick) long=0.05 short=0.05 epochs=2 limit=300 relax=(--smallest 8 --random 8) ;;
  *) echo "error: --budget is full or quick, not $budget" >&2; exit 2 ;;
esac

# The rows: name, dataset, model, budget (long or short), then --set overrides of the model.
# Datasets: qm9 (augmented QM9 at the paper's size, xtb), qm9-1000 (the shipped augmented QM9,
# molecules 1-1,000, for Table 1's ablation rows), fcc (Al and Cu crystals, EMT), stable75 /
# unstable75 / stable114 / unstable114 (crystal growth to that many atoms, EMT), size25
# (stable75 trained on <= 25 atoms); transformer rows read QM9's equilibrium molecules from
# ../shared.
ROWS=$(
  cat <<'EOF'
t2-qm9-mpnn           qm9         mpnn         long
t2-qm9-vimpnn         qm9         vimpnn       long  model.aux.scale=true
t2-fcc-mpnn           fcc         mpnn         long
t2-fcc-vimpnn         fcc         vimpnn       long  model.aux.scale=true
t2-unstable75-mpnn    unstable75  mpnn         long
t2-unstable75-vimpnn  unstable75  vimpnn       long  model.aux.scale=true
t2-stable75-mpnn      stable75    mpnn         long
t2-stable75-vimpnn    stable75    vimpnn       long
x1-energy             transformer energy       long
x1-full               transformer full         long
t2-unstable114-mpnn   unstable114 mpnn         long
t2-unstable114-vimpnn unstable114 vimpnn       long  model.aux.scale=true
t2-stable114-mpnn     stable114   mpnn         long
t2-stable114-vimpnn   stable114   vimpnn       long
f6-size25-vimpnn      size25      vimpnn       long
t1-no-bond-types      qm9-1000    mpnn         short model.bond_features=false
t1-mpnn               qm9-1000    mpnn         short
t1-aii                qm9-1000    vimpnn       short model.aux.counts=false model.aux.orbitals=false
t1-atoms              qm9-1000    baseline     short model.aux.counts=true
t1-orbitals           qm9-1000    baseline     short model.aux.orbitals=true
t1-scaling            qm9-1000    baseline     short model.aux.scale=true
x2-row1               transformer full         short model.transformer.cls=false model.priors=[] train.loss.mask=0 train.loss.zero_force=0 train.loss.bound=0
x2-row2               transformer full         short model.priors=[] train.loss.mask=0 train.loss.zero_force=0 train.loss.bound=0
x2-row3               transformer full         short train.loss.zero_force=0 train.loss.bound=0
x2-row4               transformer full         short train.loss.mask=0 train.loss.bound=0
x2-row5               transformer full         short train.loss.mask=0 train.loss.zero_force=0
x2-row6               transformer full         short model.priors=[]
x2-row7               transformer full         short train.loss.mask=0
x2-row8               transformer full         short train.loss.zero_force=0
x2-row9               transformer full         short train.loss.bound=0
x2-row10              transformer full         short
EOF
)
if $list; then
  echo "$ROWS"
  exit 0
fi

minima=$PWD/target/release/minima
[[ ${REPRODUCE_ROW:-} ]] || bash scripts/setup.sh >&2
out=runs/reproduce/$budget
data=$out/data
mkdir -p "$data" "$out/rows"

# --- data ---------------------------------------------------------------------------------

# Labels $2 (unlabelled extxyz) with $1 into $3; resumable, frames whose reference failed are
# listed in $3.failed and left out.
label() {
  "$minima" label --calc "$1" -i "$2" -o "$3" --jobs 2 || [[ -e "$3.done" ]]
}

# Splits $2 into $data/$1/{train,validation,test}.extxyz with `minima data split` options $3...
split_into() {
  local name=$1 input=$2
  shift 2
  [[ -e $data/$name/split.json ]] || "$minima" data split -i "$input" --out-dir "$data/$name" "$@"
}

# The split files of dataset $1, made (resumably) when missing.
prepare() {
  case $1 in
    qm9)
      # Augmented QM9: every molecule of ../shared at 10 scales 0.90-1.50, GFN2-xTB; split
      # 80/10/10 by molecule. Full: all 9,727 (scripts/make_data.sh --paper, ~30 min on 2
      # cores); quick: the first 150 of the shipped 1,000.
      if [[ $budget == full ]]; then
        [[ -e data/qm9_xtb_paper.extxyz.bz2 ]] || scripts/make_data.sh --paper
        split_into qm9 data/qm9_xtb_paper.extxyz.bz2 --scheme qm9
      else
        [[ -e $data/qm9_quick.extxyz ]] ||
          "$minima" convert --from extxyz data/qm9_xtb.extxyz.bz2 --first 1500 -o "$data/qm9_quick.extxyz"
        split_into qm9 "$data/qm9_quick.extxyz" --scheme qm9
      fi
      ;;
    qm9-1000)
      # The shipped augmented QM9 (QM9 1-1,000 at 10 scales, GFN2-xTB), split 80/10/10 by
      # molecule: Table 1's ablation rows. Quick: its first 150 molecules, as qm9's.
      if [[ $budget == full ]]; then
        split_into qm9-1000 data/qm9_xtb.extxyz.bz2 --scheme qm9
      else
        prepare qm9
        split_into qm9-1000 "$data/qm9_quick.extxyz" --scheme qm9
      fi
      ;;
    fcc)
      # Infinite crystals: 8 evenly spread training scales per crystal, the rest alternate
      # between validation and test (the paper's split).
      split_into fcc data/fcc_emt.extxyz.bz2 --scheme fcc --train-points 8
      ;;
    stable* | unstable*)
      # Crystal growth, EMT: Stable (20 growths per element at scale 1) and Unstable (5
      # growths per element at 10 scales) to 75 or 114 atoms; split 60/20/20 by growth.
      # Quick: 5 growths per element to 20 (for 75) or 22 (for 114) atoms.
      local subset=${1%%[0-9]*} size=${1##*[a-z]}
      local raw=$data/growth_$1.extxyz
      if [[ ! -e $raw ]]; then
        if [[ $budget == full ]]; then
          "$minima" data growth --subset "$subset" --max-size "$size" -o "$raw"
        else
          "$minima" data growth --subset "$subset" --seeds 5 --max-size $((size == 75 ? 20 : 22)) -o "$raw"
        fi
      fi
      label emt "$raw" "${raw%.extxyz}_emt.extxyz"
      split_into "$1" "${raw%.extxyz}_emt.extxyz" --scheme growth
      ;;
    size25)
      # Fig. 6 right: Stable growth, training on clusters of at most 25 atoms, tested on all.
      prepare stable75
      split_into size25 "$data/growth_stable75_emt.extxyz" --scheme size --max-train-size 25
      ;;
    transformer) ;; # QM9's equilibrium molecules, read by the row's configuration
  esac
}

# --- rows ---------------------------------------------------------------------------------

# The [model] table of a VIMPNN-paper row: mpnn, vimpnn (a.ii with the three auxiliary
# heads), or baseline (no bond type anywhere: one channel, distances only, no auxiliary head;
# the Table 1 auxiliary rows switch one head on). Paper sizes (appendix A.3).
model_table() {
  local cutoff=$2
  echo "[model]"
  case $1 in
    mpnn) echo 'kind = "mpnn"' ;;
    *) echo 'kind = "vimpnn"' ;;
  esac
  echo "hidden = 73"
  echo "iterations = 3"
  [[ -n $cutoff ]] && echo "cutoff = $cutoff"
  case $1 in
    vimpnn)
      printf '[model.vimpnn]\ncombine = "a.ii"\nchannels = ["none", "single", "double+triple+aromatic"]\n'
      printf '[model.aux]\ncounts = true\norbitals = true\nscale = false\n'
      ;;
    baseline)
      echo "bond_features = false"
      printf '[model.vimpnn]\ncombine = "a.ii"\nchannels = ["none+single+double+triple+aromatic"]\n'
      printf '[model.aux]\ncounts = false\norbitals = false\nscale = false\n'
      ;;
  esac
}

# Writes the configuration of a VIMPNN-paper row: $1 row, $2 dataset, $3 model.
vimpnn_paper_config() {
  local row=$1 dataset=$2 model=$3 cutoff="" batch=20 rate=5e-4
  # Periodic crystals need a cutoff (6 Å reaches the third shell of Cu at scale 1.5); growth
  # clusters are complete graphs as in the paper, five per batch (appendix A.3).
  case $dataset in
    fcc) cutoff=6.0 batch=4 rate=1e-3 ;;
    stable* | unstable* | size*) batch=5 ;;
  esac
  model_table "$model" "$cutoff"
  cat <<EOF
[data]
train = "$data/$dataset/train.extxyz"
validation = "$data/$dataset/validation.extxyz"
test = "$data/$dataset/test.extxyz"
[train]
output = "$out/rows/$row/run"
batch_size = $batch
learning_rate = $rate
lr_final = 1e-5
early_stop = 1000000
max_epochs = $epochs
seed = 0
threads = 1
clock = "cpu"
[train.loss]
energy = 1.0
EOF
  [[ $model != mpnn ]] && echo "aux = 0.3"
  true
}

run_row() {
  local row=$1 dataset=$2 model=$3 size=$4
  shift 4
  local dir=$out/rows/$row minutes=$long
  [[ $size == short ]] && minutes=$short
  [[ -e $dir/eval.json ]] && { echo "$row: done ($dir/eval.json)"; return; }
  mkdir -p "$dir"
  local sets=(--set "train.max_minutes=$minutes")
  local override
  for override in "$@"; do sets+=(--set "$override"); done
  local config=$dir/config.toml
  if [[ $dataset == transformer ]]; then
    config=configs/qm9-transformer-$model.toml
    sets+=(--set "train.output=\"$dir/run\"" --set train.threads=1 --set 'train.clock="cpu"'
      --set train.lr_final=1e-5 --set "train.max_epochs=$epochs" --set train.early_stop=1000000)
    [[ -n $limit ]] && sets+=(--set "data.limit=$limit")
    # The paper's full model is row 10: without our pair-equilibrium term.
    [[ $model == full ]] && sets+=(--set train.loss.pair_equilibrium=0)
  else
    vimpnn_paper_config "$row" "$dataset" "$model" >"$config"
  fi
  local resume=()
  [[ -e $dir/run/state.json ]] && resume=(--resume)
  echo "== $row: training ($minutes CPU-minutes)"
  "$minima" train --config "$config" "${resume[@]}" "${sets[@]}" >"$dir/train.log" 2>&1 ||
    { echo "error: $row: training failed, see $dir/train.log" >&2; return 1; }
  local evaluate=(--model "$dir/run/best.safetensors" --json "$dir/eval.tmp.json")
  case $dataset in
    transformer) evaluate+=(--data "$dir/run/test.extxyz" --relax "${relax[@]}") ;;
    qm9*) evaluate+=(--data "$data/$dataset/test.extxyz") ;;
    # EMT's zero is the fcc crystal: RE against the energy relative to the free atoms.
    *) evaluate+=(--data "$data/$dataset/test.extxyz" --cohesive emt --by-size) ;;
  esac
  echo "== $row: evaluating"
  "$minima" eval "${evaluate[@]}" >"$dir/eval.log" 2>&1 ||
    { echo "error: $row: evaluation failed, see $dir/eval.log" >&2; return 1; }
  # Figures written beside the JSON keep their stem; the finished mark is the final name.
  for f in "$dir"/eval.tmp_*; do [[ -e $f ]] && mv "$f" "${f/eval.tmp_/eval_}"; done
  mv "$dir/eval.tmp.json" "$dir/eval.json"
  echo "$row: done"
}

# Fig. 7: the node contributions of an atom added to a 14-atom seed (the first 15-atom cluster
# of the Stable growth), moved along the line from the seed's centroid, with the VIMPNN trained
# on Unstable growth.
figure7() {
  local dir=$out/rows/f7-contributions model=$out/rows/t2-unstable75-vimpnn/run/best.safetensors
  [[ -e $dir/contributions.csv ]] && return
  # A finished row only (its evaluation written), not a checkpoint still in training.
  [[ -e $out/rows/t2-unstable75-vimpnn/eval.json ]] || { echo "f7: waits for t2-unstable75-vimpnn"; return; }
  prepare stable75
  mkdir -p "$dir"
  "$minima" contributions --model "$model" -i "$data/stable75/test.extxyz" --frame 0 --move-atom 14 \
    --scales 0.6:2.5:40 -o "$dir/contributions" >"$dir/contributions.log" 2>&1
}

if [[ ${REPRODUCE_ROW:-} ]]; then
  # One row, as a worker of the parallel run below.
  read -r -a spec <<<"$(awk -v r="$REPRODUCE_ROW" '$1 == r' <<<"$ROWS")"
  run_row "${spec[@]}"
  exit
fi

selected=$ROWS
if ((${#only[@]})); then
  for row in "${only[@]}"; do
    grep -q "^$row " <<<"$ROWS" || { echo "error: no row $row (see --list)" >&2; exit 2; }
  done
  selected=$(grep -E "^($(IFS='|'; echo "${only[*]}")) " <<<"$ROWS")
fi
for dataset in $(awk '{print $2}' <<<"$selected" | sort -u); do
  prepare "$dataset"
done
status=0
awk '{print $1}' <<<"$selected" |
  xargs -P "$jobs" -I{} env REPRODUCE_ROW={} bash "$0" --budget "$budget" || status=$?
figure7

# Keeps the small results of every finished full-budget row in docs/results/rows/ (the
# checkpoints and data stay in runs/: they are remade by rerunning the row).
record() {
  local dir row
  for dir in "$out"/rows/*/; do
    row=$(basename "$dir")
    local kept=docs/results/rows/$row
    if [[ -e $dir/eval.json ]]; then
      mkdir -p "$kept/run"
      cp "$dir/eval.json" "$kept/"
      cp "$dir/run/learning_curve.csv" "$dir/run/run.toml" "$kept/run/"
    elif [[ -e $dir/contributions.csv ]]; then
      mkdir -p "$kept"
      cp "$dir/contributions.csv" "$dir/contributions.png" "$kept/"
    fi
  done
}
roots=("$out")
if [[ $budget == full ]]; then
  record
  roots+=(docs/results)
fi
python=.venv/bin/python
[[ -x $python ]] || python=python3
"$python" scripts/reproduce_report.py "${roots[@]}" >"$out/tables.md"
[[ $budget == full && -e $out/fig6.png ]] && cp "$out/fig6.png" docs/results/
echo "tables: $out/tables.md"
exit $status
