# Sourced by the peer scripts: makes .venv-peers once (Python >= 3.12 from pyenv or the system,
# PyPI's torch 2.11, schnetpack 2.2, ase); SchNetPack needs Python >= 3.12.
if [[ ! -x .venv-peers/bin/python ]]; then
  python=$(command -v python3.12 || ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python 2>/dev/null | head -n1 || true)
  [[ -n "$python" ]] || { echo "error: SchNetPack needs Python >= 3.12 (pyenv install 3.12)" >&2; exit 1; }
  "$python" -m venv .venv-peers
fi
.venv-peers/bin/pip install -q --disable-pip-version-check torch==2.11.0 schnetpack==2.2.0 ase
