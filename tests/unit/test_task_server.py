"""The task server runs `diffreg` commands as a fresh interpreter would: the same files and output,
exit statuses, signals reaching the command, a killed client taking its command with it, stale code
and batch-scheduler jobs falling back to running the command in the client."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffreg.task_client import socket_path, wanted
from diffreg.task_server import fingerprint

ROOT = Path(__file__).resolve().parents[2]
DIFFREG = str(ROOT / "bin/diffreg")
TIMED = {"wall_time_s", "peak_memory_mb"}   # measured, not computed


def _wait(predicate, what: str, timeout: float = 3600):   # a safety net, not a speed check
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, what
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path):
    """A server without preloading (imports on first use, as a plain run does), on a private socket;
    `watch` is a copy of nothing but one file, so that a test can make the server's code stale."""
    folder = tmp_path / "sockets"
    env = {**os.environ, "DIFFREG_TASK_SERVER": str(folder), "PYTHONPATH": str(ROOT / "src")}
    path = socket_path(env)
    watch = tmp_path / "watched"
    watch.mkdir()
    (watch / "module.py").write_text("x = 1\n")
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "diffreg.task_server", "--socket", str(path), "--idle", "600",
                             "--no-preload", "--watch", str(watch)], env=env, stdout=log, stderr=subprocess.STDOUT)
    _wait(lambda: path.exists() or proc.poll() is not None, "server did not start")
    assert proc.poll() is None, (tmp_path / "server.log").read_text()
    yield env, tmp_path / "server.log", watch, proc
    proc.terminate()
    proc.wait()
    log.close()


def _served(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if re.match(r"task \d+: ", line)]


def run(env, *args, cwd=None, **kw):
    return subprocess.run([DIFFREG, *args], env=env, cwd=cwd, capture_output=True, text=True, **kw)


def test_a_command_through_the_server_writes_what_a_direct_run_writes(server, tmp_path):
    env, log, _, _ = server
    direct = {**env, "DIFFREG_TASK_SERVER": "0"}
    outs = {}
    for name, e in (("direct", direct), ("served", env)):
        (tmp_path / name).mkdir()
        proc = run(e, "toy-data", "--outdir", "toy", "--n-subjects", "3", "--size", "16", "--ndim", "2",
                   "--seed", "4", cwd=tmp_path / name)           # a relative path: the task's folder
        assert proc.returncode == 0, proc.stderr
        files = sorted(p for p in (tmp_path / name / "toy").rglob("*") if p.is_file() and p.name != "run.json")
        run_json = json.loads((tmp_path / name / "toy/run.json").read_text())
        outs[name] = (proc.stdout, {k: v for k, v in run_json.items() if k not in TIMED},
                      {p.relative_to(tmp_path / name).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest() for p in files})
    assert outs["served"] == outs["direct"] and len(outs["direct"][2]) > 3
    served = _served(log)
    assert len(served) == 1 and "diffreg toy-data in " + str(tmp_path / "served") in served[0], served


def test_exit_statuses_and_messages_are_the_commands(server, tmp_path):
    env, log, _, _ = server
    bad = run(env, "toy-data", "--outdir", str(tmp_path / "t"), "--n-subjects", "2")
    assert bad.returncode == 2 and "need at least 3 subjects" in bad.stderr and bad.stdout == ""
    unknown = run(env, "no-such-command")
    assert unknown.returncode == 2 and "invalid choice: 'no-such-command'" in unknown.stderr
    crash = tmp_path / "crash.py"
    crash.write_text("raise RuntimeError('plugin broke')\n")
    proc = run({**env, "DIFFREG_PLUGINS": str(crash)}, "--help")   # the environment is the client's
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "RuntimeError: plugin broke" in proc.stderr
    assert [line.rsplit(" -> ", 1)[1].split()[1] for line in _served(log)] == ["2", "2", "1"]


def _sleeper(tmp_path: Path) -> tuple[Path, Path]:
    pidfile = tmp_path / "worker.pid"
    plugin = tmp_path / "sleeper.py"
    plugin.write_text(f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    return plugin, pidfile


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").exists() else False


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGKILL, None)])
def test_a_signal_to_the_client_reaches_the_command(server, tmp_path, sig, status):
    """SIGTERM (a scheduler's or Nextflow's kill) is forwarded: the command dies of it and the client
    reports 143; SIGKILL cannot be forwarded: the server sees the client go and kills the command."""
    env, _, _, _ = server
    plugin, pidfile = _sleeper(tmp_path)
    client = subprocess.Popen([DIFFREG, "--help"], env={**env, "DIFFREG_PLUGINS": str(plugin)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: pidfile.exists() and pidfile.read_text(), "the command did not start")
    worker = int(pidfile.read_text())
    assert worker != client.pid and _alive(worker)
    client.send_signal(sig)
    assert client.wait(timeout=3600) == (status if status is not None else -signal.SIGKILL)
    _wait(lambda: not _alive(worker), "the command outlived its client")


def test_stale_code_or_a_scheduler_job_runs_the_command_in_the_client(server, tmp_path):
    env, log, watch, proc = server
    assert run({**env, "SLURM_JOB_ID": "7"}, "--version").stdout == "diffreg 0.1.0\n"
    assert _served(log) == [] and proc.poll() is None
    (watch / "module.py").write_text("x = 2  # edited\n")
    out = run(env, "--version")
    assert out.returncode == 0 and out.stdout == "diffreg 0.1.0\n"
    assert proc.wait(timeout=3600) == 0 and "diffreg changed on disk" in log.read_text()
    assert _served(log) == []


def test_with_no_server_the_command_runs_in_the_client_which_starts_one_unless_told_not_to(tmp_path):
    """The launch check (DIFFREG_TASK_SERVER_START=0) runs itself and starts nothing; a task starts
    a server for the tasks after it, which (and whose workers) signals reach."""
    env = {**os.environ, "DIFFREG_TASK_SERVER": str(tmp_path / "sockets"), "PYTHONPATH": str(ROOT / "src")}
    path = socket_path(env)
    out = run({**env, "DIFFREG_TASK_SERVER_START": "0"}, "--version")
    assert out.returncode == 0 and out.stdout == "diffreg 0.1.0\n"
    assert not path.with_suffix(".lock").exists() and not path.exists()
    out = run(env, "--version")
    assert out.returncode == 0 and out.stdout == "diffreg 0.1.0\n"
    assert path.with_suffix(".lock").exists()       # the server's lock: started in the background
    _wait(lambda: path.exists(), "the started server never listened")
    pid = int(subprocess.run(["pgrep", "-f", "--", f"--socket {path}"], capture_output=True, text=True).stdout.split()[0])
    try:
        served = run(env, "--version")              # the next one goes through it
        assert served.stdout == "diffreg 0.1.0\n" and len(_served(path.with_suffix(".log"))) == 1
        # no signal blocked, although the client that started it blocks those it forwards: else the
        # server's workers would ignore the SIGTERM of a killed task
        blocked = re.search(r"^SigBlk:\s*([0-9a-f]+)$", Path(f"/proc/{pid}/status").read_text(), re.M)[1]
        assert int(blocked, 16) == 0
    finally:
        os.kill(pid, signal.SIGKILL)


def test_when_the_client_uses_the_server():
    base = {"DIFFREG_TASK_SERVER": "1"}
    assert wanted(base, cuda=False) and not wanted({}) and not wanted({"DIFFREG_TASK_SERVER": "0"})
    assert not wanted(base, cuda=True)             # an NVIDIA machine: no CUDA after fork
    assert not wanted({**base, "SLURM_JOB_ID": "12"}, cuda=False) and not wanted({**base, "PBS_JOBID": "3.pbs"}, cuda=False)
    assert not wanted({**base, "DIFFREG_PYTHON": "/opt/diffreg/venv/bin/python"}, cuda=False)   # a container's Python
    assert socket_path({**base, "TMPDIR": "/x"}).parent == Path(f"/x/diffreg-task-server-{os.getuid()}")
    assert socket_path({"DIFFREG_TASK_SERVER": "/y/z"}).parent == Path("/y/z")


def test_the_fingerprint_changes_with_any_edit(tmp_path):
    (tmp_path / "a.py").write_text("a = 1\n")
    first = fingerprint(tmp_path)
    (tmp_path / "b.py").write_text("")
    second = fingerprint(tmp_path)
    (tmp_path / "a.py").write_text("a = 22\n")
    assert len({first, second, fingerprint(tmp_path)}) == 3


@pytest.mark.parametrize("pidfd", [True, False])
@pytest.mark.parametrize("client_goes", [False, True])
def test_the_handler_waits_for_its_worker_or_kills_it_when_the_client_goes(monkeypatch, pidfd, client_goes):
    """_watch returns when the worker exits (pidfd, or every 0.1 s where Linux has no pidfd_open)
    without reaping it, and kills the worker's group when the client's end of the socket closes."""
    import socket as socketlib

    from diffreg import task_server

    if not pidfd:
        monkeypatch.setattr(task_server.os, "pidfd_open", lambda pid: (_ for _ in ()).throw(OSError("no pidfd")))
    ours, theirs = socketlib.socketpair()
    worker = os.fork()
    if worker == 0:                                   # the worker: its own group, a short or a long nap
        ours.close()                                  # as the real worker: the client's socket is not its own
        theirs.close()
        os.setpgid(0, 0)
        time.sleep(600 if client_goes else 0.3)
        os._exit(7)
    task_server._set_group(worker)                    # as _handle does: whichever runs first
    try:
        if client_goes:
            theirs.close()
        task_server._watch(ours, worker)
        status = os.waitpid(worker, 0)[1]           # still there to reap: _watch did not
        assert os.waitstatus_to_exitcode(status) == (-signal.SIGKILL if client_goes else 7)
    finally:
        ours.close()
        if not client_goes:
            theirs.close()
