#!/usr/bin/env bash
# Makes a compressed, read-only dmg holding BandSync.app and a link to /Applications.
# NOT RUN HERE (no macOS machine): CI's macos job runs it through packaging/build.py.
# Usage: packaging/macos/make_dmg.sh dist/BandSync.app dist/BandSync-<version>-macos-<arch>.dmg
set -euo pipefail
app="$1"
out="$2"
volname="BandSync"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
# PyInstaller signs the bundle ad hoc on Apple silicon; re-sign the whole .app ad hoc so the
# signature covers everything after BUNDLE (a Developer ID identity would replace "-").
codesign --force --deep --sign - "$app"
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
rm -f "$out"
hdiutil create -volname "$volname" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$out"
hdiutil verify "$out"
