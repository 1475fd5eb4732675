"""Training: the book's ``train_ch5`` loop made safe to stop and resume.

``fit`` prints the book's line each epoch::

    epoch 1, loss 0.4856, train acc 0.828, test acc 0.894, time 61.8 sec

(loss and train accuracy as ``d2lzh.train_ch5`` defines them: the mean over
the epoch's examples of the training loss and of the train-mode predictions),
shows a tqdm bar on stderr, and, given a run directory, writes what
:mod:`resnet_gluon.run` describes.  Every random choice during training comes
from seeds, so a run killed at any moment and resumed with the same
``OMP_NUM_THREADS`` ends bit-identical to one that was not.

The parts, as d2l's ``train_epoch_ch3``/``train_ch3`` and torchvision's
``train_one_epoch`` split them: :func:`train_step` (one batch),
:func:`train_one_epoch` (one pass over the data), :func:`fit` (the run: its
loop over epochs, with the set-up, resume and checkpoints in named helpers),
:func:`lr_at` (the schedule).  Several devices and the parameter server are
:mod:`resnet_gluon.distributed`'s.
"""
import contextlib
import dataclasses
import math
import os
import pickle
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd

from ._checks import first_uninitialized
from .checkpoint import (CHECKPOINT_DIR, CheckpointError, atomic_write, find_checkpoints,
                         latest_valid_checkpoint, save_checkpoint)
# TrainConfig and evaluate are also importable from here, as in 0.1.
from .config import TrainConfig, parse_ctx
from .data import BatchIter, Splits
from .distributed import AuxSync, make_kvstore, settle, touch, touching, watchdog
from .ema import WeightAverage
from .evaluate import class_labels, evaluate
from .finetune import init_from
from .inputs import DataRef, InputSpec
from .precision import mixed_precision
from .run import (CONFIG_FILE, MODEL_FILE, RunRecord, claim_run_dir, default_classes,
                  read_config, remove_unfinished, write_config, write_metrics)
from .sources import Source

__all__ = ["fit", "train_one_epoch", "train_step", "lr_at", "loss_function", "format_line",
           "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped before the bad update.

    ``epoch`` and ``step`` count from 1; ``last_checkpoint`` is the newest
    checkpoint written before it, when there is one.
    """

    def __init__(self, loss: float, epoch: int, step: int, lr: float,
                 last_checkpoint: Optional[str] = None):
        super().__init__(loss, epoch, step, lr)
        self.loss, self.epoch, self.step, self.lr = loss, epoch, step, lr
        self.last_checkpoint = last_checkpoint

    def __str__(self) -> str:
        return (f"the loss became {self.loss} at epoch {self.epoch}, step {self.step} "
                f"(lr {self.lr:g}); stopped before applying that update. "
                + (f"The last good checkpoint is {self.last_checkpoint}. "
                   if self.last_checkpoint else "")
                + "Lower --lr, add --warmup-epochs, or check the data.")


# --------------------------------------------------------------------------- the parts

def lr_at(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """The learning rate of a step (0-based ``epoch`` and ``step``).

    Stateless (a function of the position alone), so resume is exact.
    """
    progress = epoch + step / steps_per_epoch
    if config.warmup_epochs and progress < config.warmup_epochs:
        return config.lr * (progress + 1 / steps_per_epoch) / config.warmup_epochs
    if config.lr_schedule == "cosine":
        span = config.epochs - config.warmup_epochs
        return 0.5 * config.lr * (1 + math.cos(math.pi * (progress - config.warmup_epochs) / span))
    return config.lr


def loss_function(config: TrainConfig) -> Callable[[nd.NDArray, nd.NDArray], nd.NDArray]:
    """Softmax cross-entropy of ``(scores, labels)``, with the config's label smoothing."""
    if config.label_smoothing:
        loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
        k, eps = config.model.num_classes, config.label_smoothing

        def smoothed(y_hat, y):
            target = nd.one_hot(y, k) * (1 - eps) + eps / k
            return loss(y_hat, target)
        return smoothed
    return gluon.loss.SoftmaxCrossEntropyLoss()


def format_line(record: Dict[str, Any]) -> str:
    """The book's epoch line from a ``fit`` record (with ``val acc`` when it has one)."""
    val = f", val acc {record['val_acc']:.3f}" if "val_acc" in record else ""
    test = f", test acc {record['test_acc']:.3f}" if "test_acc" in record else ""
    return ("epoch %d, loss %.4f, train acc %.3f%s%s, time %.1f sec"
            % (record["epoch"], record["loss"], record["train_acc"], val, test,
               record["time"]))


def train_step(net: gluon.Block, trainer: gluon.Trainer, loss_fn: Callable, X: nd.NDArray,
               y: nd.NDArray, ctxs: Sequence[mx.Context], batch_size: int
               ) -> Tuple[float, float]:
    """One step of ``train_ch5``: forward, backward, ``trainer.step(batch_size)``.

    The batch is split over ``ctxs``.  Returns the summed loss and the count of
    correct train-mode predictions.

    Raises
    ------
    FloatingPointError
        The loss is NaN or infinite; no update was applied.
    ValueError
        A label is not a class of the net's outputs; no update was applied.
    """
    xs = gluon.utils.split_and_load(X, ctxs, even_split=False)
    # Labels of any numeric type (int32 from a user's loader) are class indices, given to
    # the loss in the type of the data (float32, or float64 for a float64 net).
    ys = gluon.utils.split_and_load(y.astype(X.dtype, copy=False), ctxs, even_split=False)
    with autograd.record():
        outs = [net(xp) for xp in xs]
        losses = [loss_fn(o, yp).sum() for o, yp in zip(outs, ys)]
    for yp in ys:  # before the update: a loss over labels the net has no output for is no loss
        class_labels(yp, outs[0].shape[1], who="fit")
    autograd.backward(losses)
    batch_loss = sum(l.asscalar() for l in losses)
    if not math.isfinite(batch_loss):
        raise FloatingPointError(batch_loss)
    trainer.step(batch_size)
    correct = sum(float((o.argmax(axis=1) == yp).sum().asscalar()) for o, yp in zip(outs, ys))
    return batch_loss, correct


def _new_sums() -> Dict[str, Any]:
    return {"loss": 0.0, "acc": 0.0, "n": 0, "time": 0.0}


def _batches(data, epoch: int, start: int):
    if hasattr(data, "batches"):
        return data.batches(epoch, start)
    it = iter(data)
    for _ in range(start):  # a plain iterable: skip what was done already
        next(it)
    return it


def train_one_epoch(net: gluon.Block, trainer: gluon.Trainer, data: Iterable,
                    loss_fn: Callable, ctxs: Sequence[mx.Context], config: TrainConfig,
                    epoch: int, sums: Optional[Dict[str, Any]] = None, start: int = 0,
                    num_workers: int = 1,
                    on_step: Optional[Callable[[int, Dict[str, Any], float], None]] = None
                    ) -> Dict[str, Any]:
    """One pass over ``data`` (0-based ``epoch``), from step ``start`` on.

    Each step divides the summed gradient by the size of the epoch's first
    batch over all workers, as ``train_ch5``'s ``trainer.step(batch_size)``
    does: a shorter last batch moves the weights less.  The learning rate
    follows :func:`lr_at`, except over the parameter server (``num_workers >
    1``), where the servers keep it.

    Parameters
    ----------
    sums : dict, optional
        The running sums of an epoch cut short (a checkpoint's), to go on from.
    on_step : callable, optional
        ``on_step(steps_done, sums, lr)`` after every step.

    Returns
    -------
    dict
        ``loss`` and ``acc`` summed over the epoch, ``n`` examples, ``time`` seconds.

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the weights are those before that step.
    """
    steps = len(data)
    sums = dict(sums) if sums else _new_sums()
    tic = time.time() - sums["time"]
    for step, (X, y) in enumerate(_batches(data, epoch, start), start=start):
        lr = lr_at(config, epoch, step, steps)
        if num_workers == 1:
            trainer.set_learning_rate(lr)
        full = sums.setdefault("batch", X.shape[0] * num_workers)
        try:
            loss, correct = train_step(net, trainer, loss_fn, X, y, ctxs, full)
        except FloatingPointError as err:
            raise TrainingDiverged(err.args[0], epoch + 1, step + 1, lr) from None
        sums["loss"] += loss
        sums["acc"] += correct
        sums["n"] += X.shape[0]
        sums["time"] = time.time() - tic
        if on_step is not None:
            on_step(step + 1, sums, lr)
    return sums


# --------------------------------------------------------------------------- fit's helpers

@dataclasses.dataclass
class _Position:
    """Where the loop stands: the next epoch and step, that epoch's sums, the records."""

    epoch: int = 0
    step: int = 0
    sums: Dict[str, Any] = dataclasses.field(default_factory=_new_sums)
    history: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


def _resume_point(run_dir: str, config: TrainConfig, log: Callable[[str], None]
                  ) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The newest valid checkpoint of ``run_dir``, checked to be a run of ``config``.

    None for a run that ended before its first checkpoint: it starts again
    from its beginning, with its own options.
    """
    if not find_checkpoints(run_dir) and os.path.isfile(os.path.join(run_dir, CONFIG_FILE)):
        _check_same_options(TrainConfig.from_dict(
            {k: v for k, v in read_config(run_dir).items() if k in config.to_dict()}), config)
        log(f"no checkpoint in {run_dir} yet: the run ended before its first one, so it "
            f"starts again from its beginning")
        remove_unfinished(run_dir)
        return None
    found = latest_valid_checkpoint(run_dir, log)
    if found is None:
        raise CheckpointError(f"no usable checkpoint in {os.path.join(run_dir, CHECKPOINT_DIR)}"
                              f"; start the run again without --resume.")
    remove_unfinished(run_dir)
    _check_same_options(TrainConfig.from_dict(found[1]["config"]), config)
    return found


def _check_same_options(saved: TrainConfig, config: TrainConfig) -> None:
    diff = saved.differences(config)
    if diff:
        raise CheckpointError(
            "the run was started with other options; resuming with them would not "
            "reproduce it: " + ", ".join(f"{k}: run has {a!r}, now {b!r}"
                                         for k, (a, b) in diff.items())
            + ". Pass the run's options again, or start a new run directory.")


def _prepare_net(net: gluon.Block, ctxs: List[mx.Context], config: TrainConfig,
                 checkpoint: Optional[str], hybridize: bool,
                 classes: Optional[List[str]] = None, log: Callable[[str], None] = print
                 ) -> gluon.Block:
    """Seed, then start from ``config.init``'s weights (fine-tuning; resumed runs too, for
    the learning-rate factors), then load the checkpoint's weights, or initialise, or move
    the net to ``ctxs``.

    Returns the block that computes: ``net`` itself, or for bfloat16 a block
    sharing its float32 parameters (see :func:`resnet_gluon.precision.mixed_precision`).
    """
    seed, dtype = config.seed, config.dtype
    mx.random.seed(seed)
    np.random.seed(seed)
    params = net.collect_params()
    if config.init is not None:
        source = None if config.init == "pretrained" else config.init
        notes = init_from(net, source, ctx=ctxs, lr_body=config.lr_body, seed=seed,
                          classes=classes)
        if checkpoint is None:
            log(f"starting from the weights of {config.init}"
                + "".join(f"; {note}" for note in notes))
    if checkpoint is not None:
        net.load_parameters(os.path.join(checkpoint, "net.params"), ctx=ctxs)
    elif first_uninitialized(params.values()) is not None:
        net.initialize(mx.init.Xavier(), ctx=ctxs)
    else:
        params.reset_ctx(ctxs)
    runner = mixed_precision(net, dtype)
    if hybridize and isinstance(runner, gluon.HybridBlock):
        # static_shape on several devices loses BatchNorm's running statistics
        # in MXNet 1.9 (they read back as their initial values); static memory
        # alone keeps them.
        runner.hybridize(static_alloc=True, static_shape=len(ctxs) == 1)
    return runner


def _make_trainer(net: gluon.Block, config: TrainConfig, kv: Any, dist: bool) -> gluon.Trainer:
    optimizer_params = {"learning_rate": config.lr, "wd": config.wd}
    if config.momentum:
        optimizer_params["momentum"] = config.momentum
    if dist and (config.lr_schedule != "constant" or config.warmup_epochs):
        raise ValueError(
            "with several workers the servers run the optimizer, which cannot follow a "
            "learning-rate schedule here; use --lr-schedule constant and no warm-up.")
    # Locally the workers' own updaters keep optimizer state checkpointable; over
    # the parameter server the servers update (MXNet's tested path: updating on
    # the workers gave diverging runs now and then in MXNet 1.9's dist_sync).
    # A list in the net's order, not the ParameterDict, which gluon.Trainer sorts by
    # name: names count up with every block a process builds (conv0_ in a fresh one,
    # conv20_ after one more net), so the optimizer state, kept by position, would
    # follow what else the process had built.
    return gluon.Trainer(list(net.collect_params().values()), "sgd", optimizer_params,
                         kvstore=kv, update_on_kvstore=dist)


def _param_order(net: gluon.Block, by_name: bool = False) -> List[str]:
    """The structural names ("4.0.conv1.weight") of the trainer's parameters, in its order
    (saved with the optimizer state, whose entries are by position); ``by_name``: in the
    order of their names, as gluon.Trainer sorts a ParameterDict."""
    names = {id(p): name for name, p in net._collect_params_with_prefix().items()}
    params = net.collect_params()
    keys = sorted(params.keys()) if by_name else list(params.keys())
    return [names.get(id(params[key]), key) for key in keys]


def _orders_before(net: gluon.Block, config: TrainConfig) -> List[List[str]]:
    """The orders a checkpoint without ``param_order`` may hold its optimizer state in: the
    trainer sorted the parameters by name, as a fresh process names them (every command-line
    run), or as this process does (a script resumed as it was started)."""
    with mx.name.NameManager():  # the names a fresh process gives
        fresh = config.model.build()
    return [_param_order(fresh, by_name=True), _param_order(net, by_name=True)]


def _misfit(moved: Dict[int, Any], names: List[str], shapes: List[Tuple[int, ...]]
            ) -> Optional[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]:
    """The first (name, shape kept, parameter's shape) whose optimizer state does not fit
    its parameter, or None."""
    for i, entry in moved.items():
        for array in entry if isinstance(entry, (tuple, list)) else [entry]:
            if array is not None and array.shape != shapes[i]:
                return names[i], array.shape, shapes[i]
    return None


def _load_trainer_states(trainer: gluon.Trainer, net: gluon.Block, path: str,
                         state: Dict[str, Any], config: TrainConfig) -> None:
    """The checkpoint's optimizer state, each entry to the parameter it was kept for."""
    file = os.path.join(path, "trainer.states")
    ours = _param_order(net)
    orders = [state["param_order"]] if "param_order" in state else _orders_before(net, config)
    if orders[0] == ours:
        trainer.load_states(file)
        return
    with open(file, "rb") as f:
        # MXNet's own format (Trainer.save_states), checksummed with the checkpoint
        states, optimizer = pickle.loads(f.read())
    shapes = [p.shape for p in net.collect_params().values()]
    misfit = None
    for saved in orders:
        where = {name: i for i, name in enumerate(saved)}
        moved = {i: states[where[name]] for i, name in enumerate(ours)
                 if where.get(name) in states}  # none yet: the optimizer makes it
        misfit = _misfit(moved, ours, shapes)
        if misfit is None:
            with tempfile.TemporaryDirectory() as tmp:
                reordered = os.path.join(tmp, "trainer.states")
                with open(reordered, "wb") as f:
                    f.write(pickle.dumps((moved, optimizer)))
                trainer.load_states(reordered)
            return
    name, kept, shape = misfit
    why = ("Resume with the net the run was started with" if "param_order" in state else
           "It keeps no param_order, so its state is in the order of the names of the process "
           "that wrote it: resume it as it was started (a script's run from that script, "
           "building the same nets before it)")
    raise CheckpointError(f"{file} does not fit this net: the optimizer state it keeps for "
                          f"{name} has shape {kept}, the parameter {shape}. {why}, or start the "
                          f"run over in a new --out directory.")


def _restore(found: Tuple[str, Dict[str, Any]], trainer: gluon.Trainer, net: gluon.Block,
             config: TrainConfig, dist: bool, threads: Optional[str],
             log: Callable[[str], None], ema: Optional[WeightAverage]) -> _Position:
    """The loop's position (and the optimizer's state and weight average) as a checkpoint
    left them."""
    path, state = found
    if "trainer.states" in state["files"] and not dist:
        _load_trainer_states(trainer, net, path, state, config)
    if ema is not None:  # the same options, so the checkpoint has one (see _resume_point)
        ema.load(os.path.join(path, _EMA_FILE), state["ema_updates"])
    log(f"resuming from {path} (epoch {state['epoch'] + 1}, step {state['step']})")
    if "omp_num_threads" in state and state["omp_num_threads"] != threads:
        # oneDNN splits gradient sums by thread: another count, other roundings.
        log(f"warning: the checkpoint was written with OMP_NUM_THREADS="
            f"{state['omp_num_threads'] or '(unset)'}, this process has "
            f"{threads or '(unset)'}; the run goes on but will not be bit-identical to "
            f"an uninterrupted one. Resume with the same OMP_NUM_THREADS to keep it exact.")
    return _Position(state["epoch"], state["step"], state["partial"], state["history"])


class _NoBar:
    """Stands in for the tqdm bar (or the watchdog) when there is none."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _progress_bar(show: bool, steps: int, config: TrainConfig, done: int):
    if not show:
        return _NoBar()
    from tqdm import tqdm
    # Counted in batches, shown in images: the rate reads as img/s.
    return tqdm(total=steps * config.epochs, initial=done, unit="img",
                unit_scale=config.batch_size, file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0, desc="train")


@dataclasses.dataclass
class _Run:
    """What the loop works with, once set up: the block that computes (the net, or a bf16
    view of it), the trainer, the loss, the weight average, the checkpointer and where the
    loop stands."""

    runner: gluon.Block
    trainer: gluon.Trainer
    loss_fn: Callable
    ema: Optional[WeightAverage]
    save: "_Checkpointer"
    at: _Position


def _set_up(net: gluon.Block, train_data: Iterable, record: RunRecord,
            ctxs: List[mx.Context], kv: Any, dist: bool, run_dir: Optional[str], writer: bool,
            resume: bool, hybridize: bool, log: Callable[[str], None]) -> _Run:
    """Resume point, net (seeded, loaded or initialised, in ``config.dtype``: the one
    place the precision is applied), trainer, config.json, weight average and position:
    everything the loop needs.  Only the ``writer`` (rank 0) writes to ``run_dir``."""
    config = record.config
    found = _resume_point(run_dir, config, log) if resume else None
    if found:
        _check_same_data(run_dir, record)
    runner = _prepare_net(net, ctxs, config, found and found[0], hybridize,
                          list(record.classes), log)
    trainer = _make_trainer(net, config, kv, dist)
    if writer:
        write_config(run_dir, record)
    threads = os.environ.get("OMP_NUM_THREADS")  # recorded: exactness needs the same count
    ema = WeightAverage(net, config.ema) if config.ema else None
    at = _restore(found, trainer, net, config, dist, threads, log, ema) if found else _Position()
    if found and not hasattr(train_data, "batches") and not isinstance(train_data, (list, tuple)):
        log(f"warning: resuming with train_data of type {type(train_data).__name__}, which "
            f"cannot rebuild an epoch's batches: a shuffling loader draws another order, so "
            f"the run goes on but will not be bit-identical to an uninterrupted one. A "
            f"resnet_gluon.data.BatchIter (or a list of batches) keeps resume exact.")
    save = _Checkpointer(run_dir if writer else None, net, None if dist else trainer,
                         AuxSync(net.collect_params(), ctxs, kv), config, threads, at.history,
                         ema)
    return _Run(runner, trainer, loss_function(config), ema, save, at)


def _check_fit_args(train_data: Iterable, run_dir: Optional[str], resume: bool) -> None:
    if resume and run_dir is None:
        raise CheckpointError("resume needs a run directory (--out RUN_DIR).")
    if not hasattr(train_data, "__len__"):
        raise TypeError(f"train_data must know its number of batches (a BatchIter, a "
                        f"DataLoader, a list of batches), got a {type(train_data).__name__}, "
                        f"which fit cannot go through once per epoch. Make a list of its "
                        f"batches, or use resnet_gluon.data.BatchIter.")
    if len(train_data) == 0:
        raise ValueError("train_data has no batches: nothing to train on. Check the data "
                         "(and --limit-train).")


def _prefixed(log: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda line: log(prefix + line)


def _data(net: gluon.Block, data: Union[Source, Iterable], test_data: Optional[Iterable],
          val_data: Optional[Iterable], config: TrainConfig, ctxs: List[mx.Context], kv: Any,
          num_workers: int, rank: int, log: Callable[[str], None]) -> Tuple[Splits, RunRecord]:
    """The run's batches and its record: made from a source (its classes and channels in
    the recipe, the batches of this worker's shard, the input record they were made with),
    or the batches given, as Fashion-MNIST's at ``config.resize``."""
    devices = ",".join(f"{c.device_type}:{c.device_id}" for c in ctxs)
    store = kv if isinstance(kv, str) else getattr(kv, "type", "device")
    if not isinstance(data, Source):
        classes = default_classes(config.model.num_classes)
        return Splits(data, test_data, val_data), RunRecord(
            config, _batch_inputs(data, config), tuple(classes), DataRef(), devices, store)
    if test_data is not None or val_data is not None:
        raise TypeError("fit(net, source, config) makes the test and validation batches from "
                        "the source (config.val_split holds images out); drop test_data and "
                        "val_data.")
    config = data.configure(config)
    if config.batch_size % num_workers:
        raise ValueError(f"--batch-size {config.batch_size} does not split evenly over "
                         f"{num_workers} workers; use a multiple of {num_workers}.")
    _check_outputs(net, len(data.classes))
    made = data.training(config, num_workers, rank)
    if rank == 0:
        for note in made.notes:
            log(note)
    return made.splits, RunRecord(config, made.inputs, tuple(data.classes), data.ref, devices,
                                  store, data.fingerprint())


def _batch_inputs(data: Iterable, config: TrainConfig) -> InputSpec:
    """The input record of batches given without their source: Fashion-MNIST's at
    ``config.resize``; refused where a :class:`~resnet_gluon.data.BatchIter` shows that
    is not what they are (predict would then prepare images otherwise than training did)."""
    if isinstance(data, BatchIter):
        side = data.resize or data.images.shape[1]
        problem = ("normalised" if data.stats is not None else
                   "colour" if data.images.ndim == 4 else
                   f"{side}x{side}, not config.resize {config.resize}"
                   if side != config.resize else None)
        if problem:
            raise ValueError(f"fit: these batches are {problem}, which the run's record "
                             f"(Fashion-MNIST's images at config.resize) would not say, and "
                             f"evaluate and predict would prepare images otherwise. Train "
                             f"from their source, fit(net, open_source(PATH), config), or "
                             f"make the batches at config.resize.")
    return InputSpec("fashion-mnist", config.resize, config.model.in_channels or 1)


def _check_outputs(net: gluon.Block, classes: int) -> None:
    """Refuse a ResNet whose output layer is not one unit per class of the data."""
    last = net[-1] if isinstance(net, (gluon.nn.HybridSequential, gluon.nn.Sequential)) \
        and len(net) else None
    units = getattr(last, "_units", None)
    if isinstance(last, gluon.nn.Dense) and units != classes:
        raise ValueError(f"the net has {units} outputs but the data {classes} classes; build "
                         f"it for the data: net = source.build_net(config).")


def _check_same_data(run_dir: str, record: RunRecord) -> None:
    """Refuse to resume a run on other data than its own: other classes, images (added,
    removed or edited: its fingerprint), input statistics or paths would go on without a
    word and change its numbers."""
    saved = RunRecord.read(run_dir)
    if saved.classes != record.classes:
        raise ValueError(f"the run in {run_dir} was trained on the classes "
                         f"{list(saved.classes)}; the data now holds {list(record.classes)}. "
                         f"Resume on the run's images, or start a new run directory.")
    changed = saved.images.changes(record.images) if saved.images.parts else []
    if changed:
        raise ValueError(f"the images of the run in {run_dir} changed since it trained on them "
                         f"({'; '.join(changed)}); its weights and its recorded mean and std "
                         f"are of the images as they were. Restore them, or start a new run "
                         f"(--init {os.path.join(run_dir, MODEL_FILE)} starts from its "
                         f"weights).")
    if saved.inputs != record.inputs:
        before = saved.inputs
        raise ValueError(f"the run in {run_dir} was trained on images of mean {before.mean} "
                         f"and std {before.std}; its data now gives {record.inputs.mean} and "
                         f"{record.inputs.std}: the images changed. Resume on the run's "
                         f"images, or start a new run directory.")
    ref = saved.data
    if ref != record.data:
        def name(r: DataRef) -> str:
            return (r.data or "Fashion-MNIST") + (f" (test {r.test})" if r.test else "")
        raise ValueError(f"the run in {run_dir} was trained on {name(ref)}; resuming on "
                         f"{name(record.data)} would not reproduce it. Resume on the run's "
                         f"data, or start a new run directory.")


# --------------------------------------------------------------------------- fit

def fit(net: gluon.Block, train_data: Union[Source, Iterable],
        test_data: Optional[Iterable] = None, config: Optional[TrainConfig] = None,
        ctx: Union[str, Sequence[mx.Context], None] = None,
        kvstore: Union[str, "mx.kvstore.KVStore"] = "device", run_dir: Optional[str] = None,
        resume: bool = False, progress: bool = True, hybridize: bool = True,
        log: Callable[[str], None] = print, val_data: Optional[Iterable] = None
        ) -> List[Dict[str, Any]]:
    """Train ``net`` as ``d2lzh.train_ch5`` does, with checkpoints, resume and several devices.

    ``fit(net, source, config)`` trains on a :class:`resnet_gluon.sources.Source`
    (:func:`resnet_gluon.sources.open_source`): the batches of ``config``'s recipe are made
    from it, and the run directory records its input, classes and data, so that every
    later command reads the run as it was trained.  ``fit(net, train_iter, test_iter,
    config)`` is the book's way, over batches of Fashion-MNIST images as
    :func:`resnet_gluon.data.load_data_fashion_mnist` makes them.

    Parameters
    ----------
    net : mxnet.gluon.Block
        Any Gluon net; initialised here with Xavier if it is not yet
        (:meth:`resnet_gluon.sources.Source.build_net` builds the ResNet of ``config`` for
        a source's classes and channels).
    train_data : Source, or iterable of (NDArray, NDArray)
        A source; or batches, with a length: a :class:`resnet_gluon.data.BatchIter` (or a
        list of batches) makes resume exact, mid-epoch too; any other iterable is iterated
        again and skipped forward, which is exact only if it yields the same batches every
        time: a shuffling ``DataLoader`` does not, and a resume with one warns so.
        Batches are taken as Fashion-MNIST's at ``config.resize`` (what the run records);
        normalised or colour batches need their source.
    test_data : iterable of (NDArray, NDArray), optional
        With batches: the test batches (None: no test accuracy; give ``val_data`` then).
        With a source: nothing, the source makes them (``fit(net, source, config)`` passes
        the config here, and it is read as ``config``).
    config : TrainConfig, optional
        The recipe (the book's by default).  With ``config.ema`` the epochs'
        accuracies and the saved model are those of the weight average
        (:class:`resnet_gluon.ema.WeightAverage`); the net is left holding it.
        ``config.dtype`` 'bfloat16' trains float32 master weights through a bf16
        graph; checkpoints and the saved model stay float32.
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
    val_data : iterable of (NDArray, NDArray), optional
        With batches: held-out training examples (see :func:`resnet_gluon.data.load_splits`),
        evaluated each epoch as ``val_acc``: the figure to choose a recipe by (a source
        makes them from ``config.val_split``).

    Returns
    -------
    list of dict
        One record per epoch: ``epoch, loss, train_acc, test_acc, time, lr`` (and
        ``val_acc`` with ``val_data``).

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the last checkpoint stays the last good one.
    CheckpointError
        ``resume`` with a run directory whose checkpoints are all unusable, or
        whose config differs from this one.
    ValueError
        ``resume`` on other data, classes or input statistics than the run's.
    """
    if isinstance(train_data, Source) and isinstance(test_data, TrainConfig) and config is None:
        test_data, config = None, test_data  # fit(net, source, config)
    ctxs = parse_ctx(ctx)
    kv, rank, num_workers = make_kvstore(kvstore)
    if rank:  # every worker's lines reach the log; say whose
        log = _prefixed(log, f"[worker {rank}] ")
    data, record = _data(net, train_data, test_data, val_data, config or TrainConfig(), ctxs,
                         kv, num_workers, rank, log)
    config, (train_data, test_data, val_data) = record.config, data
    _check_fit_args(train_data, run_dir, resume)
    dist, writer = num_workers > 1, run_dir is not None and rank == 0
    # The run directory is this process's until fit returns (see RunLock).
    with claim_run_dir(run_dir, resume) if writer else contextlib.nullcontext():
        run = _set_up(net, train_data, record, ctxs, kv, dist, run_dir, writer, resume,
                      hybridize, log)
        history, steps, at = run.at.history, len(train_data), run.at
        bar = _progress_bar(progress and rank == 0, steps, config, at.epoch * steps + at.step)
        guard = watchdog() if dist else _NoBar()  # waits on peers: bounded
        guard.arm()
        try:
            for epoch in range(at.epoch, config.epochs):
                first = epoch == at.epoch  # a resumed epoch goes on from its checkpoint
                # Each step: the update, the weight average, a checkpoint every N steps.
                sums = train_one_epoch(
                    net=run.runner, trainer=run.trainer, data=train_data, loss_fn=run.loss_fn,
                    ctxs=ctxs, config=config, epoch=epoch, num_workers=num_workers,
                    sums=at.sums if first else None, start=at.step if first else 0,
                    on_step=_after_step(bar, run, config, epoch, steps))
                run.save.sync()
                history.append(_epoch_record(run.runner, _tested(test_data, config, epoch),
                                             ctxs, config, epoch, steps, sums, val_data,
                                             run.ema))
                _show(bar, log, format_line(history[-1]))
                run.save(epoch + 1, 0, _new_sums())
                if writer:
                    write_metrics(run_dir, history)
        except TrainingDiverged as err:
            err.last_checkpoint = (find_checkpoints(run_dir) or [None])[-1] if run_dir else None
            raise
        finally:
            bar.close()
            guard.disarm()
        _finish(net, run.ema, run_dir, rank, history)
        return history


_EMA_FILE = "ema.params"  # a checkpoint's weight average


class _Checkpointer:
    """Saves the loop's position (``run_dir`` None: this process writes nothing).

    BatchNorm's statistics are synced at every checkpoint position, written or
    not, so that a resumed run (which restarts from one copy) follows the
    uninterrupted one exactly.  The weight average, if any, is saved beside the net.
    """

    def __init__(self, run_dir: Optional[str], net: gluon.Block,
                 trainer: Optional[gluon.Trainer], sync: AuxSync, config: TrainConfig,
                 threads: Optional[str], history: List[Dict[str, Any]],
                 ema: Optional[WeightAverage]):
        self.run_dir, self.net, self.trainer, self.sync = run_dir, net, trainer, sync
        self.config, self.threads, self.history, self.ema = config, threads, history, ema
        self.order = _param_order(net)

    def __call__(self, epoch: int, step: int, sums: Dict[str, Any]) -> None:
        self.sync()
        if self.run_dir is not None:
            state = {"epoch": epoch, "step": step, "partial": sums, "history": self.history,
                     "config": self.config.to_dict(), "omp_num_threads": self.threads,
                     "param_order": self.order}
            extra = {}
            if self.ema is not None:
                state["ema_updates"], extra[_EMA_FILE] = self.ema.updates, self.ema.save
            save_checkpoint(self.run_dir, self.net, self.trainer, state,
                            keep=self.config.keep_checkpoints, extra_files=extra)


def _after_step(bar, run: _Run, config: TrainConfig, epoch: int, steps: int):
    """After each step: move the bar, update the weight average, and checkpoint every
    ``checkpoint_every`` steps."""
    def on_step(done: int, sums: Dict[str, Any], lr: float) -> None:
        touch()
        bar.update(1)
        bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}", lr=f"{lr:.3g}", refresh=False)
        if run.ema is not None:
            run.ema.update()
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < steps:
            run.save(epoch, done, sums)
    return on_step


def _show(bar, log: Callable[[str], None], line: str) -> None:
    """The epoch's line, above the bar."""
    bar.clear()
    log(line)
    bar.refresh()


def _averaged(ema: Optional[WeightAverage]):
    """The weight average in the net, when there is one (what is evaluated and saved)."""
    return ema.applied() if ema is not None else contextlib.nullcontext()


def _tested(test_data: Optional[Iterable], config: TrainConfig, epoch: int
            ) -> Optional[Iterable]:
    """The test set when this epoch reports on it (every ``test_every``-th and the last)."""
    last = epoch + 1 == config.epochs
    due = config.test_every and (epoch + 1) % config.test_every == 0
    return test_data if last or due else None


def _epoch_record(net: gluon.Block, test_data: Iterable, ctxs: List[mx.Context],
                  config: TrainConfig, epoch: int, steps: int, sums: Dict[str, Any],
                  val_data: Optional[Iterable] = None, ema: Optional[WeightAverage] = None
                  ) -> Dict[str, Any]:
    """The epoch's line as data: train loss and accuracy, (validation and) test accuracy
    (of the weight average, with one; then also the raw weights' validation accuracy),
    time, last lr."""
    tic = time.time() - sums["time"]
    classes = config.model.num_classes
    record = {"epoch": epoch + 1, "loss": sums["loss"] / sums["n"],
              "train_acc": sums["acc"] / sums["n"]}
    if val_data is not None and ema is not None:
        # What the average gives over the raw weights, measured where choices are made.
        record["val_acc_raw"] = evaluate(net, touching(val_data), ctxs, classes).accuracy
    with _averaged(ema):
        if val_data is not None:
            record["val_acc"] = evaluate(net, touching(val_data), ctxs, classes).accuracy
        if test_data is not None:  # an image folder without a test folder has none
            record["test_acc"] = evaluate(net, touching(test_data), ctxs, classes).accuracy
    record.update(time=time.time() - tic, lr=lr_at(config, epoch, steps - 1, steps))
    return record


def _finish(net: gluon.Block, ema: Optional[WeightAverage], run_dir: Optional[str], rank: int,
            history: List[Dict[str, Any]]) -> None:
    """After the last epoch: the weight average into the net (what the epochs evaluated is
    what is saved and returned), and the final files."""
    settle()
    if ema is not None:
        ema.apply()
    if run_dir is None:
        return
    if rank == 0:
        if history:  # again: a run killed after its last checkpoint resumes straight here
            write_metrics(run_dir, history)
        atomic_write(os.path.join(run_dir, MODEL_FILE), net.save_parameters)
    else:
        # Other workers leave their copy beside it: all must hold the same weights.
        os.makedirs(run_dir, exist_ok=True)
        atomic_write(os.path.join(run_dir, f"model.worker{rank}.params"), net.save_parameters)
