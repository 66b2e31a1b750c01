"""A proxyless xDS client: grpcio resolves xds:///echo through Roster, with no Roster library.

    GRPC_XDS_BOOTSTRAP=bootstrap.json python3 client.py --expect e1,e2,e3 [--calls 60]

Exits 0 when the calls reached exactly the expected servers, each with a fair part of them
(round robin), and 1 otherwise. `roster xds bootstrap` prints the bootstrap file.
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "gen"))

import grpc  # noqa: E402
from echo.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="xds:///echo")
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--expect", required=True, help="comma-separated server names")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call (the first waits for xDS)")
    args = parser.parse_args()

    expected = sorted(args.expect.split(","))
    counts = Counter()
    with grpc.insecure_channel(args.target) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        for i in range(args.calls):
            try:
                counts[stub.Who(echo_pb2.WhoRequest(), timeout=args.timeout).server] += 1
            except grpc.RpcError as err:
                print(f"call {i + 1}: {err.code().name} {err.details()}", file=sys.stderr)
                return 1
    report = " ".join(f"{name}={counts[name]}" for name in sorted(counts))
    print(f"calls {report}")
    if sorted(counts) != expected:
        print(f"calls reached {sorted(counts)}, expected {expected}", file=sys.stderr)
        return 1
    if any(counts[name] * len(expected) * 6 < args.calls for name in expected):
        print(f"calls are not spread: {report}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
