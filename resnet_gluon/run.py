"""The run directory: its file names, its lock, its config, metrics and curves.

A run directory (``--out``) holds::

    config.json      the run's record (RunRecord): recipe, input, classes, data, devices
    images.json      which images exactly (Fingerprint): each one's path, size and hash
    metrics.jsonl    one JSON record per epoch
    curves.png       loss and accuracy per epoch
    checkpoints/     see resnet_gluon.checkpoint
    model.params     the final weights (``save_parameters``)
    .lock            held by the process training in it (see RunLock)

Every other module asks this one where a run keeps what; turning a run's
``model.params`` back into a net is :func:`resnet_gluon.trained.load_trained`'s.
"""
import dataclasses
import fcntl
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from ._checks import TEXT, knob
from .checkpoint import (CHECKPOINT_DIR, atomic_write, atomic_write_text, find_checkpoints,
                         remove_unfinished_checkpoints)
from .config import KVSTORES, TrainConfig, recipe as named_recipe
from .data import CLASS_NAMES
from .inputs import DataRef, Fingerprint, InputSpec

__all__ = ["CONFIG_FILE", "IMAGES_FILE", "METRICS_FILE", "MODEL_FILE", "CURVES_FILE",
           "RunLock", "RunDirTaken", "RunRecord", "RunSettings", "default_classes",
           "claim_run_dir", "write_config", "read_images", "read_config", "read_json",
           "write_metrics", "plot_curves", "remove_unfinished", "find_run_config"]

CONFIG_FILE, METRICS_FILE, MODEL_FILE = "config.json", "metrics.jsonl", "model.params"
CURVES_FILE, LOCK_FILE, IMAGES_FILE = "curves.png", ".lock", "images.json"
_RUN_FILES = (CONFIG_FILE, IMAGES_FILE, METRICS_FILE, MODEL_FILE, CURVES_FILE)


# --------------------------------------------------------------------------- writing a run

class RunDirTaken(FileExistsError):
    """The run directory cannot take this run (it holds one, someone else's files, or a
    training process); the message says what to do.  In a notebook it shows as that one
    line, not a traceback (IPython's ``_render_traceback_``)."""

    def _render_traceback_(self) -> List[str]:
        return [f"{type(self).__name__}: {self}"]


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
            raise RunDirTaken(
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
        raise RunDirTaken(f"--out {run_dir} is a file, not a directory. Name a new "
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
        raise RunDirTaken(
            f"{run_dir} already holds a run. Continue it with --resume (fit(..., "
            f"resume=True)), or choose another --out directory (run_dir=...).")
    # A run of ours that ended before its first checkpoint left nothing worth
    # keeping (its config.json, temporaries): the same command may start over.
    ours = (LOCK_FILE, CONFIG_FILE, IMAGES_FILE, CHECKPOINT_DIR)
    temporaries = tuple(f".{n}." for n in _RUN_FILES)
    theirs = sorted(n for n in (os.listdir(run_dir) if os.path.isdir(run_dir) else [])
                    if n not in ours and not n.startswith(temporaries))
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3
                                          else "")
        raise RunDirTaken(
            f"{run_dir} is not empty ({shown}) and holds no run of this library; a run "
            f"would write over such files. Choose a new or empty --out directory.")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What a run's ``config.json`` holds, written by ``fit`` and nowhere else: the recipe
    (with the architecture), the input record, the class names, which data it was, and the
    devices and gradient store it ran on.  Everything a later command needs of the run.
    ``images``, which images exactly, is kept beside it in ``images.json``."""

    config: TrainConfig
    inputs: InputSpec
    classes: Tuple[str, ...]
    data: DataRef = DataRef()
    ctx: str = "cpu:0"
    kvstore: str = "device"
    images: Fingerprint = dataclasses.field(default_factory=Fingerprint)

    def __post_init__(self):
        spec, inputs = self.config.model, self.inputs
        channels = spec.in_channels or inputs.channels  # 0: the net infers them
        if (channels, self.config.resize) != (inputs.channels, inputs.resize):
            raise ValueError(f"the recipe's net takes {spec.in_channels} channels at "
                             f"{self.config.resize}x{self.config.resize} but its input record "
                             f"says {inputs.channels} at {inputs.resize}x{inputs.resize}.")
        if len(self.classes) != spec.num_classes:
            raise ValueError(f"{len(self.classes)} class names for a net of "
                             f"{spec.num_classes} outputs.")

    def to_dict(self) -> Dict[str, Any]:
        """Flat: the recipe's keys first, then the input's, the classes, the data's, the
        devices'."""
        return {**self.config.to_dict(), **self.inputs.to_dict(), "classes": list(self.classes),
                **self.data.to_dict(), "ctx": self.ctx, "kvstore": self.kvstore}

    @classmethod
    def read(cls, run_dir: str) -> "RunRecord":
        """The record of the run in ``run_dir`` (files from before a key took its default):
        what ``train --resume`` continues, and what a script resumes with::

            record = RunRecord.read("runs/photos")
            source = open_source(record.data.data, record.data.test, record.data.channels)
            fit(source.build_net(record.config), source, record.config,
                run_dir="runs/photos", resume=True)

        Raises
        ------
        ValueError
            ``run_dir`` holds no run's config.json, or it cannot be read.
        """
        path = os.path.join(run_dir, CONFIG_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"--resume: {path} not found; is {run_dir} a run directory? "
                             f"Start a new run without --resume.")
        saved = read_json(path)
        known = TrainConfig().to_dict()
        try:
            config = TrainConfig.from_dict({k: v for k, v in saved.items() if k in known})
            classes = saved.get("classes") or default_classes(config.model.num_classes)
            return cls(config, InputSpec.from_dict(saved), tuple(classes),
                       DataRef.from_dict(saved), saved.get("ctx", "cpu:0"),
                       saved.get("kvstore", "device"), read_images(run_dir))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err} Restore the file, or start a new run.") from None


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What a run starts or continues with, before its data is read: the recipe, which
    data, the devices and the gradient store.  ``train``'s options resolve into it
    (:meth:`resolve`); ``fit`` then records it with the input and classes (:class:`RunRecord`).
    """

    config: TrainConfig
    data: DataRef = DataRef()
    ctx: str = knob("cpu:0", "devices, comma-separated: cpu:0,cpu:1 or gpu:0,gpu:1", TEXT,
                    metavar="CTX")
    kvstore: str = knob("device", "gradient aggregation (dist_* through 'launch')",
                        choices=KVSTORES)

    @classmethod
    def resolve(cls, run_dir: Optional[str] = None, resume: bool = False,
                recipe: Optional[str] = None, **given: Any) -> "RunSettings":
        """The values ``given`` over the run's saved ones (``resume``: the run in
        ``run_dir``) or the named ``recipe``'s, over the defaults; None is "not given".

        ``given`` holds :class:`TrainConfig` fields, :class:`DataRef` fields (``data``,
        ``test``, ``channels``, ``skip_bad_images``), ``ctx`` and ``kvstore``.  A changed
        recipe is refused later, by ``fit``, with the fields that differ; changed data too.

        Raises
        ------
        ValueError
            ``resume`` without ``run_dir``; or, on resume, a ``recipe``, ``ctx`` or
            ``kvstore`` other than the run's, which would not reproduce it.
        """
        if resume and not run_dir:
            raise ValueError("--resume needs --out RUN_DIR, the run to continue.")
        run = RunRecord.read(run_dir) if resume else None
        base = (cls(run.config, run.data, run.ctx, run.kvstore) if run else
                cls(named_recipe(recipe or "book")))
        ctx, kvstore = given.pop("ctx", None), given.pop("kvstore", None)
        for key, value, saved in (("recipe", recipe, base.config.recipe),
                                  ("ctx", ctx, base.ctx), ("kvstore", kvstore, base.kvstore)):
            if run and value is not None and value != saved:
                raise ValueError(f"the run in {run_dir} was trained with --{key} {saved}; "
                                 f"resuming with --{key} {value} would not reproduce it. "
                                 f"Leave --{key} out.")
        refs = {f.name for f in dataclasses.fields(DataRef)}
        given = {k: v for k, v in given.items() if v is not None}
        data = dataclasses.replace(base.data, **{k: v for k, v in given.items() if k in refs})
        config = TrainConfig.from_dict({**base.config.to_dict(),
                                        **{k: v for k, v in given.items() if k not in refs}})
        return cls(config, data, ctx or base.ctx, kvstore or base.kvstore)


def default_classes(count: int) -> List[str]:
    """Class names of batches given without names: Fashion-MNIST's for 10, else numbers."""
    return list(CLASS_NAMES) if count == 10 else [str(i) for i in range(count)]


def write_config(run_dir: str, record: RunRecord) -> None:
    """Write ``config.json`` (atomically) from the run's record, and ``images.json`` from
    its fingerprint."""
    os.makedirs(run_dir, exist_ok=True)
    images = os.path.join(run_dir, IMAGES_FILE)
    if record.images.parts:
        atomic_write_text(images, json.dumps(record.images.to_dict()) + "\n")
    elif os.path.exists(images):  # a run started over on data with no fingerprint
        os.remove(images)
    atomic_write_text(os.path.join(run_dir, CONFIG_FILE),
                      json.dumps(record.to_dict(), indent=1) + "\n")


def read_images(run_dir: str) -> Fingerprint:
    """The fingerprint a run kept of its images (empty where it kept none: Fashion-MNIST,
    or a run from before it was kept)."""
    path = os.path.join(run_dir, IMAGES_FILE)
    return Fingerprint.from_dict(read_json(path)) if os.path.isfile(path) else Fingerprint()


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
    if all("test_acc" in r for r in history):  # an image folder may have no test set
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
