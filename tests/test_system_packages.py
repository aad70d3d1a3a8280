"""``scripts/system_packages.sh``, which ``make test`` runs first: Java and Chromium for the tests.

Run with a ``PATH`` of its own (a few real tools plus stubs), so nothing is installed on this
machine: a stub ``apt-get`` records its calls and "installs" stub programs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "system_packages.sh"
TOOLS = ("bash", "id", "mktemp", "rm", "mkdir", "chmod")
APT_GET = """#!/bin/bash
echo "$*" >> "$APT_LOG"
if [ "$1" = install ]; then
    for pkg in "$@"; do
        case "$pkg" in
            openjdk-17-jre-headless) prog=java ;;
            chromium) prog=chromium ;;
            *) continue ;;
        esac
        printf '#!/bin/bash\\n' > "$STUB_BIN/$prog" && chmod +x "$STUB_BIN/$prog"
    done
fi
"""


def stub(bin_dir: Path, name: str, text: str = "#!/bin/bash\n") -> None:
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (path / tool).symlink_to(found)
    return path


def run(bin_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "APT_LOG": str(tmp_path / "apt.log"), "STUB_BIN": str(bin_dir)}
    return subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)], capture_output=True, text=True, env=env, check=False
    )


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_runs_or_prints_when_both_are_there(bin_dir: Path, tmp_path: Path) -> None:
    stub(bin_dir, "java")
    stub(bin_dir, "chromium")
    stub(bin_dir, "apt-get", APT_GET)
    out = run(bin_dir, tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert apt_calls(tmp_path) == []


def test_without_apt_one_line_per_skipped_group(bin_dir: Path, tmp_path: Path) -> None:
    out = run(bin_dir, tmp_path)
    assert out.returncode == 0 and out.stderr == ""
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert (
        lines[0].startswith("The Spark tests will skip") and "openjdk-17-jre-headless" in lines[0]
    )
    assert lines[1].startswith("The browser test will skip") and "chromium" in lines[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="installs only as root")
def test_as_root_installs_once_then_stays_quiet(bin_dir: Path, tmp_path: Path) -> None:
    stub(bin_dir, "java")
    stub(bin_dir, "apt-get", APT_GET)
    first = run(bin_dir, tmp_path)
    assert first.returncode == 0
    assert first.stdout.splitlines() == [
        "Installing chromium with apt-get, for the tests that need it (once)"
    ]
    assert apt_calls(tmp_path) == ["update -qq", "install -y -qq chromium"]
    second = run(bin_dir, tmp_path)
    assert (second.returncode, second.stdout) == (0, "")
    assert len(apt_calls(tmp_path)) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="installs only as root")
def test_a_failed_install_says_so_and_does_not_fail(bin_dir: Path, tmp_path: Path) -> None:
    stub(bin_dir, "apt-get", "#!/bin/bash\necho 'E: Unable to locate package' >&2\nexit 100\n")
    out = run(bin_dir, tmp_path)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert "could not install openjdk-17-jre-headless chromium" in lines[1]
    log = Path(lines[1].rsplit(" ", 1)[-1])
    assert "Unable to locate package" in log.read_text()
    log.unlink()
    assert [line.split(":")[0] for line in lines[2:]] == [
        "The Spark tests will skip",
        "The browser test will skip",
    ]
