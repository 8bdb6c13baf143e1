#!/usr/bin/env bash
# Install the interop test peers (see interop/README.md). Idempotent: each half is skipped
# when a stamp keyed by its manifest's hash (and the runtime's version) says it is current.
#
#   js: `npm install` of interop/js/package.json into interop/js/node_modules (no lock file).
#   py: a separate venv at $REPO/.interop/pylibp2p-venv with interop/py/requirements.txt.
#
# py-libp2p pulls in fastecdsa, which is built from source and needs gcc, the Python headers
# and libgmp-dev. When one is missing and we run as root with apt-get, they are installed
# (after one `apt-get update`); otherwise we say what is missing and let pip try.
#
# Environment: INTEROP_PYTHON (default python3), INTEROP_FORCE=1 to ignore the stamps.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$REPO/interop"
STATE="$REPO/.interop"
VENV="$STATE/pylibp2p-venv"
PYTHON="${INTEROP_PYTHON:-python3}"
FORCE="${INTEROP_FORCE:-0}"

say() { echo "[interop/setup] $*"; }
die() { echo "[interop/setup] ERROR: $*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

mkdir -p "$STATE"
# Two test runs starting at once must not install into the same place concurrently.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$STATE/setup.lock"
  flock -w 900 9 || die "timed out waiting for another setup.sh to finish"
fi

START=$(date +%s)

# ---------------------------------------------------------------- prerequisites
command -v node >/dev/null || die "node not found (need Node.js >= 20)"
command -v npm >/dev/null || die "npm not found"
NODE_VERSION="$(node --version)"
NODE_MAJOR="${NODE_VERSION#v}"; NODE_MAJOR="${NODE_MAJOR%%.*}"
[ "$NODE_MAJOR" -ge 20 ] || die "need Node.js >= 20, found $NODE_VERSION"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (need Python >= 3.11)"
PY_VERSION="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "need Python >= 3.11, found $PY_VERSION"
say "node $NODE_VERSION, npm $(npm --version 2>/dev/null), $PYTHON $PY_VERSION"

APT_UPDATED=0
apt_install() {
  # apt_install PKG... : install Debian packages if we are root and have apt-get.
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "WARNING: missing system packages: $* (not root or no apt-get; install them yourself)"
    return 0
  fi
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  say "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# ---------------------------------------------------------------- js peer
JS_DIR="$INTEROP/js"
JS_STAMP="$JS_DIR/node_modules/.peerwire-interop-stamp"
JS_KEY="$(hash_of "$JS_DIR/package.json") node-$NODE_MAJOR"
if [ "$FORCE" != "1" ] && [ -f "$JS_STAMP" ] && [ "$(cat "$JS_STAMP")" = "$JS_KEY" ]; then
  say "js: node_modules up to date (stamp matches package.json), skipping npm install"
else
  say "js: npm install --no-package-lock in $JS_DIR"
  (cd "$JS_DIR" && npm install --no-package-lock --no-audit --no-fund --loglevel=error) \
    || die "npm install failed"
  rm -f "$JS_DIR/package-lock.json"
  say "js: checking that the peer's modules load"
  (cd "$JS_DIR" && node --import ./polyfill.mjs --input-type=module -e "
    for (const m of ['libp2p', '@libp2p/tcp', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux',
                     '@libp2p/mplex', '@libp2p/identify', '@libp2p/ping', '@libp2p/crypto/keys',
                     '@libp2p/peer-id', '@multiformats/multiaddr', '@libp2p/kad-dht']) await import(m)
  ") || die "js-libp2p modules failed to load"
  echo "$JS_KEY" > "$JS_STAMP"
fi
say "js: libp2p $(cd "$JS_DIR" && node -p "require('./node_modules/libp2p/package.json').version")"

# ---------------------------------------------------------------- py peer
REQ="$INTEROP/py/requirements.txt"
PY_STAMP="$VENV/.peerwire-interop-stamp"
PY_KEY="$(hash_of "$REQ") python-$PY_VERSION"
if [ "$FORCE" != "1" ] && [ -f "$PY_STAMP" ] && [ "$(cat "$PY_STAMP")" = "$PY_KEY" ]; then
  say "py: venv up to date (stamp matches requirements.txt), skipping pip install"
else
  # Build prerequisites for fastecdsa (C extension linked against GMP).
  missing=()
  command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  if command -v dpkg-query >/dev/null 2>&1; then
    dpkg-query -W -f='${Status}' libgmp-dev 2>/dev/null | grep -q "ok installed" || missing+=(libgmp-dev)
  fi
  if ! "$PYTHON" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    missing+=(python3-dev)
  fi
  "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  else
    say "py: build prerequisites present (gcc, Python.h, libgmp-dev, venv)"
  fi

  if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" = "$PY_VERSION" ]; then
    say "py: reusing venv $VENV"
  else
    say "py: creating venv $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "python -m venv failed"
  fi
  rm -f "$PY_STAMP"
  say "py: pip install -r $REQ"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ" \
    || die "pip install failed"
  say "py: checking that py-libp2p imports"
  "$VENV/bin/python" -c 'import libp2p, trio, multiaddr' || die "py-libp2p failed to import"
  echo "$PY_KEY" > "$PY_STAMP"
fi
say "py: libp2p $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("libp2p"))')"

say "done in $(( $(date +%s) - START ))s"
