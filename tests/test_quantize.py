"""INT8 inference: quantize_net calibrated on real training images, as an API and CLI options."""
import json
import re
import warnings

import mxnet as mx
import numpy as np
import pytest

from resnet_gluon import quantize as quantize_module
from resnet_gluon.data import load_fashion_mnist, resize_batch
from resnet_gluon.export import export_symbol
from resnet_gluon.quantize import agreement, calibration_images, int8_saturation, quantize
from resnet_gluon.trained import load_trained

#: Without VNNI oneDNN's INT8 saturates (int8_saturation): an eight-step net, whose scores are
#: near ties, agreed 0.862 with float32 on an AVX2 EPYC, and at least 0.95 on VNNI CPUs; the
#: shipped weights 0.9979 there (evaluate --int8, 10,000 images) and 0.9973 on a VNNI EPYC.
VNNI = int8_saturation() is None


@pytest.fixture(scope="module")
def nets(trained_run):
    net, info = load_trained(str(trained_run / "model.params"))
    return net, quantize(net, calibration_images(128, info.resize)), info


def test_calibration_uses_real_training_images():
    calib = calibration_images(64, resize=28)
    train, _ = load_fashion_mnist("train")
    assert calib.shape == (64, 1, 28, 28)
    rows = {img.tobytes() for img in train}
    assert all((np.round(x[0] * 255)).astype(np.uint8).tobytes() in rows for x in calib.asnumpy())
    np.testing.assert_array_equal(calib.asnumpy(), calibration_images(64, resize=28).asnumpy())
    with pytest.raises(ValueError, match="positive number of images"):
        calibration_images(0)


@pytest.mark.slow
def test_the_whole_graph_runs_in_int8_and_agrees_with_fp32(nets, tmp_path):
    net, qnet, info = nets
    images, _ = load_fashion_mnist("test")
    X = resize_batch(images[:500], 96)
    fp32, int8 = net(X).asnumpy(), qnet(X).asnumpy()
    if VNNI:  # elsewhere the shipped weights' agreement (test_pretrained) is the yardstick
        assert agreement(fp32, int8) >= 0.95
    # exported as a symbol, plain MXNet runs it and gives the same outputs
    sym_file, params_file, _ = export_symbol(qnet, str(tmp_path / "int8"), info)
    nodes = json.load(open(sym_file))["nodes"]
    convs = [n for n in nodes if n["op"] == "_sg_mkldnn_conv"]
    assert len(convs) == 20 and all(n["attrs"].get("quantized") == "true" for n in convs)
    plain = mx.gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    np.testing.assert_array_equal(plain(X).asnumpy(), int8)


def test_int8_at_28_pixels_runs_again_and_again(nets):
    # MXNet 1.9 failed on the second call once the last map was 1x1 (inputs <= 32 pixels).
    net, _, _ = nets
    qnet = quantize(net, calibration_images(64, 28))
    images, _ = load_fashion_mnist("test")
    X = resize_batch(images[:200], 28)
    outs = [qnet(X).asnumpy() for _ in range(3)]
    np.testing.assert_array_equal(outs[0], outs[2])
    assert outs[0].shape == (200, 10)
    # the trained net never saw 28x28 images; the INT8 copy still follows the fp32 one
    assert agreement(net(X).asnumpy(), outs[0]) >= 0.9


def test_agreement():
    assert agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    assert agreement(np.eye(3), np.eye(3)[[0, 2, 1]]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="cannot compare"):
        agreement(np.zeros(3), np.zeros(4))


def test_bad_calibration_input(nets):
    net, _, _ = nets
    with pytest.raises(ValueError, match=r"non-empty \(N, C, H, W\) NDArray"):
        quantize(net, mx.nd.zeros((3, 96, 96)))
    with pytest.raises(ValueError, match="calib_mode must be"):
        quantize(net, mx.nd.zeros((2, 1, 96, 96)), calib_mode="minmax")


@pytest.mark.slow
def test_evaluate_and_export_int8_from_the_command_line(cli, trained_run, tmp_path):
    # the shipped weights, a trained net: their agreement does not hang on this CPU's VNNI
    result = cli.here("evaluate", "--int8", "--calib-images", "64", "--limit-test", "300")
    assert result.returncode == 0, result.stderr
    fp32 = float(re.search(r"^test acc (\S+) \(300 images", result.stdout, re.M).group(1))
    match = re.search(r"^int8 test acc (\S+), top-1 agreement with fp32 (\S+) "
                      r"\(calibrated on 64 training images\)", result.stdout, re.M)
    assert match, result.stdout
    assert float(match.group(2)) >= 0.98 and abs(float(match.group(1)) - fp32) <= 0.02
    assert ("which can saturate: check the INT8 net's agreement" in result.stderr) != VNNI
    result = cli.here("export", "--params", str(trained_run / "model.params"), "--int8",
                      "--calib-images", "64", "--out", str(tmp_path / "q"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "q-symbol.json").exists() and (tmp_path / "q-0000.params").exists()
    result = cli.here("export", "--params", str(trained_run / "model.params"), "--int8",
                      "--format", "onnx", "--out", str(tmp_path / "q"))
    assert result.returncode == 2 and "--int8 exports as an MXNet symbol only" in result.stderr


@pytest.mark.slow
def test_int8_from_the_command_line_at_28_pixels_calibrates_cleanly(cli, small_run):
    # Before: one "Exception ignored ... can't generate TBlob for MKLDNN data" per calibration
    # batch after the first (the dense layer calibrated on one batch), then "calibrated on
    # 512 training images" and rc 0 all the same.
    result = cli("evaluate", "--params", str(small_run / "model.params"), "--int8",
                 "--limit-test", "100", "--calib-images", "200")
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" not in result.stderr and "MKLDNN" not in result.stderr
    assert "(calibrated on 200 training images)" in result.stdout


def test_a_calibration_that_could_not_read_a_layer_stops_and_says_so(nets, monkeypatch):
    # MXNet's calibration reads layer outputs in callbacks, whose errors Python only prints
    # ("Exception ignored"); quantize must stop on one instead of calling itself calibrated.
    import mxnet.contrib.quantization as mxq

    class Unreadable:
        def __del__(self):  # as an exception raised inside a ctypes callback reaches Python
            raise mx.base.MXNetError("Check failed: !IsMKLDNNData(): We can't generate TBlob")

    def quantize_net_v2(*args, **kwargs):
        Unreadable()
        return nets[1]
    monkeypatch.setattr(mxq, "quantize_net_v2", quantize_net_v2)
    with pytest.raises(RuntimeError, match=r"INT8 calibration could not read 1 layer outputs "
                                           r"\(MXNet: .*TBlob\).* no INT8 net was made"):
        quantize(nets[0], calibration_images(64, nets[2].resize))


def test_every_calibration_image_is_used(nets, monkeypatch):
    # 100 images in batches of 64: the last batch is filled up, not dropped (before: 64 used).
    import mxnet.contrib.quantization as mxq

    seen = {}

    def quantize_net_v2(net, calib_data=None, num_calib_examples=None, **kwargs):
        seen["images"] = sum(b.data[0].shape[0] - b.pad for b in calib_data)
        return nets[1]
    monkeypatch.setattr(mxq, "quantize_net_v2", quantize_net_v2)
    quantize(nets[0], calibration_images(100, nets[2].resize))
    assert seen["images"] == 100


@pytest.mark.parametrize("flags, warned", [
    ({"avx2", "fma"}, True),                                   # an AVX2 EPYC (Zen 3)
    ({"avx2", "avx512f", "avx512bw"}, True),                   # AVX-512 before VNNI
    ({"avx2", "avx512f", "avx512_vnni"}, False),               # Cascade Lake, Zen 4
    ({"avx2", "avx_vnni"}, False),                             # Alder Lake
    ({"avx2", "avx512_vnni", "amx_int8"}, False),              # Sapphire Rapids
    (set(), False),                                            # no /proc/cpuinfo
])
def test_int8_without_vnni_is_warned_of(monkeypatch, nets, flags, warned):
    monkeypatch.setattr(quantize_module, "cpu_flags", lambda: flags)
    assert (int8_saturation() is not None) == warned
    net, _, _ = nets
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize(net, calibration_images(8, 28))
    said = [str(w.message) for w in caught if "VNNI" in str(w.message)]
    assert said == ([int8_saturation()] if warned else []), said


def test_more_calibration_images_than_there_are_is_refused():
    # Before: 60,000 used and "calibrated on 100000 training images" printed.
    with pytest.raises(ValueError, match="at most the 60,000 training images, got 100,000"):
        calibration_images(100_000, 28)
