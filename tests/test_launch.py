"""MXNet's parameter server over loopback: two workers agree, a dead worker stops the job, nothing survives."""
import os
import re
import signal
import time

from common import alive, assert_same_params


def test_dist_sync_over_loopback(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("launch", "-n", "2", "-s", "1", "--timeout", "240", "--", "train", "--out",
                  str(run), "--limit-train", "512", "--limit-test", "128", "--resize", "28",
                  "--batch-size", "64", "--epochs", "1", "--no-progress", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(2 workers)" in result.stdout
    assert_same_params(run / "model.params", run / "model.worker1.params")
    pids = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", result.stderr)]
    assert len(pids) == 4  # scheduler, server, two workers
    assert not [pid for pid in pids if alive(pid)]


def test_a_dead_worker_stops_the_others(cli, tmp_path):
    proc = cli.popen("launch", "-n", "2", "--timeout", "240", "--", "train", "--out",
                     str(tmp_path / "run"), "--limit-train", "4096", "--resize", "28",
                     "--batch-size", "64", "--epochs", "50", "--no-progress",
                     env={"OMP_NUM_THREADS": "1"})
    pids, worker1 = [], None
    while len(pids) < 4:
        line = proc.stderr.readline()
        assert line, "launcher ended early"
        pids += [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", line)]
        if line.startswith("launch: worker 1 pid"):
            worker1 = pids[-1]
    time.sleep(8)  # training under way
    os.kill(worker1, signal.SIGKILL)
    started = time.time()
    try:
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert time.time() - started < 30
    assert proc.returncode == 1
    assert "launch: worker 1 exited with code -9; stopping the others" in proc.stderr.read()
    assert not [pid for pid in pids if alive(pid)]
