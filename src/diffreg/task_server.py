"""The task server: one Python that has imported torch, diffusers, ANTs and every diffreg command,
forking a process per task that diffreg.task_client hands it.

Per connection: a handler process reads the request (argv, cwd, environment, umask and the client's
stdin/stdout/stderr), forks the worker that runs `diffreg <argv>` as a fresh interpreter would,
reports the worker's pid (the client forwards signals to its process group) and then its exit
status, and kills the worker's group if the client goes away (a task killed with SIGKILL). The
server exits after IDLE_S without a connection, or when the diffreg source changed since it
started (the client then runs the command itself and the next one starts a fresh server).

    python -m diffreg.task_server --socket PATH [--idle SECONDS] [--no-preload]
"""
from __future__ import annotations

import argparse
import atexit
import fcntl
import importlib
import json
import logging
import os
import pkgutil
import random
import select
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from diffreg import commands
from diffreg.cli import main as cli_main
from diffreg.task_client import SRC

IDLE_S = 120
# what most tasks import (train, register, pretrain, preprocess, baseline, evaluate, report);
# torch._dynamo is what an optimizer's first step imports (about 2 s)
PRELOAD = ("numpy", "scipy.ndimage", "pandas", "nibabel", "torch", "torch._dynamo", "diffusers", "ants",
           "matplotlib.pyplot")


def fingerprint(root: Path = SRC) -> tuple[int, int, int]:
    """(files, newest mtime, total size) of the package's Python files: any edit changes it."""
    stats = [p.stat() for p in root.rglob("*.py")]
    return len(stats), max((s.st_mtime_ns for s in stats), default=0), sum(s.st_size for s in stats)


def preload() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:                  # an optional package: its tasks import it themselves
            print(f"task server: not preloaded: {name} ({exc})", flush=True)
    for info in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{info.name}")


def serve(path: Path, idle_s: float = IDLE_S, warm: bool = True, watch: Path = SRC) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = open(path.with_suffix(".lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0                                     # another server is starting or serving
    try:
        os.ftruncate(sys.stdout.fileno(), 0)         # the log: this server's lines only
    except OSError:
        pass                                         # a terminal or a pipe
    # the client that started it had the signals it forwards blocked: unblocked here, else the server
    # and every worker it forks would ignore SIGTERM (a killed task would not stop)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    start = time.monotonic()
    if warm:
        preload()
    stamp = fingerprint(watch)
    path.unlink(missing_ok=True)                     # a dead server's socket: the lock says none is alive
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(64)
    sock.settimeout(idle_s)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)    # handlers are reaped by the kernel
    print(f"task server {os.getpid()}: ready on {path} after {time.monotonic() - start:.1f} s", flush=True)
    served = 0
    try:
        while True:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                print(f"task server: idle {idle_s:.0f} s, exiting after {served} tasks", flush=True)
                return 0
            if fingerprint(watch) != stamp:
                conn.sendall(b"stale\n")
                conn.close()
                print(f"task server: diffreg changed on disk, exiting after {served} tasks", flush=True)
                return 0
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                sock.close()
                lock.close()                         # the lock is the server's alone: a task may outlive it
                _handle(conn)                        # never returns
            conn.close()
            served += 1
    finally:
        path.unlink(missing_ok=True)
        sock.close()


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if len(data) < 8 or len(fds) != 3:
        raise ValueError("malformed request")
    size = struct.unpack("!Q", data[:8])[0]
    body = bytearray(data[8:])
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    return json.loads(bytes(body)), fds


def _handle(conn: socket.socket) -> None:
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request, fds = _receive(conn)
        start = time.monotonic()
        worker = os.fork()
        if worker == 0:
            conn.close()
            _run(request, fds)                       # never returns
        _set_group(worker)                           # as the worker does: whichever runs first
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {worker}\n".encode())
        _watch(conn, worker)
        code = os.waitstatus_to_exitcode(os.waitpid(worker, 0)[1])
        code = code if code >= 0 else 128 - code     # killed by a signal: as a shell reports it
        try:
            conn.sendall(f"exit {code}\n".encode())
        except OSError:
            pass
        print(f"task {worker}: diffreg {' '.join(request['argv'][:1])} in {request['cwd']} -> exit {code} "
              f"after {time.monotonic() - start:.1f} s", flush=True)
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def _watch(conn: socket.socket, worker: int) -> None:
    """Return when the worker has exited, or kill its group when the client goes away first."""
    try:
        waits, timeout = [os.pidfd_open(worker)], None
    except (AttributeError, OSError):                # Linux < 5.3: look every 0.1 s
        waits, timeout = [], 0.1
    while True:
        ready, _, _ = select.select([conn, *waits], [], [], timeout)
        if (waits[0] in ready) if waits else _exited(worker):
            return
        if conn in ready and not conn.recv(1):       # the client is gone: so is its task
            _kill_group(worker)
            return


def _exited(pid: int) -> bool:
    """Whether the worker has exited, without reaping it (waitpid in _handle does)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _set_group(pid: int) -> None:
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass                                         # it has already exec'd or exited


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _run(request: dict, fds: list[int]) -> None:
    """The worker: the task's streams, folder, environment and umask, then `diffreg <argv>`."""
    code: object = 1
    try:
        os.setpgid(0, 0)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(request["umask"])
        sys.argv = [str(SRC / "cli.py"), *request["argv"]]
        atexit._clear()                              # the server's exit handlers are not the task's
        random.seed()                                # a fresh interpreter's unseeded generators
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        code = cli_main(request["argv"])
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(code & 0xFF)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffreg.task_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="seconds without a task before exiting")
    parser.add_argument("--no-preload", dest="warm", action="store_false", help="import nothing ahead")
    parser.add_argument("--watch", type=Path, default=SRC, help="the source whose edits retire the server")
    args = parser.parse_args(argv)
    return serve(args.socket, args.idle, args.warm, args.watch)


if __name__ == "__main__":
    sys.exit(main())
