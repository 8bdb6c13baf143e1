#!/usr/bin/env bash
# Prove the interop peers work against each other before peerwire is involved:
#   js listens / py dials, and py listens / js dials, each with yamux and with mplex,
#   with a 1 MiB echo; plus contract checks (same --seed => same peer id in both peers,
#   a failed dial reports ok:false and exits 1, --timeout and stdin EOF end a listener).
# Run interop/setup.sh first. Loopback only. Prints "N passed, N failed" last; exit 1 if
# anything failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JS=(node --import "$REPO/interop/js/polyfill.mjs" "$REPO/interop/js/peer.mjs")
PY=("$REPO/.interop/pylibp2p-venv/bin/python" "$REPO/interop/py/peer.py")
ECHO_BYTES="${ECHO_BYTES:-1048576}"
SEED=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
WORK="$(mktemp -d "${TMPDIR:-/tmp}/interop-selfcheck.XXXXXX")"
PASSED=0
FAILED=0
LISTENER_PID=""
LISTENER_FD=""
LISTENER_RC=""

[ -f "$REPO/interop/js/node_modules/libp2p/package.json" ] || { echo "run interop/setup.sh first (js)"; exit 1; }
[ -x "${PY[0]}" ] || { echo "run interop/setup.sh first (py venv)"; exit 1; }

cleanup() {
  if [ -n "$LISTENER_PID" ] && kill -0 "$LISTENER_PID" 2>/dev/null; then kill "$LISTENER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

peer_cmd() { # peer_cmd js|py -> sets CMD array
  if [ "$1" = js ]; then CMD=("${JS[@]}"); else CMD=("${PY[@]}"); fi
}

json_field() { # json_field FILE EVENT FIELD -> prints FIELD of the first EVENT line in FILE
  python3 - "$@" <<'EOF'
import json, sys
path, event, field = sys.argv[1:4]
for line in open(path, encoding="utf-8", errors="replace"):
    try:
        obj = json.loads(line)
    except ValueError:
        continue
    if isinstance(obj, dict) and obj.get("event") == event:
        value = obj.get(field)
        print(json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else value)
        break
EOF
}

pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# start_listener IMPL OUTPREFIX ARGS... : start a listener whose stdin is a FIFO we hold open.
start_listener() {
  local impl="$1" out="$2"; shift 2
  peer_cmd "$impl"
  mkfifo "$out.stdin"
  exec {LISTENER_FD}<>"$out.stdin"
  # The child must not inherit our write end, or it would never see EOF on stdin.
  "${CMD[@]}" --listen /ip4/127.0.0.1/tcp/0 "$@" <"$out.stdin" {LISTENER_FD}>&- >"$out.out" 2>"$out.err" &
  LISTENER_PID=$!
  local i
  for i in $(seq 300); do # up to 30 s for the first line
    grep -q '"listening"' "$out.out" 2>/dev/null && return 0
    kill -0 "$LISTENER_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# stop_listener : close its stdin; it must exit by itself within 10 s. Sets LISTENER_RC to
# its exit code, or "still-running" (then it is killed by PID). Not for use in $(...).
stop_listener() {
  exec {LISTENER_FD}>&-
  local i
  for i in $(seq 100); do
    kill -0 "$LISTENER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$LISTENER_PID" 2>/dev/null; then
    kill "$LISTENER_PID" 2>/dev/null
    wait "$LISTENER_PID" 2>/dev/null
    LISTENER_RC="still-running"
  else
    wait "$LISTENER_PID"
    LISTENER_RC=$?
  fi
  LISTENER_PID=""
}

# interop_case LISTENER DIALER MUXER
interop_case() {
  local l="$1" d="$2" mux="$3" name="$1-listens/$2-dials/$3"
  local out="$WORK/${l}_${d}_${mux}"
  if ! start_listener "$l" "$out.l" --muxer "$mux" --seed "$SEED" --timeout 90; then
    fail "$name: listener did not start"; sed 's/^/    listener stderr: /' "$out.l.err" | tail -20
    stop_listener; return
  fi
  local addr
  addr="$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if "listening" in l][0]["addrs"][0])' "$out.l.out")"
  peer_cmd "$d"
  local t0 t1 rc
  t0=$(date +%s.%N)
  "${CMD[@]}" --dial "$addr" --muxer "$mux" --echo-bytes "$ECHO_BYTES" --timeout 60 </dev/null >"$out.d.out" 2>"$out.d.err"
  rc=$?
  t1=$(date +%s.%N)
  # Give the listener a moment to report the echo it served, then stop it via stdin EOF.
  local i
  for i in $(seq 50); do grep -q '"echo"' "$out.l.out" && break; sleep 0.1; done
  stop_listener
  local lrc="$LISTENER_RC"

  local ok muxer echoed rtt agent protos served lid
  ok="$(json_field "$out.d.out" result ok)"
  muxer="$(json_field "$out.d.out" result muxer)"
  echoed="$(json_field "$out.d.out" result echo_bytes)"
  rtt="$(json_field "$out.d.out" result rtt_ms)"
  agent="$(json_field "$out.d.out" result agent_version)"
  protos="$(json_field "$out.d.out" result protocols)"
  served="$(json_field "$out.l.out" echo bytes)"
  lid="$(json_field "$out.l.out" listening peer_id)"
  echo "$l:$lid" >>"$WORK/seeded_ids"

  local problems=()
  [ "$rc" = 0 ] || problems+=("dialer exit $rc")
  [ "$ok" = true ] || problems+=("result ok=$ok error=$(json_field "$out.d.out" result error)")
  [ "$echoed" = "$ECHO_BYTES" ] || problems+=("echo_bytes=$echoed")
  [ "$muxer" = "/$mux/$( [ "$mux" = yamux ] && echo 1.0.0 || echo 6.7.0)" ] || problems+=("muxer=$muxer")
  [ "$served" = "$ECHO_BYTES" ] || problems+=("listener echo event bytes=$served")
  [ "$lrc" = 0 ] || problems+=("listener exit after stdin EOF: $lrc")
  grep -q '"/echo/1.0.0"' <<<"$protos" || problems+=("identify protocols lack /echo/1.0.0: $protos")
  if [ "${#problems[@]}" -eq 0 ]; then
    pass "$name: rtt_ms=$rtt echo=$echoed muxer=$muxer agent=\"$agent\" time=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"
    echo "    dialer  result: $(grep '"result"' "$out.d.out")"
    echo "    listener events: $(python3 -c 'import json,sys; print(" ".join(json.loads(l)["event"] for l in open(sys.argv[1]) if l.strip()))' "$out.l.out")"
  else
    fail "$name: ${problems[*]}"
    sed 's/^/    dialer stdout: /' "$out.d.out" | tail -5
    sed 's/^/    dialer stderr: /' "$out.d.err" | tail -20
    sed 's/^/    listener stdout: /' "$out.l.out" | tail -10
    sed 's/^/    listener stderr: /' "$out.l.err" | tail -20
  fi
}

# dial_failure_case IMPL : dialing a closed port must give ok:false and exit 1, promptly.
dial_failure_case() {
  local impl="$1" out="$WORK/dialfail_$1"
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
  peer_cmd "$impl"
  "${CMD[@]}" --dial "/ip4/127.0.0.1/tcp/$port/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA" \
    --timeout 20 </dev/null >"$out.out" 2>"$out.err"
  local rc=$? ok
  ok="$(json_field "$out.out" result ok)"
  if [ "$rc" = 1 ] && [ "$ok" = false ]; then
    pass "$impl: dial to closed port -> ok:false exit 1 ($(json_field "$out.out" result error | cut -c1-100))"
  else
    fail "$impl: dial to closed port -> exit $rc ok=$ok"; tail -5 "$out.err"
  fi
}

# timeout_case IMPL : a listener with --timeout 3 and stdin held open exits 0 by itself.
timeout_case() {
  local impl="$1" out="$WORK/timeout_$1" t0 i
  t0=$(date +%s)
  if ! start_listener "$impl" "$out" --timeout 3; then fail "$impl: timeout listener did not start"; stop_listener; return; fi
  for i in $(seq 150); do kill -0 "$LISTENER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$LISTENER_PID" 2>/dev/null; then
    fail "$impl: listener still running 15 s after --timeout 3"; stop_listener; return
  fi
  wait "$LISTENER_PID"; local rc=$?
  LISTENER_PID=""; exec {LISTENER_FD}>&-
  if [ "$rc" = 0 ]; then pass "$impl: --timeout 3 listener exited by itself (rc 0, ~$(( $(date +%s) - t0 ))s)"
  else fail "$impl: --timeout 3 listener exit code $rc"; fi
}

echo "== interop selfcheck: js-libp2p $(node -p "require('$REPO/interop/js/node_modules/libp2p/package.json').version") <-> py-libp2p $("${PY[0]}" -c 'from importlib.metadata import version; print(version("libp2p"))'), echo $ECHO_BYTES bytes"
for mux in yamux mplex; do
  interop_case js py "$mux"
  interop_case py js "$mux"
done

ids="$(cut -d: -f2 "$WORK/seeded_ids" 2>/dev/null | sort -u)"
if [ "$(wc -l <<<"$ids")" = 1 ] && [ -n "$ids" ] && grep -q '^js:' "$WORK/seeded_ids" && grep -q '^py:' "$WORK/seeded_ids"; then
  pass "same --seed gives the same peer id in js and py: $ids"
else
  fail "seeded peer ids differ: $(tr '\n' ' ' <"$WORK/seeded_ids")"
fi
for impl in js py; do dial_failure_case "$impl"; done
for impl in js py; do timeout_case "$impl"; done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
