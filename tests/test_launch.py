"""MXNet's parameter server over loopback: two workers agree, a dead worker stops the job, nothing survives."""
import os
import queue
import re
import signal
import threading
import time

import pytest

from common import alive, assert_same_params
from resnet_gluon.checkpoint import find_checkpoints

# One worker's share of a tiny run: 512 real images at 28x28, one epoch.
TINY = ["--limit-train", "512", "--limit-test", "128", "--resize", "28", "--batch-size", "64",
        "--epochs", "1", "--no-progress"]


def _lines(stream):
    """The lines of ``stream`` as a queue, read by a thread: a read can then time out."""
    lines = queue.Queue()

    def read():
        for line in stream:
            lines.put(line)
        lines.put("")  # the end

    threading.Thread(target=read, daemon=True).start()
    return lines


def _pids(lines, count=4, within=120):
    """Read the launcher's "launch: ROLE pid N" lines until ``count`` processes are up."""
    pids, workers, seen = [], [], []
    deadline = time.time() + within
    while len(pids) < count:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            pytest.fail(f"the launcher did not start {count} processes in {within} s: {seen}")
        assert line, f"launcher ended early: {seen}"
        seen.append(line)
        found = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", line)]
        pids += found
        if line.startswith("launch: worker"):
            workers += found
    return pids, workers


def _long_job(cli, tmp_path):
    """A two-worker job of 50 epochs (it would run for many minutes), once its workers have
    taken training steps (a step checkpoint is written): ``(proc, stderr lines, pids,
    worker pids)``."""
    run = tmp_path / "run"
    proc = cli.popen("launch", "-n", "2", "--timeout", "240", "--", "train", "--out",
                     str(run), "--limit-train", "4096", "--resize", "28", "--batch-size", "64",
                     "--epochs", "50", "--checkpoint-every", "4", "--no-progress",
                     env={"OMP_NUM_THREADS": "1"})
    lines = _lines(proc.stderr)
    pids, workers = _pids(lines)
    deadline = time.time() + 120
    while not find_checkpoints(str(run)):
        assert time.time() < deadline and proc.poll() is None, "no training step in 120 s"
        time.sleep(0.1)
    return proc, lines, pids, workers


def _seconds_to_end(proc, limit=60):
    """How long ``proc`` takes to end from now; well under the job's --timeout of 240 s, so
    a launcher that waited for the timeout fails."""
    started = time.time()
    try:
        proc.wait(timeout=limit + 30)
    finally:
        proc.kill()
    return time.time() - started


def _rest(lines):
    out = []
    while True:
        line = lines.get(timeout=30)
        if not line:
            return "".join(out)
        out.append(line)


@pytest.mark.slow
def test_dist_sync_over_loopback(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("launch", "-n", "2", "-s", "1", "--timeout", "240", "--", "train", "--out",
                 str(run), *TINY, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(2 workers)" in result.stdout
    assert_same_params(run / "model.params", run / "model.worker1.params")
    pids = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", result.stderr)]
    assert len(pids) == 4  # scheduler, server, two workers
    assert not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_a_dead_worker_stops_the_others(cli, tmp_path):
    proc, lines, pids, (_, worker1) = _long_job(cli, tmp_path)
    os.kill(worker1, signal.SIGKILL)
    assert _seconds_to_end(proc) < 60
    assert proc.returncode == 1
    assert "launch: worker 1 exited with code -9; stopping the others" in _rest(lines)
    assert not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_a_worker_that_fails_stops_the_job_within_seconds(cli, tmp_path):
    # Worker 0 refuses a run directory that already holds a run; worker 1 would
    # wait for it in MXNet's shutdown and barrier until --timeout without the fix.
    base = tmp_path / "base"
    assert cli.here("train", "--out", str(base), *TINY).returncode == 0
    started = time.time()
    result = cli("launch", "-n", "2", "-s", "1", "--timeout", "240", "--", "train", "--out",
                 str(base), *TINY, timeout=300)
    assert time.time() - started < 60  # well under --timeout, which the bug waited for
    assert result.returncode == 2
    assert f"error: {base} already holds a run" in result.stderr
    assert re.search(r"launch: worker \d exited with code 2; stopping the others", result.stderr)
    pids = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", result.stderr)]
    assert len(pids) == 4 and not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_process(cli, tmp_path):
    proc, lines, pids, _ = _long_job(cli, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert _seconds_to_end(proc) < 60
    assert proc.returncode == 128 + signal.SIGTERM
    assert "launch: got SIGTERM; stopping every process" in _rest(lines)
    deadline = time.time() + 10  # the group's last children may still be reaped
    while [pid for pid in pids if alive(pid)] and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


def test_a_bad_timeout_variable_is_named(monkeypatch):
    from resnet_gluon._watchdog import ProgressWatchdog

    monkeypatch.setenv("RESNET_GLUON_PS_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="RESNET_GLUON_PS_TIMEOUT must be a positive number of "
                                         "seconds, got 'soon'"):
        ProgressWatchdog()
    monkeypatch.setenv("RESNET_GLUON_PS_TIMEOUT", "7")
    assert ProgressWatchdog().timeout == 7.0
