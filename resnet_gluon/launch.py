"""Start MXNet's parameter server on one machine: scheduler, servers and workers.

``python -m resnet_gluon launch -n 2 -s 1 -- train --kvstore dist_sync ...``
starts one scheduler, ``-s`` servers and ``-n`` workers as processes on
127.0.0.1, each told its role through the ``DMLC_*`` variables.  Workers run
``python -m resnet_gluon <command>``; the scheduler and servers run
``import resnet_gluon``, which serves (as ``import mxnet`` does) until the
workers finish, watched by :mod:`resnet_gluon._watchdog`.

Every process gets a deadline, and a worker that fails (or is killed) brings
all others down at once, so nothing waits on a peer that is gone and no
process outlives the launcher: SIGTERM, SIGINT or SIGHUP to the launcher is
passed on to every process it started, and what has not stopped 5 seconds
later is killed.

For several hosts, start the same roles by hand with the same variables::

    # on the scheduler's host (HOST_A), once, and each server:
    DMLC_ROLE=scheduler DMLC_PS_ROOT_URI=HOST_A DMLC_PS_ROOT_PORT=9091 \\
      DMLC_NUM_SERVER=1 DMLC_NUM_WORKER=2 python -c "import resnet_gluon"
    DMLC_ROLE=server    (same variables)            python -c "import resnet_gluon"
    # on each worker host:
    DMLC_ROLE=worker    (same variables) python -m resnet_gluon train --kvstore dist_sync ...

Each host also sets ``DMLC_NODE_HOST`` (its own address) where it has several.  Bounds:
``RESNET_GLUON_PS_TIMEOUT`` (300 s) for a worker that sees no progress,
``RESNET_GLUON_JOB_TIMEOUT`` for the scheduler and servers (see ``_watchdog.py``).
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, TextIO

__all__ = ["launch", "free_port"]

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Stopped(BaseException):
    """The launcher was asked to stop (SIGTERM, SIGINT, SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop_on_signals():
    """Turn SIGTERM/SIGINT/SIGHUP into :class:`_Stopped`, so that the launcher's
    clean-up runs (the children are in sessions of their own: no signal reaches
    them but ours).  Returns the function that puts the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    stopping = []

    def stop(signum, frame):
        if not stopping:  # the first one only: a second must not cut the clean-up short
            stopping.append(signum)
            raise _Stopped(signum)
    old = {sig: signal.signal(sig, stop)
           for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    return lambda: [signal.signal(sig, handler) for sig, handler in old.items()]


def _kill_all(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def _worker_command(command: Sequence[str]) -> List[str]:
    """The workers' command: without a leading ``--``; ``train`` over the parameter server
    unless it names its store (its own default is one machine's)."""
    command = list(command)
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        raise ValueError("give the workers' command after --, e.g. "
                         "launch -n 2 -- train --kvstore dist_sync --epochs 1")
    if command[0] == "train" and not any(a.startswith("--kvstore") for a in command):
        command += ["--kvstore", "dist_sync"]
    return command


def launch(command: Sequence[str], num_workers: int, num_servers: int = 1,
           timeout: float = 3600.0, port: Optional[int] = None,
           log: TextIO = sys.stderr, worker_env: Optional[Dict[str, str]] = None) -> int:
    """Run ``python -m resnet_gluon COMMAND`` on ``num_workers`` workers over loopback.

    Parameters
    ----------
    command : sequence of str
        The subcommand and its options, e.g. ``['train', '--epochs', '1']`` (a leading
        ``'--'`` is dropped; ``train`` gets ``--kvstore dist_sync`` unless it names one).
    num_workers, num_servers : int
    timeout : float, default 3600
        Seconds the whole job may take; past it, every process is stopped.
    port : int, optional
        The scheduler's port (a free one by default).
    log : file-like
        Where the launcher reports process ids and failures.
    worker_env : dict, optional
        Extra environment for the workers.

    Returns
    -------
    int
        0 when every worker finished cleanly; otherwise the first failing
        worker's exit code (or 124 on time-out), after all processes are stopped.
    """
    if num_workers < 1 or num_servers < 1:
        raise ValueError(f"need at least one worker and one server, got "
                         f"{num_workers} workers and {num_servers} servers.")
    command = _worker_command(command)
    base = dict(os.environ,
                DMLC_PS_ROOT_URI=LOOPBACK, DMLC_PS_ROOT_PORT=str(port or free_port()),
                DMLC_NUM_SERVER=str(num_servers), DMLC_NUM_WORKER=str(num_workers),
                DMLC_NODE_HOST=LOOPBACK, DMLC_INTERFACE="lo",
                RESNET_GLUON_JOB_TIMEOUT=str(timeout + 10))  # the launcher stops them first
    # "import resnet_gluon" serves as "import mxnet" does, with a watchdog (see _watchdog.py).
    serve = [sys.executable, "-c", "import resnet_gluon"]
    roles = [("scheduler", serve)] + [("server", serve)] * num_servers + \
        [("worker", [sys.executable, "-m", "resnet_gluon", *command])] * num_workers
    procs: List[subprocess.Popen] = []
    workers: List[subprocess.Popen] = []
    deadline = time.time() + timeout
    restore = _stop_on_signals()
    try:
        for i, (role, argv) in enumerate(roles):
            env = dict(base, DMLC_ROLE=role)
            if role == "worker":
                env.update(worker_env or {})
            # Own process group each, so a kill reaches whatever they start too.
            proc = subprocess.Popen(argv, env=env, start_new_session=True)
            procs.append(proc)
            number = "" if role == "scheduler" else \
                f" {len(workers) if role == 'worker' else i - 1}"
            print(f"launch: {role}{number} pid {proc.pid}", file=log, flush=True)
            if role == "worker":
                workers.append(proc)
        while True:
            codes = [w.poll() for w in workers]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                print(f"launch: worker {i} exited with code {code}; stopping the others",
                      file=log, flush=True)
                return code if code > 0 else 1
            if all(c == 0 for c in codes):
                # The scheduler and servers leave once the workers have; give them a moment.
                for p in procs:
                    try:
                        p.wait(timeout=max(1.0, min(30.0, deadline - time.time())))
                    except subprocess.TimeoutExpired:
                        pass
                return 0
            if time.time() > deadline:
                print(f"launch: timed out after {timeout:g} s; stopping every process",
                      file=log, flush=True)
                return 124
            time.sleep(0.2)
    except _Stopped as stop:
        print(f"launch: got {signal.Signals(stop.signum).name}; stopping every process",
              file=log, flush=True)
        return 128 + stop.signum
    finally:
        _kill_all(procs)
        restore()
