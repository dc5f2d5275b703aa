"""The Linux packaging steps of ``packaging/build.py`` on a small stand-in bundle.

Fast: no freezing here (``test_bundle.py`` freezes the real app). The tarball is unpacked
and its ``install.sh`` run into a temporary home; the ``.deb`` is made by the real
``dpkg-deb`` and read back with it.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from bandsync_desktop.app import DESKTOP_FILE_NAME

from .conftest import load_script

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packaging")


@pytest.fixture
def fake_bundle(tmp_path: Path) -> Path:
    """A one-folder layout like PyInstaller's: the executable and ``_internal/``."""
    bundle = tmp_path / "dist" / "bandsync-desktop"
    (bundle / "_internal" / "bandsync_desktop" / "web").mkdir(parents=True)
    (bundle / "_internal" / "bandsync_desktop" / "web" / "index.html").write_text("<html>")
    exe = bundle / "bandsync-desktop"
    exe.write_text('#!/bin/sh\necho frozen "$@"\n')
    exe.chmod(0o755)
    return bundle


def _desktop_entry(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser["Desktop Entry"]


def test_desktop_file_names_the_app_icon_and_command(build_script: ModuleType) -> None:
    entry = _desktop_entry(build_script.desktop_entry("/opt/x/bandsync-desktop"))
    assert entry["Type"] == "Application"
    assert entry["Name"] == "BandSync"
    assert entry["Exec"] == "/opt/x/bandsync-desktop"
    assert entry["Icon"] == "bandsync-desktop"
    assert entry["Terminal"] == "false"
    assert "Music" in entry["Categories"].split(";")


def test_tarball_unpacks_and_installs_for_the_user(
    build_script: ModuleType, fake_bundle: Path, tmp_path: Path
) -> None:
    dist = fake_bundle.parent
    tarball = build_script.make_tarball(fake_bundle, dist, "1.2.3")
    top = f"bandsync-desktop-1.2.3-linux-{build_script.machine_name()}"
    assert tarball.name == f"{top}.tar.gz"
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members[f"{top}/bandsync-desktop"].mode & 0o111
        assert members[f"{top}/install.sh"].mode & 0o111
        # The console names this file to Qt (Wayland matches its window to it).
        desktop_file = f"{DESKTOP_FILE_NAME}.desktop"
        for name in (desktop_file, "bandsync-desktop.png", "LICENSE"):
            assert f"{top}/{name}" in members
        assert f"{top}/_internal/bandsync_desktop/web/index.html" in members
        tar.extractall(tmp_path / "unpacked", filter="tar")
    assert not list(dist.glob("*.extras")), "the staging folder is left behind"

    unpacked = tmp_path / "unpacked" / top
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    subprocess.run([str(unpacked / "install.sh")], env=env, check=True, capture_output=True)
    desktop = home / ".local/share/applications/bandsync-desktop.desktop"
    entry = _desktop_entry(desktop.read_text())
    assert entry["Exec"] == f'"{unpacked}/bandsync-desktop"'
    assert (home / ".local/share/icons/hicolor/256x256/apps/bandsync-desktop.png").is_file()
    command = home / ".local/bin/bandsync-desktop"
    answer = subprocess.run([str(command), "--hello"], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "frozen --hello"

    subprocess.run(
        [str(unpacked / "install.sh"), "--remove"], env=env, check=True, capture_output=True
    )
    assert not desktop.exists()
    assert not command.exists()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian's dpkg)")
def test_deb_installs_into_opt_with_menu_entry_and_icons(
    build_script: ModuleType, fake_bundle: Path, tmp_path: Path
) -> None:
    deb = build_script.make_deb(fake_bundle, fake_bundle.parent, "1.2.3rc1", tmp_path / "work")
    arch = build_script.deb_architecture()
    assert deb.name == f"bandsync-desktop_1.2.3~rc1_{arch}.deb"

    def field(name: str) -> str:
        result = subprocess.run(
            ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    assert field("Package") == "bandsync-desktop"
    assert field("Version") == "1.2.3~rc1"
    assert field("Architecture") == arch
    assert "libxcb-cursor0" in field("Depends")
    assert int(field("Installed-Size")) > 0
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./opt/bandsync-desktop/bandsync-desktop" in listing
    assert "./usr/bin/bandsync-desktop -> /opt/bandsync-desktop/bandsync-desktop" in listing
    assert "./usr/share/applications/bandsync-desktop.desktop" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/bandsync-desktop.svg" in listing
    assert "./usr/share/icons/hicolor/48x48/apps/bandsync-desktop.png" in listing
    assert "root/root" in listing.splitlines()[0]
    unpacked = tmp_path / "deb"
    subprocess.run(["dpkg-deb", "--extract", str(deb), str(unpacked)], check=True)
    exe = unpacked / "opt/bandsync-desktop/bandsync-desktop"
    assert os.access(exe, os.X_OK)


def test_debian_versions_sort_prereleases_first(build_script: ModuleType) -> None:
    assert build_script.deb_version("0.1.0") == "0.1.0"
    assert build_script.deb_version("1.2.0rc1") == "1.2.0~rc1"
    assert build_script.deb_version("1.2.0b2") == "1.2.0~b2"
    assert build_script.deb_version("1.2.0.dev3") == "1.2.0~dev3"


def test_freeze_refuses_without_icons(
    build_script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_script, "ICONS", tmp_path / "no-icons")
    with pytest.raises(build_script.BuildError, match=r"packaging/icons\.py"):
        build_script.freeze(tmp_path / "dist", tmp_path / "work")


def test_frozen_entry_picks_headless_mode_by_executable_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = load_script("entry")
    monkeypatch.setattr(
        sys, "argv", [r"C:\\Program Files\\BandSync\\bandsync-server.exe", "--port", "1"]
    )
    assert entry._argv() == ["--headless", "--port", "1"]
    monkeypatch.setattr(sys, "argv", ["/opt/bandsync-desktop/bandsync-desktop", "--port", "1"])
    assert entry._argv() == ["--port", "1"]
    monkeypatch.setattr(sys, "argv", ["bandsync-server", "--headless"])
    assert entry._argv() == ["--headless"]
