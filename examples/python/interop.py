"""Goes through every RegistryService basic against a Roster node, with grpcio and the stubs
that grpc_tools.protoc generated into gen/ (see the README's Python section).

Usage: interop.py [--server HOST:PORT] [--stubs DIR]

Prints one JSON line: {"ok": bool, "checks": {name: bool}, "failures": [str], ...} and exits
0 when every check passed, 1 when one failed, 2 on a usage error. Every RPC has a deadline,
so a hung server fails the check instead of hanging the run. examples/python/ci.sh runs it and
checks that every check it expects ran and passed.
"""

import argparse
import json
import queue
import sys
import threading
import time
from pathlib import Path

RPC_TIMEOUT_S = 5.0
WATCH_TIMEOUT_S = 30.0

parser = argparse.ArgumentParser(description="Checks every RegistryService basic against a Roster node.")
parser.add_argument("--server", default="127.0.0.1:8761", help="Roster node, host:port")
parser.add_argument("--stubs", type=Path, default=Path(__file__).resolve().parent / "gen",
                    help="where the generated stubs are (default: gen/ beside this file)")
ARGS = parser.parse_args()
sys.path.insert(0, str(ARGS.stubs))

import grpc  # noqa: E402
import google.protobuf  # noqa: E402
from roster.v1 import instance_pb2 as ipb  # noqa: E402
from roster.v1 import registry_service_pb2 as rpb  # noqa: E402
from roster.v1 import registry_service_pb2_grpc as rgrpc  # noqa: E402

APP = "Interop-Py"  # mixed case on purpose: the server stores app names in lower case
APP_LOWER = APP.lower()
INSTANCE_ID = "py-1.example:8080"
METADATA = {"lang": "python", "grpcio": grpc.__version__, "empty": ""}

checks = {}
failures = []


def check(name, condition, detail=""):
    """Records one named check; a failed one keeps a message for the summary."""
    checks[name] = bool(condition)
    if not condition:
        failures.append(f"{name}: {detail}")
    return bool(condition)


def rpc_error_code(fn):
    """Runs a unary call and returns (response, None) or (None, grpc.RpcError)."""
    try:
        return fn(), None
    except grpc.RpcError as err:
        return None, err


def full_instance():
    return ipb.Instance(
        app=APP,
        instance_id=INSTANCE_ID,
        host_name="py-1.example",
        ip_addr="10.1.2.3",
        port=ipb.Port(number=8080, enabled=True),
        secure_port=ipb.Port(number=8443, enabled=True),
        status=ipb.INSTANCE_STATUS_UP,
        vip_address="interop-py.vip, shared.vip",
        secure_vip_address="interop-py.secure.vip",
        zone="zone-a",
        region="region-1",
        metadata=METADATA,
        home_page_url="http://py-1.example:8080/",
        status_page_url="http://py-1.example:8080/status",
        health_check_url="http://py-1.example:8080/health",
        lease=ipb.LeaseInfo(renewal_interval_secs=10, duration_secs=30),
        last_dirty_timestamp=int(time.time() * 1000),
    )


class Watcher:
    """Reads a Watch stream on a thread and hands its messages over through a queue."""

    def __init__(self, stub, since_revision):
        self.messages = queue.Queue()
        self.call = stub.Watch(
            rpb.WatchRequest(since_revision=since_revision, app=APP), timeout=WATCH_TIMEOUT_S
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as err:
            self.messages.put(err)

    def changes(self, count, timeout_s):
        """Returns up to `count` changes, waiting at most `timeout_s` in total."""
        deadline = time.monotonic() + timeout_s
        out = []
        while len(out) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            if isinstance(item, grpc.RpcError):
                if item.code() != grpc.StatusCode.CANCELLED:
                    failures.append(f"watch stream failed: {item.code().name} {item.details()}")
                break
            out.extend(item.changes)
        return out

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=RPC_TIMEOUT_S)


def heartbeats_stream(stub, batches):
    """Sends `batches` (lists of HeartbeatRequest) on one Heartbeats stream; returns the answers."""
    requests = [rpb.HeartbeatsRequest(batch_id=i + 1, heartbeats=b) for i, b in enumerate(batches)]
    return list(stub.Heartbeats(iter(requests), timeout=RPC_TIMEOUT_S))


def main():
    with grpc.insecure_channel(ARGS.server) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            failures.append(f"no connection to {ARGS.server} within {RPC_TIMEOUT_S} s")
            return
        stub = rgrpc.RegistryServiceStub(channel)

        # A snapshot's revision is the cursor a watcher starts from: no change can slip between.
        chunks = list(stub.ListApplications(rpb.ListApplicationsRequest(), timeout=RPC_TIMEOUT_S))
        check("list_applications", len(chunks) >= 1, f"{len(chunks)} chunks")
        start_revision = chunks[0].revision if chunks else 0
        watcher = Watcher(stub, start_revision)

        sent = full_instance()
        reg = stub.Register(rpb.RegisterRequest(instance=sent), timeout=RPC_TIMEOUT_S)
        got = reg.instance
        check("register_app_lowercased", got.app == APP_LOWER, got.app)
        check("register_metadata", dict(got.metadata) == METADATA, dict(got.metadata))
        check(
            "register_fields",
            got.instance_id == INSTANCE_ID
            and got.host_name == sent.host_name
            and got.ip_addr == sent.ip_addr
            and got.port == sent.port
            and got.secure_port == sent.secure_port
            and got.status == ipb.INSTANCE_STATUS_UP
            and got.vip_address == sent.vip_address
            and got.secure_vip_address == sent.secure_vip_address
            and got.zone == sent.zone
            and got.region == sent.region
            and got.home_page_url == sent.home_page_url
            and got.status_page_url == sent.status_page_url
            and got.health_check_url == sent.health_check_url
            and got.last_dirty_timestamp == sent.last_dirty_timestamp,
            str(got),
        )
        check(
            "register_lease",
            got.lease.renewal_interval_secs == 10
            and got.lease.duration_secs == 30
            and got.lease.registration_timestamp > 0
            and got.lease.last_renewal_timestamp > 0,
            str(got.lease),
        )
        check("register_revision", reg.revision > start_revision, f"{reg.revision} <= {start_revision}")

        fetched = stub.GetInstance(
            rpb.GetInstanceRequest(app=APP, instance_id=INSTANCE_ID), timeout=RPC_TIMEOUT_S
        ).instance
        check("get_instance_roundtrip", fetched.metadata == got.metadata and fetched.port == sent.port, str(fetched))

        hb = stub.Heartbeat(
            rpb.HeartbeatRequest(app=APP, instance_id=INSTANCE_ID, last_dirty_timestamp=sent.last_dirty_timestamp),
            timeout=RPC_TIMEOUT_S,
        )
        check("heartbeat_ok", hb.status == ipb.INSTANCE_STATUS_UP, str(hb))

        ours = rpb.HeartbeatRequest(app=APP, instance_id=INSTANCE_ID)
        stranger = rpb.HeartbeatRequest(app=APP, instance_id="no-such-instance")
        answers = heartbeats_stream(stub, [[ours, stranger, ours], [ours]])
        codes = [[r.code for r in a.results] for a in answers]
        check("heartbeats_batch_ids", [a.batch_id for a in answers] == [1, 2], [a.batch_id for a in answers])
        # google.rpc.Code: 0 OK, 5 NOT_FOUND — one result per heartbeat, in request order.
        check("heartbeats_results", codes == [[0, 5, 0], [0]], codes)

        meta = stub.UpdateMetadata(
            rpb.UpdateMetadataRequest(app=APP, instance_id=INSTANCE_ID, set={"phase": "2"}, remove=["empty"]),
            timeout=RPC_TIMEOUT_S,
        ).instance
        check("update_metadata", dict(meta.metadata) == {"lang": "python", "grpcio": grpc.__version__, "phase": "2"},
              dict(meta.metadata))

        stub.Cancel(rpb.CancelRequest(app=APP, instance_id=INSTANCE_ID), timeout=RPC_TIMEOUT_S)

        _, err = rpc_error_code(
            lambda: stub.Heartbeat(rpb.HeartbeatRequest(app=APP, instance_id=INSTANCE_ID), timeout=RPC_TIMEOUT_S)
        )
        check(
            "heartbeat_after_cancel_not_found",
            err is not None and err.code() == grpc.StatusCode.NOT_FOUND,
            "no error" if err is None else err.code().name,
        )

        changes = watcher.changes(3, RPC_TIMEOUT_S)
        watcher.close()
        kinds = [ipb.ChangeType.Name(c.type) for c in changes]
        check("watch_events", kinds == ["CHANGE_TYPE_ADDED", "CHANGE_TYPE_MODIFIED", "CHANGE_TYPE_DELETED"], kinds)
        check(
            "watch_event_content",
            len(changes) == 3
            and all(c.instance.app == APP_LOWER and c.instance.instance_id == INSTANCE_ID for c in changes)
            and changes[0].instance.metadata == got.metadata
            and changes[1].instance.metadata["phase"] == "2",
            [str(c.instance.metadata) for c in changes],
        )
        revisions = [c.revision for c in changes]
        check("watch_revisions_increase", revisions == sorted(set(revisions)) and all(r > start_revision for r in revisions),
              revisions)

        # Bad input: INVALID_ARGUMENT naming the field, and nothing stored.
        for name, instance, field in [
            ("invalid_port", ipb.Instance(app=APP, instance_id="bad-1", port=ipb.Port(number=70000, enabled=True)),
             "instance.port.number"),
            ("invalid_app", ipb.Instance(app="no spaces allowed", instance_id="bad-2"), "instance.app"),
            ("missing_instance_id", ipb.Instance(app=APP), "instance.instance_id"),
        ]:
            _, err = rpc_error_code(
                lambda: stub.Register(rpb.RegisterRequest(instance=instance), timeout=RPC_TIMEOUT_S)
            )
            check(
                name,
                err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT and field in (err.details() or ""),
                "no error" if err is None else f"{err.code().name} {err.details()!r}",
            )
        _, err = rpc_error_code(
            lambda: stub.GetInstance(rpb.GetInstanceRequest(app=APP, instance_id="bad-1"), timeout=RPC_TIMEOUT_S)
        )
        check("invalid_changes_nothing", err is not None and err.code() == grpc.StatusCode.NOT_FOUND,
              "stored" if err is None else err.code().name)


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as err:
        failures.append(f"unexpected RPC error: {err.code().name} {err.details()}")
    except Exception as err:  # noqa: BLE001 — reported in the summary, not as a traceback
        failures.append(f"unexpected error: {type(err).__name__}: {err}")
    summary = {
        "ok": not failures and all(checks.values()),
        "checks": checks,
        "failures": failures,
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "python": sys.version.split()[0],
    }
    print(json.dumps(summary))
    sys.exit(0 if summary["ok"] else 1)
