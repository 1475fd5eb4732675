"""Training on the real Fashion-MNIST: learning, resume after SIGKILL, checkpoints, devices."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from resnet_gluon import build_resnet
from resnet_gluon.data import BatchIter, load_data_fashion_mnist, load_fashion_mnist
from resnet_gluon.train import (CheckpointError, TrainConfig, TrainingDiverged, evaluate, fit,
                                find_checkpoints, load_checkpoint, lr_at, parse_ctx)

LINE = re.compile(r"^epoch (\d+), loss (\d+\.\d{4}), train acc (\d\.\d{3}), "
                  r"test acc (\d\.\d{3}), time \d+\.\d sec$")

# Quick runs: the first 1,024 real images at the native 28x28, 16 steps an epoch.
SMALL = ["--limit-train", "1024", "--limit-test", "256", "--resize", "28", "--batch-size", "64",
         "--no-progress"]
# With momentum (optimizer state to resume) and step checkpoints inside epochs.
QUICK = SMALL + ["--epochs", "3", "--checkpoint-every", "5", "--momentum", "0.9",
                 "--wd", "5e-4", "--lr", "0.02"]


def _cli(*args, timeout=600, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "resnet_gluon", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)


def _params(path):
    return {k: v.asnumpy() for k, v in nd.load(str(path)).items()}


def _assert_same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def test_loss_falls_and_accuracy_rises_within_a_few_hundred_steps():
    # 240 steps of 64 real images, the book's lr, plain SGD: 0.1 is chance.
    config = TrainConfig(lr=0.05, batch_size=64, epochs=3, resize=28,
                         limit_train=5120, limit_test=1000)
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=5120,
                                                    limit_test=1000)
    lines = []
    history = fit(build_resnet(18, in_channels=1), train_iter, test_iter, config,
                  progress=False, log=lines.append)
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]
    losses = [r["loss"] for r in history]
    assert losses[2] < losses[1] < losses[0]
    assert history[-1]["train_acc"] > 0.75 and history[-1]["test_acc"] > 0.7


def test_fit_takes_the_steps_train_ch5_takes_a_short_last_batch_included():
    # 300 images in batches of 256: the last batch has 44.  train_ch5 calls
    # trainer.step(256) for it too; fit must land on the very same weights.
    import d2lzh as d2l
    from mxnet import gluon

    def data():
        return load_data_fashion_mnist(256, resize=28, limit_train=300, limit_test=64)

    ours = build_resnet(18, in_channels=1)
    ours.initialize(mx.init.Xavier())
    ours(nd.zeros((1, 1, 28, 28)))
    book = build_resnet(18, in_channels=1)
    book.initialize()
    book(nd.zeros((1, 1, 28, 28)))
    for p, q in zip(ours.collect_params().values(), book.collect_params().values()):
        q.set_data(p.data())
    fit(ours, *data(), TrainConfig(epochs=2, resize=28, limit_train=300, limit_test=64),
        progress=False, hybridize=False, log=lambda line: None)
    train_iter, test_iter = data()
    d2l.train_ch5(book, train_iter, test_iter, 256,
                  gluon.Trainer(book.collect_params(), "sgd", {"learning_rate": 0.05}),
                  mx.cpu(), 2)
    for (name, p), q in zip(ours.collect_params().items(), book.collect_params().values()):
        np.testing.assert_array_equal(p.data().asnumpy(), q.data().asnumpy(), err_msg=name)


def test_run_directory(tmp_path):
    run = tmp_path / "run"
    result = _cli("train", "--out", str(run), *SMALL[:-1], "--epochs", "2")  # with the bar
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"training ResNet-18 on cpu(0); run directory {run}"
    assert [LINE.match(line).group(1) for line in lines[1:]] == ["1", "2"]
    config = json.loads((run / "config.json").read_text())
    assert config["resize"] == 28 and config["lr"] == 0.05 and config["momentum"] == 0.0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert {"epoch", "loss", "train_acc", "test_acc", "time"} <= set(metrics[0])
    for m, line in zip(metrics, lines[1:]):
        assert f"loss {m['loss']:.4f}, train acc {m['train_acc']:.3f}" in line
    net = build_resnet(18)
    net.load_parameters(str(run / "model.params"))
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [os.path.basename(c) for c in find_checkpoints(str(run))] == [
        "ckpt-0001-000000", "ckpt-0002-000000"]
    assert "img/s" in result.stderr  # the tqdm bar, with throughput


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


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("reference") / "run"
    result = _cli("train", "--out", str(run), *QUICK)
    assert result.returncode == 0, result.stderr
    return run


def test_resume_after_sigkill_is_bit_identical(tmp_path, reference_run):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "resnet_gluon", "train", "--out", str(run), *QUICK]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    # Killed twice: mid-epoch (after a step checkpoint), then after an epoch's end.
    for condition in (lambda c: len(c) >= 1,
                      lambda c: any(os.path.basename(x) >= "ckpt-0002" for x in c)):
        proc = subprocess.Popen(cmd + (["--resume"] if find_checkpoints(str(run)) else []),
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        _kill_when(proc, run, condition)
        assert not (run / "model.params").exists()
    result = _cli("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout
    assert "warning: the checkpoint was written with OMP_NUM_THREADS" not in result.stdout
    _assert_same_params(run / "model.params", reference_run / "model.params")
    assert (run / "model.params").read_bytes() == (reference_run / "model.params").read_bytes()
    ours = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (reference_run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ours] == \
           [(m["epoch"], m["loss"], m["train_acc"], m["test_acc"]) for m in ref]


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, reference_run):
    run2 = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "resnet_gluon", "train", "--out", str(run2),
                             *QUICK], env=dict(os.environ, OMP_NUM_THREADS="2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, run2, lambda c: any(os.path.basename(x) >= "ckpt-0002" for x in c))
    newest = find_checkpoints(str(run2))[-1]
    params = os.path.join(newest, "net.params")
    with open(params, "r+b") as f:  # truncate it
        f.truncate(os.path.getsize(params) // 2)
    with pytest.raises(CheckpointError, match=re.escape(params) + " is truncated or corrupt"):
        load_checkpoint(newest)
    result = _cli("train", "--out", str(run2), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"warning: skipping checkpoint {newest}" in result.stdout
    _assert_same_params(run2 / "model.params", reference_run / "model.params")


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "ckpt-0001-000000").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-0001-000000" / "state.json").write_text("{trunc")
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    result = _cli("train", "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 1
    assert "state.json is truncated or corrupt" in result.stdout
    assert "no usable checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_a_new_run_does_not_overwrite_an_old_one(reference_run):
    before = (reference_run / "model.params").read_bytes()
    result = _cli("train", "--out", str(reference_run), *SMALL)
    assert result.returncode == 2
    assert f"{reference_run} already holds a run. Continue it with --resume" in result.stderr
    assert (reference_run / "model.params").read_bytes() == before


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


def test_resume_with_other_options_is_refused(tmp_path, reference_run):
    result = _cli("train", "--out", str(reference_run), "--resume", "--lr", "0.1",
                  "--no-progress")
    assert result.returncode == 1
    assert "lr: run has 0.02, now 0.1" in result.stderr


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # An absurd learning rate: one update and the next loss is NaN.
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=256,
                                                    limit_test=64)
    config = TrainConfig(lr=1e8, batch_size=64, epochs=3, resize=28, limit_train=256,
                         limit_test=64, checkpoint_every=1, keep_checkpoints=5)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 1, step 2 \(lr 1e\+08\)"
                                               r".*last good checkpoint is .*ckpt-0000-000001"
                                               r".*Lower --lr"):
        fit(build_resnet(18, in_channels=1), train_iter, test_iter, config,
            run_dir=str(tmp_path), progress=False, log=lambda _: None)
    last = find_checkpoints(str(tmp_path))[-1]
    assert load_checkpoint(last)["step"] == 1
    net = build_resnet(18)
    net.load_parameters(os.path.join(last, "net.params"))
    assert all(np.isfinite(p.data().asnumpy()).all() for p in net.collect_params().values())
    assert not (tmp_path / "model.params").exists()


def test_two_contexts_match_one_context():
    # BatchNorm normalises over each device's share of the batch (as in MXNet and
    # PyTorch's DataParallel); with two identical halves the shares' statistics are
    # the full batch's, so what is left to compare is the split and the aggregation.
    # In float64: in float32 MXNet's BatchNorm alone gives gradients 1.6% apart for
    # [A; A] at batch 32 and A at batch 16 (2e-11 in float64), which the next steps
    # amplify; that is rounding in the operator, not the multi-device path.
    images, labels = load_fashion_mnist("train")
    halves = [(np.concatenate([images[i:i + 16]] * 2), np.concatenate([labels[i:i + 16]] * 2))
              for i in range(0, 64, 16)]

    class Doubled:
        def __len__(self):
            return len(halves)

        def batches(self, epoch, start=0):
            for x, y in halves[start:]:
                yield (nd.array(x[:, None] / 255.0, dtype="float64"),
                       nd.array(y, dtype="float64"))

    test = [(nd.array(images[:32, None] / 255.0, dtype="float64"),
             nd.array(labels[:32], dtype="float64"))]
    config = TrainConfig(lr=0.05, momentum=0.9, batch_size=32, epochs=1, resize=28)
    results = []
    for ctx in ("cpu:0", "cpu:0,cpu:1"):
        net = build_resnet(18, in_channels=1, small_input=True)
        net.cast("float64")
        fit(net, Doubled(), test, config, ctx=ctx, progress=False, log=lambda _: None)
        results.append({k: v.data(mx.cpu(0)).asnumpy()
                        for k, v in net._collect_params_with_prefix().items()})
    one, two = results
    assert max(np.abs(one[k] - two[k]).max() for k in one) <= 1e-5
    # the four steps did move the weights and the statistics
    fresh = build_resnet(18, in_channels=1, small_input=True)
    fresh.cast("float64")
    mx.random.seed(0)
    fresh.initialize(mx.init.Xavier())
    start = {k: v.data().asnumpy() for k, v in fresh._collect_params_with_prefix().items()}
    assert np.abs(one["0.weight"] - start["0.weight"]).max() > 1e-3
    assert np.abs(one["1.running_mean"]).max() > 1e-3


def test_two_contexts_train_and_agree_on_real_batches():
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=1024,
                                                    limit_test=256)
    config = TrainConfig(batch_size=64, epochs=2, resize=28)
    net = build_resnet(18, in_channels=1)
    history = fit(net, train_iter, test_iter, config, ctx="cpu:0,cpu:1", progress=False,
                  log=lambda _: None)
    assert history[1]["loss"] < history[0]["loss"]
    for p in net.collect_params().values():  # every device holds the same weights
        a, b = p.list_data()
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_evaluate_reports_per_class_accuracy_and_confusion():
    images, labels = load_fashion_mnist("test")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    result = evaluate(net, BatchIter(images[:300], labels[:300], 100, resize=28))
    assert result.confusion.shape == (10, 10) and result.count == 300
    assert result.confusion.sum(axis=1).tolist() == np.bincount(labels[:300], minlength=10).tolist()
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / 300)


def test_flip_test_time_augmentation_averages_an_image_and_its_mirror():
    images, labels = load_fashion_mnist("test")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    X = nd.array(images[:200, None], dtype="float32") / 255
    scores = nd.softmax(net(X)) + nd.softmax(net(X.flip(axis=3)))
    expected = scores.argmax(axis=1).asnumpy().astype(np.int64)
    tta = evaluate(net, BatchIter(images[:200], labels[:200], 50, resize=28), flip=True)
    assert tta.accuracy == pytest.approx(float(np.mean(expected == labels[:200])))
    # mirroring the test images changes nothing once both views are averaged
    mirrored = evaluate(net, BatchIter(images[:200, :, ::-1].copy(), labels[:200], 50, resize=28),
                        flip=True)
    np.testing.assert_array_equal(mirrored.confusion, tta.confusion)


def test_evaluate_cli(reference_run):
    result = _cli("evaluate", "--params", str(reference_run / "model.params"),
                  "--limit-test", "500")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert re.match(r"test acc 0\.\d{4} \(500 images, ResNet-18, resize 28\)$", out[0])
    assert out[1] == "per-class accuracy:"
    assert out[2].split()[0] == "t-shirt" and out[11].split()[:2] == ["ankle", "boot"]
    assert out[12].startswith("confusion matrix")
    rows = [list(map(int, line.split()[-10:])) for line in out[14:24]]
    assert sum(map(sum, rows)) == 500


def test_evaluate_cli_names_an_architecture_mismatch(reference_run, tmp_path):
    result = _cli("evaluate", "--params", str(reference_run / "model.params"), "--depth", "34",
                  "--limit-test", "10")
    assert result.returncode == 2
    assert "does not fit ResNet-34" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "argument --lr: expected a number > 0"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer"),
    (["--ctx", "tpu:0"], "bad context 'tpu:0'"),
    (["--ctx", "gpu:0"], "gpu:0 asked for but this MXNet sees 0 GPU(s)"),
    (["--lr-schedule", "linear"], "invalid choice: 'linear'"),
    (["--resume"], "--resume needs --out RUN_DIR"),
])
def test_bad_train_options(args, message):
    result = _cli("train", *args, "--no-progress")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_data_lists_where_it_looked(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    result = _cli("train", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "holds only part of Fashion-MNIST" in result.stderr
    assert "apt-get install dataset-fashion-mnist" in result.stderr


def test_lr_schedule_is_stateless():
    c = TrainConfig(lr=0.1, epochs=10, lr_schedule="cosine", warmup_epochs=1)
    assert lr_at(c, 0, 0, 100) == pytest.approx(0.001)
    assert lr_at(c, 1, 0, 100) == pytest.approx(0.1)
    assert lr_at(c, 5, 50, 100) == pytest.approx(0.05)
    assert lr_at(TrainConfig(), 3, 7, 100) == 0.05
    assert parse_ctx("cpu:0,cpu:1") == [mx.cpu(0), mx.cpu(1)]


def test_dist_sync_over_loopback(tmp_path):
    run = tmp_path / "run"
    result = _cli("launch", "-n", "2", "-s", "1", "--timeout", "240", "--", "train", "--out",
                  str(run), "--limit-train", "512", "--limit-test", "128", "--resize", "28",
                  "--batch-size", "64", "--epochs", "1", "--no-progress", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(2 workers)" in result.stdout
    _assert_same_params(run / "model.params", run / "model.worker1.params")
    pids = [int(p) for p in re.findall(r"launch: \w+(?: \d)? pid (\d+)", result.stderr)]
    assert len(pids) == 4  # scheduler, server, two workers
    assert not [pid for pid in pids if _alive(pid)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_dead_worker_stops_the_others(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "resnet_gluon", "launch", "-n", "2", "--timeout", "240", "--",
         "train", "--out", str(tmp_path / "run"), "--limit-train", "4096", "--resize", "28",
         "--batch-size", "64", "--epochs", "50", "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    assert not [pid for pid in pids if _alive(pid)]
