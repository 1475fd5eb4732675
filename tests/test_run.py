"""The run directory: what train writes, what it refuses to overwrite, and loading a trained run back."""
import dataclasses
import json
import os
import re
import shutil

import mxnet as mx
import pytest

from common import LINE, TINY
from resnet_gluon import build_resnet
from resnet_gluon.checkpoint import find_checkpoints
from resnet_gluon.config import ARCHITECTURE, TrainConfig
from resnet_gluon.inputs import DataRef, InputSpec
from resnet_gluon.model import ResNetSpec
from resnet_gluon.run import RunLock, RunRecord, RunSettings, write_config
from resnet_gluon.trained import ModelInfo, load_trained


@pytest.mark.slow
def test_run_directory(cli, tmp_path):
    run = tmp_path / "run"
    result = cli.here("train", "--out", str(run), *TINY[:-1], "--epochs", "2")  # with the bar
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


def test_a_new_run_does_not_overwrite_an_old_one(cli, small_run):
    before = (small_run / "model.params").read_bytes()
    result = cli.here("train", "--out", str(small_run), *TINY)
    assert result.returncode == 2
    assert f"{small_run} already holds a run. Continue it with --resume" in result.stderr
    assert (small_run / "model.params").read_bytes() == before


def test_load_trained_reads_the_runs_config(trained_run):
    net, info = load_trained(str(trained_run / "model.params"))
    assert (info.model.depth, info.model.num_classes, info.model.small_input, info.resize) == (
        18, 10, False, 96)
    assert info.classes[9] == "ankle boot"
    ckpt = sorted((trained_run / "checkpoints").iterdir())[-1] / "net.params"
    assert load_trained(str(ckpt))[1].resize == 96  # a checkpoint finds the run two levels up


def test_params_that_do_not_fit_are_named(cli, trained_run, tmp_path):
    result = cli.here("export", "--params", str(trained_run / "model.params"),
                      "--out", str(tmp_path / "m"), "--depth", "34")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "does not fit ResNet-34 with 10 classes" in result.stderr
    assert "missing from the file" in result.stderr  # ResNet-34 has more blocks
    result = cli.here("export", "--params", str(trained_run / "model.params"),
                      "--out", str(tmp_path / "m"), "--classes", "5")
    assert result.returncode == 2
    assert re.search(r"shape\(s\) differ, first 9\.weight: the net has \(5, 512\), the file "
                     r"\(10, 512\)", result.stderr), result.stderr
    assert not os.listdir(tmp_path)  # nothing half-written
    (tmp_path / "junk.params").write_text("junk")
    # warns outside raises, so the warning is checked after the error is caught
    with pytest.warns(UserWarning, match="no config.json beside"), \
            pytest.raises(ValueError, match="not a params file MXNet can read"):
        load_trained(str(tmp_path / "junk.params"))
    with pytest.raises(FileNotFoundError, match="no such params file"):
        load_trained(str(tmp_path / "nope.params"))


def test_model_info_is_the_configs_architecture_with_its_defaults():
    # One architecture record: the config holds it, the info holds it, both write it flat.
    # A trained net is architecture + input record + class names; the input record is how
    # an image becomes the input (a run on your own images normalises).
    assert [f.name for f in dataclasses.fields(ModelInfo)] == ["model", "inputs", "classes"]
    assert [f.name for f in dataclasses.fields(InputSpec)] == [
        "kind", "resize", "channels", "mean", "std"]
    assert ModelInfo().model == TrainConfig().model == ResNetSpec()
    assert all(ModelInfo().setting(k) == TrainConfig().to_dict()[k] for k in ARCHITECTURE)
    config = TrainConfig.from_dict(dict(depth=34, resize=28, small_input=True))
    assert config.model == ResNetSpec(depth=34, small_input=True)
    info = ModelInfo.from_config(config)
    assert (info.model.depth, info.model.num_classes, info.model.small_input, info.resize) == (
        34, 10, True, 28)
    assert info.input_shape == (1, 1, 28, 28) and info.classes[0] == "t-shirt"
    assert (info.preprocess, info.normalize) == ("fashion-mnist", None)
    spec_keys = list(ResNetSpec().to_dict())
    assert list(config.to_dict())[:4] == list(info.to_dict())[:4] == spec_keys == [
        "depth", "num_classes", "small_input", "in_channels"]


def test_a_config_json_from_before_the_record_still_loads(tmp_path):
    # Runs written before in_channels was recorded hold the old flat keys only.
    old = {"depth": 18, "num_classes": 10, "small_input": True, "lr": 0.05, "batch_size": 64,
           "epochs": 1, "resize": 28, "seed": 3, "recipe": "book", "ctx": "cpu:0"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    net = build_resnet(18, small_input=True, in_channels=1)
    net.initialize()
    net.save_parameters(str(tmp_path / "model.params"))
    loaded, info = load_trained(str(tmp_path / "model.params"))
    assert info.model == ResNetSpec(18, 10, True, 1) and info.resize == 28
    assert loaded(mx.nd.zeros((1, 1, 28, 28))).shape == (1, 10)
    config = TrainConfig.from_dict({k: v for k, v in old.items() if k not in ("recipe", "ctx")})
    assert config.model.in_channels == 1 and config.seed == 3


# --------------------------------------------------------------------------- the edges

@pytest.mark.slow
def test_two_runs_on_one_directory_one_stops_at_once(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(str(run)):  # as another training process holds it
        result = cli("train", "--out", str(run), *TINY)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{run} is in use by another training process" in result.stderr
    assert os.listdir(run) == [".lock"]  # nothing written


@pytest.mark.slow
def test_two_runs_started_together_leave_exactly_one_run(cli, tmp_path):
    run = tmp_path / "run"
    # Three epochs: the winner still holds the lock when the loser, started with it, gets
    # there; only the lock's message is a pass ("already holds a run" would also come from
    # two runs one after the other, without any lock).
    procs = [cli.popen("train", "--out", str(run), *TINY, "--epochs", "3", "--seed", seed)
             for seed in ("0", "1")]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert f"{run} is in use by another training process" in loser, loser
    winner_seed = json.loads((run / "config.json").read_text())["seed"]
    assert (run / "model.params").exists() and winner_seed in (0, 1)


def test_a_directory_of_someone_elses_files_is_left_alone(cli, tmp_path):
    mine = tmp_path / "u"
    mine.mkdir()
    (mine / "model.params").write_text("mine")
    result = cli.here("train", "--out", str(mine), *TINY)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{mine} is not empty (model.params) and holds no run of this library" in result.stderr
    assert os.listdir(mine) == ["model.params"] and (mine / "model.params").read_text() == "mine"


def test_out_naming_a_file_is_refused(cli, tmp_path):
    (tmp_path / "f").write_text("x")
    result = cli.here("train", "--out", str(tmp_path / "f"), *TINY)
    assert result.returncode == 2
    assert f"--out {tmp_path / 'f'} is a file, not a directory" in result.stderr
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.slow
def test_a_run_that_left_no_checkpoint_starts_over_with_the_same_command(cli, tmp_path):
    run = tmp_path / "run"
    result = cli.here("train", "--out", str(run), *TINY, "--lr", "1e8")  # NaN at step 2
    assert result.returncode == 1 and "loss became nan" in result.stderr
    assert not find_checkpoints(str(run)) and (run / "config.json").exists()
    result = cli.here("train", "--out", str(run), *TINY, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["lr"] == 0.05


def test_resume_keeps_the_runs_devices(cli, small_run):
    before = (small_run / "config.json").read_text()
    result = cli.here("train", "--out", str(small_run), "--resume", "--ctx", "cpu:0,cpu:1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"the run in {small_run} was trained with --ctx cpu:0; resuming with --ctx "
            f"cpu:0,cpu:1 would not reproduce it") in result.stderr
    assert (small_run / "config.json").read_text() == before


def test_a_truncated_config_is_named_on_resume(cli, small_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((small_run / "config.json").read_text()[:40])
    result = cli.here("train", "--out", str(run), "--resume")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{run / 'config.json'} is not valid JSON" in result.stderr


def test_params_without_their_config_say_what_was_assumed(cli, small_run, tmp_path):
    shutil.copy(small_run / "model.params", tmp_path / "w.params")
    result = cli.here("evaluate", "--params", str(tmp_path / "w.params"), "--resize", "28",
                 "--limit-test", "100")
    assert result.returncode == 0, result.stderr
    assert (f"warning: no config.json beside {tmp_path / 'w.params'} (nor two levels up, for a "
            f"checkpoint), so its net is assumed to be depth 18, num_classes 10, small_input "
            f"False. If it was trained otherwise, pass --depth") in result.stderr
    with pytest.warns(UserWarning, match="assumed to be depth 18, num_classes 10, small_input "
                                         "False, resize 96"):
        load_trained(str(tmp_path / "w.params"), resize=None)


@pytest.mark.parametrize("content", [b"", b"not weights\n", "half"])
def test_unreadable_params_name_the_file_and_the_reason(cli, small_run, tmp_path, content):
    bad = tmp_path / "run" / "model.params"
    bad.parent.mkdir()
    shutil.copy(small_run / "config.json", bad.parent)
    if content == "half":
        content = (small_run / "model.params").read_bytes()[:100000]
    bad.write_bytes(content)
    result = cli.here("evaluate", "--params", str(bad), "--limit-test", "10")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"{bad} is not a params file MXNet can read (Invalid NDArray file format): it is "
            f"empty, truncated or another kind of file") in result.stderr


def test_the_class_count_fix_offered_is_an_option_of_the_command(cli, small_run):
    result = cli.here("evaluate", "--params", str(small_run / "model.params"), "--classes", "5",
                 "--limit-test", "10")
    assert result.returncode == 2
    assert "shape(s) differ" in result.stderr and "Pass the --depth / --classes" in result.stderr


def test_settings_are_the_options_given_over_the_runs_or_the_recipes(tmp_path):
    # train's precedence, for a script too: given > the saved run (--resume) or the
    # named recipe > the defaults; None is "not given".
    new = RunSettings.resolve(recipe="fast", epochs=3, lr=None, data="photos", channels=1)
    assert (new.config.recipe, new.config.epochs, new.config.lr) == ("fast", 3, 0.1)
    assert new.data == DataRef("photos", None, 1, False)
    assert (new.ctx, new.kvstore) == ("cpu:0", "device")
    run = tmp_path / "run"
    saved = TrainConfig(epochs=4, resize=32, model=ResNetSpec(in_channels=1))
    write_config(str(run), RunRecord(saved, InputSpec("crop", 32, 1, [0.5], [0.25]),
                                     tuple("abcdefghij"), DataRef("/data/photos", channels=1),
                                     "cpu:0", "local"))
    again = RunSettings.resolve(str(run), resume=True, epochs=6, data=None)
    assert (again.config.epochs, again.config.resize, again.config.model.in_channels) == (
        6, 32, 1)
    assert again.data == DataRef("/data/photos", None, 1, False)
    assert (again.ctx, again.kvstore) == ("cpu:0", "local")
    with pytest.raises(ValueError, match=r"trained with --kvstore local; resuming with "
                                         r"--kvstore device would not reproduce it"):
        RunSettings.resolve(str(run), resume=True, kvstore="device")
    with pytest.raises(ValueError, match="--resume needs --out RUN_DIR"):
        RunSettings.resolve(resume=True)
    with pytest.raises(ValueError, match=r"unknown training options \['epoch'\]"):
        RunSettings.resolve(epoch=3)
