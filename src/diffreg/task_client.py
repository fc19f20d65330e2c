"""`diffreg` through the task server when one is wanted (DIFFREG_TASK_SERVER), else as is.

A local run's tasks are small on the embedded data: most of a task is Python importing torch,
diffusers and ANTs (2-5 CPU-s) before seconds of work. The server (diffreg.task_server) imports
them once and forks a process per task. This client imports nothing heavy: it hands its argv, cwd,
environment and its stdin/stdout/stderr to the server, forwards signals, and exits with the
command's status. Whenever the server cannot take the task (none running yet, stale code, a batch
scheduler's job, a container's Python) the command runs here, in this process, as before.

DIFFREG_TASK_SERVER: unset, empty or 0 = off; 1 = on, sockets in $TMPDIR/diffreg-task-server-<uid>;
any other value = on, sockets in that folder. DIFFREG_TASK_SERVER_START=0: use a running server but
never start one (the launch check: a -resume whose tasks are all cached needs none, and a server
importing torch beside it would slow it down).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent               # the diffreg package the server would import
# a batch scheduler's job: a server started in one job would run other jobs' tasks inside it
SCHEDULER_JOB_VARS = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _on(env, name: str, default: str) -> bool:
    """A switch variable: empty or 0 is off, anything else on."""
    return env.get(name, default) not in ("", "0")


def wanted(env=os.environ, cuda: bool | None = None) -> bool:
    if not _on(env, "DIFFREG_TASK_SERVER", "0"):
        return False
    # an NVIDIA machine: CUDA fails in a process forked from one that initialised it, and importing
    # the packages may (torch.cuda.is_available() in an import): its tasks start their own Python
    if cuda if cuda is not None else Path("/dev/nvidiactl").exists():
        return False
    # DIFFREG_PYTHON names a container's or conda's Python: the task must run in that environment
    return not any(env.get(v) for v in SCHEDULER_JOB_VARS) and not env.get("DIFFREG_PYTHON")


def socket_path(env=os.environ) -> Path:
    """One server per (Python, diffreg source): a changed venv or checkout gets its own."""
    value = env.get("DIFFREG_TASK_SERVER", "1")
    folder = Path(value) if value != "1" else Path(env.get("TMPDIR") or "/tmp") / f"diffreg-task-server-{os.getuid()}"
    key = hashlib.sha1(f"{os.path.realpath(sys.executable)}\n{SRC}".encode()).hexdigest()[:16]
    return folder / f"{key}.sock"


def start_server(path: Path) -> None:
    """Start a server in the background, unless one holds the lock (running, or starting)."""
    import fcntl

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return                                   # a server holds it
    with open(path.with_suffix(".log"), "ab") as log:       # the server empties it once it holds the lock
        subprocess.Popen([sys.executable, "-m", "diffreg.task_server", "--socket", str(path)],
                         cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def send_request(sock: socket.socket, argv: list[str]) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": mask}).encode()
    data = struct.pack("!Q", len(body)) + body
    sent = socket.send_fds(sock, [data], [0, 1, 2])
    sock.sendall(data[sent:])


def via_server(argv: list[str]) -> int | None:
    """The command's exit status, or None when the server did not start it. The signals it forwards
    are held back until it knows whom to forward them to."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        return _via_server(argv)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


def _via_server(argv: list[str]) -> int | None:
    path = socket_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        if _on(os.environ, "DIFFREG_TASK_SERVER_START", "1"):
            start_server(path)
        return None
    reader = sock.makefile("r")
    try:
        send_request(sock, argv)
        first = reader.readline().split()
    except OSError:
        return None
    if first[:1] != ["pid"]:                         # "stale": the server's code is older than the checkout
        return None
    worker = int(first[1])
    for sig in FORWARDED:                             # as if the scheduler signalled the command itself
        signal.signal(sig, lambda s, _f: _forward(worker, s))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    last = reader.readline().split()
    return int(last[1]) if last[:1] == ["exit"] else 1


def _forward(worker: int, sig: int) -> None:
    try:
        os.killpg(worker, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if wanted():
        status = via_server(argv)
        if status is not None:
            sys.exit(status)
    from diffreg.cli import main as run          # only here: the client imports the standard library alone
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
