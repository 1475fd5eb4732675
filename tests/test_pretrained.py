"""The trained weights shipped in the package: stored small, checked at load, used by default."""
import json
import os
import re
import shutil
import zipfile

import numpy as np
import pytest
from mxnet import nd

from common import BF16_RUNS, NO_BF16, needs_bfloat16
from resnet_gluon import build_resnet18
from resnet_gluon.data import BatchIter, CLASS_NAMES
from resnet_gluon.evaluate import evaluate
from resnet_gluon.pretrained import load_pretrained, pretrained_files, pretrained_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "ankle_boot.png")


def test_the_weights_are_float16_on_disk_under_25_mb_and_float32_once_loaded():
    params, meta = pretrained_files()
    assert os.path.getsize(params) <= 25 * 2**20
    assert {v.dtype for v in nd.load(params).values()} == {np.float16}
    info = pretrained_info()
    assert (info["depth"], info["num_classes"], info["resize"], info["classes"]) == (
        18, 10, 64, list(CLASS_NAMES))
    net, model = load_pretrained()
    assert {p.data().dtype for p in net.collect_params().values()} == {np.float32}
    assert model.input_shape == (1, 1, 64, 64) and model.classes == list(CLASS_NAMES)


def test_the_shipped_weights_are_the_final_epoch_of_a_committed_run():
    source = pretrained_info()["source"]
    run = os.path.join(ROOT, source["run"])
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f if line.strip()][-1]
    assert last["epoch"] == config["epochs"] == source["epochs"]  # no epoch picked
    assert (config["seed"], config["dtype"]) == (0, source["dtype"])
    assert f"--seed {config['seed']}" in source["command"]
    # The run's own figure (in its compute type) against the shipped float32 inference one.
    assert abs(last["test_acc"] - source["test_acc"]) <= 0.002


@pytest.mark.slow
def test_build_resnet18_pretrained_labels_the_test_set(test_images):
    images, labels = test_images
    net = build_resnet18(pretrained=True)
    result = evaluate(net, BatchIter(images[:1000], labels[:1000], 250, resize=64))
    assert result.accuracy > 0.93, result.accuracy
    same, _ = load_pretrained()
    X = nd.array(images[:4, None], dtype="float32") / 255
    np.testing.assert_array_equal(net(X).asnumpy(), same(X).asnumpy())
    with pytest.raises(ValueError, match="shipped weights are for Fashion-MNIST's 10 classes, "
                                         "got num_classes=5"):
        build_resnet18(5, pretrained=True)


def test_a_corrupt_or_missing_weights_file_is_named(tmp_path):
    params, meta = pretrained_files()
    shutil.copy(params, tmp_path)
    shutil.copy(meta, tmp_path)
    copy, _ = pretrained_files(str(tmp_path))
    data = bytearray(open(copy, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(copy, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=f"{copy} is corrupt or altered: its SHA-256 is "):
        load_pretrained(directory=str(tmp_path))
    os.remove(copy)
    with pytest.raises(FileNotFoundError, match=f"{copy}: the shipped weights are missing"):
        load_pretrained(directory=str(tmp_path))
    (tmp_path / os.path.basename(meta)).write_text("{}")
    with pytest.raises(ValueError, match="is not the description pack_pretrained writes"):
        load_pretrained(directory=str(tmp_path))


@pytest.mark.slow
def test_predict_and_evaluate_use_the_shipped_weights_with_no_options(cli, tmp_path):
    # the README's first command, run as written (from the repository's root), prints the
    # README's line, whole
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    command, printed = re.search(r"\$ python -m resnet_gluon (predict \S+).*\n(.*)\n",
                                 readme).groups()
    result = cli.here(*command.split(), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed + "\n"
    run = pretrained_info()["source"]["run"]
    assert result.stderr == f"using the weights shipped in the package ({run})\n"
    result = cli.here("evaluate", "--limit-test", "500")
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split()[2])
    assert result.stdout.startswith("test acc 0.") and accuracy > 0.93
    assert "(500 images, ResNet-18, resize 64)" in result.stdout.splitlines()[0]
    result = cli.here("evaluate", "--resize", "96")
    assert result.returncode == 2
    assert "--resize describes the net of --params; without --params the shipped" in result.stderr


@pytest.mark.slow
def test_the_shipped_weights_export_and_the_export_predicts_the_same(cli, tmp_path):
    result = cli.here("export", "--out", str(tmp_path / "shipped"))
    assert result.returncode == 0, result.stderr
    result = cli.here("predict", "--model", str(tmp_path / "shipped"), EXAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    exported = json.loads(result.stdout)["top"]
    shipped = json.loads(cli.here("predict", EXAMPLE, "--json").stdout)["top"]
    assert [t["class"] for t in exported] == [t["class"] for t in shipped]
    np.testing.assert_allclose([t["probability"] for t in exported],
                               [t["probability"] for t in shipped], atol=1e-5)
    # Every command loads an export as it loads a run (one loader).
    evaluated = [cli.here("evaluate", *source, "--limit-test", "300").stdout.splitlines()[0]
                 for source in (["--params", str(tmp_path / "shipped")], [])]
    assert evaluated[0] == evaluated[1] and evaluated[0].startswith("test acc 0.")


@pytest.mark.slow
def test_a_wheel_carries_the_weights(cli, tmp_path):
    result = cli.python("-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("resnet_gluon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"resnet_gluon/weights/resnet18_fashion_mnist.params",
            "resnet_gluon/weights/resnet18_fashion_mnist.json"} <= set(names)


def _altered(tmp_path, change, digest=False):
    """A copy of the shipped files whose description ``change`` edited (and, with ``digest``,
    re-sealed, as a careful forger would)."""
    from resnet_gluon.weights import description_digest

    params, meta = pretrained_files()
    shutil.copy(params, tmp_path)
    values = json.loads(open(meta).read())
    values = change(values)
    if digest:
        values["description_sha256"] = description_digest(values)
    (tmp_path / os.path.basename(meta)).write_text(json.dumps(values))
    return str(tmp_path)


@pytest.mark.parametrize("change", [
    lambda v: dict(v, depth=34), lambda v: dict(v, small_input=True),
    lambda v: dict(v, num_classes=5), lambda v: dict(v, resize=96),
    lambda v: dict(v, classes=v["classes"][::-1]), lambda v: dict(v, source="a string"),
], ids=["depth", "small_input", "num_classes", "resize", "class order", "source"])
def test_an_edited_description_is_named_not_believed(tmp_path, change):
    # Before: AssertionError/AttributeError traces, or a net fed and named the wrong way.
    directory = _altered(tmp_path, change)
    with pytest.raises(ValueError, match=r"resnet18_fashion_mnist.json is corrupt or altered: "
                                         r"its content does not match"):
        load_pretrained(directory=directory)


def test_a_description_that_is_not_one_is_named(tmp_path):
    with pytest.raises(ValueError, match="is not the description pack_pretrained writes"):
        load_pretrained(directory=_altered(tmp_path, lambda v: [v]))
    with pytest.raises(ValueError, match="its source is not an object"):
        load_pretrained(directory=_altered(tmp_path, lambda v: dict(v, source="x"),
                                           digest=True))


def test_the_shipped_net_takes_a_device_by_name_and_refuses_bad_batches_in_bfloat16():
    net, info = load_pretrained(ctx="cpu:0")  # as fit takes it; before: an AttributeError
    assert net(nd.zeros(info.input_shape)).shape == (1, 10)
    if not BF16_RUNS:
        with pytest.raises(RuntimeError, match=NO_BF16):
            load_pretrained(dtype="bfloat16")
        return
    bf16, _ = load_pretrained(dtype="bfloat16")
    assert bf16(nd.zeros((2, 1, 64, 64))).shape == (2, 10)
    for shape, message in [((1, 64, 64, 1), "initialised for 1-channel input but got 64"),
                           ((1, 64, 64), "expects a 4-D batch")]:
        with pytest.raises(ValueError, match=message):  # before: raw MXNet errors
            bf16(nd.zeros(shape))


@pytest.mark.slow
@needs_bfloat16
def test_the_shipped_weights_bfloat16_agrees_as_the_readme_says(test_images):
    # The README's figure (bf16 99.94% top-1 agreement with float32 over the 10,000 test
    # images), checked at its level on a fixed 2,000 of them. INT8's is checked on all
    # 10,000 in test_inference.py, and through `evaluate --int8` in test_quantize.py.
    import mxnet as mx

    from resnet_gluon.evaluate import compare
    from resnet_gluon.precision import mixed_precision

    net, info = load_pretrained()
    net.hybridize(static_alloc=True)
    images, labels = test_images
    data = BatchIter(images[:2000], labels[:2000], 250, resize=info.resize)
    comparison = compare(net, mixed_precision(net, "bfloat16"), data, [mx.cpu()], 10)
    assert comparison.agreement >= 0.995, comparison.agreement
