"""Checkpoints: resume after SIGKILL bit for bit, corrupt ones passed over, runs that cannot resume say why."""
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import time
import types

import mxnet as mx
import pytest

from common import QUICK, TINY, StopAt, assert_same_params, kill_when, skip_unless_ci
from resnet_gluon import build_resnet
from resnet_gluon.checkpoint import (CheckpointError, find_checkpoints, load_checkpoint,
                                     sha256)
from resnet_gluon.config import TrainConfig
from resnet_gluon.data import load_data_fashion_mnist
from resnet_gluon.train import fit


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(cli, tmp_path, reference_run):
    run = tmp_path / "run"
    args = ["train", "--out", str(run), *QUICK]
    # Killed twice: mid-epoch (after a step checkpoint), then after the first epoch's end.
    for condition, inside in ((lambda c: len(c) >= 1, True),
                              (lambda c: any(os.path.basename(x) >= "ckpt-0001" for x in c),
                               False)):
        proc = cli.popen(*args, *(["--resume"] if find_checkpoints(str(run)) else []))
        kill_when(proc, run, condition)
        assert not (run / "model.params").exists()
        if inside:  # the first kill came inside an epoch: its newest checkpoint is a step's
            step = int(os.path.basename(find_checkpoints(str(run))[-1]).split("-")[2])
            assert step > 0, find_checkpoints(str(run))
    result = cli.here("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout
    assert "warning: the checkpoint was written with OMP_NUM_THREADS" not in result.stdout
    assert_same_params(run / "model.params", reference_run / "model.params")
    assert (run / "model.params").read_bytes() == (reference_run / "model.params").read_bytes()
    ours = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (reference_run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ours] == \
           [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ref]


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(cli, tmp_path, reference_run):
    run2 = tmp_path / "run"
    proc = cli.popen("train", "--out", str(run2), *QUICK)
    kill_when(proc, run2, lambda c: any(os.path.basename(x) >= "ckpt-0001" for x in c))
    newest = find_checkpoints(str(run2))[-1]
    params = os.path.join(newest, "net.params")
    with open(params, "r+b") as f:  # truncate it
        f.truncate(os.path.getsize(params) // 2)
    with pytest.raises(CheckpointError, match=re.escape(params) + " is truncated or corrupt"):
        load_checkpoint(newest)
    result = cli.here("train", "--out", str(run2), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"warning: skipping checkpoint {newest}" in result.stdout
    assert_same_params(run2 / "model.params", reference_run / "model.params")


def test_no_usable_checkpoint_is_a_clear_error(cli, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "ckpt-0001-000000").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-0001-000000" / "state.json").write_text("{trunc")
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    result = cli.here("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 1
    assert "state.json is truncated or corrupt" in result.stdout
    assert "no usable checkpoint" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_script_resumes_exactly_after_building_other_nets(tmp_path):
    # gluon.Trainer sorts a ParameterDict by name, and names count up with every block a
    # process builds (conv0_ in a fresh one, conv20_ after one more net): the optimizer
    # state, kept by position, must follow the parameters, not their names.
    config = TrainConfig(batch_size=64, epochs=1, resize=28, limit_train=256, limit_test=64,
                         momentum=0.9, checkpoint_every=2)
    data = lambda: load_data_fashion_mnist(64, resize=28, limit_train=256, limit_test=64)
    quiet = dict(progress=False, log=lambda line: None)
    train, test = data()
    with pytest.raises(KeyboardInterrupt):  # the first net of the process: conv0_, ...
        fit(build_resnet(18, in_channels=1), StopAt(train, 2), test, config,
            run_dir=str(tmp_path / "cut"), **quiet)
    (step,) = find_checkpoints(str(tmp_path / "cut"))
    assert step.endswith("ckpt-0000-000002")

    # The same checkpoint as written before param_order: its momenta in the name-sorted
    # order of the parameters, named as in a fresh process (every command-line run), or
    # as in a script's process that had built another net first.
    def as_before(run, names_after_another_net):
        shutil.copytree(tmp_path / "cut", tmp_path / run)
        old = os.path.join(str(tmp_path / run), "checkpoints", "ckpt-0000-000002")
        with open(os.path.join(old, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        order = state.pop("param_order")
        with mx.name.NameManager():
            if names_after_another_net:
                build_resnet(18)
            net = build_resnet(18, in_channels=1)
        names = {id(p): n for n, p in net._collect_params_with_prefix().items()}
        params = net.collect_params()
        by_name = [order.index(names[id(params[k])]) for k in sorted(params.keys())]
        assert by_name != list(range(len(order)))  # the orders differ: the test can fail
        with open(os.path.join(old, "trainer.states"), "rb") as f:
            momenta, optimizer = pickle.loads(f.read())
        with open(os.path.join(old, "trainer.states"), "wb") as f:
            f.write(pickle.dumps(({i: momenta[j] for i, j in enumerate(by_name)
                                   if j in momenta}, optimizer)))
        state["files"]["trainer.states"] = sha256(os.path.join(old, "trainer.states"))
        with open(os.path.join(old, "state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f)
        return old

    as_before("old", False)
    shifted = as_before("shifted", True)

    build_resnet(50)  # a shape check in the same notebook: every later name counts on
    fit(build_resnet(18, in_channels=1), *data(), config, run_dir=str(tmp_path / "whole"),
        **quiet)
    for run in ("cut", "old"):
        fit(build_resnet(18, in_channels=1), *data(), config, run_dir=str(tmp_path / run),
            resume=True, **quiet)
        assert_same_params(tmp_path / run / "model.params", tmp_path / "whole" / "model.params")
    # The script's run, where its order cannot be told from a fresh process's: refused by
    # name (not MXNet's shape error mid-step), then resumed as it was started.
    with mx.name.NameManager(), pytest.raises(CheckpointError, match=re.escape(
            shifted) + r"/trainer.states does not fit this net: the optimizer state it keeps "
            r"for [\w.]+ has shape \([\d, ]+\), the parameter \([\d, ]+\)\. It keeps no "
            r"param_order"):
        fit(build_resnet(18, in_channels=1), *data(), config,
            run_dir=str(tmp_path / "shifted"), resume=True, **quiet)
    with mx.name.NameManager():
        build_resnet(18)
        fit(build_resnet(18, in_channels=1), *data(), config,
            run_dir=str(tmp_path / "shifted"), resume=True, **quiet)
    assert_same_params(tmp_path / "shifted" / "model.params", tmp_path / "whole" / "model.params")


def test_resume_with_other_options_is_refused(cli, tmp_path, small_run):
    result = cli.here("train", "--out", str(small_run), "--resume", "--lr", "0.1",
                  "--no-progress")
    assert result.returncode == 1
    assert "lr: run has 0.02, now 0.1" in result.stderr


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_the_run_resumes_from_its_start(cli, tmp_path):
    # Interrupted in epoch 1, before any checkpoint: the run starts again from its beginning.
    run = tmp_path / "run"
    args = ["train", "--out", str(run), *TINY, "--epochs", "1"]
    proc = cli.popen(*args)
    deadline = time.time() + 120
    while not (run / "config.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err and not find_checkpoints(str(run))
    assert err.strip().splitlines()[-1] == (
        f"resnet-gluon train: error: interrupted; continue it with: python -m resnet_gluon "
        f"train --out {run} --resume")
    result = cli.here("train", "--out", str(run), "--resume")
    assert result.returncode == 0, result.stderr
    assert f"no checkpoint in {run} yet: the run ended before its first one" in result.stdout
    reference = cli.here(*args[:2], str(tmp_path / "reference"), *args[3:])
    assert reference.returncode == 0, reference.stderr
    assert_same_params(run / "model.params", tmp_path / "reference" / "model.params")


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB file system of its own (tmpfs): room for one checkpoint, not two."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_unless_ci(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_names_the_file_and_keeps_the_last_checkpoint(cli, small_disk):
    run = small_disk / "run"
    result = cli.here("train", "--out", str(run), *TINY, "--epochs", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == (f"resnet-gluon train: error: {run}/checkpoints/ckpt-0002-000000: No space "
                    f"left on device. Free some space, then continue with --resume: the last "
                    f"checkpoint is kept (python -m resnet_gluon train --out {run} --resume).")
    (kept,) = find_checkpoints(str(run))
    assert load_checkpoint(kept)["epoch"] == 1
    assert not [n for n in os.listdir(run / "checkpoints") if n.startswith(".")]


def test_a_read_only_directory_is_named(cli, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = cli.here("train", "--out", str(small_disk / "run"), *TINY)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"error: {small_disk / 'run'}: Read-only file system. Choose a directory you can "
            f"write to.") in result.stderr


def test_a_state_file_without_the_loops_position_is_named(small_run, tmp_path):
    ckpt = tmp_path / "ckpt-0003-000000"
    shutil.copytree(find_checkpoints(str(small_run))[-1], ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    del state["config"], state["history"]
    (ckpt / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=re.escape(str(ckpt / "state.json"))
                       + r" is truncated or corrupt \(it lacks history, config\)"):
        load_checkpoint(str(ckpt))


def test_an_interrupted_mxnet_constructor_leaves_no_traceback_after_ctrl_c():
    # Under load, Ctrl-C once landed inside an MXNet Symbol's constructor; the half-built
    # Symbol's __del__ then printed "Exception ignored ... AttributeError: 'Symbol' object has
    # no attribute 'handle'" with its traceback. After Ctrl-C the CLI drops that one kind.
    from mxnet._ctypes.symbol import SymbolBase

    from resnet_gluon._checks import _quiet_half_built

    seen = []
    hook = _quiet_half_built(seen.append)
    half_built = types.SimpleNamespace(
        exc_value=AttributeError("'Symbol' object has no attribute 'handle'"),
        object=SymbolBase.__del__)
    other = types.SimpleNamespace(exc_value=AttributeError("x"), object=_ours)
    hook(half_built)
    hook(other)
    assert seen == [other]


def _ours():
    """A function of ours: what it raises unraisably must still be printed."""
