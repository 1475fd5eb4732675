"""Training on the real Fashion-MNIST: it learns, it takes train_ch5's steps, it stops on NaN, several devices."""
import dataclasses
import json
import os
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from common import LINE, StopAt, load_params
from resnet_gluon import build_resnet
from resnet_gluon.checkpoint import find_checkpoints, load_checkpoint
from resnet_gluon.config import TrainConfig
from resnet_gluon.data import load_data_fashion_mnist, load_fashion_mnist, load_splits
from resnet_gluon.ema import WeightAverage
from resnet_gluon.evaluate import evaluate
from resnet_gluon.trained import load_trained
from resnet_gluon.train import TrainingDiverged, _tested, fit, lr_at


@pytest.mark.slow
def test_loss_falls_and_accuracy_rises_within_a_few_hundred_steps():
    # 96 steps of 64 real images, the book's lr, plain SGD: 0.1 is chance.  Seeds 0, 1 and 2
    # ended at train/test accuracy 0.810/0.744, 0.802/0.776 and 0.792/0.753 on an AVX2 EPYC.
    config = TrainConfig(lr=0.05, batch_size=64, epochs=3, resize=28,
                         limit_train=2048, limit_test=1000)
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=2048,
                                                    limit_test=1000)
    lines = []
    history = fit(build_resnet(18, in_channels=1), train_iter, test_iter, config,
                  progress=False, log=lines.append)
    assert [LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]
    losses = [r["loss"] for r in history]
    assert losses[2] < losses[1] < losses[0]
    assert history[-1]["train_acc"] > 0.75 and history[-1]["test_acc"] > 0.7


@pytest.mark.slow
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


@pytest.mark.slow
def test_two_contexts_match_one_context():
    # BatchNorm normalises over each device's share of the batch (as in MXNet and
    # PyTorch's DataParallel); with two identical halves the shares' statistics are
    # the full batch's, so what is left to compare is the split and the aggregation.
    # In float64: in float32 MXNet's BatchNorm alone gives gradients 1.6% apart for
    # [A; A] at batch 32 and A at batch 16 (2e-11 in float64), which the next steps
    # amplify; that is rounding in the operator, not the multi-device path.
    # Every other pixel (14x14): float64 runs MXNet's reference kernels, 4x the cost at 28x28.
    images, labels = load_fashion_mnist("train")
    images = images[:, ::2, ::2]
    halves = [(np.concatenate([images[i:i + 16]] * 2), np.concatenate([labels[i:i + 16]] * 2))
              for i in range(0, 32, 16)]

    class Doubled:
        def __len__(self):
            return len(halves)

        def batches(self, epoch, start=0):
            for x, y in halves[start:]:
                yield (nd.array(x[:, None] / 255.0, dtype="float64"),
                       nd.array(y, dtype="float64"))

    test = [(nd.array(images[:32, None] / 255.0, dtype="float64"),
             nd.array(labels[:32], dtype="float64"))]
    config = TrainConfig(lr=0.05, momentum=0.9, batch_size=32, epochs=1, resize=14)
    results = []
    for ctx in ("cpu:0", "cpu:0,cpu:1"):
        net = build_resnet(18, in_channels=1, small_input=True)
        net.cast("float64")
        fit(net, Doubled(), test, config, ctx=ctx, progress=False, log=lambda _: None)
        results.append({k: v.data(mx.cpu(0)).asnumpy()
                        for k, v in net._collect_params_with_prefix().items()})
    one, two = results
    assert max(np.abs(one[k] - two[k]).max() for k in one) <= 1e-9  # float64: ~2e-11 apart
    # the two steps did move the weights and the statistics
    fresh = build_resnet(18, in_channels=1, small_input=True)
    fresh.cast("float64")
    mx.random.seed(0)
    fresh.initialize(mx.init.Xavier())
    start = {k: v.data().asnumpy() for k, v in fresh._collect_params_with_prefix().items()}
    assert np.abs(one["0.weight"] - start["0.weight"]).max() > 1e-3
    assert np.abs(one["1.running_mean"]).max() > 1e-3


@pytest.mark.slow
def test_two_contexts_train_and_agree_on_real_batches():
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=512,
                                                    limit_test=256)
    config = TrainConfig(batch_size=64, epochs=2, resize=28)
    net = build_resnet(18, in_channels=1)
    history = fit(net, train_iter, test_iter, config, ctx="cpu:0,cpu:1", progress=False,
                  log=lambda _: None)
    assert history[1]["loss"] < history[0]["loss"]
    for p in net.collect_params().values():  # every device holds the same weights
        a, b = p.list_data()
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_lr_schedule_is_stateless():
    c = TrainConfig(lr=0.1, epochs=10, lr_schedule="cosine", warmup_epochs=1)
    assert lr_at(c, 0, 0, 100) == pytest.approx(0.001)
    assert lr_at(c, 1, 0, 100) == pytest.approx(0.1)
    assert lr_at(c, 5, 50, 100) == pytest.approx(0.05)
    assert lr_at(TrainConfig(), 3, 7, 100) == 0.05


def test_fit_on_no_batches_says_so_and_writes_nothing(tmp_path):
    _, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=64, limit_test=64)
    with pytest.raises(ValueError, match="train_data has no batches: nothing to train on"):
        fit(build_resnet(18, in_channels=1), [], test_iter, TrainConfig(resize=28),
            run_dir=str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_validation_split_is_reported_each_epoch_beside_the_test_accuracy(tmp_path, cli):
    data = load_splits(64, resize=28, limit_train=256, limit_test=64, val_split=128)
    config = TrainConfig(batch_size=64, epochs=1, resize=28, limit_train=256, limit_test=64,
                         val_split=128)
    lines = []
    history = fit(build_resnet(18, in_channels=1), data.train, data.test, config,
                  run_dir=str(tmp_path / "run"), progress=False, log=lines.append,
                  val_data=data.val)
    assert re.fullmatch(r"epoch 1, loss \d\.\d{4}, train acc \d\.\d{3}, val acc \d\.\d{3}, "
                        r"test acc \d\.\d{3}, time \d+\.\d sec", lines[0]), lines[0]
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert 0 <= metrics["val_acc"] <= 1 and metrics["val_acc"] == history[0]["val_acc"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["val_split"] == 128
    # With a weight average, the raw weights' validation accuracy is kept beside it.
    config = dataclasses.replace(config, ema=0.9)
    history = fit(build_resnet(18, in_channels=1), data.train, data.test, config,
                  run_dir=str(tmp_path / "ema"), progress=False, log=lambda line: None,
                  val_data=data.val)
    raw = build_resnet(18, in_channels=1)
    raw.load_parameters(os.path.join(find_checkpoints(str(tmp_path / "ema"))[-1], "net.params"))
    assert history[0]["val_acc_raw"] == evaluate(raw, data.val).accuracy
    assert history[0]["val_acc"] == evaluate(load_trained(
        str(tmp_path / "ema" / "model.params"))[0], data.val).accuracy
    result = cli("train", "--val-split", "60000", "--out", str(tmp_path / "r2"), "--no-progress")
    assert result.returncode == 2
    assert "val_split must leave training examples: got 60000 of 60000" in result.stderr


@pytest.mark.slow
def test_the_weight_average_is_what_is_evaluated_saved_and_resumed(tmp_path):
    # The average's arithmetic: d = min(decay, (1 + n) / (10 + n)) after the n-th update.
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    ema = WeightAverage(net, decay=0.9)
    w = net.collect_params()["conv0_weight"]
    start = w.data().copy()
    w.set_data(start + 1)
    ema.update()
    np.testing.assert_allclose(ema.average["0.weight"].asnumpy(),
                               (start + 1 - 2 / 11).asnumpy(), rtol=1e-6)

    config = TrainConfig(batch_size=64, epochs=2, resize=28, limit_train=256, limit_test=64,
                         momentum=0.9, ema=0.9, checkpoint_every=2)
    data = lambda: load_data_fashion_mnist(64, resize=28, limit_train=256, limit_test=64)

    def run(name, **kwargs):
        net = build_resnet(18, in_channels=1)
        history = fit(net, *data(), config, run_dir=str(tmp_path / name), progress=False,
                      log=lambda line: None, **kwargs)
        return net, history

    net, history = run("whole")
    last = find_checkpoints(str(tmp_path / "whole"))[-1]
    saved, raw = load_params(tmp_path / "whole" / "model.params"), load_params(
        os.path.join(last, "net.params"))
    average = load_params(os.path.join(last, "ema.params"))
    assert all(np.array_equal(saved[k], average[k]) for k in saved)  # the average is saved
    assert max(np.abs(saved[k] - raw[k]).max() for k in saved) > 1e-3  # and is not the net
    assert evaluate(net, data()[1]).accuracy == history[-1]["test_acc"]  # and is evaluated

    train, test = data()
    with pytest.raises(KeyboardInterrupt):
        fit(build_resnet(18, in_channels=1), StopAt(train, 6), test, config,  # step 6 of 8
            run_dir=str(tmp_path / "cut"), progress=False, log=lambda line: None)
    _, resumed = run("cut", resume=True)
    same = lambda h: [(r["loss"], r["train_acc"], r["test_acc"]) for r in h]
    assert same(resumed) == same(history)
    for k, v in load_params(tmp_path / "cut" / "model.params").items():
        np.testing.assert_array_equal(v, saved[k], err_msg=k)


# --------------------------------------------------------------------------- data fit must refuse

def _batches(labels=None, dtype="float32", count=2):
    """``count`` real batches of 32 images at 28x28, with the labels given (or their own)."""
    train, _ = load_data_fashion_mnist(32, resize=28, limit_train=32 * count, limit_test=32)
    return [(X, nd.array(labels if labels is not None else y.asnumpy(), dtype=dtype))
            for X, y in train.batches(0)]


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("bad", [15, -1, 2.5])
def test_labels_the_net_has_no_output_for_stop_fit_before_their_update(bad, smoothing):
    net = build_resnet(18, in_channels=1)
    config = TrainConfig(epochs=1, resize=28, label_smoothing=smoothing)
    data = _batches()
    data[1] = (data[1][0], nd.array([bad] * 32))  # before: trained on, a loss reported
    with pytest.raises(ValueError, match=f"fit got the label {bad:g}, but the net has 10 classes"):
        fit(net, data, data[:1], config, progress=False, log=lambda line: None)


def test_integer_labels_train_and_a_generator_is_refused_with_what_to_do():
    config = TrainConfig(epochs=1, resize=28)
    ints = _batches(dtype="int32")  # before: an MXNet type-inference trace
    history = fit(build_resnet(18, in_channels=1), ints, ints, config, progress=False,
                  log=lambda line: None)
    assert np.isfinite(history[0]["loss"]) and 0 <= history[0]["train_acc"] <= 1
    with pytest.raises(TypeError, match="train_data must know its number of batches .* got a "
                                        "generator"):
        fit(build_resnet(18, in_channels=1), (b for b in ints), ints, config, progress=False)


class _Loader:
    """A loader as a user's DataLoader is to fit: a length, a fresh iteration each epoch,
    no way to rebuild a given epoch's batches; it can be made to stop as Ctrl-C would."""

    def __init__(self, batches, stop_at=None):
        self.batches_, self.stop_at, self.seen = batches, stop_at, 0

    def __len__(self):
        return len(self.batches_)

    def __iter__(self):
        for batch in self.batches_:
            if self.seen == self.stop_at:
                raise KeyboardInterrupt
            self.seen += 1
            yield batch


@pytest.mark.slow
def test_resuming_with_a_source_that_cannot_rebuild_its_batches_warns(tmp_path):
    config = TrainConfig(epochs=2, resize=28, checkpoint_every=1)
    data = _batches(count=2)
    with pytest.raises(KeyboardInterrupt):
        fit(build_resnet(18, in_channels=1), _Loader(data, stop_at=3), data, config,
            run_dir=str(tmp_path / "run"), progress=False, log=lambda line: None)
    lines = []
    fit(build_resnet(18, in_channels=1), _Loader(data), data, config,
        run_dir=str(tmp_path / "run"), resume=True, progress=False, log=lines.append)
    assert any("will not be bit-identical" in line and "_Loader" in line for line in lines), lines
    # a list of batches rebuilds every epoch: no warning
    lines = []
    with pytest.raises(KeyboardInterrupt):
        fit(build_resnet(18, in_channels=1), _Loader(data, stop_at=3), data, config,
            run_dir=str(tmp_path / "again"), progress=False, log=lambda line: None)
    fit(build_resnet(18, in_channels=1), data, data, config, run_dir=str(tmp_path / "again"),
        resume=True, progress=False, log=lines.append)
    assert not any("bit-identical" in line for line in lines), lines


def test_test_every_reads_the_test_set_on_its_epochs_and_after_the_last():
    assert [_tested("T", TrainConfig(epochs=5, test_every=2), e) for e in range(5)] == \
        [None, "T", None, "T", "T"]
    assert [_tested("T", TrainConfig(epochs=3, test_every=0), e) for e in range(3)] == \
        [None, None, "T"]
    train_iter, test_iter = load_data_fashion_mnist(64, resize=28, limit_train=128,
                                                    limit_test=64)
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    history = fit(net, train_iter, test_iter,
                  TrainConfig(epochs=3, batch_size=64, resize=28, test_every=0),
                  progress=False, hybridize=False, log=lambda line: None)
    assert ["test_acc" in record for record in history] == [False, False, True]
