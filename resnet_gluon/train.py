"""Training and evaluation: the book's ``train_ch5`` loop made safe to stop and resume.

``fit`` prints the book's line each epoch::

    epoch 1, loss 0.4856, train acc 0.828, test acc 0.894, time 61.8 sec

(loss and train accuracy as ``d2lzh.train_ch5`` defines them: the mean over
the epoch's examples of the training loss and of the train-mode predictions),
shows a tqdm bar on stderr, and, given a run directory, writes
``config.json``, ``metrics.jsonl``, atomic checkpoints, ``model.params`` and
``curves.png``.  Every random choice during training comes from seeds, so a
run killed at any moment and resumed with the same ``OMP_NUM_THREADS`` ends
bit-identical to one that was not.
"""
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd

__all__ = ["TrainConfig", "fit", "evaluate", "EvalResult", "TrainingDiverged",
           "CheckpointError", "parse_ctx", "lr_at", "save_checkpoint", "load_checkpoint",
           "find_checkpoints", "atomic_write"]

CONFIG_FILE, METRICS_FILE, MODEL_FILE = "config.json", "metrics.jsonl", "model.params"
CURVES_FILE, CHECKPOINT_DIR = "curves.png", "checkpoints"


@dataclasses.dataclass
class TrainConfig:
    """What decides the numbers a run produces (saved as ``config.json``).

    The defaults are the book's recipe: lr 0.05, plain SGD, batch 256, 5
    epochs, images resized to 96, Xavier initialisation.

    Attributes
    ----------
    depth, num_classes, small_input
        The net (see :func:`resnet_gluon.build_resnet`).
    lr : float
        Peak learning rate.
    batch_size : int
        Examples per optimisation step, over all devices and workers.
    epochs : int
    resize : int
        Side of the square input; 28 keeps the native size.
    momentum, wd : float
        SGD momentum and weight decay (0 and 0 in the book).
    lr_schedule : {'constant', 'cosine'}
        Cosine decays to 0 over the run, after ``warmup_epochs`` of linear warm-up.
    warmup_epochs : float
    label_smoothing : float
        Mass spread over all classes (0 in the book).
    augment : bool
        Random 2-pixel shifts and horizontal flips.
    random_erasing : float
        Probability of erasing a random rectangle of each training image (0).
    seed : int
        Seeds initialisation (``mx.random``) and all data order and augmentation.
    limit_train, limit_test : int or None
        Use the first N examples only.
    checkpoint_every : int
        Also checkpoint every N steps inside an epoch (0: only at epoch ends).
    keep_checkpoints : int
        How many checkpoints to keep (the newest ones).
    """

    depth: int = 18
    num_classes: int = 10
    small_input: bool = False
    lr: float = 0.05
    batch_size: int = 256
    epochs: int = 5
    resize: int = 96
    momentum: float = 0.0
    wd: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    random_erasing: float = 0.0
    seed: int = 0
    limit_train: Optional[int] = None
    limit_test: Optional[int] = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2

    def __post_init__(self):
        for name in ("batch_size", "epochs", "resize", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("limit_train", "limit_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if self.wd < 0:
            raise ValueError(f"wd must be >= 0, got {self.wd!r}.")
        if not 0 <= self.random_erasing <= 1:
            raise ValueError(f"random_erasing is a probability in [0, 1], got "
                             f"{self.random_erasing!r}.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got "
                             f"{self.lr_schedule!r}.")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got "
                             f"{self.warmup_epochs!r}.")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}.")

    def to_dict(self) -> Dict[str, Any]:
        """The config as plain JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from :meth:`to_dict` output, naming unknown keys."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown training options {unknown}; known: {sorted(fields)}.")
        return cls(**values)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped before the bad update."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or from another run."""


def parse_ctx(text: Union[str, Sequence[mx.Context], mx.Context, None]) -> List[mx.Context]:
    """``'cpu:0,cpu:1'`` or ``'gpu:0,gpu:1'`` (or contexts) -> a list of contexts.

    Raises
    ------
    ValueError
        A part is not ``cpu:N`` / ``gpu:N``, or a GPU is asked for that is not there.
    """
    if text is None:
        return [mx.cpu()]
    if isinstance(text, mx.Context):
        return [text]
    if not isinstance(text, str):
        return list(text)
    ctxs = []
    for part in text.split(","):
        kind, _, index = part.strip().partition(":")
        if kind not in ("cpu", "gpu") or not (index or "0").isdigit():
            raise ValueError(f"bad context {part!r} in {text!r}: expected cpu:N or gpu:N, "
                             f"comma-separated, e.g. cpu:0,cpu:1 or gpu:0,gpu:1.")
        i = int(index or 0)
        if kind == "gpu" and i >= mx.context.num_gpus():
            raise ValueError(f"gpu:{i} asked for but this MXNet sees "
                             f"{mx.context.num_gpus()} GPU(s); use cpu:0, or install a "
                             f"CUDA build of MXNet (see the README).")
        ctxs.append(mx.gpu(i) if kind == "gpu" else mx.cpu(i))
    if len(set(ctxs)) != len(ctxs):
        raise ValueError(f"context listed twice in {text!r}.")
    return ctxs


def lr_at(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The learning rate of a step (0-based ``epoch`` and ``step``): stateless, so resume is exact."""
    progress = epoch + step / steps_per_epoch
    if config.warmup_epochs and progress < config.warmup_epochs:
        return config.lr * (progress + 1 / steps_per_epoch) / config.warmup_epochs
    if config.lr_schedule == "cosine":
        span = config.epochs - config.warmup_epochs
        return 0.5 * config.lr * (1 + math.cos(math.pi * (progress - config.warmup_epochs) / span))
    return config.lr


# --------------------------------------------------------------------------- files

def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(tmp_path)``, fsync, then rename over ``path``.

    A reader sees either the old file or the whole new one, never a torn one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(run_dir: str, net: gluon.Block, trainer: gluon.Trainer,
                    state: Dict[str, Any], keep: int = 2) -> str:
    """Write a checkpoint directory atomically and drop all but the newest ``keep``.

    The directory (``checkpoints/ckpt-EEEE-SSSSSS``) holds ``net.params``,
    ``trainer.states`` and ``state.json`` (the loop's position, metrics so
    far, the config and the SHA-256 of both binary files).  It is built under
    a temporary name, every file fsynced, then renamed into place.

    Returns
    -------
    str
        The checkpoint's path.
    """
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    os.makedirs(root, exist_ok=True)
    name = f"ckpt-{state['epoch']:04d}-{state['step']:06d}"
    final = os.path.join(root, name)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=root)
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        net.save_parameters(os.path.join(tmp, "net.params"))
        files = ["net.params"]
        if trainer is not None:  # None over the parameter server: the servers hold it
            trainer.save_states(os.path.join(tmp, "trainer.states"))
            files.append("trainer.states")
        state = dict(state, files={f: _sha256(os.path.join(tmp, f)) for f in files})
        with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        for f in os.listdir(tmp):
            with open(os.path.join(tmp, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):  # the same position again (a resumed run): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in find_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoints(run_dir: str) -> List[str]:
    """Checkpoint directories of a run, oldest first (unfinished temporaries excluded)."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, n) for n in sorted(os.listdir(root)) if n.startswith("ckpt-")]


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Read and verify a checkpoint's ``state.json``; check both files' SHA-256.

    Raises
    ------
    CheckpointError
        A file is missing, truncated or altered; the message names it.
    """
    state_file = os.path.join(path, "state.json")
    try:
        with open(state_file, encoding="utf-8") as f:
            state = json.load(f)
        files = state["files"]
    except FileNotFoundError:
        raise CheckpointError(f"{state_file} is missing: the checkpoint is incomplete.") from None
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{state_file} is truncated or corrupt ({err}).") from None
    for name, digest in files.items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise CheckpointError(f"{file} is missing: the checkpoint is incomplete.")
        if _sha256(file) != digest:
            raise CheckpointError(f"{file} is truncated or corrupt (its SHA-256 differs "
                                  f"from the one recorded when it was written).")
    return state


def _latest_valid_checkpoint(run_dir: str, log: Callable[[str], None]
                             ) -> Optional[Tuple[str, Dict[str, Any]]]:
    for path in reversed(find_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            log(f"warning: skipping checkpoint {path}: {err}")
    return None


# --------------------------------------------------------------------------- loop

@dataclasses.dataclass
class EvalResult:
    """Accuracy on a data set: overall, per class, and the confusion matrix.

    ``confusion[i, j]`` counts examples of true class ``i`` predicted as ``j``;
    ``predictions`` holds the predicted class of every example, in order.
    """

    accuracy: float
    per_class: List[float]
    confusion: np.ndarray
    predictions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def count(self) -> int:
        """Examples evaluated."""
        return int(self.confusion.sum())


def evaluate(net: gluon.Block, data: Iterable, ctx: Union[str, Sequence[mx.Context], None] = None,
             num_classes: int = 10, flip: bool = False) -> EvalResult:
    """Predict-mode accuracy of ``net`` on ``data`` (batches of ``(X, y)``).

    Parameters
    ----------
    net : mxnet.gluon.Block
    data : iterable of (NDArray, NDArray)
    ctx : str or list of Context, optional
        Devices to split each batch over (default ``cpu``).
    num_classes : int, default 10
    flip : bool, default False
        Test-time augmentation: average the softmax of each image and of its
        mirror image (twice the cost; pairs with training on random flips).
    """
    ctxs = parse_ctx(ctx)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    predictions = []
    for X, y in data:
        xs = gluon.utils.split_and_load(X, ctxs, even_split=False)
        ys = gluon.utils.split_and_load(y, ctxs, even_split=False)
        for xp, yp in zip(xs, ys):
            scores = net(xp)
            if flip:
                scores = nd.softmax(scores) + nd.softmax(net(xp.flip(axis=3)))
            pred = scores.argmax(axis=1).asnumpy().astype(np.int64)
            predictions.append(pred)
            np.add.at(confusion, (yp.asnumpy().astype(np.int64), pred), 1)
    total = confusion.sum()
    if total == 0:
        raise ValueError("evaluate got no examples.")
    per_class = [float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else
                 float("nan") for i in range(num_classes)]
    return EvalResult(float(np.trace(confusion) / total), per_class, confusion,
                      np.concatenate(predictions))


def _batches(data, epoch: int, start: int):
    if hasattr(data, "batches"):
        return data.batches(epoch, start)
    it = iter(data)
    for _ in range(start):  # a plain iterable: skip what was done already
        next(it)
    return it


def _loss_fn(config: TrainConfig):
    if config.label_smoothing:
        loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
        k, eps = config.num_classes, config.label_smoothing

        def smoothed(y_hat, y):
            target = nd.one_hot(y, k) * (1 - eps) + eps / k
            return loss(y_hat, target)
        return smoothed
    return gluon.loss.SoftmaxCrossEntropyLoss()


def _format_line(record: Dict[str, Any]) -> str:
    return ("epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec"
            % (record["epoch"], record["loss"], record["train_acc"], record["test_acc"],
               record["time"]))


def _plot_curves(path: str, history: List[Dict[str, Any]]) -> None:
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


_RESUME_MAY_DIFFER = {"keep_checkpoints"}


def _initialized(params) -> bool:
    try:
        for p in params.values():
            p.list_ctx()  # RuntimeError when initialize() was never called
    except RuntimeError:
        return False
    return True


def _settle() -> None:
    """Wait for every queued operation before reading parameters.

    A hybridized net with static memory updates BatchNorm's running statistics
    without telling MXNet's dependency engine (MXNet 1.9): a read right after
    the step can see the old values.  Waiting for all work first makes every
    checkpoint, sync and evaluation read what the steps wrote.
    """
    mx.nd.waitall()


_AUX_KEY = 1 << 20  # kvstore keys of BatchNorm statistics, clear of the Trainer's 0..n-1


class _AuxSync:
    """Average BatchNorm's running statistics over devices and workers.

    Each device (and each worker) normalises its own share of the batch and so
    updates its own running statistics; without this, the copy saved would be
    device 0's alone and the devices would disagree at test time.
    """

    def __init__(self, params, ctxs, kv):
        self.aux = [p for p in params.values() if p.grad_req == "null"]
        # Only a store of several workers takes part; a local one is the Trainer's.
        self.kv = kv if getattr(kv, "num_workers", 1) > 1 else None
        self.ctxs, self._ready = ctxs, False
        self.active = len(ctxs) > 1 or self.kv is not None

    def __call__(self) -> None:
        if not self.active:
            return
        dist = self.kv is not None
        if dist and not self._ready:
            for i, p in enumerate(self.aux):
                self.kv.init(_AUX_KEY + i, nd.zeros(p.shape, ctx=self.ctxs[0]))
            self._ready = True
        for i, p in enumerate(self.aux):
            copies = [d.as_in_context(self.ctxs[0]) for d in p.list_data()]
            mean = nd.add_n(*copies) / len(copies)
            if dist:
                self.kv.pushpull(_AUX_KEY + i, mean, out=mean)
                mean /= self.kv.num_workers
            for arr in p.list_data():  # in place: set_data would reset a dist store
                mean.copyto(arr)


def _remove_unfinished(run_dir: str) -> None:
    """Drop temporaries that a killed run left behind (never a finished file)."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    for name in os.listdir(root):
        if name.startswith(".ckpt-"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    ours = tuple(f".{n}." for n in (CONFIG_FILE, METRICS_FILE, MODEL_FILE, CURVES_FILE))
    for name in os.listdir(run_dir):
        if name.startswith(ours):
            os.remove(os.path.join(run_dir, name))


def _write_metrics(run_dir: str, history: List[Dict[str, Any]]) -> None:
    _write_text(os.path.join(run_dir, METRICS_FILE),
                "".join(json.dumps(r) + "\n" for r in history))
    _plot_curves(os.path.join(run_dir, CURVES_FILE), history)


def fit(net: gluon.Block, train_data: Iterable, test_data: Iterable,
        config: Optional[TrainConfig] = None, ctx: Union[str, Sequence[mx.Context], None] = None,
        kvstore: Union[str, "mx.kvstore.KVStore"] = "device", run_dir: Optional[str] = None,
        resume: bool = False, progress: bool = True, hybridize: bool = True,
        log: Callable[[str], None] = print, extra_config: Optional[Dict[str, Any]] = None
        ) -> List[Dict[str, Any]]:
    """Train ``net`` as ``d2lzh.train_ch5`` does, with checkpoints, resume and several devices.

    Parameters
    ----------
    net : mxnet.gluon.Block
        Any Gluon net; initialised here with Xavier if it is not yet.
    train_data, test_data : iterable of (NDArray, NDArray)
        Batches; a :class:`resnet_gluon.data.BatchIter` makes resume exact
        mid-epoch, any other iterable is re-iterated and skipped forward.
        Each step divides the summed gradient by the size of the epoch's
        first batch, as ``train_ch5``'s ``trainer.step(batch_size)`` does:
        a shorter last batch moves the weights less.
    config : TrainConfig, optional
        The recipe (the book's by default).
    ctx : str or list of Context, optional
        Devices; each batch is split across them and the gradients summed.
    kvstore : str or KVStore, default 'device'
        ``'dist_sync'`` trains over MXNet's parameter server; each worker
        passes its own shard as ``train_data``.
    run_dir : str, optional
        Where to write config, metrics, checkpoints, model and curves.
    resume : bool, default False
        Continue from the newest valid checkpoint in ``run_dir``.
    progress : bool, default True
        A tqdm bar on stderr.
    hybridize : bool, default True
        Hybridize with static memory and shapes (the fast path).
    log : callable, default print
        Receives each epoch's line and any warnings.
    extra_config : dict, optional
        Written into ``config.json`` beside the recipe (CLI settings).

    Returns
    -------
    list of dict
        One record per epoch: ``epoch, loss, train_acc, test_acc, time, lr``.

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the last checkpoint stays the last good one.
    CheckpointError
        ``resume`` with a run directory whose checkpoints are all unusable, or
        whose config differs from this one.
    """
    config = config or TrainConfig()
    ctxs = parse_ctx(ctx)
    # Only a distributed store is created here (its rank decides who writes);
    # a local one is left to the Trainer, which skips it for a single device.
    kv = mx.kv.create(kvstore) if isinstance(kvstore, str) and kvstore.startswith("dist") \
        else kvstore
    rank = getattr(kv, "rank", 0)
    num_workers = getattr(kv, "num_workers", 1)
    writer = run_dir is not None and rank == 0

    state = None
    if writer and not resume and (find_checkpoints(run_dir) or
                                  os.path.exists(os.path.join(run_dir, CONFIG_FILE))):
        # Starting over would mix this run's checkpoints and files with that one's.
        raise FileExistsError(
            f"{run_dir} already holds a run. Continue it with --resume, or choose another "
            f"--out directory.")
    if resume:
        if run_dir is None:
            raise CheckpointError("resume needs a run directory (--out RUN_DIR).")
        found = _latest_valid_checkpoint(run_dir, log)
        if found is None:
            raise CheckpointError(f"no usable checkpoint in {os.path.join(run_dir, CHECKPOINT_DIR)}"
                                  f"; start the run again without --resume.")
        ckpt_path, state = found
        _remove_unfinished(run_dir)
        saved = TrainConfig.from_dict(state["config"]).to_dict()
        diff = {k: (saved[k], v) for k, v in config.to_dict().items()
                if saved[k] != v and k not in _RESUME_MAY_DIFFER}
        if diff:
            raise CheckpointError(
                "the run was started with other options; resuming with them would not "
                "reproduce it: " + ", ".join(f"{k}: run has {a!r}, now {b!r}"
                                             for k, (a, b) in diff.items())
                + ". Pass the run's options again, or start a new run directory.")

    mx.random.seed(config.seed)
    np.random.seed(config.seed)
    params = net.collect_params()
    if state is not None:
        net.load_parameters(os.path.join(ckpt_path, "net.params"), ctx=ctxs)
    elif not _initialized(params):
        net.initialize(mx.init.Xavier(), ctx=ctxs)
    else:
        params.reset_ctx(ctxs)
    if hybridize and isinstance(net, gluon.HybridBlock):
        # static_shape on several devices loses BatchNorm's running statistics
        # in MXNet 1.9 (they read back as their initial values); static memory
        # alone keeps them.
        net.hybridize(static_alloc=True, static_shape=len(ctxs) == 1)

    optimizer_params = {"learning_rate": config.lr, "wd": config.wd}
    if config.momentum:
        optimizer_params["momentum"] = config.momentum
    dist = num_workers > 1
    if dist and (config.lr_schedule != "constant" or config.warmup_epochs):
        raise ValueError(
            "with several workers the servers run the optimizer, which cannot follow a "
            "learning-rate schedule here; use --lr-schedule constant and no warm-up.")
    # Locally the workers' own updaters keep optimizer state checkpointable; over
    # the parameter server the servers update (MXNet's tested path: updating on
    # the workers gave diverging runs now and then in MXNet 1.9's dist_sync).
    trainer = gluon.Trainer(params, "sgd", optimizer_params, kvstore=kv,
                            update_on_kvstore=dist)
    loss_fn = _loss_fn(config)
    steps = len(train_data)
    sync_aux = _AuxSync(params, ctxs, kv)

    if writer:
        os.makedirs(run_dir, exist_ok=True)
        cfg = dict(config.to_dict(), **(extra_config or {}))
        _write_text(os.path.join(run_dir, CONFIG_FILE), json.dumps(cfg, indent=1) + "\n")

    history: List[Dict[str, Any]] = []
    threads = os.environ.get("OMP_NUM_THREADS")  # recorded: exactness needs the same count
    start_epoch, start_step, partial = 0, 0, {"loss": 0.0, "acc": 0.0, "n": 0, "time": 0.0}
    if state is not None:
        if "trainer.states" in state["files"] and not dist:
            trainer.load_states(os.path.join(ckpt_path, "trainer.states"))
        history = state["history"]
        start_epoch, start_step, partial = state["epoch"], state["step"], state["partial"]
        log(f"resuming from {ckpt_path} (epoch {start_epoch + 1}, step {start_step})")
        if "omp_num_threads" in state and state["omp_num_threads"] != threads:
            # oneDNN splits gradient sums by thread: another count, other roundings.
            log(f"warning: the checkpoint was written with OMP_NUM_THREADS="
                f"{state['omp_num_threads'] or '(unset)'}, this process has "
                f"{threads or '(unset)'}; the run goes on but will not be bit-identical to "
                f"an uninterrupted one. Resume with the same OMP_NUM_THREADS to keep it exact.")

    def checkpoint(epoch, step, part):
        # Synced at every checkpoint position, written or not, so that a resumed
        # run (which restarts from one copy) follows the uninterrupted one exactly.
        _settle()
        sync_aux()
        if writer:
            save_checkpoint(run_dir, net, None if dist else trainer,
                            {"epoch": epoch, "step": step, "partial": part,
                             "history": history, "config": config.to_dict(),
                             "omp_num_threads": threads},
                            keep=config.keep_checkpoints)

    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        # Counted in batches, shown in images: the rate reads as img/s.
        bar = tqdm(total=steps * config.epochs, initial=start_epoch * steps + start_step,
                   unit="img", unit_scale=config.batch_size, file=sys.stderr,
                   dynamic_ncols=True, mininterval=1.0, desc="train")
    try:
        for epoch in range(start_epoch, config.epochs):
            first = start_step if epoch == start_epoch else 0
            sums = dict(partial) if epoch == start_epoch else \
                {"loss": 0.0, "acc": 0.0, "n": 0, "time": 0.0}
            tic = time.time() - sums["time"]
            for step, (X, y) in enumerate(_batches(train_data, epoch, first), start=first):
                lr = lr_at(config, epoch, step, steps)
                if not dist:
                    trainer.set_learning_rate(lr)
                xs = gluon.utils.split_and_load(X, ctxs, even_split=False)
                ys = gluon.utils.split_and_load(y, ctxs, even_split=False)
                with autograd.record():
                    outs = [net(xp) for xp in xs]
                    losses = [loss_fn(o, yp).sum() for o, yp in zip(outs, ys)]
                autograd.backward(losses)
                batch_loss = sum(l.asscalar() for l in losses)
                if not math.isfinite(batch_loss):
                    last = find_checkpoints(run_dir)[-1] if run_dir and find_checkpoints(run_dir) \
                        else None
                    raise TrainingDiverged(
                        f"the loss became {batch_loss} at epoch {epoch + 1}, step {step + 1} "
                        f"(lr {lr:g}); stopped before applying that update. "
                        + (f"The last good checkpoint is {last}. " if last else "")
                        + "Lower --lr, add --warmup-epochs, or check the data.")
                # As train_ch5's trainer.step(batch_size): the summed gradient is
                # divided by the full batch size, the last, smaller batch's too.
                full = sums.setdefault("batch", X.shape[0] * num_workers)
                trainer.step(full)
                sums["loss"] += batch_loss
                sums["acc"] += sum(float((o.argmax(axis=1) == yp).sum().asscalar())
                                   for o, yp in zip(outs, ys))
                sums["n"] += X.shape[0]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}", lr=f"{lr:.3g}",
                                    refresh=False)
                if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 \
                        and step + 1 < steps:
                    checkpoint(epoch, step + 1, dict(sums, time=time.time() - tic))
            _settle()
            sync_aux()
            test_acc = evaluate(net, test_data, ctxs, config.num_classes).accuracy
            record = {"epoch": epoch + 1, "loss": sums["loss"] / sums["n"],
                      "train_acc": sums["acc"] / sums["n"], "test_acc": test_acc,
                      "time": time.time() - tic, "lr": lr}
            history.append(record)
            if bar is not None:
                bar.clear()
            log(_format_line(record))
            if bar is not None:
                bar.refresh()
            checkpoint(epoch + 1, 0, {"loss": 0.0, "acc": 0.0, "n": 0, "time": 0.0})
            if writer:
                _write_metrics(run_dir, history)
    finally:
        if bar is not None:
            bar.close()
    _settle()
    if writer:
        if history:  # again: a run killed after its last checkpoint resumes straight here
            _write_metrics(run_dir, history)
        atomic_write(os.path.join(run_dir, MODEL_FILE), net.save_parameters)
    elif run_dir is not None:
        # Other workers leave their copy beside it: all must hold the same weights.
        os.makedirs(run_dir, exist_ok=True)
        atomic_write(os.path.join(run_dir, f"model.worker{rank}.params"), net.save_parameters)
    return history
