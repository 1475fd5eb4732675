"""The run directory: its file names, its config, metrics and curves, and loading what it trained.

A run directory (``--out``) holds::

    config.json      the resolved TrainConfig, plus the command line's settings
    metrics.jsonl    one JSON record per epoch
    curves.png       loss and accuracy per epoch
    checkpoints/     see resnet_gluon.checkpoint
    model.params     the final weights (``save_parameters``)
    .lock            held by the process training in it (see RunLock)

:func:`load_trained` turns ``model.params`` (or a checkpoint's ``net.params``)
back into a net, reading the architecture from the ``config.json`` beside it.
Every other module asks this one where a run keeps what.
"""
import dataclasses
import fcntl
import json
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
from mxnet import gluon, nd

from ._checks import mxnet_reason
from .checkpoint import (CHECKPOINT_DIR, atomic_write, atomic_write_text, find_checkpoints,
                         remove_unfinished_checkpoints)
from .config import ARCHITECTURE, TrainConfig
from .data import CLASS_NAMES
from .model import build_resnet
from .precision import check_dtype, mixed_precision

__all__ = ["CONFIG_FILE", "METRICS_FILE", "MODEL_FILE", "CURVES_FILE", "ModelInfo",
           "RunLock", "claim_run_dir", "write_config", "read_config",
           "read_json", "write_metrics", "plot_curves",
           "remove_unfinished", "find_run_config", "load_trained"]

CONFIG_FILE, METRICS_FILE, MODEL_FILE = "config.json", "metrics.jsonl", "model.params"
CURVES_FILE, LOCK_FILE = "curves.png", ".lock"
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

    def __post_init__(self):
        # The architecture obeys TrainConfig's rules (one rule, one place).
        TrainConfig(**{k: getattr(self, k) for k in ARCHITECTURE})
        if not (isinstance(self.classes, list) and all(isinstance(c, str) for c in self.classes)):
            raise ValueError(f"classes must be a list of names, got {self.classes!r}.")

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
    def read(cls, path: str, values: Optional[Dict[str, Any]] = None) -> "ModelInfo":
        """The info in a JSON file (a run's config.json, an export's -info.json), with
        ``values`` over it; errors name the file."""
        merged = dict(read_json(path), **(values or {}))
        try:
            return cls.from_dict(merged)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err} Correct the file, or pass the settings as "
                             f"options.") from None

    @classmethod
    def from_config(cls, config: TrainConfig) -> "ModelInfo":
        """The net a run of ``config`` trains."""
        return cls.from_dict({k: getattr(config, k) for k in ARCHITECTURE})


# --------------------------------------------------------------------------- writing a run

class RunLock:
    """This process's hold on a run directory (an ``flock`` on ``RUN_DIR/.lock``).

    Two runs writing one directory would mix their checkpoints and lose one's
    results; the lock makes the second stop at once instead.  The kernel drops
    it when the process ends, however it ends, so a killed run never leaves a
    stale lock behind.  Use as a context manager, or call :meth:`release`.
    """

    def __init__(self, run_dir: str):
        self._fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise FileExistsError(
                f"{run_dir} is in use by another training process. Wait for it to end, "
                f"or choose another --out directory.") from None

    def release(self) -> None:
        """Let go of the directory (closing the file drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_run_dir(run_dir: str, resume: bool) -> RunLock:
    """Make sure ``run_dir`` can take this run, and lock it for this process.

    A new run needs a new or empty directory, or one holding only what a run
    of ours that ended before its first checkpoint left (its config.json, the
    lock, temporaries); ``resume`` needs a run of ours.  Nothing in the
    directory is changed when it is refused.

    Raises
    ------
    FileExistsError
        ``run_dir`` is a file, holds another run (without ``resume``) or
        someone else's files, or another process is training in it.
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise FileExistsError(f"--out {run_dir} is a file, not a directory. Name a new "
                              f"directory for the run (it is created).")
    if not resume:
        _check_new_run(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    lock = RunLock(run_dir)
    try:
        if not resume:  # again under the lock: another run may have started meanwhile
            _check_new_run(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def _check_new_run(run_dir: str) -> None:
    def has(name):
        return os.path.exists(os.path.join(run_dir, name))

    if find_checkpoints(run_dir) or has(CONFIG_FILE) and has(MODEL_FILE):
        raise FileExistsError(
            f"{run_dir} already holds a run. Continue it with --resume, or choose another "
            f"--out directory.")
    # A run of ours that ended before its first checkpoint left nothing worth
    # keeping (its config.json, temporaries): the same command may start over.
    ours = (LOCK_FILE, CONFIG_FILE, CHECKPOINT_DIR)
    temporaries = tuple(f".{n}." for n in _RUN_FILES)
    theirs = sorted(n for n in (os.listdir(run_dir) if os.path.isdir(run_dir) else [])
                    if n not in ours and not n.startswith(temporaries))
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3
                                          else "")
        raise FileExistsError(
            f"{run_dir} is not empty ({shown}) and holds no run of this library; a run "
            f"would write over such files. Choose a new or empty --out directory.")


def write_config(run_dir: str, config: TrainConfig,
                 extra: Optional[Dict[str, Any]] = None) -> None:
    """Write ``config.json``: the recipe, plus ``extra`` settings (the command line's)."""
    os.makedirs(run_dir, exist_ok=True)
    values = dict(config.to_dict(), **(extra or {}))
    atomic_write_text(os.path.join(run_dir, CONFIG_FILE), json.dumps(values, indent=1) + "\n")


def read_config(run_dir: str) -> Dict[str, Any]:
    """The values in a run's ``config.json``.

    Raises
    ------
    FileNotFoundError
        The run has no ``config.json``.
    ValueError
        It is not a JSON object (truncated, or edited by hand); the message names it.
    """
    return read_json(os.path.join(run_dir, CONFIG_FILE))


def read_json(path: str) -> Dict[str, Any]:
    """A JSON object from a file this library wrote, or a ``ValueError`` naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}): it is truncated or was edited. "
                         f"Restore it, or pass the settings it held as options.") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} holds a JSON {type(values).__name__}, not the object of "
                         f"settings this library writes. Restore it, or pass the settings "
                         f"as options.")
    return values


def write_metrics(run_dir: str, history: List[Dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` and ``curves.png`` from the epoch records so far."""
    atomic_write_text(os.path.join(run_dir, METRICS_FILE),
                      "".join(json.dumps(r) + "\n" for r in history))
    plot_curves(os.path.join(run_dir, CURVES_FILE), history)


def plot_curves(path: str, history: List[Dict[str, Any]]) -> None:
    """Loss, and train, validation (of the raw weights too, where averaged) and test accuracy,
    per epoch, as a PNG (written atomically)."""
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
    if all("val_acc" in r for r in history):
        ax2.plot(epochs, [r["val_acc"] for r in history], "^-", label="val acc")
    if all("val_acc_raw" in r for r in history):
        ax2.plot(epochs, [r["val_acc_raw"] for r in history], "^:", label="val acc, raw weights")
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


def _warn(log: Optional[Callable[[str], None]], message: str) -> None:
    if log is None:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        log(message)


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
                 ctx: Union[mx.Context, Sequence[mx.Context], None] = None,
                 log: Optional[Callable[[str], None]] = None, dtype: str = "float32"
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
    log : callable, optional
        Receives the warning given when there is no ``config.json`` and
        settings are assumed (default: :func:`warnings.warn`).
    dtype : {'float32', 'bfloat16'}, default 'float32'
        For bfloat16, the net returned computes in bf16 over the float32 weights
        loaded (:func:`resnet_gluon.precision.mixed_precision`).

    Returns
    -------
    (ResNet, ModelInfo)
        (a ``SymbolBlock`` sharing the ResNet's weights, for bfloat16)

    Raises
    ------
    FileNotFoundError
        No such params file.
    ValueError
        The file does not fit the architecture: the message names the first
        differing parameter and how to fix the options.
    """
    check_dtype(dtype)  # before any work
    if not os.path.isfile(params):
        raise FileNotFoundError(f"{params}: no such params file.")
    given = {k: v for k, v in dict(depth=depth, num_classes=num_classes,
                                   small_input=small_input, resize=resize).items()
             if v is not None}
    config = find_run_config(params)
    if config:
        info = ModelInfo.read(config, given)
    else:
        info = ModelInfo.from_dict(given)
        assumed = [k for k in ARCHITECTURE if k not in given]
        if assumed:
            _warn(log, f"no config.json beside {params} (nor two levels up, for a "
                       f"checkpoint), so its net is assumed to be "
                       + ", ".join(f"{k} {getattr(info, k)}" for k in assumed)
                       + ". If it was trained otherwise, pass --depth, --classes, "
                         "--small-input and --resize.")
    net = build_resnet(info.depth, info.num_classes, small_input=info.small_input,
                       in_channels=1)
    try:
        problem = _mismatch(net, params)
    except mx.base.MXNetError as err:
        raise ValueError(f"{params} is not a params file MXNet can read ({mxnet_reason(err)}): "
                         f"it is empty, truncated or another kind of file. Use the "
                         f"model.params a run wrote.") from None
    if problem:
        small = " (small input)" if info.small_input else ""
        raise ValueError(
            f"{params} does not fit ResNet-{info.depth}{small}"
            f" with {info.num_classes} classes{f' (settings from {config})' if config else ''}: "
            f"{problem}. Pass the --depth / --classes / --small-input the weights were "
            f"trained with.")
    net.load_parameters(params, ctx=ctx or mx.cpu())
    return mixed_precision(net, dtype), info
