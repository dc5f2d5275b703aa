"""Build BandSync Desktop for the OS this runs on: freeze, smoke-test, make the installer.

One command from a clean clone (after ``scripts/bootstrap``)::

    .venv/bin/python packaging/build.py

Steps:

1. Freeze with PyInstaller (``packaging/bandsync.spec``, one-folder build) into
   ``dist/bandsync-desktop/`` (``dist/BandSync.app`` too on macOS).
2. Smoke-test the frozen program: start it headless on a free loopback port, check
   ``/health`` and the follower page ``/``, stop it (SIGTERM; on Windows the process is
   terminated) and check it exited.
3. Make what users install: on Linux a tarball (with a ``.desktop`` file, icons and
   ``install.sh``) and a ``.deb`` (when ``dpkg-deb`` is there); on Windows an Inno Setup
   installer (when ``iscc`` is there) and a zip; on macOS a dmg of ``BandSync.app``.

The sizes and times are printed and written to ``<dist>/build-report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bandsync_desktop.server.net import free_port, wait_for_health

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "bandsync.spec"
ICONS = ROOT / "resources" / "icons"
NAME = "bandsync-desktop"
APP_ID = "bandsync-desktop"  # .desktop file and icon name
DEB_DEPENDS = (
    # What the bundled Qt (xcb platform, offscreen, fonts) loads from the system.
    "libc6 (>= 2.34), libgl1, libegl1, libfontconfig1, libfreetype6, libglib2.0-0, "
    "libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, "
    "libxcb-keysyms1, libxcb-shape0, libxcb-xinerama0, libxcb-randr0, libxcb-render-util0, "
    "libx11-xcb1, libwayland-client0, libwayland-cursor0, libwayland-egl1"
)


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass
class Report:
    """What a build made and how long each step took (seconds, bytes)."""

    version: str
    platform: str
    bundle: str = ""
    bundle_bytes: int = 0
    freeze_s: float = 0.0
    smoke_s: float = 0.0
    startup_s: float = 0.0
    artifacts: dict[str, int] = field(default_factory=dict)
    steps_s: dict[str, float] = field(default_factory=dict)


def app_version() -> str:
    """The version, from the installed package's metadata (the one place it is kept)."""
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError as exc:
        raise BuildError(
            "bandsync-desktop is not installed in this Python; run scripts/bootstrap "
            "(or pip install -e '.[dev]') first"
        ) from exc


def folder_size(path: Path) -> int:
    """Bytes of every regular file under ``path`` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def machine_name() -> str:
    """``x86_64``/``arm64``-style architecture for artifact names."""
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)


# --------------------------------------------------------------------------- freeze


def freeze(dist: Path, work: Path) -> Path:
    """Run PyInstaller on the spec; returns the one-folder bundle."""
    for icon in ("bandsync.ico", "bandsync.icns", "bandsync-256.png"):
        if not (ICONS / icon).is_file():
            raise BuildError(f"{ICONS / icon} is missing: run python packaging/icons.py")
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    result = subprocess.run(cmd, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise BuildError(f"PyInstaller failed with exit code {result.returncode}")
    bundle = dist / NAME
    if not (bundle / executable_name(NAME)).is_file():
        raise BuildError(f"PyInstaller finished but {bundle} has no {executable_name(NAME)}")
    return bundle


def executable_name(stem: str) -> str:
    return f"{stem}.exe" if sys.platform == "win32" else stem


# --------------------------------------------------------------------------- smoke test


def headless_command(bundle: Path, port: int) -> list[str]:
    """The frozen server on loopback: ``bandsync-server.exe`` on Windows, else ``--headless``."""
    if sys.platform == "win32":
        return [str(bundle / "bandsync-server.exe"), "--host", "127.0.0.1", "--port", str(port)]
    exe = bundle / NAME
    return [str(exe), "--headless", "--host", "127.0.0.1", "--port", str(port)]


def smoke_test(bundle: Path, version: str, report: Report) -> None:
    """Start the frozen server headless, check /health and /, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    proc = subprocess.Popen(
        headless_command(bundle, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        try:
            health = wait_for_health(url, timeout=30, process=proc)
        except RuntimeError as exc:
            raise BuildError(f"the frozen server: {exc}") from exc
        report.startup_s = round(time.monotonic() - started, 2)
        if health.get("status") != "ok" or health.get("version") != version:
            raise BuildError(f"/health answered {health}")
        with urllib.request.urlopen(f"{url}/", timeout=5) as answer:
            page = answer.read().decode("utf-8", "replace")
        if "<html" not in page.lower():
            raise BuildError(f"/ did not answer the follower page: {page[:200]!r}")
    finally:
        if proc.poll() is None:
            if sys.platform == "win32":
                proc.terminate()
            else:
                proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise BuildError("the frozen server did not stop within 15 s") from None
    if sys.platform != "win32" and proc.returncode != 0:
        text = output.decode("utf-8", "replace")
        raise BuildError(f"the frozen server exited with {proc.returncode}:\n{text}")
    report.smoke_s = round(time.monotonic() - started, 2)
    print(f"smoke test: /health and / answered, started in {report.startup_s} s, stopped cleanly")


# --------------------------------------------------------------------------- Linux


def desktop_entry(exec_path: str) -> str:
    """The ``.desktop`` file, with ``Exec`` pointing at ``exec_path``."""
    template = (PACKAGING / "linux" / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    lines = [
        f"Exec={exec_path}" if line.startswith("Exec=") else line for line in template.splitlines()
    ]
    return "\n".join(lines) + "\n"


def make_tarball(bundle: Path, dist: Path, version: str) -> Path:
    """``bandsync-desktop-<version>-linux-<arch>.tar.gz``: the bundle, desktop file, icons."""
    top = f"{NAME}-{version}-linux-{machine_name()}"
    out = dist / f"{top}.tar.gz"
    extras = dist / f"{top}.extras"
    if extras.exists():
        shutil.rmtree(extras)
    extras.mkdir(parents=True)
    try:
        (extras / f"{APP_ID}.desktop").write_text(desktop_entry(NAME), encoding="utf-8")
        shutil.copyfile(ICONS / "bandsync-256.png", extras / f"{APP_ID}.png")
        shutil.copyfile(ROOT / "resources" / "bandsync.svg", extras / f"{APP_ID}.svg")
        shutil.copyfile(PACKAGING / "linux" / "install.sh", extras / "install.sh")
        (extras / "install.sh").chmod(0o755)
        shutil.copyfile(ROOT / "LICENSE", extras / "LICENSE")
        with tarfile.open(out, "w:gz", compresslevel=6) as tar:
            tar.add(bundle, arcname=top)
            for item in sorted(extras.iterdir()):
                tar.add(item, arcname=f"{top}/{item.name}")
    finally:
        shutil.rmtree(extras, ignore_errors=True)
    return out


def deb_architecture() -> str:
    result = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or {"x86_64": "amd64"}.get(machine_name(), machine_name())


def deb_version(version: str) -> str:
    """A Debian version from a Python one: pre-releases sort first (``1.2rc1`` -> ``1.2~rc1``)."""
    return re.sub(r"(\d)\.?(a|b|rc|dev)(\d+)", r"\1~\2\3", version)


def make_deb(bundle: Path, dist: Path, version: str, work: Path) -> Path:
    """A ``.deb`` installing to ``/opt/bandsync-desktop`` with a menu entry and icons."""
    arch = deb_architecture()
    root = work / "deb-root"
    if root.exists():
        shutil.rmtree(root)
    opt = root / "opt" / NAME
    shutil.copytree(bundle, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / NAME).symlink_to(f"/opt/{NAME}/{NAME}")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / f"{APP_ID}.desktop").write_text(desktop_entry(NAME), encoding="utf-8")
    hicolor = root / "usr" / "share" / "icons" / "hicolor"
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copyfile(ICONS / f"bandsync-{size}.png", target / f"{APP_ID}.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copyfile(
        ROOT / "resources" / "bandsync.svg", hicolor / "scalable" / "apps" / f"{APP_ID}.svg"
    )
    doc = root / "usr" / "share" / "doc" / NAME
    doc.mkdir(parents=True)
    shutil.copyfile(ROOT / "LICENSE", doc / "copyright")
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    installed_kib = (folder_size(root) + 1023) // 1024
    control = (PACKAGING / "linux" / "control").read_text(encoding="utf-8")
    control = (
        control.replace("@VERSION@", deb_version(version))
        .replace("@ARCH@", arch)
        .replace("@INSTALLED_SIZE@", str(installed_kib))
        .replace("@DEPENDS@", DEB_DEPENDS)
    )
    (control_dir / "control").write_text(control, encoding="utf-8")
    out = dist / f"{NAME}_{deb_version(version)}_{arch}.deb"
    cmd = ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    shutil.rmtree(root, ignore_errors=True)
    if result.returncode != 0:
        raise BuildError(f"dpkg-deb failed: {result.stderr.strip()}")
    return out


# --------------------------------------------------------------------------- Windows, macOS


def make_zip(bundle: Path, dist: Path, version: str) -> Path:
    """A portable zip of the bundle (Windows)."""
    top = f"{NAME}-{version}-windows-{machine_name()}"
    out = dist / f"{top}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(bundle.rglob("*")):
            archive.write(path, f"{top}/{path.relative_to(bundle).as_posix()}")
    return out


def make_inno_installer(bundle: Path, dist: Path, version: str) -> Path | None:
    """``BandSync-Setup-<version>.exe`` with Inno Setup's ``iscc``, if it is installed."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe")
    if iscc is None and default.is_file():
        iscc = str(default)
    if iscc is None:
        print("iscc (Inno Setup 6) not found: no Windows installer made", file=sys.stderr)
        return None
    cmd = [
        iscc,
        f"/DAppVersion={version}",
        f"/DSourceDir={bundle}",
        f"/DOutputDir={dist}",
        f"/DIconFile={ICONS / 'bandsync.ico'}",
        f"/DLicenseFile={ROOT / 'LICENSE'}",
        str(PACKAGING / "windows" / "bandsync.iss"),
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        raise BuildError("Inno Setup failed")
    return dist / f"BandSync-Setup-{version}.exe"


def make_dmg(dist: Path, version: str) -> Path:
    """``BandSync-<version>-macos-<arch>.dmg`` holding ``BandSync.app`` (hdiutil)."""
    app = dist / "BandSync.app"
    if not app.is_dir():
        raise BuildError(f"{app} was not built")
    out = dist / f"BandSync-{version}-macos-{machine_name()}.dmg"
    script = PACKAGING / "macos" / "make_dmg.sh"
    if subprocess.run(["bash", str(script), str(app), str(out)], check=False).returncode != 0:
        raise BuildError("make_dmg.sh failed")
    return out


# --------------------------------------------------------------------------- main


def build(dist: Path, work: Path, *, smoke: bool = True, installers: bool = True) -> Report:
    """Freeze, smoke-test and package; returns the report (also written as JSON)."""
    version = app_version()
    report = Report(version=version, platform=f"{sys.platform}-{machine_name()}")
    dist.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    bundle = freeze(dist, work)
    report.freeze_s = round(time.monotonic() - started, 1)
    report.bundle = str(bundle)
    report.bundle_bytes = folder_size(bundle)
    print(f"froze {bundle} in {report.freeze_s} s: {report.bundle_bytes / 1e6:.0f} MB")
    if smoke:
        smoke_test(bundle, version, report)
    if installers:
        made: list[Path | None] = []
        step_started = time.monotonic()
        if sys.platform.startswith("linux"):
            made.append(make_tarball(bundle, dist, version))
            report.steps_s["tarball"] = round(time.monotonic() - step_started, 1)
            if shutil.which("dpkg-deb"):
                step_started = time.monotonic()
                made.append(make_deb(bundle, dist, version, work))
                report.steps_s["deb"] = round(time.monotonic() - step_started, 1)
            else:
                print("dpkg-deb not found: no .deb made", file=sys.stderr)
        elif sys.platform == "win32":
            made.append(make_zip(bundle, dist, version))
            made.append(make_inno_installer(bundle, dist, version))
        elif sys.platform == "darwin":
            made.append(make_dmg(dist, version))
        for path in made:
            if path is not None:
                report.artifacts[path.name] = path.stat().st_size
                print(f"made {path} ({path.stat().st_size / 1e6:.0f} MB)")
    (dist / "build-report.json").write_text(
        json.dumps(report.__dict__, indent=2) + "\n", encoding="utf-8"
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "pyinstaller",
        help="PyInstaller's work folder",
    )
    parser.add_argument("--no-smoke", action="store_true", help="skip the headless smoke test")
    parser.add_argument("--freeze-only", action="store_true", help="no tarball/.deb/installer/dmg")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # PyInstaller's Qt hooks probe Qt
    try:
        build(
            args.dist.resolve(),
            args.work.resolve(),
            smoke=not args.no_smoke,
            installers=not args.freeze_only,
        )
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
