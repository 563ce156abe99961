#!/usr/bin/env bash
# Idempotent set-up; a second run takes seconds.
#   scripts/setup.sh           libtorch (PyPI's torch wheel) in the project-local .venv, then
#                              build the minima binary (target/release/minima) and the minima
#                              Python package (crates/python, with maturin) into .venv
#   scripts/setup.sh --xtb     also the xtb program (Debian package, installed with apt-get
#                              when missing): the main job (scripts/demo.sh) labels with it
#   scripts/setup.sh --python  also the reference tools the tests compare against: ASE, RDKit
#                              and pytest in .venv; the xtb and CP2K programs, and Slurm and
#                              munge for the cluster tests, OpenMPI and libclang for the MPI
#                              test (Debian packages, installed with apt-get when missing;
#                              the tests start a private Slurm and run mpirun themselves)
#   scripts/setup.sh --mpi     OpenMPI and libclang: minima is then built for data-parallel
#                              training under mpirun (cargo's feature `mpi`), by this and
#                              every later set-up
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "error: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 (with pip) is required to fetch libtorch" >&2; exit 1; }
[[ -x .venv/bin/python ]] || python3 -m venv .venv

# libtorch for the tch crate (Cargo.toml pins tch =0.24.0, which needs exactly torch 2.11.0).
# Only the wheel itself and the two small CUDA runtime wheels libtorch_cpu.so links against:
# the CUDA backend is loaded at run time, and only when --device cuda asks for it.
torch_wheels="torch==2.11.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85"
if [[ "$(cat .venv/.torch.stamp 2>/dev/null)" != "$torch_wheels" ]]; then
  echo "setup: installing libtorch (PyPI torch wheel, ~530 MB) into .venv" >&2
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --disable-pip-version-check --no-deps $torch_wheels
  echo "$torch_wheels" >.venv/.torch.stamp
fi
# .cargo/config.toml points LIBTORCH at .venv/torch, whatever the Python version.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[[ "$(readlink .venv/torch)" == "$site/torch" ]] || ln -sfn "$site/torch" .venv/torch

# Debian packages with apt-get (apt-get update only if the package lists are too old to have
# them).
apt_install() {
  (($#)) || return 0
  echo "setup: installing $* (Debian packages)" >&2
  local sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "$@" >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$@" >/dev/null; }
}

# Packages installed only when their program (PROGRAM PACKAGE pairs) is missing.
install_programs() {
  local missing=()
  while (($#)); do
    command -v "$1" >/dev/null || missing+=("$2")
    shift 2
  done
  apt_install "${missing[@]}"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# Packages without a program to look for (libraries), installed when dpkg lacks them.
install_packages() {
  local missing=()
  for package in "$@"; do
    installed "$package" || missing+=("$package")
  done
  apt_install "${missing[@]}"
}

# OpenMPI (mpirun, and the headers the `mpi` crate binds with libclang's help).
install_mpi() {
  install_programs mpirun openmpi-bin
  install_packages libopenmpi-dev libclang-dev
}

case "${1:-}" in
  "") ;;
  --xtb) install_programs xtb xtb ;;
  --python) ;;
  --mpi) install_mpi ;;
  *) echo "usage: scripts/setup.sh [--xtb | --python | --mpi]" >&2; exit 2 ;;
esac

if [[ "${1:-}" == "--python" ]]; then
  stamp=.venv/.requirements.sha256
  want=$(sha256sum python/requirements-test.txt | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "setup: installing Python reference tools into .venv" >&2
    .venv/bin/pip install -q --disable-pip-version-check -r python/requirements-test.txt
    echo "$want" >"$stamp"
  fi
  install_programs xtb xtb cp2k.psmp cp2k sbatch slurm-wlm munged munge
  install_mpi
fi

# With OpenMPI's headers and libclang here (--mpi and --python install them), minima is built
# for data-parallel training under mpirun (cargo's feature `mpi`); without, as a single process.
features=()
if installed libopenmpi-dev && installed libclang-dev; then
  features=(--features minima-cli/mpi)
fi
echo "setup: building minima (release${features:+, with MPI})" >&2
cargo build --release --locked -q "${features[@]}"

# The Python package: a wheel built by maturin (libtorch is found in the torch wheel beside it,
# not bundled), installed with its dependencies (ASE, NumPy), then reinstalled from this
# build whatever version .venv holds.
if [[ "$(cat .venv/.maturin.stamp 2>/dev/null)" != "maturin==1.16.0" ]]; then
  .venv/bin/pip install -q --disable-pip-version-check maturin==1.16.0
  echo "maturin==1.16.0" >.venv/.maturin.stamp
fi
echo "setup: building the minima Python package" >&2
rm -rf target/wheels
.venv/bin/maturin build -q --release --locked --strip --auditwheel skip \
  -m crates/python/Cargo.toml -i .venv/bin/python --out target/wheels
wheel=$(ls target/wheels/minima-*.whl)
.venv/bin/pip install -q --disable-pip-version-check "$wheel"
.venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
