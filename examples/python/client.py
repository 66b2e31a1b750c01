"""Keeps one instance registered with a Roster node and prints the changes to its application,
the way a service's own registry client would:

1. ListApplications gives a snapshot (the application's instances in it are printed) and its
   revision;
2. Watch follows the application from that revision, so no change slips in between;
3. Register announces the instance, with last_dirty_timestamp as its version;
4. the Heartbeats stream renews the lease every renewal interval, and registers again when the
   node answers NOT_FOUND (expired, or its status was cleared);
5. on SIGINT or SIGTERM, Cancel removes the instance before the program exits.

Every step prints one line, ``event key=value ...``, on stdout; errors go to stderr and exit 1.
The stubs come from the repository's proto/, generated into gen/ by grpc_tools.protoc (see the
README). Runs on grpcio's asyncio API, so every call is cancelled with its task.
"""

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

import grpc

# The generated modules, imported by load_stubs() from the directory --stubs names.
ipb = rpb = rgrpc = None

# Bounds every unary call, so a node that stops answering fails the program instead of hanging it.
RPC_TIMEOUT_S = 5.0
# google.rpc.Code values carried by HeartbeatResult.code (the same numbers as gRPC's codes).
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def load_stubs(directory):
    """Imports the stubs grpc_tools.protoc (or Debian's protoc) generated into `directory`."""
    global ipb, rpb, rgrpc
    sys.path.insert(0, str(directory))
    from roster.v1 import instance_pb2, registry_service_pb2, registry_service_pb2_grpc
    ipb, rpb, rgrpc = instance_pb2, registry_service_pb2, registry_service_pb2_grpc


def say(event, **fields):
    """Prints one `event key=value ...` line, flushed: the output is read while the program runs."""
    print(event, *(f"{key}={value}" for key, value in fields.items()), flush=True)


def status_name(status):
    return ipb.InstanceStatus.Name(status).removeprefix("INSTANCE_STATUS_")


async def snapshot(stub, app):
    """Reads the whole registry, prints the application's instances in it, and returns its
    revision: the cursor Watch starts from. It asks for a gzip-compressed answer: a request sent
    compressed is answered compressed, about a tenth of the bytes."""
    revision, instances, node = 0, 0, ""
    chunks = stub.ListApplications(rpb.ListApplicationsRequest(), timeout=RPC_TIMEOUT_S, compression=grpc.Compression.Gzip)
    async for chunk in chunks:
        # Every chunk of one snapshot carries the same revision.
        revision, node = chunk.revision, chunk.node_id
        instances += len(chunk.instances)
        for instance in chunk.instances:
            # The node stores application names in lower case.
            if instance.app == app.lower():
                say("listed", instance=f"{instance.app}/{instance.instance_id}", status=status_name(instance.status))
    say("snapshot", revision=revision, instances=instances, node=node)
    return revision


async def register(stub, me, event):
    """Stores the instance with a fresh last_dirty_timestamp (its version: a newer one wins)."""
    me.last_dirty_timestamp = int(time.time() * 1000)
    res = await stub.Register(rpb.RegisterRequest(instance=me), timeout=RPC_TIMEOUT_S)
    say(event, app=res.instance.app, id=res.instance.instance_id, status=status_name(res.instance.status),
        revision=res.revision)


async def watch(stub, app, revision):
    """Prints the application's changes after `revision` until cancelled. On resync_required
    (the cursor fell out of the node's change log) it lists again and watches from there."""
    while True:
        call = stub.Watch(rpb.WatchRequest(since_revision=revision, app=app))
        say("watching", app=app, since=revision)
        resync = False
        # The node never ends a Watch on its own but at shutdown (UNAVAILABLE: an error here).
        async for msg in call:
            for change in msg.changes:
                say("change", revision=change.revision,
                    type=ipb.ChangeType.Name(change.type).removeprefix("CHANGE_TYPE_"),
                    instance=f"{change.instance.app}/{change.instance.instance_id}",
                    status=status_name(change.instance.status))
            revision = msg.revision
            if msg.resync_required:
                resync = True
                break
        if not resync:
            raise RuntimeError("watch: the node ended the stream")
        say("resync")
        revision = await snapshot(stub, app)


async def heartbeat(stub, me, interval_s):
    """Renews the lease on one Heartbeats stream, one batch every interval, and registers
    again when the node answers NOT_FOUND for it."""
    call = stub.Heartbeats()
    batch = 0
    while True:
        await asyncio.sleep(interval_s)
        batch += 1
        await call.write(rpb.HeartbeatsRequest(batch_id=batch, heartbeats=[
            rpb.HeartbeatRequest(app=me.app, instance_id=me.instance_id,
                                 last_dirty_timestamp=me.last_dirty_timestamp),
        ]))
        res = await call.read()
        if res is grpc.aio.EOF:
            raise RuntimeError("heartbeats: the node ended the stream")
        if res.batch_id != batch or len(res.results) != 1:
            raise RuntimeError(f"heartbeats: batch {batch} answered as batch {res.batch_id} "
                               f"with {len(res.results)} results")
        code = CODE_NAMES.get(res.results[0].code, str(res.results[0].code))
        say("heartbeat", batch=batch, code=code)
        if code == "NOT_FOUND":
            await register(stub, me, "re-registered")
        elif code != "OK":
            raise RuntimeError(f"heartbeat: {code}: {res.results[0].message}")


async def run(args):
    """Registers, watches and heartbeats until a signal or a failure, then cancels the instance.
    Returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with grpc.aio.insecure_channel(args.server) as channel:
        stub = rgrpc.RegistryServiceStub(channel)
        revision = await snapshot(stub, args.app)
        me = ipb.Instance(
            app=args.app, instance_id=args.id, host_name="localhost", ip_addr="127.0.0.1",
            port=ipb.Port(number=args.port, enabled=True), vip_address=f"{args.app}.vip",
            metadata={"lang": "python", "grpcio": grpc.__version__},
            lease=ipb.LeaseInfo(renewal_interval_secs=args.renew_secs, duration_secs=3 * args.renew_secs),
        )
        await register(stub, me, "registered")

        # Runs until the signal, or until one loop fails; then the other loops are cancelled.
        loops = [asyncio.create_task(watch(stub, args.app, revision)),
                 asyncio.create_task(heartbeat(stub, me, args.renew_secs))]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *loops], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopped, *loops]:
            task.cancel()
        await asyncio.gather(stopped, *loops, return_exceptions=True)
        failure = next((task.exception() for task in done if task is not stopped), None)
        if failure is not None:
            print(f"client.py: {describe(failure)}", file=sys.stderr)

        res = await stub.Cancel(rpb.CancelRequest(app=me.app, instance_id=me.instance_id), timeout=RPC_TIMEOUT_S)
        say("cancelled", app=me.app, id=me.instance_id, revision=res.revision)
        return 0 if failure is None else 1


def describe(err):
    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:8761", help="Roster node, host:port")
    parser.add_argument("--app", default="billing", help="application to register and watch")
    parser.add_argument("--id", default="py-1", help="this instance's id")
    parser.add_argument("--port", type=int, default=8080, choices=range(0, 65536), metavar="0..65535",
                        help="the port the instance serves on")
    parser.add_argument("--renew-secs", type=int, default=10, choices=range(1, 301), metavar="1..300",
                        help="heartbeat interval; the lease lasts three intervals")
    parser.add_argument("--stubs", type=Path, default=Path(__file__).resolve().parent / "gen",
                        help="where the generated stubs are (default: gen/ beside this file)")
    args = parser.parse_args()
    load_stubs(args.stubs)
    try:
        sys.exit(asyncio.run(run(args)))
    except (grpc.aio.AioRpcError, RuntimeError) as err:
        print(f"client.py: {describe(err)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
