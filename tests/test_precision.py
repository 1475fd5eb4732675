"""bfloat16: a graph cast at its edges over float32 weights, in training, evaluation and export."""
import collections
import json
import re
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from common import BF16_RUNS, NO_BF16, TINY, StopAt, assert_same_params, load_params, needs_bfloat16
from resnet_gluon import build_resnet, precision
from resnet_gluon.config import TrainConfig
from resnet_gluon.cpu import AmxStatus
from resnet_gluon.data import load_data_fashion_mnist, resize_batch
from resnet_gluon.export import export_symbol, load_symbol
from resnet_gluon.inference import for_inference
from resnet_gluon.precision import mixed_precision
from resnet_gluon.trained import load_trained
from resnet_gluon.train import fit


def _scores(net, X):
    return nd.softmax(net(X)).asnumpy()


@needs_bfloat16
def test_a_bf16_forward_is_close_to_fp32_on_real_images(trained_run, test_images):
    net, _ = load_trained(str(trained_run / "model.params"))
    bf16, _ = load_trained(str(trained_run / "model.params"), dtype="bfloat16")
    X = resize_batch(test_images[0][:256], 96)
    a, b = _scores(net, X), _scores(bf16, X)
    assert b.dtype == np.float32  # scores come back in float32 for the softmax and loss
    assert 0 < np.abs(a - b).max() < 0.05  # bf16 keeps 8 bits of mantissa: close, not equal
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.98


@needs_bfloat16
def test_the_bf16_block_shares_the_nets_float32_parameters():
    net = build_resnet(18, in_channels=1)
    bf16 = mixed_precision(net)  # before initialisation: it uses what the net holds
    net.initialize(mx.init.Xavier())
    assert mixed_precision(net, "float32") is net
    assert set(bf16.collect_params().keys()) == set(net.collect_params().keys())
    before = net.collect_params()["conv0_weight"].data().copy()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    X, y = nd.random.uniform(shape=(8, 1, 32, 32)), nd.arange(8)
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(bf16(X), y)
    loss.backward()
    trainer.step(8)
    after = net.collect_params()["conv0_weight"].data()
    assert after.dtype == np.float32 and net.collect_params()["conv0_weight"].grad().dtype == np.float32
    assert np.abs((after - before).asnumpy()).max() > 0  # the update reached the net


@pytest.mark.slow
@needs_bfloat16
def test_bf16_training_lowers_the_loss_saves_float32_and_resumes_bit_identical(tmp_path):
    config = TrainConfig(batch_size=64, epochs=2, resize=28, limit_train=512, limit_test=64,
                         momentum=0.9, lr=0.02, checkpoint_every=3, dtype="bfloat16")
    data = lambda: load_data_fashion_mnist(64, resize=28, limit_train=512, limit_test=64)

    def run(name, stop_at=None, resume=False):
        train, test = data()
        return fit(build_resnet(18, in_channels=1), StopAt(train, stop_at) if stop_at else train,
                   test, config, run_dir=str(tmp_path / name), resume=resume, progress=False,
                   log=lambda line: None)

    whole = run("whole")
    assert whole[1]["loss"] < whole[0]["loss"] and whole[1]["train_acc"] > 0.5
    assert json.loads((tmp_path / "whole" / "config.json").read_text())["dtype"] == "bfloat16"
    saved = load_params(tmp_path / "whole" / "model.params")
    assert {v.dtype for v in saved.values()} == {np.dtype("float32")}
    net, _ = load_trained(str(tmp_path / "whole" / "model.params"))  # any command loads it
    assert net(nd.zeros((1, 1, 28, 28))).shape == (1, 10)

    with pytest.raises(KeyboardInterrupt):
        run("cut", stop_at=13)  # in epoch 2, after its first step checkpoint
    assert not (tmp_path / "cut" / "model.params").exists()
    resumed = run("cut", resume=True)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]
    assert_same_params(tmp_path / "cut" / "model.params", tmp_path / "whole" / "model.params")


@needs_bfloat16
def test_an_exported_bf16_symbol_keeps_its_casts_and_loads_as_bf16(trained_run, tmp_path,
                                                                   test_images):
    # what export --dtype bfloat16 writes: the folded graph, unfused, cast in the graph
    net, info = load_trained(str(trained_run / "model.params"))
    net = for_inference(net, "bfloat16", fuse=False)
    export_symbol(net, str(tmp_path / "m"), info)
    nodes = json.loads((tmp_path / "m-symbol.json").read_text())["nodes"]
    casts = collections.Counter(n["attrs"]["dtype"] for n in nodes if n["op"] == "amp_cast")
    # in: the data and the weight and bias of 20 convolutions and the dense layer; out: scores
    assert casts == {"bfloat16": 1 + 2 * 21, "float32": 1}
    assert {v.dtype for v in load_params(tmp_path / "m-0000.params").values()} == \
        {np.dtype("float32")}
    loaded, _ = load_symbol(str(tmp_path / "m"))
    X = resize_batch(test_images[0][:32], 96)
    np.testing.assert_allclose(_scores(loaded, X), _scores(net, X), atol=1e-6)


_AVX512 = {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"}
_AMX_FLAGS = _AVX512 | {"avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
_NO_AMX = AmxStatus(False, "this CPU has no AMX")


@pytest.mark.parametrize("flags, amx, case", [
    ({"avx2", "fma"}, _NO_AMX, "unsupported"),
    ({"avx2", "avx512f"}, _NO_AMX, "unsupported"),
    (_AVX512, _NO_AMX, "emulated"),
    (set(), _NO_AMX, "emulated"),
    (_AVX512 | {"avx512_bf16"}, _NO_AMX, "avx512_bf16"),
    (_AMX_FLAGS, AmxStatus(True, "AMX tiles granted"), "amx"),
    (_AMX_FLAGS, AmxStatus(False, "Linux refused the AMX tiles"), "avx512_bf16"),
])
def test_the_bf16_case_is_named_emulation_warned_of_and_no_avx512_refused(monkeypatch, flags,
                                                                          amx, case):
    # The ISA simulated: an AVX2 EPYC (Zen 3), a CPU with only part of AVX-512, an old
    # AVX-512 CPU, flags that cannot be read (no /proc/cpuinfo), an AMD Zen 4, a Sapphire
    # Rapids Xeon with and without its tiles.
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "amx_status", lambda: amx)
    name, words = precision.bfloat16_case()
    assert name == case
    if case == "unsupported":
        missing = ", ".join(f for f in precision.AVX512_CORE if f not in flags)
        assert words == (f"unsupported: this CPU has no AVX-512 (no {missing} in "
                         "/proc/cpuinfo), and oneDNN 2.4 has no bfloat16 kernels without it; "
                         "use float32")
        # refused before MXNet sees it (there: "could not create a primitive descriptor")
        for make in (mixed_precision, lambda net: for_inference(net, "bfloat16")):
            net = build_resnet(18, in_channels=1)
            net.initialize()
            with pytest.raises(RuntimeError, match=re.escape(
                    f"{NO_BF16} (no {missing} in /proc/cpuinfo), and oneDNN 2.4 has no "
                    "bfloat16 kernels without it (CPU: ") + ".*Use float32: dtype='float32', "
                    "or --dtype float32 on the command line"):
                make(net)
    elif case == "emulated":
        assert words.startswith("emulated: this CPU has neither AMX nor AVX512-BF16")
        with pytest.warns(UserWarning, match="neither AMX nor AVX512-BF16, so oneDNN emulates"):
            mixed_precision(build_resnet(18, in_channels=1))
    else:
        assert words.startswith("native, on the AMX tiles" if case == "amx" else
                                "native, on AVX512-BF16 (no AMX for this process: " + amx.reason)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mixed_precision(build_resnet(18, in_channels=1))


def _casts(block):
    """The casts of a bf16 block's graph (the weights' aside), in graph order."""
    outputs = block._cached_graph[1].get_internals().list_outputs()
    return [o for o in outputs if "amp_cast" in o and "weight" not in o and "bias" not in o]


@needs_bfloat16
@pytest.mark.parametrize("case, casts", [
    ("amx", ["data_amp_cast_bfloat16_output", "dense0_fwd_output_amp_cast_float32_output"]),
    ("avx512_bf16", ["stem_amp_cast_bfloat16_output",
                     "dense0_fwd_output_amp_cast_float32_output"]),
])
def test_without_amx_the_stem_stays_float32_and_is_cast_once_where_the_stages_begin(
        monkeypatch, case, casts):
    # On AVX512-BF16 alone oneDNN 2.4 runs the 1-channel stem convolution in the plain
    # layout and its BatchNorm on the slow plain kernel; with AMX the bf16 stem is faster.
    monkeypatch.setattr(precision, "bfloat16_case", lambda: (case, "simulated"))
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    X, y = nd.random.uniform(shape=(4, 1, 64, 64)), nd.arange(4)
    bf16 = mixed_precision(net)
    assert _casts(bf16) == casts
    outputs = bf16._cached_graph[1].get_internals().list_outputs()
    stem_cast = net[0].weight.name + "_amp_cast_bfloat16_output"
    assert (stem_cast in outputs) == (case == "amx")
    assert net[4][0].conv1.weight.name + "_amp_cast_bfloat16_output" in outputs
    assert 0 < np.abs(_scores(bf16, X) - _scores(net, X)).max() < 0.01

    def trained_twice():  # the same start, the same batches: the same bits
        twin = build_resnet(18, in_channels=1)
        twin.initialize()
        for (_, mine), (_, theirs) in zip(net.collect_params().items(),
                                          twin.collect_params().items()):
            theirs.set_data(mine.data())
        runner = mixed_precision(twin)
        runner.hybridize(static_alloc=True, static_shape=True)
        trainer = gluon.Trainer(twin.collect_params(), "sgd", {"learning_rate": 0.1,
                                                               "momentum": 0.9})
        for _ in range(2):
            with autograd.record():
                loss = gluon.loss.SoftmaxCrossEntropyLoss()(runner(X), y)
            loss.backward()
            trainer.step(4)
        return [p.data().asnumpy() for p in twin.collect_params().values()]

    first, second = trained_twice(), trained_twice()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], net[0].weight.data().asnumpy())  # it did train


def test_bad_dtypes_and_blocks_are_named():
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'bfloat16'\], "
                                         r"got 'float16'"):
        TrainConfig(dtype="float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        mixed_precision(build_resnet(18, in_channels=1), "bf16")
    with pytest.raises(TypeError, match="bfloat16 needs a HybridBlock .* got Sequential"):
        mixed_precision(gluon.nn.Sequential())


@pytest.mark.slow
def test_the_commands_take_dtype(cli, trained_run, tmp_path):
    params = str(trained_run / "model.params")
    result = cli.here("evaluate", "--params", params, "--dtype", "bfloat16", "--limit-test", "512")
    if not BF16_RUNS:  # no AVX-512: refused in one line that says what to do
        assert result.returncode == 1 and NO_BF16 in result.stderr, result.stderr
        assert "--dtype float32" in result.stderr and "Traceback" not in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        line = result.stdout.splitlines()[1]
        assert line.startswith("bfloat16 test acc 0.") and "top-1 agreement with fp32 " in line
        assert float(line.split("agreement with fp32 ")[1].split(";")[0]) >= 0.98
    # the emulation warning on the command line: only where this CPU emulates bf16
    emulated = precision.bfloat16_case()[0] == "emulated"
    assert ("oneDNN emulates bfloat16" in result.stderr) == emulated, result.stderr
    for args, message in (
            (["evaluate", "--params", params, "--dtype", "bfloat16", "--int8"],
             "--int8 and --dtype bfloat16 are two lower precisions; pick one"),
            (["export", "--params", params, "--dtype", "bfloat16", "--format", "onnx",
              "--out", str(tmp_path / "m")],
             "--dtype bfloat16 exports as an MXNet symbol only (ONNX export is float32)")):
        result = cli.here(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    result = cli.here("predict", "--model", params, "--dtype", "half", "x.png")
    assert result.returncode == 2 and "invalid choice: 'half'" in result.stderr


#: The oneDNN kernel names of native bf16 convolutions, per case of
#: :func:`resnet_gluon.precision.bfloat16_case`.
NATIVE_KERNELS = {"amx": "avx512_core_amx_bf16", "avx512_bf16": "avx512_core_bf16"}


@pytest.mark.slow
@pytest.mark.skipif(precision.bfloat16_case()[0] not in NATIVE_KERNELS,
                    reason="this CPU has neither AMX nor AVX512-BF16: no native bf16")
def test_bf16_training_runs_its_convolutions_on_this_cpus_native_kernels(cli, tmp_path):
    # AMX tiles on a Sapphire Rapids Xeon, AVX512-BF16 on an AMD EPYC of the Zen 4 kind
    native = NATIVE_KERNELS[precision.bfloat16_case()[0]]
    result = cli("train", "--dtype", "bfloat16", *TINY, "--epochs", "1",
                 "--out", str(tmp_path / "run"), env={"DNNL_VERBOSE": "1"})
    assert result.returncode == 0, result.stderr
    kernels = collections.Counter()
    for line in result.stdout.splitlines():
        parts = line.split(",")
        if parts[:4] == ["dnnl_verbose", "exec", "cpu", "convolution"]:
            kernels[(parts[5], parts[4].endswith(native))] += 1
    for kind in ("forward_training", "backward_data", "backward_weights", "forward_inference"):
        # 20 convolutions a step (19 data gradients: none for the stem), 4 steps, and one
        # test batch: a log with too few lines parsed is a failure, not a pass
        total = kernels[(kind, True)] + kernels[(kind, False)]
        assert total >= 19, (kind, kernels)
        # on AMX the 1-channel stem's weight gradient may use AVX512-BF16
        assert kernels[(kind, True)] >= 0.9 * total, kernels
