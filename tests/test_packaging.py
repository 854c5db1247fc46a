"""The wheel builds, carries every part of the namespace package, and imports in a clean venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("semconv", "instrumentation", "exporter", "store", "testing")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("spyglass-*.whl")
    return path


def test_wheel_contains_every_part_and_no_top_level_init(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for part in PARTS:
        assert f"spyglass/{part}/__init__.py" in names
        assert f"spyglass/{part}/py.typed" in names
    assert "spyglass/__init__.py" not in names  # a namespace package, like opentelemetry/
    assert "spyglass/semconv/schemas/gen-ai-messages.schema.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "spyglass = spyglass.store.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_wheel_imports_in_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
    )
    probe = (
        "import spyglass.semconv, spyglass.testing, spyglass.store, spyglass.exporter, spyglass.instrumentation;"
        "from spyglass.semconv import messages, gen_ai;"
        "print(spyglass.semconv.__file__);"
        "print(messages.dumps([messages.message('user', [messages.text('hi')])]))"
    )
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True).stdout
    assert str(env_dir) in out.splitlines()[0]  # imported from the venv, not this source tree
    assert out.splitlines()[1] == '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    version = subprocess.run([str(env_dir / "bin" / "spyglass"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout.strip() == "spyglass 0.1.0"
