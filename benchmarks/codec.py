"""Envelope codec cost: peerwire's fixed binary header vs the same fields as protobuf.

    .venv/bin/python benchmarks/codec.py [--payload 1024] [--rounds 5]

Prints encode+decode round trips per second for each, interleaved in rounds
(medians), and their ratio. This decided the /peerwire/msg/1.0.0 wire format.
"""

from __future__ import annotations

import argparse
import statistics
import time

from peerwire._proto import msg_pb2
from peerwire.protocols.messaging import codec


def struct_roundtrip(n: int, payload: bytes) -> float:
    decoder = codec.FrameDecoder(1 << 22)
    proto = b"/bench/1.0.0"
    t0 = time.perf_counter()
    for i in range(n):
        frame = codec.encode(codec.MESSAGE, i, 1_700_000_000_000, proto, payload, max_size=1 << 22)
        (_env,) = decoder.feed(frame)
    return n / (time.perf_counter() - t0)


def protobuf_roundtrip(n: int, payload: bytes) -> float:
    out = msg_pb2.Envelope()
    t0 = time.perf_counter()
    for i in range(n):
        env = msg_pb2.Envelope(kind=msg_pb2.Envelope.MESSAGE, id=i, timestamp_ms=1_700_000_000_000,
                               protocol="/bench/1.0.0", payload=payload)
        body = env.SerializeToString()
        frame = len(body).to_bytes(4, "big") + body
        out.ParseFromString(frame[4:])
        _ = (out.kind, out.id, out.timestamp_ms, out.protocol, out.payload)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payload", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=200_000)
    args = parser.parse_args()
    payload = bytes(args.payload)
    results: dict[str, list[float]] = {"struct header": [], "protobuf": []}
    for _ in range(args.rounds):
        results["struct header"].append(struct_roundtrip(args.n, payload))
        results["protobuf"].append(protobuf_roundtrip(args.n, payload))
    med = {k: statistics.median(v) for k, v in results.items()}
    for name, value in med.items():
        print(f"{name:14s} {value:>12,.0f} encode+decode/s  (payload {args.payload} B)")
    print(f"struct / protobuf = {med['struct header'] / med['protobuf']:.2f}x")


if __name__ == "__main__":
    main()
