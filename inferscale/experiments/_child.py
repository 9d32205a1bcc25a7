"""The sandbox child: apply the limits to itself, then run the candidate (see sandbox.py).

Runs as `python -I _child.py SPEC candidate.py`; imports only the standard library."""

import ctypes
import json
import os
import resource
import runpy
import sys

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


def _isolate_network() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    return "namespace" if libc.unshare(flags) == 0 else "audit-hook"


def _audit(event: str, args: tuple) -> None:
    if event.startswith("socket.") and event not in ("socket.gethostname",):
        raise PermissionError("sandbox: no network")
    if event in ("os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "subprocess.Popen", "os.kill", "os.killpg"):
        raise PermissionError(f"sandbox refused {event}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    candidate = sys.argv[2]
    network = _isolate_network()
    if spec.get("uid") is not None:  # root: leave root, whom RLIMIT_NPROC does not bind
        os.setgroups([])
        os.setgid(spec["uid"])
        os.setuid(spec["uid"])
    cpu = max(1, int(spec["cpu_s"] + 0.999))
    mem = int(spec["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024 * 1024, 16 * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ["INFERSCALE_SANDBOX_NETWORK"] = network
    sys.addaudithook(_audit)  # cannot be removed by the candidate
    sys.argv = [candidate]
    runpy.run_path(candidate, run_name="__main__")


main()
