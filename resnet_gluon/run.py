"""The run directory: its file names, its config, metrics and curves, and loading what it trained.

A run directory (``--out``) holds::

    config.json      the resolved TrainConfig, plus the command line's settings
    metrics.jsonl    one JSON record per epoch
    curves.png       loss and accuracy per epoch
    checkpoints/     see resnet_gluon.checkpoint
    model.params     the final weights (``save_parameters``)

:func:`load_trained` turns ``model.params`` (or a checkpoint's ``net.params``)
back into a net, reading the architecture from the ``config.json`` beside it.
Every other module asks this one where a run keeps what.
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
from mxnet import gluon, nd

from .checkpoint import (atomic_write, atomic_write_text, find_checkpoints,
                         remove_unfinished_checkpoints)
from .config import ARCHITECTURE, TrainConfig
from .data import CLASS_NAMES
from .model import build_resnet

__all__ = ["CONFIG_FILE", "METRICS_FILE", "MODEL_FILE", "CURVES_FILE", "ModelInfo",
           "check_new_run", "write_config", "read_config", "write_metrics", "plot_curves",
           "remove_unfinished", "find_run_config", "load_trained"]

CONFIG_FILE, METRICS_FILE, MODEL_FILE = "config.json", "metrics.jsonl", "model.params"
CURVES_FILE = "curves.png"
_RUN_FILES = (CONFIG_FILE, METRICS_FILE, MODEL_FILE, CURVES_FILE)


@dataclasses.dataclass
class ModelInfo:
    """What a user of a trained net must know besides its weights.

    The architecture fields are :data:`resnet_gluon.config.ARCHITECTURE`,
    with :class:`~resnet_gluon.config.TrainConfig`'s defaults.

    Attributes
    ----------
    depth, num_classes, small_input
        The architecture (see :func:`resnet_gluon.build_resnet`).
    resize : int
        Side of the square gray input the net was trained on (28: native).
    classes : list of str
        Class names, in output order.
    """

    depth: int = TrainConfig.depth
    num_classes: int = TrainConfig.num_classes
    small_input: bool = TrainConfig.small_input
    resize: int = TrainConfig.resize
    classes: List[str] = dataclasses.field(default_factory=lambda: list(CLASS_NAMES))

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """``(1, 1, resize, resize)``: float32 in [0, 1], NCHW."""
        return (1, 1, self.resize, self.resize)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able values, with a note on the input for a reader of the file."""
        out = dataclasses.asdict(self)
        out["input"] = (f"float32 NCHW (N, 1, {self.resize}, {self.resize}): gray, "
                        f"pixel values / 255, bilinear resize of the 28x28 image")
        return out

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "ModelInfo":
        """Keep the known keys of ``values`` (a run's config.json or an info file)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        info = cls(**{k: v for k, v in values.items() if k in fields})
        if len(info.classes) != info.num_classes:  # a run with other labels than ours
            info.classes = [str(i) for i in range(info.num_classes)]
        return info

    @classmethod
    def from_config(cls, config: TrainConfig) -> "ModelInfo":
        """The net a run of ``config`` trains."""
        return cls.from_dict({k: getattr(config, k) for k in ARCHITECTURE})


# --------------------------------------------------------------------------- writing a run

def check_new_run(run_dir: str) -> None:
    """Refuse to start a run where one already is (it would mix two runs' files)."""
    if find_checkpoints(run_dir) or os.path.exists(os.path.join(run_dir, CONFIG_FILE)):
        raise FileExistsError(
            f"{run_dir} already holds a run. Continue it with --resume, or choose another "
            f"--out directory.")


def write_config(run_dir: str, config: TrainConfig,
                 extra: Optional[Dict[str, Any]] = None) -> None:
    """Write ``config.json``: the recipe, plus ``extra`` settings (the command line's)."""
    os.makedirs(run_dir, exist_ok=True)
    values = dict(config.to_dict(), **(extra or {}))
    atomic_write_text(os.path.join(run_dir, CONFIG_FILE), json.dumps(values, indent=1) + "\n")


def read_config(run_dir: str) -> Dict[str, Any]:
    """The values in a run's ``config.json`` (``FileNotFoundError`` if it has none)."""
    with open(os.path.join(run_dir, CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f)


def write_metrics(run_dir: str, history: List[Dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` and ``curves.png`` from the epoch records so far."""
    atomic_write_text(os.path.join(run_dir, METRICS_FILE),
                      "".join(json.dumps(r) + "\n" for r in history))
    plot_curves(os.path.join(run_dir, CURVES_FILE), history)


def plot_curves(path: str, history: List[Dict[str, Any]]) -> None:
    """Loss, and train and test accuracy, per epoch, as a PNG (written atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [r["loss"] for r in history], "o-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [r["train_acc"] for r in history], "o-", label="train acc")
    ax2.plot(epochs, [r["test_acc"] for r in history], "s-", label="test acc")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def remove_unfinished(run_dir: str) -> None:
    """Drop the temporaries a killed run left behind (never a finished file)."""
    remove_unfinished_checkpoints(run_dir)
    ours = tuple(f".{n}." for n in _RUN_FILES)
    for name in os.listdir(run_dir):
        if name.startswith(ours):
            os.remove(os.path.join(run_dir, name))


# --------------------------------------------------------------------------- reading a run

def find_run_config(params: str) -> Optional[str]:
    """The ``config.json`` of the run a params file belongs to, or None.

    Looks beside the file (``RUN_DIR/model.params``) and two levels up (a
    checkpoint's ``RUN_DIR/checkpoints/ckpt-*/net.params``).
    """
    here = os.path.dirname(os.path.abspath(params))
    for directory in (here, os.path.join(here, "..", "..")):
        path = os.path.normpath(os.path.join(directory, CONFIG_FILE))
        if os.path.isfile(path):
            return path
    return None


def _mismatch(net: gluon.Block, params: str) -> Optional[str]:
    """Name how ``params`` differs from ``net``'s parameters, or None if it fits."""
    saved = {k: v.shape for k, v in nd.load(params).items()}
    # save_parameters keys are the structural names ("4.0.conv1.weight").
    expected = {k: v.shape for k, v in net._collect_params_with_prefix().items()}
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    shapes = [f"{k}: the net has {expected[k]}, the file {saved[k]}"
              for k in expected if k in saved and 0 not in expected[k]
              and tuple(expected[k]) != tuple(saved[k])]
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape(s) differ, first {shapes[0]}")
    if missing:
        parts.append(f"{len(missing)} parameter(s) missing from the file, first {missing[0]}")
    if extra:
        parts.append(f"{len(extra)} parameter(s) in the file the net lacks, first {extra[0]}")
    return "; ".join(parts) or None


def load_trained(params: str, depth: Optional[int] = None, num_classes: Optional[int] = None,
                 small_input: Optional[bool] = None, resize: Optional[int] = None,
                 ctx: Union[mx.Context, Sequence[mx.Context], None] = None
                 ) -> Tuple[gluon.HybridBlock, ModelInfo]:
    """Build the net a ``save_parameters`` file was trained as, and load it.

    Settings come from the run's ``config.json`` (see :func:`find_run_config`);
    the arguments, when given, override them; without either the book's
    ResNet-18 at 96x96 with 10 classes is assumed.

    Parameters
    ----------
    params : str
        ``RUN_DIR/model.params`` or a checkpoint's ``net.params``.
    depth, num_classes, small_input, resize : optional
        Override the run's settings.
    ctx : Context or list of Context, optional
        Where to load the weights (default ``cpu``).

    Returns
    -------
    (ResNet, ModelInfo)

    Raises
    ------
    FileNotFoundError
        No such params file.
    ValueError
        The file does not fit the architecture: the message names the first
        differing parameter and how to fix the options.
    """
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: no such params file.")
    values: Dict[str, Any] = {}
    config = find_run_config(params)
    if config:
        with open(config, encoding="utf-8") as f:
            values.update(json.load(f))
    given = dict(depth=depth, num_classes=num_classes, small_input=small_input, resize=resize)
    values.update({k: v for k, v in given.items() if v is not None})
    info = ModelInfo.from_dict(values)
    net = build_resnet(info.depth, info.num_classes, small_input=info.small_input,
                       in_channels=1)
    try:
        problem = _mismatch(net, params)
    except mx.base.MXNetError as err:
        raise ValueError(f"{params} is not a params file MXNet can read: "
                         f"{str(err).splitlines()[0]}") from None
    if problem:
        raise ValueError(
            f"{params} does not fit ResNet-{info.depth}{' (small input)' if info.small_input else ''}"
            f" with {info.num_classes} classes{f' (settings from {config})' if config else ''}: "
            f"{problem}. Pass the --depth / --classes / --small-input the weights were "
            f"trained with.")
    net.load_parameters(params, ctx=ctx or mx.cpu())
    return net, info
