"""Bounded ends for parameter-server jobs: every role stops, with a reason, when its peers are gone.

MXNet's parameter server (ps-lite) waits for a peer that has died or become unreachable for as
long as the process lives.  These watchdogs give each role a limit:

- a worker that finishes no training step (or evaluation batch) for ``RESNET_GLUON_PS_TIMEOUT``
  seconds (300 by default) stops, saying whether the scheduler still answers (then a server or
  another worker has stopped) or not (then its own link or the scheduler is down);
- a server stops when the scheduler no longer accepts connections;
- scheduler and servers stop once ``RESNET_GLUON_JOB_TIMEOUT`` seconds have passed, if set
  (``launch`` sets it to its ``--timeout``).

Nothing here imports MXNet: a scheduler or server starts its watchdog before ``import mxnet``,
which serves until the job is done (see ``resnet_gluon/__init__.py``).
"""
import os
import socket
import sys
import threading
import time
from typing import Optional, Tuple

__all__ = ["scheduler_address", "scheduler_answers", "RoleWatchdog", "ProgressWatchdog"]

#: Seconds between two looks.
_PERIOD = 2.0


def scheduler_address() -> Tuple[str, int]:
    """The scheduler's ``(host, port)`` from ``DMLC_PS_ROOT_URI`` / ``DMLC_PS_ROOT_PORT``."""
    return os.environ.get("DMLC_PS_ROOT_URI", ""), int(os.environ.get("DMLC_PS_ROOT_PORT", 0))


def scheduler_answers(timeout: float = 3.0) -> Optional[str]:
    """None if the scheduler accepts a TCP connection, else why not."""
    try:
        socket.create_connection(scheduler_address(), timeout=timeout).close()
        return None
    except OSError as err:
        return err.strerror or str(err)


def _stop(message: str, code: int) -> None:
    print(message, file=sys.stderr, flush=True)
    os._exit(code)  # MXNet's own shutdown would wait for the peers that are gone


def _env_seconds(name: str) -> Optional[float]:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
    return seconds


class RoleWatchdog(threading.Thread):
    """For a scheduler or a server: stop at the job's deadline, or (a server) when the
    scheduler is gone."""

    def __init__(self, role: str):
        super().__init__(daemon=True, name="resnet_gluon-watchdog")
        self.role = role
        limit = _env_seconds("RESNET_GLUON_JOB_TIMEOUT")
        self.deadline = time.time() + limit if limit else None
        self.limit = limit

    def run(self) -> None:
        host, port = scheduler_address()
        misses = 0
        while True:
            time.sleep(_PERIOD)
            if self.deadline is not None and time.time() > self.deadline:
                _stop(f"{self.role}: the job did not end within {self.limit:g} s "
                      f"(RESNET_GLUON_JOB_TIMEOUT): a worker or server may be gone; stopping.",
                      124)
            if self.role == "server":
                why = scheduler_answers()
                misses = misses + 1 if why else 0
                if misses >= 3:
                    _stop(f"server: the scheduler at {host}:{port} is gone ({why}); stopping.", 1)


class ProgressWatchdog(threading.Thread):
    """For a worker: stop when, while armed, nothing moves for ``RESNET_GLUON_PS_TIMEOUT`` s.

    :meth:`arm` while the process waits on its peers (joining the job, training, the
    shutdown barrier), :meth:`touch` at each step and evaluation batch, :meth:`disarm`
    when it is the caller's own time again.
    """

    def __init__(self, timeout: Optional[float] = None):
        super().__init__(daemon=True, name="resnet_gluon-watchdog")
        self.timeout = timeout or _env_seconds("RESNET_GLUON_PS_TIMEOUT") or 300.0
        self.last, self.armed = time.time(), threading.Event()

    def arm(self) -> None:
        self.last = time.time()
        self.armed.set()

    def disarm(self) -> None:
        self.armed.clear()

    def touch(self) -> None:
        self.last = time.time()

    def run(self) -> None:
        while True:
            time.sleep(_PERIOD)
            idle = time.time() - self.last
            if not self.armed.is_set() or idle < self.timeout:
                continue
            host, port = scheduler_address()
            why = scheduler_answers()
            if why:
                _stop(f"error: no training step for {idle:.0f} s and cannot reach the scheduler "
                      f"at {host}:{port} ({why}): this worker's link or the scheduler is down; "
                      f"stopping.", 1)
            _stop(f"error: no training step for {idle:.0f} s; the scheduler at {host}:{port} "
                  f"answers, so a server or another worker has stopped; stopping.", 1)
