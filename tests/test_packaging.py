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
    # data files the demo and the web UI need at run time
    assert any(n.startswith("spyglass/testing/recordings/") and n.endswith(".json") for n in names)
    assert any(n.startswith("spyglass/store/web/templates/") for n in names)
    assert any(n.startswith("spyglass/store/web/static/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "spyglass = spyglass.store.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_wheel_imports_in_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    """The wheel alone, in a venv of its own: its modules win over this source tree.

    The venv sees the system site-packages for the third-party dependencies (no network needed), but its
    own site-packages comes first on ``sys.path``, so every ``spyglass.*`` package must import from the
    installed wheel, not from the editable checkout.
    """
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
    )
    probe = (
        "import spyglass.semconv, spyglass.testing, spyglass.store, spyglass.exporter, spyglass.instrumentation;"
        "from spyglass.semconv import messages;"
        "print(messages.dumps([messages.message('user', [messages.text('hi')])]));"
        "[print(m.__file__) for m in (spyglass.semconv, spyglass.testing, spyglass.store, spyglass.exporter,"
        " spyglass.instrumentation)]"
    )
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True).stdout.splitlines()
    assert out[0] == '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]'
    for path in out[1:]:
        assert path.startswith(str(env_dir)), path  # imported from the wheel, not this source tree
    version = subprocess.run([str(env_dir / "bin" / "spyglass"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout.strip() == "spyglass 0.1.0"
