#!/bin/sh
# Installs this unpacked BandSync bundle for the current user: a menu entry, the icon and a
# `bandsync-desktop` command in ~/.local/bin. Nothing is copied: the bundle stays where it
# was unpacked, so keep the folder (or move it first, then run this again).
# Usage: ./install.sh            install
#        ./install.sh --remove   remove the menu entry, icon and command
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
bin="$HOME/.local/bin"
desktop="$data/applications/bandsync-desktop.desktop"
icon_png="$data/icons/hicolor/256x256/apps/bandsync-desktop.png"
icon_svg="$data/icons/hicolor/scalable/apps/bandsync-desktop.svg"

if [ "${1:-}" = "--remove" ]; then
  rm -f "$desktop" "$icon_png" "$icon_svg" "$bin/bandsync-desktop"
  echo "removed the menu entry, icon and $bin/bandsync-desktop"
  exit 0
fi

mkdir -p "$data/applications" "$(dirname "$icon_png")" "$(dirname "$icon_svg")" "$bin"
cp "$here/bandsync-desktop.png" "$icon_png"
cp "$here/bandsync-desktop.svg" "$icon_svg"
sed "s|^Exec=.*|Exec=\"$here/bandsync-desktop\"|" "$here/bandsync-desktop.desktop" > "$desktop"
ln -sf "$here/bandsync-desktop" "$bin/bandsync-desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "installed: menu entry BandSync, command $bin/bandsync-desktop"
