"""An echo server that registers itself in Roster, heartbeats, and cancels on SIGTERM.

    python3 echo_server.py --roster 127.0.0.1:8761 --name e1 [--zone z1]

It answers echo.v1.EchoService/Who with its name and prints "serving NAME PORT" once
registered. The Roster calls use stubs generated from the repository's proto/ (see ci.sh).
"""

import argparse
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "gen"))

import grpc  # noqa: E402
from echo.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402
from roster.v1 import instance_pb2, registry_service_pb2, registry_service_pb2_grpc  # noqa: E402

HEARTBEAT_SECS = 5


class Echo(echo_pb2_grpc.EchoServiceServicer):
    def __init__(self, name):
        self.name = name

    def Who(self, request, context):
        return echo_pb2.WhoResponse(server=self.name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--roster", required=True, help="Roster gRPC address, HOST:PORT")
    parser.add_argument("--name", required=True, help="server name and Roster instance id")
    parser.add_argument("--app", default="echo")
    parser.add_argument("--zone", default="z1")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo_pb2_grpc.add_EchoServiceServicer_to_server(Echo(args.name), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    channel = grpc.insecure_channel(args.roster)
    roster = registry_service_pb2_grpc.RegistryServiceStub(channel)
    instance = instance_pb2.Instance(
        app=args.app,
        instance_id=args.name,
        host_name="localhost",
        ip_addr="127.0.0.1",  # xDS clients need an IP literal
        port=instance_pb2.Port(number=port, enabled=True),
        status=instance_pb2.INSTANCE_STATUS_UP,
        zone=args.zone,
    )
    roster.Register(registry_service_pb2.RegisterRequest(instance=instance), timeout=10)
    print(f"serving {args.name} {port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(HEARTBEAT_SECS):
        try:
            roster.Heartbeat(registry_service_pb2.HeartbeatRequest(app=args.app, instance_id=args.name), timeout=5)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:  # the node forgot us: register again
                roster.Register(registry_service_pb2.RegisterRequest(instance=instance), timeout=10)
            else:
                print(f"heartbeat failed: {err.code().name}", file=sys.stderr, flush=True)

    roster.Cancel(registry_service_pb2.CancelRequest(app=args.app, instance_id=args.name), timeout=5)
    server.stop(grace=1).wait()
    print(f"cancelled {args.name}", flush=True)


if __name__ == "__main__":
    main()
