#!/usr/bin/env bash
# One command from a clean clone to the installers of this OS (Linux: tarball + .deb):
# installs what the build needs (scripts/bootstrap's runtime profile plus the build extra),
# then runs packaging/build.py. Extra arguments go to build.py, e.g. --freeze-only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap runtime
if ! .venv/bin/python -c "import PyInstaller" 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[build]" 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
exec .venv/bin/python packaging/build.py "$@"
