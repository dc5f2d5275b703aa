"""Build the real Linux bundle with ``packaging/build.py`` and run the frozen program.

Marked ``packaging`` (skip with ``-m "not packaging"`` for a quick run; ``.ci/run`` runs it).
The build takes ~15-60 s on this machine; the module builds once and every test uses it.
Each run of the frozen program gets an environment with no Python in reach: no ``PATH``
entry holding one, no ``PYTHONPATH``/``PYTHONHOME``; as root, one test also runs it in a
chroot that holds only the bundle and the system libraries ``ldd`` names.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from bandsync_desktop.server.net import free_port, wait_for_health

from .conftest import ROOT

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux bundle"),
]

EXE_NAME = "bandsync-desktop"


@dataclass(frozen=True)
class Bundle:
    """A frozen one-folder build: its folder and executable."""

    folder: Path
    exe: Path


# Session scope: one build (40-46 s) per worker, whatever order its tests come in. The packaging
# tests are grouped on one worker (tests/conftest.py); when they were not, each worker built it.
@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    base = tmp_path_factory.mktemp("bundle")
    env = {**os.environ, "PYINSTALLER_CONFIG_DIR": str(base / "pyinstaller-cache")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build.py"),
            "--dist",
            str(base / "dist"),
            "--work",
            str(base / "work"),
            "--freeze-only",
            "--no-smoke",  # the tests below do the smoke test, with assertions
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, (
        f"build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    shutil.rmtree(base / "work", ignore_errors=True)  # PyInstaller's intermediates: ~100 MB
    folder = base / "dist" / EXE_NAME
    report = json.loads((base / "dist" / "build-report.json").read_text())
    assert report["bundle_bytes"] > 50_000_000  # Python + Qt are in it
    return Bundle(folder, folder / EXE_NAME)


def _no_python_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing Python in it: an empty PATH dir, a fresh HOME."""
    empty_bin = tmp / "empty-bin"
    empty_bin.mkdir(exist_ok=True)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": str(empty_bin), "HOME": str(home), "LANG": "C.UTF-8", **extra}


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, answer.read()


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; killed at teardown if the test left one running."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _serve_check_and_stop(
    cmd: list[str], env: dict[str, str], port: int, procs: list[subprocess.Popen[str]]
) -> str:
    """Start the frozen server, check /health, the follower page and its JS, SIGTERM it."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    health = wait_for_health(url, timeout=30, process=proc)
    assert health["status"] == "ok"
    assert health["version"] == metadata.version("bandsync-desktop")
    status, page = _get(f"{url}/")
    assert status == 200
    assert b"<html" in page.lower()
    assert b"socket.io.min.js" in page  # the follower page, not a placeholder
    status, script = _get(f"{url}/static/vendor/socket.io.min.js")
    assert status == 200 and len(script) > 20_000
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "server stopped" in output
    assert "Traceback" not in output
    return output


def test_headless_serves_health_and_follower_page_then_stops_on_sigterm(
    bundle: Bundle, tmp_path: Path, stop_later: list[subprocess.Popen[str]]
) -> None:
    port = free_port()
    cmd = [str(bundle.exe), "--headless", "--host", "127.0.0.1", "--port", str(port)]
    output = _serve_check_and_stop(cmd, _no_python_env(tmp_path), port, stop_later)
    assert f"on http://127.0.0.1:{port}" in output


def test_headless_never_loads_qt(bundle: Bundle, tmp_path: Path) -> None:
    """The frozen headless mode keeps the rule that the server never imports Qt."""
    port = free_port()
    proc = subprocess.Popen(
        [str(bundle.exe), "--headless", "--host", "127.0.0.1", "--port", str(port)],
        env=_no_python_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", timeout=30, process=proc)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "libpython3" in maps  # the bundle's own interpreter is loaded
        assert "libQt6Core" not in maps
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_screenshot_renders_the_console_offscreen(bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "console.png"
    env = _no_python_env(tmp_path, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [
            str(bundle.exe),
            "--screenshot",
            str(out),
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Could not load the Qt platform plugin" not in result.stderr
    image = QImage(str(out))
    assert not image.isNull()
    assert image.width() >= 800 and image.height() >= 500
    colours = {
        image.pixel(x, y) for y in range(0, image.height(), 7) for x in range(0, image.width(), 7)
    }
    assert len(colours) > 50, "the screenshot is (nearly) blank"


def _system_libraries(bundle: Bundle) -> set[Path]:
    """Libraries outside the bundle that the executable and the bundled ELF files need.

    The executable (PyInstaller's bootloader) is resolved as the loader does; the bundled
    libraries with ``_internal`` first on the path, as the bootloader arranges.
    """
    internal = bundle.folder / "_internal"
    elves = [bundle.exe]
    for path in internal.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".so" in path.name:
            elves.append(path)
    needed: set[Path] = set()
    for index, elf in enumerate(elves):
        env = {"PATH": "/usr/bin:/bin"}
        if index:
            env["LD_LIBRARY_PATH"] = str(internal)
        result = subprocess.run(
            ["ldd", str(elf)], capture_output=True, text=True, env=env, check=False
        )
        for line in result.stdout.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) > parts.index("=>") + 1:
                target = parts[parts.index("=>") + 1]
                if target.startswith("/") and not target.startswith(str(bundle.folder)):
                    needed.add(Path(target))
            elif parts and parts[0].startswith("/") and "ld-linux" in parts[0]:
                needed.add(Path(parts[0]))
    return needed


def test_no_python_outside_the_bundle_is_linked(bundle: Bundle) -> None:
    assert shutil.which("ldd"), "ldd (libc-bin) is part of every Debian system"
    needed = _system_libraries(bundle)
    assert any(p.name.startswith("libc.so") for p in needed)  # ldd did resolve something
    assert not [p for p in needed if "python" in str(p).lower()]
    assert list((bundle.folder / "_internal").glob("libpython3*.so*"))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chroot") is None, reason="chroot needs root")
def test_runs_in_a_chroot_without_python(
    bundle: Bundle, tmp_path: Path, stop_later: list[subprocess.Popen[str]]
) -> None:
    """A "machine without Python": a root holding the bundle and its system libraries only."""
    root = tmp_path / "root"
    shutil.copytree(bundle.folder, root / "app", symlinks=True, copy_function=os.link)
    for lib in _system_libraries(bundle):
        target = root / lib.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, target)  # follows the symlink: the real library under its name
        target.chmod(0o755)
    # The console's offscreen rendering needs fonts and fontconfig's settings.
    for shared in (Path("/etc/fonts"), Path("/usr/share/fonts")):
        if shared.is_dir():
            shutil.copytree(shared, root / shared.relative_to("/"), symlinks=True)
    (root / "tmp").mkdir()
    pythons = [p for p in root.rglob("*python*") if not p.is_relative_to(root / "app")]
    assert pythons == []
    chroot = shutil.which("chroot")
    assert chroot is not None
    env = {"PATH": "/nonexistent", "HOME": "/tmp", "LANG": "C.UTF-8"}

    port = free_port()
    cmd = [chroot, str(root), "/app/bandsync-desktop", "--headless", "--host", "127.0.0.1"]
    _serve_check_and_stop([*cmd, "--port", str(port)], env, port, stop_later)

    result = subprocess.run(
        [
            chroot,
            str(root),
            "/app/bandsync-desktop",
            "--screenshot",
            "/tmp/console.png",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        env={**env, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(root / "tmp" / "console.png"))
    assert not image.isNull() and image.width() >= 800
