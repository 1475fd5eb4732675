"""Export (symbol, ONNX) of a net trained for a few steps on real Fashion-MNIST, and the README's deploy code."""
import json
import os
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from PIL import Image

from resnet_gluon.data import resize_batch
from resnet_gluon.export import OnnxCheck, export_symbol, load_symbol, onnx_max_abs_diff
from resnet_gluon.trained import ModelInfo, load_trained

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _readme_block(marker):
    text = open(README, encoding="utf-8").read()
    match = re.search(re.escape(f"<!-- {marker} -->") + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"README lost its {marker} block"
    return match.group(1)


def _predict_index(net, image, resize=96):
    return int(net(resize_batch(image[None], resize)).argmax(axis=1).asscalar())


@pytest.mark.slow
def test_symbol_export_loads_in_plain_mxnet_and_gives_the_same_outputs(cli, trained_run, tmp_path, test_images):
    result = cli.here("export", "--params", str(trained_run / "model.params"), "--format", "symbol",
                  "--out", str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["model-0000.params", "model-info.json",
                                            "model-symbol.json"]
    plain = gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data"],
                                      str(tmp_path / "model-0000.params"))
    net, _ = load_trained(str(trained_run / "model.params"))
    X = resize_batch(test_images[0][:32], 96)
    np.testing.assert_allclose(plain(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-5)
    info = json.loads((tmp_path / "model-info.json").read_text())
    assert info["resize"] == 96 and info["classes"][0] == "t-shirt"


def test_the_onnx_checks_limit_grows_with_the_outputs():
    # float32 rounding is relative: 1e-4 of the largest output, never under 1e-4.
    assert OnnxCheck(2e-4, 3.0, 256).ok and OnnxCheck(2e-4, 3.0, 256).limit == pytest.approx(3e-4)
    small = OnnxCheck(2e-4, 0.5, 256)
    assert not small.ok and str(small) == ("max abs difference 2.00e-04 (FAILED: limit 1.0e-04, "
                                           "1e-4 of the largest output, at least 1)")


@pytest.mark.slow
def test_onnx_export_is_checked_in_onnxruntime(cli, trained_run, tmp_path, test_images):
    result = cli.here("export", "--params", str(trained_run / "model.params"), "--format", "onnx",
                  "--out", str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr
    match = re.search(r"on 256 Fashion-MNIST test images: max abs difference (\S+) \(ok",
                      result.stdout)
    assert match and float(match.group(1)) <= 1e-4, result.stdout
    # dynamic batch axis: 1 and 100 images through the same file
    net, _ = load_trained(str(trained_run / "model.params"))
    for n in (1, 100):
        assert onnx_max_abs_diff(str(tmp_path / "model.onnx"), net,
                                 resize_batch(test_images[0][:n], 96)) <= 1e-4
    import onnx
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert meta["resize"] == 96 and meta["classes"][9] == "ankle boot"


@pytest.mark.slow
def test_the_readmes_deploy_code_runs_as_written(cli, trained_run, tmp_path, test_images):
    images, labels = test_images
    assert labels[0] == 9
    Image.fromarray(images[0]).save(tmp_path / "shoe.png")
    for fmt in ("symbol", "onnx"):
        result = cli.here("export", "--params", str(trained_run / "model.params"), "--format", fmt,
                      "--out", str(tmp_path / "model"), "--check-images", "0")
        assert result.returncode == 0, result.stderr
    net, _ = load_trained(str(trained_run / "model.params"))
    expected = _predict_index(net, images[0])
    for marker in ("deploy-mxnet", "deploy-onnxruntime"):
        result = cli.python("-c", _readme_block(marker), cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr
        assert float(result.stdout.split()[-1]) == expected, (marker, result.stdout)


def test_export_needs_an_old_enough_onnx(monkeypatch, tmp_path):
    import onnx
    monkeypatch.delattr(onnx, "mapping", raising=False)
    from resnet_gluon.export import export_onnx
    net = mx.gluon.nn.HybridSequential()
    with pytest.raises(ImportError, match=r"onnx<=1.18.0"):
        export_onnx(net, str(tmp_path / "m"), ModelInfo())


def test_export_out_naming_a_directory_is_refused(cli, trained_run, tmp_path):
    result = cli.here("export", "--params", str(trained_run / "model.params"), "--out",
                 str(tmp_path) + "/")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--out {tmp_path}/ names a directory; give a path prefix such as" in result.stderr
    assert ".export-" not in result.stderr and os.listdir(tmp_path) == []


@pytest.fixture
def exported(trained_run, tmp_path):
    net, info = load_trained(str(trained_run / "model.params"))
    export_symbol(net, str(tmp_path / "m"), info)
    return tmp_path / "m"


@pytest.mark.parametrize("suffix, damage, message", [
    ("-0000.params", lambda b: b[:len(b) // 2], "Invalid NDArray file format"),
    ("-symbol.json", lambda b: b[:200], ""),
])
def test_a_corrupt_exported_file_is_named(exported, suffix, damage, message):
    path = str(exported) + suffix
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(damage(data))
    with pytest.raises(ValueError, match=re.escape(path) + r" is not a file MXNet can read \("
                                         + message):
        load_symbol(str(exported))


def test_an_info_file_that_is_not_an_object_is_named(exported):
    info = str(exported) + "-info.json"
    with open(info, "w") as f:
        f.write("[1, 2]")
    with pytest.raises(ValueError, match=re.escape(info) + " holds a JSON list, not the object"):
        load_symbol(str(exported))
    with open(info, "w") as f:
        f.write('{"resize": "big"}')
    with pytest.raises(ValueError, match=re.escape(info) +
                       r": resize must be an integer from 8 to 512"):
        load_symbol(str(exported))


@pytest.mark.slow
def test_an_onnx_file_that_disagrees_with_mxnet_fails_the_check(trained_run, tmp_path,
                                                               monkeypatch, capsys):
    # The check's failing branch, on a real difference: every score of the written file is
    # moved by 0.01 (its output layer's bias), far above the limit.
    import onnx
    from onnx import numpy_helper

    from resnet_gluon import cli, export

    real = export.export_onnx

    def skewed(net, prefix, info):
        path = real(net, prefix, info)
        model = onnx.load(path)
        (bias,) = [t for t in model.graph.initializer if list(t.dims) == [10]]
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + 0.01, bias.name))
        onnx.save(model, path)
        return path

    monkeypatch.setattr(export, "export_onnx", skewed)
    code = cli.main(["export", "--params", str(trained_run / "model.params"), "--format",
                     "onnx", "--out", str(tmp_path / "m"), "--check-images", "32"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(r"on 32 Fashion-MNIST test images: max abs difference 1\.00e-02 "
                     r"\(FAILED: limit \d\.\de-0[34], 1e-4 of the largest output", out), out
