"""Export (symbol, ONNX) and predict on a net trained for a few steps on real Fashion-MNIST."""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, nd
from PIL import Image

from resnet_gluon.data import BatchIter, load_fashion_mnist, resize_batch
from resnet_gluon.export import (ModelInfo, export_symbol, load_symbol, load_trained,
                                 onnx_max_abs_diff)
from resnet_gluon.predict import load_model, predict_files, read_image
from resnet_gluon.train import evaluate

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _cli(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "resnet_gluon", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def run(trained_run):
    return trained_run


@pytest.fixture(scope="module")
def test_images():
    return load_fashion_mnist("test")


def _readme_block(marker):
    text = open(README, encoding="utf-8").read()
    match = re.search(re.escape(f"<!-- {marker} -->") + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"README lost its {marker} block"
    return match.group(1)


def _predict_index(net, image, resize=96):
    return int(net(resize_batch(image[None], resize)).argmax(axis=1).asscalar())


def test_load_trained_reads_the_runs_config(run):
    net, info = load_trained(str(run / "model.params"))
    assert (info.depth, info.num_classes, info.small_input, info.resize) == (18, 10, False, 96)
    assert info.classes[9] == "ankle boot"
    ckpt = sorted((run / "checkpoints").iterdir())[-1] / "net.params"
    assert load_trained(str(ckpt))[1].resize == 96  # a checkpoint finds the run two levels up


def test_symbol_export_loads_in_plain_mxnet_and_gives_the_same_outputs(run, tmp_path, test_images):
    result = _cli("export", "--params", str(run / "model.params"), "--format", "symbol",
                  "--out", str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["model-0000.params", "model-info.json",
                                            "model-symbol.json"]
    plain = gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data"],
                                      str(tmp_path / "model-0000.params"))
    net, _ = load_trained(str(run / "model.params"))
    X = resize_batch(test_images[0][:32], 96)
    np.testing.assert_allclose(plain(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-5)
    info = json.loads((tmp_path / "model-info.json").read_text())
    assert info["resize"] == 96 and info["classes"][0] == "t-shirt"


def test_onnx_export_is_checked_in_onnxruntime(run, tmp_path, test_images):
    result = _cli("export", "--params", str(run / "model.params"), "--format", "onnx",
                  "--out", str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr
    match = re.search(r"on 256 Fashion-MNIST test images: max abs difference (\S+) \(ok",
                      result.stdout)
    assert match and float(match.group(1)) <= 1e-4, result.stdout
    # dynamic batch axis: 1 and 100 images through the same file
    net, _ = load_trained(str(run / "model.params"))
    for n in (1, 100):
        assert onnx_max_abs_diff(str(tmp_path / "model.onnx"), net,
                                 resize_batch(test_images[0][:n], 96)) <= 1e-4
    import onnx
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert meta["resize"] == 96 and meta["classes"][9] == "ankle boot"


def test_the_readmes_deploy_code_runs_as_written(run, tmp_path, test_images):
    images, labels = test_images
    assert labels[0] == 9
    Image.fromarray(images[0]).save(tmp_path / "shoe.png")
    for fmt in ("symbol", "onnx"):
        result = _cli("export", "--params", str(run / "model.params"), "--format", fmt,
                      "--out", str(tmp_path / "model"), "--check-images", "0")
        assert result.returncode == 0, result.stderr
    net, _ = load_trained(str(run / "model.params"))
    expected = _predict_index(net, images[0])
    for marker in ("deploy-mxnet", "deploy-onnxruntime"):
        result = subprocess.run([sys.executable, "-c", _readme_block(marker)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert float(result.stdout.split()[-1]) == expected, (marker, result.stdout)


def test_predict_on_png_files_agrees_with_evaluate(run, tmp_path, test_images):
    images, labels = test_images
    for i in range(100):
        Image.fromarray(images[i]).save(tmp_path / f"{i:03d}.png")
    result = _cli("predict", "--model", str(run / "model.params"), str(tmp_path), "--json",
                  "--topk", "2")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [os.path.basename(x["file"]) for x in lines] == [f"{i:03d}.png" for i in range(100)]
    assert all(len(x["top"]) == 2 and x["top"][0]["probability"] >= x["top"][1]["probability"]
               for x in lines)
    net, info = load_trained(str(run / "model.params"))
    evaluated = evaluate(net, BatchIter(images[:100], labels[:100], 50, resize=96))
    ours = np.zeros((10, 10), dtype=np.int64)
    for x, label in zip(lines, labels[:100]):
        ours[label, info.classes.index(x["top"][0]["class"])] += 1
    np.testing.assert_array_equal(ours, evaluated.confusion)


def test_predict_reads_colour_and_other_sizes(run, tmp_path, test_images):
    images, _ = test_images
    gray = images[3]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([gray] * 3 + [np.full_like(gray, 255)], axis=-1)).save(
        tmp_path / "rgba.png")
    Image.fromarray(gray).resize((112, 112), Image.BILINEAR).save(tmp_path / "big.jpg",
                                                                  quality=95)
    wide = np.zeros((28, 56), dtype=np.uint8)
    wide[:, 14:42] = gray
    Image.fromarray(wide).save(tmp_path / "wide.png")
    for name in ("gray.png", "rgb.png", "rgba.png"):
        np.testing.assert_array_equal(read_image(str(tmp_path / name)), gray)
    # padded to 56x56 with its (black) border, then shrunk by area: a quarter of the light
    padded = read_image(str(tmp_path / "wide.png"))
    assert padded.shape == (28, 28) and abs(padded.mean() - gray.mean() / 4) < 1
    big = read_image(str(tmp_path / "big.jpg"))
    assert big.shape == (28, 28) and np.abs(big.astype(int) - gray).mean() < 12
    assert (read_image(str(tmp_path / "gray.png"), invert=True) == 255 - gray).all()
    net, info = load_model(str(run / "model.params"))
    predictions, errors = predict_files(net, info, [str(tmp_path / n) for n in
                                                    ("gray.png", "rgb.png", "rgba.png")])
    assert not errors and len({p.top[0][0] for p in predictions}) == 1


def test_predict_names_bad_files_and_labels_the_rest(run, tmp_path, test_images):
    images, _ = test_images
    Image.fromarray(images[0]).save(tmp_path / "good.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    files = [str(tmp_path / n) for n in ("good.png", "notes.png", "missing.png", "empty.jpg")]
    result = _cli("predict", "--model", str(run / "model.params"), *files)
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert len(out) == 1 and out[0].startswith(files[0] + ": ")
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    for name, line in zip(("notes.png", "missing.png", "empty.jpg"), errors):
        assert line.startswith("resnet-gluon predict: error: ") and name in line


def test_predict_with_an_exported_symbol_model(run, tmp_path, test_images):
    images, _ = test_images
    Image.fromarray(images[5]).save(tmp_path / "x.png")
    net, info = load_trained(str(run / "model.params"))
    export_symbol(net, str(tmp_path / "m"), info)
    by_params = _cli("predict", "--model", str(run / "model.params"), str(tmp_path / "x.png"))
    by_symbol = _cli("predict", "--model", str(tmp_path / "m"), str(tmp_path / "x.png"))
    assert by_params.returncode == by_symbol.returncode == 0, by_symbol.stderr
    assert by_params.stdout.split(": ")[1].split()[:2] == by_symbol.stdout.split(": ")[1].split()[:2]
    os.remove(tmp_path / "m-info.json")
    with pytest.raises(ValueError, match="pass --resize"):
        load_model(str(tmp_path / "m"))
    assert load_model(str(tmp_path / "m"), resize=96)[1].resize == 96


def test_params_that_do_not_fit_are_named(run, tmp_path):
    result = _cli("export", "--params", str(run / "model.params"), "--out", str(tmp_path / "m"),
                  "--depth", "34")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not fit ResNet-34 with 10 classes" in result.stderr
    assert "missing from the file" in result.stderr  # ResNet-34 has more blocks
    result = _cli("export", "--params", str(run / "model.params"), "--out", str(tmp_path / "m"),
                  "--classes", "5")
    assert result.returncode == 2
    assert re.search(r"shape\(s\) differ, first 9\.weight: the net has \(5, 512\), the file "
                     r"\(10, 512\)", result.stderr), result.stderr
    assert not os.listdir(tmp_path)  # nothing half-written
    (tmp_path / "junk.params").write_text("junk")
    with pytest.raises(ValueError, match="not a params file MXNet can read"):
        load_trained(str(tmp_path / "junk.params"))
    with pytest.raises(FileNotFoundError, match="no such params file"):
        load_trained(str(tmp_path / "nope.params"))


def test_export_needs_an_old_enough_onnx(monkeypatch, tmp_path):
    import onnx
    monkeypatch.delattr(onnx, "mapping", raising=False)
    from resnet_gluon.export import export_onnx
    net = mx.gluon.nn.HybridSequential()
    with pytest.raises(ImportError, match=r"onnx<=1.18.0"):
        export_onnx(net, str(tmp_path / "m"), ModelInfo())
