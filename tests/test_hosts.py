"""The multi-host form of the parameter server, on four hosts of our own: network namespaces.

Scheduler, server and two workers each get a network namespace on this machine with an address
of its own (10.213.N.1-4 on a bridge of this test's); no traffic leaves the machine.  Needs root
and ``ip netns``; skipped with the reason where they are not there.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from common import assert_same_params, skip_unless_ci

TINY = ["--limit-train", "512", "--limit-test", "128", "--resize", "28", "--batch-size", "64",
        "--no-progress"]
PORT = "9091"


pytestmark = pytest.mark.slow  # network namespaces and a parameter-server job per test

def _ip(*args, ns=None):
    prefix = ["ip", "netns", "exec", ns] if ns else []
    subprocess.run(prefix + ["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def hosts():
    """Four namespaces on one bridge: [(namespace, address, interface), ...]."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        skip_unless_ci("network namespaces need root and iproute2's ip")
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.213.{int(tag[:2], 16)}"
    bridge = f"rgbr{tag}"
    made = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        for i in range(1, 5):
            ns, inner, outer = f"rg{tag}{i}", f"rgv{tag}{i}", f"rgp{tag}{i}"
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            _ip("addr", "add", f"{subnet}.{i}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
    except subprocess.CalledProcessError as err:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        skip_unless_ci(f"network namespaces are not allowed here: {err.stderr.strip()}")
    yield [(f"rg{tag}{i}", f"{subnet}.{i}", f"rgv{tag}{i}") for i in range(1, 5)]
    for ns in made:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _start(host, role, scheduler, argv, extra_env=None):
    """``python ARGV`` in ``host``'s namespace, in the role given, in a session of its own."""
    ns, address, interface = host
    env = dict(os.environ, OMP_NUM_THREADS="1", DMLC_ROLE=role, DMLC_PS_ROOT_URI=scheduler,
               DMLC_PS_ROOT_PORT=PORT, DMLC_NUM_SERVER="1", DMLC_NUM_WORKER="2",
               DMLC_NODE_HOST=address, DMLC_INTERFACE=interface, **(extra_env or {}))
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _job(hosts, run, epochs, job_timeout, extra_env=None, extra_args=()):
    """docs/training.md's multi-host form: scheduler, server, two workers, each on its own host."""
    scheduler, serve = hosts[0][1], ["-c", "import resnet_gluon"]
    bound = dict(extra_env or {}, RESNET_GLUON_JOB_TIMEOUT=str(job_timeout))
    procs = {"scheduler": _start(hosts[0], "scheduler", scheduler, serve, bound),
             "server": _start(hosts[1], "server", scheduler, serve, bound)}
    for i, host in enumerate(hosts[2:]):
        procs[f"worker{i}"] = _start(host, "worker", scheduler,
                                     ["-m", "resnet_gluon", "train", "--kvstore", "dist_sync",
                                      "--out", str(run), *TINY, "--epochs", str(epochs),
                                      *extra_args],
                                     extra_env)
    return procs


def _finish(procs, within):
    """Wait for every process, at most ``within`` seconds in all; kill what is left."""
    deadline, out = time.time() + within, {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(0.1, deadline - time.time()))
            out[name] = (proc.returncode, stdout + stderr)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out[name] = (None, proc.communicate()[0])
    return out


def test_four_hosts_train_together_and_both_workers_hold_the_same_weights(hosts, tmp_path):
    run = tmp_path / "run"
    out = _finish(_job(hosts, run, epochs=1, job_timeout=240), within=300)
    assert {name: code for name, (code, _) in out.items()} == {
        "scheduler": 0, "server": 0, "worker0": 0, "worker1": 0}, out
    assert_same_params(run / "model.params", run / "model.worker1.params")


def test_a_dead_server_and_a_cut_link_end_every_process_with_a_reason(hosts, tmp_path):
    # The job's deadline (40 s, counted from the scheduler's start) comes well after the
    # workers have stopped for their own reasons: 15.6 s on a 2-core AVX2 EPYC, the first
    # checkpoint at 8.9 s.
    procs = _job(hosts, tmp_path / "run", epochs=50, job_timeout=40,
                 extra_env={"RESNET_GLUON_PS_TIMEOUT": "6"}, extra_args=["--checkpoint-every", "2"])
    deadline = time.time() + 120
    while not list(tmp_path.glob("run/checkpoints/ckpt-*")):  # training steps under way
        assert time.time() < deadline, "no training step within 120 s"
        time.sleep(0.2)
    started = time.time()
    os.killpg(procs["server"].pid, signal.SIGKILL)
    _ip("link", "set", hosts[3][2], "down", ns=hosts[3][0])
    out = _finish(procs, within=150)
    assert time.time() - started < 150
    codes = {name: code for name, (code, _) in out.items()}
    assert codes["scheduler"] == 124 and codes["worker0"] == 1 and codes["worker1"] == 1, out
    scheduler = f"{hosts[0][1]}:{PORT}"
    assert "scheduler: the job did not end within 40 s" in out["scheduler"][1]
    assert re.search(f"cannot reach the scheduler at {re.escape(scheduler)}", out["worker1"][1])
    assert re.search(f"the scheduler at {re.escape(scheduler)} answers, so a server or another "
                     f"worker has stopped", out["worker0"][1])
