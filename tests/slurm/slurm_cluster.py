"""A real single-node Slurm cluster for the tests: Debian's slurm-wlm and munge, one node (this
machine), every file in one state folder, nothing in /etc touched.

    python tests/slurm/slurm_cluster.py start STATE_DIR   # prints `export SLURM_CONF=...`
    python tests/slurm/slurm_cluster.py stop STATE_DIR    # stops exactly the daemons it started

Clients (sbatch, squeue, Nextflow's slurm executor) find the cluster through $SLURM_CONF. munged
listens on a socket of its own (slurm.conf's AuthInfo points at it) and the daemons take free
ports, so a system Slurm or another test cluster on the same machine is left alone.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PACKAGES = {"munged": "munge", "slurmctld": "slurm-wlm", "slurmd": "slurm-wlm", "sbatch": "slurm-wlm"}
MEMORY_MARGIN_MB = 2048   # left to the OS and the daemons


class Unavailable(RuntimeError):
    """Slurm cannot be started here; the message says why (tests skip with it)."""


def _which(name: str) -> str | None:
    # munged and the slurm daemons live in sbin, which a non-login PATH may lack
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def ensure_installed() -> None:
    """apt-get install slurm-wlm and munge where a binary is missing (root only)."""
    missing = sorted({pkg for exe, pkg in PACKAGES.items() if not _which(exe)})
    if not missing:
        return
    if os.geteuid() != 0:
        raise Unavailable(f"{', '.join(missing)} not installed and not root (apt-get install {' '.join(missing)})")
    if not shutil.which("apt-get"):
        raise Unavailable(f"{', '.join(missing)} not installed and no apt-get on this machine")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # policy-rc.d 101: the packages' scripts must not start system daemons we would not own
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:   # an old package list: update once and retry
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise Unavailable("apt-get install slurm-wlm munge timed out (Debian's mirror unreachable?)") from None
    finally:
        if ours:
            policy.unlink(missing_ok=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise Unavailable(f"apt-get install {' '.join(missing)} failed: {tail[0]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _real_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(1024, int(line.split()[1]) // 1024 - MEMORY_MARGIN_MB)
    raise Unavailable("no MemTotal in /proc/meminfo")


def _address(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:   # the short hostname does not resolve: the daemons talk over loopback
        return "127.0.0.1"


def write_config(state: Path, gpus: int = 1) -> Path:
    """slurm.conf (+ gres.conf) for this machine in STATE.

    gpus: GPU generic resources on the node with no GPU behind them (File=/dev/null: slurmd's gpu
    plugin drops a GPU without a device file), so that Slurm accepts the `--gres=gpu:1` of
    `-profile slurm,gpu` and records which jobs got one; only stub tasks, which touch no GPU,
    are sent there.
    """
    host = socket.gethostname().split(".")[0]
    addr = _address(host)
    for sub in ("ctld", "slurmd", "log"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    conf = f"""\
# written by tests/slurm/slurm_cluster.py: a one-node test cluster
ClusterName=diffreg-test
SlurmctldHost={host}({addr})
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={state}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/log/slurmctld.log
SlurmdLogFile={state}/log/slurmd.log
# no cgroups here: processes are tracked by parentage and tasks are not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# no slurmdbd: every finished job's allocation (cpus, memory, time limit, GPUs) goes to a text file
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.txt
# (no AccountingStorageTRES=gres/gpu: it needs slurmdbd; a GPU job shows its grant in $SLURM_JOB_GPUS)
{"GresTypes=gpu" if gpus else ""}
# keep finished jobs in `scontrol show job` for the test's checks
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName={host} NodeAddr={addr} CPUs={len(os.sched_getaffinity(0))} RealMemory={_real_memory_mb()}{gres} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    path = state / "slurm.conf"
    path.write_text(conf)
    (state / "gres.conf").write_text("".join(f"NodeName={host} Name=gpu File=/dev/null\n" for _ in range(gpus)) if gpus else "")
    return path


class SlurmCluster:
    def __init__(self, state: Path):
        self.state = Path(state).resolve()
        self.conf = self.state / "slurm.conf"
        self._procs: dict[str, subprocess.Popen] = {}   # daemons started by this process: reaped on stop

    @property
    def env(self) -> dict[str, str]:
        # a SLURM_* variable of an enclosing job would leak into our jobs through sbatch's --export=ALL
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        return {**env, "SLURM_CONF": str(self.conf)}

    def _pidfile(self, daemon: str) -> Path:
        return self.state / f"{daemon}.started.pid"

    def _spawn(self, daemon: str, args: list[str]) -> None:
        log = open(self.state / "log" / f"{daemon}.out", "ab")
        # -D/-F: foreground, so the pid we record is the daemon itself; own session: a Ctrl-C
        # in pytest does not reach it before stop() does
        proc = subprocess.Popen([_which(daemon), *args], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                env=self.env, start_new_session=True)
        self._pidfile(daemon).write_text(str(proc.pid))
        self._procs[daemon] = proc

    def start(self, timeout: float = 60) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise Unavailable("starting slurmctld/slurmd/munged for a test cluster needs root")
        ensure_installed()
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)   # munged refuses group/other-writable folders
        write_config(self.state)
        key = self.state / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(1024))
            key.chmod(0o400)
        try:
            self._spawn("munged", ["-F", "--force", f"--key-file={key}", f"--socket={self.state}/munge.socket",
                                   f"--pid-file={self.state}/munged.pid", f"--log-file={self.state}/log/munged.log",
                                   f"--seed-file={self.state}/munged.seed"])
            self._wait(lambda: (self.state / "munge.socket").exists(), timeout, "munged")
            self._spawn("slurmctld", ["-D", "-i", "-f", str(self.conf)])
            self._wait(lambda: self._run("scontrol", "ping").returncode == 0
                       and "UP" in self._run("scontrol", "ping").stdout, timeout, "slurmctld")
            self._spawn("slurmd", ["-D", "-f", str(self.conf)])
            self._wait(lambda: self._run("sinfo", "-h", "-o", "%t").stdout.strip() in ("idle", "mix", "alloc"),
                       timeout, "slurmd")
        except Exception:
            self.stop()
            raise
        return self

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid = self._pidfile(what).read_text()
            if not Path(f"/proc/{pid}").exists() or _zombie(int(pid)):
                break
            if ready():
                return
            time.sleep(0.5)
        logs = [p for p in (self.state / "log").glob(f"{what}*")]
        tail = "\n".join(p.read_text(errors="replace")[-1500:] for p in logs)
        raise Unavailable(f"{what} did not come up within {timeout:.0f} s:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the daemons this object (or the CLI) started, by their recorded pids."""
        for daemon in reversed(DAEMONS):
            pidfile = self._pidfile(daemon)
            if not pidfile.exists():
                continue
            pid = int(pidfile.read_text())
            try:   # the pid must still be our daemon, not a recycled pid
                if Path(f"/proc/{pid}/comm").read_text().strip() == daemon:
                    os.kill(pid, 15)
                    for _ in range(100):
                        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                            break
                        time.sleep(0.1)
                    else:
                        os.kill(pid, 9)
            except (FileNotFoundError, ProcessLookupError):
                pass
            pidfile.unlink(missing_ok=True)
            if daemon in self._procs:
                self._procs.pop(daemon).wait(timeout=10)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    cluster = SlurmCluster(Path(argv[1]))
    if argv[0] == "stop":
        cluster.stop()
        return 0
    try:
        cluster.start()
    except Unavailable as err:
        print(f"slurm_cluster: {err}", file=sys.stderr)
        return 1
    print(f"export SLURM_CONF={cluster.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
