"""The run directory: what train writes, what it refuses to overwrite, and loading a trained run back."""
import dataclasses
import json
import os
import re

import pytest

from common import LINE, SMALL
from resnet_gluon import build_resnet
from resnet_gluon.checkpoint import find_checkpoints
from resnet_gluon.config import ARCHITECTURE, TrainConfig
from resnet_gluon.run import ModelInfo, load_trained


def test_run_directory(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "--out", str(run), *SMALL[:-1], "--epochs", "2")  # with the bar
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


def test_a_new_run_does_not_overwrite_an_old_one(cli, reference_run):
    before = (reference_run / "model.params").read_bytes()
    result = cli("train", "--out", str(reference_run), *SMALL)
    assert result.returncode == 2
    assert f"{reference_run} already holds a run. Continue it with --resume" in result.stderr
    assert (reference_run / "model.params").read_bytes() == before


def test_load_trained_reads_the_runs_config(trained_run):
    net, info = load_trained(str(trained_run / "model.params"))
    assert (info.depth, info.num_classes, info.small_input, info.resize) == (18, 10, False, 96)
    assert info.classes[9] == "ankle boot"
    ckpt = sorted((trained_run / "checkpoints").iterdir())[-1] / "net.params"
    assert load_trained(str(ckpt))[1].resize == 96  # a checkpoint finds the run two levels up


def test_params_that_do_not_fit_are_named(cli, trained_run, tmp_path):
    result = cli("export", "--params", str(trained_run / "model.params"), "--out", str(tmp_path / "m"),
                  "--depth", "34")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not fit ResNet-34 with 10 classes" in result.stderr
    assert "missing from the file" in result.stderr  # ResNet-34 has more blocks
    result = cli("export", "--params", str(trained_run / "model.params"), "--out", str(tmp_path / "m"),
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


def test_model_info_is_the_configs_architecture_with_its_defaults():
    fields = [f.name for f in dataclasses.fields(ModelInfo)]
    assert tuple(fields[:-1]) == ARCHITECTURE and fields[-1] == "classes"
    assert all(getattr(ModelInfo(), k) == getattr(TrainConfig(), k) for k in ARCHITECTURE)
    info = ModelInfo.from_config(TrainConfig(depth=34, resize=28, small_input=True))
    assert (info.depth, info.num_classes, info.small_input, info.resize) == (34, 10, True, 28)
    assert info.input_shape == (1, 1, 28, 28) and info.classes[0] == "t-shirt"
