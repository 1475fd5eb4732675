"""MXNet's parameter server over loopback: two workers agree, a dead worker stops the job, nothing survives."""
import os
import re
import signal
import time

import pytest

from common import alive, assert_same_params

# One worker's share of a tiny run: 512 real images at 28x28, one epoch.
TINY = ["--limit-train", "512", "--limit-test", "128", "--resize", "28", "--batch-size", "64",
        "--epochs", "1", "--no-progress"]


def _pids(proc, count=4):
    """Read the launcher's "launch: ROLE pid N" lines until ``count`` processes are up."""
    pids, workers = [], []
    while len(pids) < count:
        line = proc.stderr.readline()
        assert line, "launcher ended early"
        found = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", line)]
        pids += found
        if line.startswith("launch: worker"):
            workers += found
    return pids, workers


def _long_job(cli, tmp_path):
    """A two-worker job of 50 epochs (it would run for many minutes), once all four are up."""
    proc = cli.popen("launch", "-n", "2", "--timeout", "240", "--", "train", "--out",
                     str(tmp_path / "run"), "--limit-train", "4096", "--resize", "28",
                     "--batch-size", "64", "--epochs", "50", "--no-progress",
                     env={"OMP_NUM_THREADS": "1"})
    return (proc, *_pids(proc))


def _seconds_to_end(proc):
    started = time.time()
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
    return time.time() - started


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
    proc, pids, (_, worker1) = _long_job(cli, tmp_path)
    time.sleep(8)  # training under way
    os.kill(worker1, signal.SIGKILL)
    assert _seconds_to_end(proc) < 30
    assert proc.returncode == 1
    assert "launch: worker 1 exited with code -9; stopping the others" in proc.stderr.read()
    assert not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_a_worker_that_fails_stops_the_job_within_seconds(cli, tmp_path):
    # Worker 0 refuses a run directory that already holds a run; worker 1 would
    # wait for it in MXNet's shutdown and barrier until --timeout without the fix.
    base = tmp_path / "base"
    assert cli("train", "--out", str(base), *TINY).returncode == 0
    started = time.time()
    result = cli("launch", "-n", "2", "-s", "1", "--timeout", "120", "--", "train", "--out",
                 str(base), *TINY, timeout=300)
    assert time.time() - started < 30
    assert result.returncode == 2
    assert f"error: {base} already holds a run" in result.stderr
    assert re.search(r"launch: worker \d exited with code 2; stopping the others", result.stderr)
    pids = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", result.stderr)]
    assert len(pids) == 4 and not [pid for pid in pids if alive(pid)]


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_process(cli, tmp_path):
    proc, pids, _ = _long_job(cli, tmp_path)
    time.sleep(5)
    proc.send_signal(signal.SIGTERM)
    assert _seconds_to_end(proc) < 15
    assert proc.returncode == 128 + signal.SIGTERM
    assert "launch: got SIGTERM; stopping every process" in proc.stderr.read()
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
