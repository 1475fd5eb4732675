"""The recipe: TrainConfig's checks, each rule once, and device lists."""
import mxnet as mx
import pytest

from resnet_gluon.config import RECIPES, TrainConfig, parse_ctx, recipe


def test_the_defaults_are_the_books_recipe():
    c = TrainConfig()
    assert (c.lr, c.batch_size, c.epochs, c.resize, c.momentum, c.wd) == (0.05, 256, 5, 96, 0.0, 0.0)
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("values, error, message", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.5), TypeError, r"batch_size must be a positive integer, got 2.5 \(float\)"),
    (dict(epochs=True), TypeError, "epochs must be a positive integer"),
    (dict(lr=float("nan")), ValueError, "lr must be a number > 0, got nan"),
    (dict(lr=0), ValueError, "lr must be a number > 0"),
    (dict(momentum=1.0), ValueError, r"momentum must be a number in \[0, 1\), got 1.0"),
    (dict(random_erasing=1.5), ValueError, r"random_erasing is a probability, in \[0, 1\]; got 1.5"),
    (dict(lr_schedule="linear"), ValueError, r"lr_schedule must be one of \['constant', 'cosine'\]"),
    (dict(depth=19), ValueError, r"depth must be one of \[18, 34, 50, 101, 152\], got 19"),
    (dict(augment="yes"), TypeError, "augment must be True or False"),
    (dict(limit_train=0), ValueError, "limit_train must be a positive integer"),
    (dict(warmup_epochs=6), ValueError, r"warmup_epochs must be in \[0, epochs=5\], got 6"),
    (dict(checkpoint_every=-1), ValueError, "checkpoint_every must be a non-negative integer"),
])
def test_bad_values_are_named_with_what_was_expected(values, error, message):
    with pytest.raises(error, match=message):  # flat values, as config.json holds them
        TrainConfig.from_dict(values)


def test_none_is_allowed_only_where_it_means_no_limit():
    assert TrainConfig(limit_train=None, limit_test=None).limit_train is None
    with pytest.raises(TypeError, match="seed must be an integer"):
        TrainConfig(seed=None)


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match=r"unknown training options \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_differences_leave_out_what_a_resume_may_change():
    a, b = TrainConfig(), TrainConfig(lr=0.1, keep_checkpoints=5, test_every=0)
    assert a.differences(b) == {"lr": (0.05, 0.1)}


def test_recipes_resolve_and_options_override_them():
    assert recipe("book") == TrainConfig() and RECIPES["book"] == {}
    fast = recipe("fast")
    assert (fast.resize, fast.batch_size, fast.lr, fast.momentum, fast.wd, fast.epochs) == (
        64, 128, 0.1, 0.9, 5e-4, 16)
    assert (fast.lr_schedule, fast.label_smoothing, fast.augment, fast.ema, fast.dtype) == (
        "cosine", 0.1, True, 0.999, "bfloat16")
    mine = recipe("fast", epochs=2, augment=False, seed=3)
    assert (mine.epochs, mine.augment, mine.seed, mine.resize) == (2, False, 3, 64)
    with pytest.raises(ValueError, match=r"unknown recipe 'quick'; known: \['book', 'fast'\]"):
        recipe("quick")
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        recipe("fast", epochs=1, warmup_epochs=2)  # checked as resolved


def test_parse_ctx():
    assert parse_ctx("cpu:0,cpu:1") == [mx.cpu(0), mx.cpu(1)]
    assert parse_ctx(None) == [mx.cpu()] and parse_ctx(mx.cpu(1)) == [mx.cpu(1)]
    with pytest.raises(ValueError, match="context listed twice"):
        parse_ctx("cpu:0,cpu:0")
