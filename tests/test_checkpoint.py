"""Checkpoints: resume after SIGKILL bit for bit, corrupt ones passed over, runs that cannot resume say why."""
import json
import os
import re
import signal
import time

import pytest

from common import QUICK, assert_same_params
from resnet_gluon import build_resnet
from resnet_gluon.checkpoint import CheckpointError, find_checkpoints, load_checkpoint
from resnet_gluon.config import TrainConfig
from resnet_gluon.data import load_data_fashion_mnist
from resnet_gluon.train import fit


def _kill_when(proc, run, condition, limit=300):
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        if condition(find_checkpoints(str(run))):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"run ended or stalled before the kill point: {proc.stderr.read()}")


def test_resume_after_sigkill_is_bit_identical(cli, tmp_path, reference_run):
    run = tmp_path / "run"
    args = ["train", "--out", str(run), *QUICK]
    # Killed twice: mid-epoch (after a step checkpoint), then after an epoch's end.
    for condition in (lambda c: len(c) >= 1,
                      lambda c: any(os.path.basename(x) >= "ckpt-0002" for x in c)):
        proc = cli.popen(*args, *(["--resume"] if find_checkpoints(str(run)) else []))
        _kill_when(proc, run, condition)
        assert not (run / "model.params").exists()
    result = cli("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout
    assert "warning: the checkpoint was written with OMP_NUM_THREADS" not in result.stdout
    assert_same_params(run / "model.params", reference_run / "model.params")
    assert (run / "model.params").read_bytes() == (reference_run / "model.params").read_bytes()
    ours = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (reference_run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ours] == \
           [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ref]


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(cli, tmp_path, reference_run):
    run2 = tmp_path / "run"
    proc = cli.popen("train", "--out", str(run2), *QUICK)
    _kill_when(proc, run2, lambda c: any(os.path.basename(x) >= "ckpt-0002" for x in c))
    newest = find_checkpoints(str(run2))[-1]
    params = os.path.join(newest, "net.params")
    with open(params, "r+b") as f:  # truncate it
        f.truncate(os.path.getsize(params) // 2)
    with pytest.raises(CheckpointError, match=re.escape(params) + " is truncated or corrupt"):
        load_checkpoint(newest)
    result = cli("train", "--out", str(run2), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"warning: skipping checkpoint {newest}" in result.stdout
    assert_same_params(run2 / "model.params", reference_run / "model.params")


def test_no_usable_checkpoint_is_a_clear_error(cli, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "ckpt-0001-000000").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-0001-000000" / "state.json").write_text("{trunc")
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    result = cli("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 1
    assert "state.json is truncated or corrupt" in result.stdout
    assert "no usable checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_resume_under_another_thread_count_warns_that_it_will_not_be_exact(tmp_path, monkeypatch):
    # oneDNN's gradient sums depend on the thread count (1 and 2 threads give
    # different gradient bits on this machine), so exactness needs the same count.
    config = TrainConfig(batch_size=64, epochs=1, resize=28, limit_train=128, limit_test=64)
    lines = []
    for threads in ("2", "1"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=128,
                                                        limit_test=64)
        fit(build_resnet(18, in_channels=1), train_iter, test_iter, config,
            run_dir=str(tmp_path), resume=threads == "1", progress=False, log=lines.append)
    assert ("warning: the checkpoint was written with OMP_NUM_THREADS=2, this process has 1; "
            "the run goes on but will not be bit-identical") in "\n".join(lines)


def test_resume_with_other_options_is_refused(cli, tmp_path, reference_run):
    result = cli("train", "--out", str(reference_run), "--resume", "--lr", "0.1",
                  "--no-progress")
    assert result.returncode == 1
    assert "lr: run has 0.02, now 0.1" in result.stderr
