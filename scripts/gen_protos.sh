#!/usr/bin/env bash
# Regenerate src/peerwire/_proto/*_pb2.py and *_pb2.pyi from the .proto sources.
#
# protoc comes from the PyPI package grpcio-tools, installed into a scratch venv
# (never the project venv: the project does not depend on grpcio). The protos are
# compiled with src/ as the include root, so each file is registered as
# "peerwire/_proto/<name>.proto" and cross-file imports come out as
# "from peerwire._proto import keys_pb2" with no rewriting needed.
#
# Version pin: generated code checks at import time that the protobuf runtime is
# not older than the protoc that made it. grpcio-tools 1.75.1 bundles protoc 31.1,
# i.e. gencode 6.31.1, which loads without error or warning on protobuf 6.31.1 up
# to 7.x. That keeps the "protobuf>=6.31.1" floor in pyproject.toml compatible with
# py-libp2p (interop tests), which requires protobuf<7. A newer grpcio-tools would
# emit 7.x gencode and force protobuf>=7: bump the floor with it if you ever do.
#
# Usage: scripts/gen_protos.sh
#        GRPCIO_TOOLS_VERSION=1.75.1 PROTOC_VENV=/tmp/some-venv scripts/gen_protos.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_version="${GRPCIO_TOOLS_VERSION:-1.75.1}"
venv="${PROTOC_VENV:-/tmp/protoc-venv-${tools_version}}"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null || true)"
if [[ "$installed" != "$tools_version" ]]; then
    "$venv/bin/pip" install --quiet "grpcio-tools==${tools_version}"
fi

echo "protoc: $("$venv/bin/python" -m grpc_tools.protoc --version) (grpcio-tools ${tools_version})"

cd "$repo_root/src"
rm -f peerwire/_proto/*_pb2.py peerwire/_proto/*_pb2.pyi
"$venv/bin/python" -m grpc_tools.protoc \
    --proto_path=. \
    --python_out=. \
    --pyi_out=. \
    peerwire/_proto/keys.proto \
    peerwire/_proto/noise.proto \
    peerwire/_proto/identify.proto \
    peerwire/_proto/plaintext.proto \
    peerwire/_proto/msg.proto \
    peerwire/_proto/dht.proto \
    peerwire/_proto/chord.proto

grep -h "^# Protobuf Python Version" peerwire/_proto/keys_pb2.py
ls -1 peerwire/_proto/*_pb2.py peerwire/_proto/*_pb2.pyi
