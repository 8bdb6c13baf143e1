#!/usr/bin/env bash
# Regenerate src/peerwire/_proto/*_pb2.py and *_pb2.pyi from the .proto sources.
#
# protoc comes from the PyPI package grpcio-tools, installed into a scratch venv
# (never the project venv, so the project does not depend on grpcio). The protos
# are compiled with src/ as the include root, so each file is registered as
# "peerwire/_proto/<name>.proto" and cross-file imports come out as
# "from peerwire._proto import keys_pb2" with no rewriting needed.
#
# The generated code checks at import time that the protobuf runtime is at least
# the version of protoc that produced it (and of the same major version): keep the
# "protobuf>=" floor in pyproject.toml in step with the version printed below.
#
# Usage: scripts/gen_protos.sh            (uses/creates $PROTOC_VENV, default /tmp/protoc-venv)
#        GRPCIO_TOOLS_VERSION=1.85.1 scripts/gen_protos.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PROTOC_VENV:-/tmp/protoc-venv}"
tools_spec="grpcio-tools${GRPCIO_TOOLS_VERSION:+==${GRPCIO_TOOLS_VERSION}}"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import grpc_tools.protoc" 2>/dev/null; then
    "$venv/bin/pip" install --quiet "$tools_spec"
fi

echo "protoc: $("$venv/bin/python" -m grpc_tools.protoc --version)"

cd "$repo_root/src"
rm -f peerwire/_proto/*_pb2.py peerwire/_proto/*_pb2.pyi
"$venv/bin/python" -m grpc_tools.protoc \
    --proto_path=. \
    --python_out=. \
    --pyi_out=. \
    peerwire/_proto/keys.proto \
    peerwire/_proto/noise.proto \
    peerwire/_proto/identify.proto \
    peerwire/_proto/plaintext.proto

grep -h "ValidateProtobufRuntimeVersion" -A 7 peerwire/_proto/keys_pb2.py | head -n 8 || true
ls -1 peerwire/_proto/*_pb2.py peerwire/_proto/*_pb2.pyi
