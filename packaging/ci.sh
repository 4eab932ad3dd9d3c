#!/usr/bin/env bash
# CI packaging steps: validate the Linux desktop files, build the one-folder bundle with
# PyInstaller, and run it: `fleetview --version`, the offscreen self-check (main window on an
# empty store) and `fleetview doctor` on a scope it cannot reach. Any failure exits non-zero.
# Run from anywhere inside the repo, in the project's virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIST=${DIST:-$ROOT/dist}
WORK=${WORK:-$ROOT/build/pyinstaller}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'packaging/ci.sh: FAIL: %s\n' "$*" >&2; exit 1; }

step "tools"
python -c "import PyInstaller" 2>/dev/null || python -m pip install --quiet "pyinstaller>=6.10"
python -m PyInstaller --version
if ! command -v desktop-file-validate >/dev/null || ! command -v appstreamcli >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq desktop-file-utils appstream >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 \
                 && apt-get install -y -qq desktop-file-utils appstream >/dev/null 2>&1; } \
            || echo "warning: could not install desktop-file-utils/appstream"
    fi
fi

step "desktop files"
APP_ID=$(python -c "from fleetview import resources; print(resources.APP_ID)")
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "packaging/linux/$APP_ID.desktop" || fail "desktop-file-validate"
    echo "desktop-file-validate: ok"
else
    echo "skipped: desktop-file-validate not available"
fi
if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net "packaging/linux/$APP_ID.metainfo.xml" || fail "appstreamcli validate"
else
    echo "skipped: appstreamcli not available"
fi

step "policies are current"
python -m fleetview.permissions "$SCRATCH/permissions" >/dev/null
diff -r "$SCRATCH/permissions" packaging/permissions \
    || fail "packaging/permissions is stale: run python -m fleetview.permissions packaging/permissions"
echo "packaging/permissions: current"

step "build the bundle"
start=$(date +%s)
DIST="$DIST" WORK="$WORK" packaging/pyinstaller/build.sh
echo "built in $(( $(date +%s) - start )) s, $(du -sh "$DIST/fleetview" | cut -f1)"
BIN="$DIST/fleetview/fleetview"
[ -x "$BIN" ] || BIN="$DIST/fleetview/fleetview.exe"
[ -x "$BIN" ] || fail "no executable in $DIST/fleetview"

# The bundle runs with a throw-away home, so it can touch no real config, store or credentials.
export HOME="$SCRATCH/home" XDG_CONFIG_HOME="$SCRATCH/home/.config" XDG_DATA_HOME="$SCRATCH/home/.local/share"
mkdir -p "$HOME"

step "fleetview --version"
want="fleetview $(python -c 'import fleetview; print(fleetview.__version__)')"
got=$("$BIN" --version) || fail "fleetview --version exited $?"
[ "$got" = "$want" ] || fail "fleetview --version said '$got', expected '$want'"
got=$("$BIN" -m fleetview --version) || fail "the '-m fleetview' form (the GUI's collector command) failed"
[ "$got" = "$want" ] || fail "'fleetview -m fleetview --version' said '$got'"
echo "$got"

step "offscreen self-check"
QT_QPA_PLATFORM=offscreen FLEETVIEW_SELFCHECK=1 timeout 180 "$BIN" || fail "self-check (see above)"

step "fleetview doctor (bundled SDKs, an unreachable scope)"
cat > "$SCRATCH/config.toml" <<'TOML'
[[aws]]
name = "ci-unreachable"
regions = ["us-east-1"]
endpoint_url = "http://127.0.0.1:9"
TOML
set +e
out=$(AWS_ACCESS_KEY_ID=ci AWS_SECRET_ACCESS_KEY=ci AWS_MAX_ATTEMPTS=1 AWS_CONFIG_FILE=/dev/null \
      AWS_SHARED_CREDENTIALS_FILE=/dev/null timeout 120 "$BIN" doctor --config "$SCRATCH/config.toml" 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 1 ] || fail "doctor exited $rc, expected 1 for an unreachable scope"
grep -q "ci-unreachable (aws" <<<"$out" || fail "doctor did not report the scope"

step "packaging ok"
