"""`python -m resnet_gluon` and the `resnet-gluon` console script: the same CLI, its options and errors."""
import argparse
import dataclasses
import json
import re

import pytest

from common import CELL_8, PARAMS_LINE, TINY
from resnet_gluon.cli import build_parser, main
from resnet_gluon.config import TrainConfig
from resnet_gluon.inputs import DataRef
from resnet_gluon.model import ResNetSpec
from resnet_gluon.run import RunSettings


@pytest.mark.parametrize("console", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_shapes_with_no_options_prints_the_notebooks_ten_shapes(cli, console):
    result = cli("shapes", console=console)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CELL_8 + PARAMS_LINE


def test_shapes_options(capsys):
    assert main(["shapes", "--input", "2,3,64,64", "--depth", "50", "--classes", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "conv0 output shape:\t (2, 64, 32, 32)"
    assert lines[7] == "hybridsequential3 output shape:\t (2, 2048, 2, 2)"
    assert lines[9] == "dense0 output shape:\t (2, 5)"
    assert lines[10] == ("parameters: 23,582,597 (23,537,157 trainable, 45,440 BatchNorm "
                         "running statistics)")


def test_shapes_names_a_channels_last_or_oversized_input_in_one_line(capsys):
    # Before: 1,224,224,1 was shown as a 224-channel net; 20000x20000 printed a C++ stack.
    assert main(["shapes", "--input", "1,224,224,1"]) == 2
    err = capsys.readouterr().err
    assert "looks channels-last (N, H, W, C)" in err and len(err.splitlines()) == 1
    assert main(["shapes", "--input", "1,1,20000,20000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resnet-gluon shapes: error: --input 1,1,20000,20000 is too large")
    assert len(err.splitlines()) == 1 and "c_api" not in err


def test_shapes_small_input(capsys):
    assert main(["shapes", "--small-input", "--input", "1,1,28,28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10  # nine layers: no max-pool
    assert lines[0] == "conv0 output shape:\t (1, 64, 28, 28)"
    assert lines[6] == "hybridsequential3 output shape:\t (1, 512, 4, 4)"


@pytest.mark.parametrize("args, message", [
    (["shapes", "--input", "1,1,224"], "expected four positive integers N,C,H,W"),
    (["shapes", "--input", "1,x,2,2"], "expected four positive integers"),
    (["shapes", "--depth", "19"], "invalid choice: 19 (choose from 18, 34, 50, 101, 152)"),
    (["shapes", "--classes", "0"], "expected a positive integer, got '0'"),
    (["shapes", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--random-erasing", "1.5"], "expected a probability in [0, 1], got '1.5'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_options_get_argparse_errors_not_traces(cli, args, message):
    result = cli.here(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_version(cli):
    result = cli.here("--version")
    assert result.returncode == 0 and result.stdout.startswith("resnet-gluon 0.")


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "argument --lr: expected a number > 0"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer"),
    (["--ctx", "tpu:0"], "bad context 'tpu:0'"),
    (["--ctx", "gpu:0"], "gpu:0 asked for but this MXNet sees 0 GPU(s)"),
    (["--lr-schedule", "linear"], "invalid choice: 'linear'"),
    (["--resume"], "--resume needs --out RUN_DIR"),
    (["--kvstore", "nonsense"], "argument --kvstore: invalid choice: 'nonsense'"),
    (["--resize", "1"], "argument --resize: expected an integer from 8 to 512"),
    (["--resize", "10000"], "argument --resize: expected an integer from 8 to 512"),
    (["--kvstore", "dist_sync"], "kvstore dist_sync trains over MXNet's parameter server, which "
                                 "this process is not part of (no DMLC_* variables). Start the "
                                 "job with: python -m resnet_gluon launch"),
])
def test_bad_train_options(cli, args, message):
    result = cli.here("train", *args, "--no-progress")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_data_lists_where_it_looked(cli, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    result = cli.here("train", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "holds only part of Fashion-MNIST" in result.stderr
    # the ways to get the files, one a line (before: "\n" escapes in one long line)
    assert "\n  - Debian/Ubuntu: apt-get install dataset-fashion-mnist" in result.stderr
    assert "\\n" not in result.stderr


def _options(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return {a.dest: a for a in sub._actions}


def test_train_offers_every_recipe_field_with_its_help_and_leaves_defaults_to_the_config():
    # One place to add a knob: TrainConfig, or its architecture record.  The class count
    # and the input channels are the data's.
    options = _options("train")
    assert "num_classes" not in options and "in_channels" not in options
    for f in dataclasses.fields(ResNetSpec) + dataclasses.fields(TrainConfig)[1:]:
        if f.name in ("num_classes", "in_channels") or not f.metadata["option"]:
            continue  # the data's, or (recipe) the --recipe option's label
        action = options[f.name]
        assert action.help.startswith(f.metadata["help"])
        assert action.default is None  # so --resume can tell "given" from the run's value
    assert options["lr"].option_strings == ["--lr"]
    assert options["random_erasing"].option_strings == ["--random-erasing"]
    # Which data and which devices: DataRef's and RunSettings' knobs, declared there.
    for f in dataclasses.fields(DataRef) + dataclasses.fields(RunSettings)[2:]:
        assert options[f.name].help.startswith(f.metadata["help"])
        assert options[f.name].default is None
    assert options["test"].option_strings == ["--test-data"]
    assert options["skip_bad_images"].option_strings == ["--skip-bad-images",
                                                         "--no-skip-bad-images"]
    assert options["channels"].choices == [1, 3]
    assert options["kvstore"].choices[0] == "device"


@pytest.mark.parametrize("command", ["evaluate", "export", "predict", "shapes"])
def test_the_architecture_options_are_the_configs(command):
    options = _options(command)
    assert options["depth"].choices == [18, 34, 50, 101, 152]
    assert options["small_input"].option_strings == (
        ["--small-input"] if command == "shapes" else ["--small-input", "--no-small-input"])
    assert options["num_classes"].option_strings == ["--classes"]
    if command != "shapes":  # overrides of a run's config.json: None when not given
        assert {options[k].default for k in ("depth", "small_input", "resize")} == {None}
        for name in ("depth", "num_classes", "resize"):  # whose value it is, not 18/10/96
            assert options[name].help.endswith("(default: the weights' own, from their "
                                               "config.json or info file)"), options[name].help


def test_the_config_rejects_what_the_command_line_rejects():
    parser = build_parser()
    for args, field, value in [(["--momentum", "1.5"], "momentum", 1.5),
                               (["--checkpoint-every", "-1"], "checkpoint_every", -1),
                               (["--label-smoothing", "1"], "label_smoothing", 1.0)]:
        with pytest.raises(SystemExit):
            parser.parse_args(["train", *args])
        with pytest.raises(ValueError, match=f"{field} must be"):
            TrainConfig(**{field: value})


@pytest.mark.slow
def test_a_named_recipe_is_resolved_into_config_json_and_options_override_it(cli, tmp_path):
    run = tmp_path / "run"
    result = cli.here("train", "--recipe", "fast", "--epochs", "1", "--no-augment", "--dtype",
                      "float32", "--out", str(run), *TINY)
    assert result.returncode == 0, result.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["recipe"] == "fast"
    assert {k: saved[k] for k in ("lr", "momentum", "wd", "lr_schedule", "ema", "resize")} == {
        "lr": 0.1, "momentum": 0.9, "wd": 5e-4, "lr_schedule": "cosine", "ema": 0.999,
        "resize": 28}  # the recipe's, but for the size TINY gives
    assert (saved["epochs"], saved["augment"], saved["dtype"]) == (1, False, "float32")
    result = cli.here("train", "--recipe", "book", "--out", str(run), "--resume")
    assert result.returncode == 2
    assert ("the run in %s was trained with --recipe fast; resuming with --recipe book would "
            "not reproduce it. Leave --recipe out." % run) in result.stderr
    result = cli.here("train", "--recipe", "slow", "--out", str(tmp_path / "r2"))
    assert result.returncode == 2 and "invalid choice: 'slow'" in result.stderr


def _shown_defaults(help_text):
    """The defaults a help line claims, from its closing parenthesis: bare values ("96",
    "cpu:0", "test-time augmentation; 0" gives "0"), or "default: VALUE"; words such as
    "default: the weights' own ..." name a source instead, and claim no value."""
    match = re.search(r"\(([^()]*)\)$", help_text or "")
    claims = []
    for part in (match.group(1).split("; ") if match else []):
        value = part[len("default: "):] if part.startswith("default: ") else part
        if re.fullmatch(r"[\w.:,/-]+", value):
            claims.append(value)
    return claims


def _effective_default(command, action):
    """What the option is when left out: argparse's default, or for train (whose options are
    None until resolved over the named recipe), the book's recipe's and the devices'."""
    if action.default is not None or command != "train":
        return action.default
    book = {**TrainConfig().to_dict(), "recipe": "book",
            **{f.name: f.default for f in dataclasses.fields(RunSettings)[2:]}}
    return book.get(action.dest)


def _same(shown, value):
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    try:
        return float(shown) == float(value)
    except (TypeError, ValueError):
        return shown == str(value)


def test_every_default_a_help_line_shows_is_the_one_used():
    # A value in a help line's closing parenthesis must be what the option is when left
    # out; where the value comes from elsewhere (the weights, the run), the help says so in
    # words, which claim no value.
    wrong, checked = [], 0
    for command, parser in build_parser()._subparsers._group_actions[0].choices.items():
        for action in parser._actions:
            for shown in _shown_defaults(action.help):
                checked += 1
                if not _same(shown, _effective_default(command, action)):
                    wrong.append(f"{command} {action.option_strings[0]}: shows {shown}, uses "
                                 f"{_effective_default(command, action)!r}")
    assert checked >= 35 and not wrong, wrong  # 39 claims in 8 commands
    # and the claim is found where a user reads it: in --help's text
    text = build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "(default: the weights' own, from their config.json or info" in " ".join(text.split())


def test_the_help_check_fails_on_a_default_shown_wrongly():
    bad = argparse.ArgumentParser().add_argument("--resize", type=int, help="input side (96)")
    assert _shown_defaults(bad.help) == ["96"]
    assert not _same("96", _effective_default("evaluate", bad))  # None: the weights' own
