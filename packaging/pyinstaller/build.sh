#!/usr/bin/env bash
# Build the one-folder bundle: dist/fleetview/fleetview (needs `pip install pyinstaller`).
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m PyInstaller --noconfirm --log-level "${PYINSTALLER_LOG_LEVEL:-WARN}" \
    --distpath "${DIST:-dist}" --workpath "${WORK:-build/pyinstaller}" \
    packaging/pyinstaller/fleetview.spec
echo "built ${DIST:-dist}/fleetview/fleetview"
