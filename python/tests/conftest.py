"""Shared fixtures: the minima binary and the shipped QM9 archive."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QM9_ARCHIVE = ROOT.parent / "shared" / "data" / "qm9" / "qm9_first10k.tar.bz2"


@pytest.fixture(scope="session")
def minima():
    binary = Path(os.environ.get("MINIMA", ROOT / "target" / "release" / "minima"))
    assert binary.exists(), f"build minima first (cargo build --release): {binary} is missing"

    def run(*args, check=True):
        result = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


@pytest.fixture(scope="session")
def qm9_extxyz(minima, tmp_path_factory):
    """All 9,727 molecules of the shipped archive, converted by minima."""
    assert QM9_ARCHIVE.exists(), f"{QM9_ARCHIVE} is missing: ../shared must sit beside the checkout"
    out = tmp_path_factory.mktemp("qm9") / "qm9.extxyz"
    minima("convert", "--from", "qm9", QM9_ARCHIVE, "-o", out)
    return out
