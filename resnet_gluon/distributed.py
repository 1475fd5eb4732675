"""Training on several devices and machines: the kvstore, this worker's rank, the watchdog
glue, and BatchNorm statistics averaged across devices and workers.

:func:`make_kvstore` joins MXNet's parameter server (``dist_*``; see
:mod:`resnet_gluon.launch`) or leaves a local store as a name for the Trainer.  A
worker of a parameter-server job is guarded by a :class:`~resnet_gluon._watchdog.ProgressWatchdog`
(:func:`watchdog`, :func:`touch`, :func:`touching`): when its peers are gone it stops
in bounded time with a reason instead of waiting for ever.  :class:`AuxSync` averages
BatchNorm's running statistics, which each device updates from its own share of a batch.
"""
import atexit
import os
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

import mxnet as mx
from mxnet import gluon, nd

from ._watchdog import ProgressWatchdog

__all__ = ["make_kvstore", "watchdog", "touch", "touching", "settle", "AuxSync"]


def make_kvstore(kvstore: Union[str, "mx.kvstore.KVStore"]) -> Tuple[Any, int, int]:
    """``(store, rank, num_workers)`` for a ``kvstore`` name or object.

    Only a distributed store is created here (its rank decides who writes and
    which shard of the data a worker reads); a local one stays a name for the
    Trainer, which skips it for a single device.
    """
    if isinstance(kvstore, str) and kvstore.startswith("dist"):
        if "DMLC_ROLE" not in os.environ:  # else MXNet fails with a "Check notnull" trace
            raise ValueError(
                f"kvstore {kvstore} trains over MXNet's parameter server, which this process "
                f"is not part of (no DMLC_* variables). Start the job with: python -m "
                f"resnet_gluon launch -n WORKERS -- train ... (several hosts: see "
                f"docs/training.md).")
        guard = watchdog()
        guard.arm()  # joining the job waits for every peer
        kvstore = mx.kv.create(kvstore)
        guard.disarm()
    return kvstore, getattr(kvstore, "rank", 0), getattr(kvstore, "num_workers", 1)


#: This process's guard against a parameter-server job whose peers are gone.
_watchdog: Optional[ProgressWatchdog] = None


def watchdog() -> ProgressWatchdog:
    """This process's watchdog, started on first use (a worker of a parameter-server job)."""
    global _watchdog
    if _watchdog is None:
        _watchdog = ProgressWatchdog()
        _watchdog.start()
        # MXNet's exit waits on a barrier of all workers: bound that wait too (atexit
        # runs the handlers registered last first, so this one before MXNet's).
        atexit.register(_watchdog.arm)
    return _watchdog


def touch() -> None:
    """Tell the watchdog, if this process has one, that the job is alive."""
    if _watchdog is not None:
        _watchdog.touch()


def touching(data: Iterable) -> Iterator:
    """``data``, telling the watchdog at each batch that the job is alive."""
    for batch in data:
        touch()
        yield batch


def settle() -> None:
    """Wait for every queued operation before reading parameters.

    A hybridized net with static memory updates BatchNorm's running statistics
    without telling MXNet's dependency engine (MXNet 1.9): a read right after
    the step can see the old values.  Waiting for all work first makes every
    checkpoint, sync and evaluation read what the steps wrote.
    """
    mx.nd.waitall()


_AUX_KEY = 1 << 20  # kvstore keys of BatchNorm statistics, clear of the Trainer's 0..n-1


class AuxSync:
    """Average BatchNorm's running statistics over devices and workers.

    Each device (and each worker) normalises its own share of the batch and so
    updates its own running statistics; without this, the copy saved would be
    device 0's alone and the devices would disagree at test time.  Calling it
    always :func:`settle` s first.
    """

    def __init__(self, params: gluon.ParameterDict, ctxs: List[mx.Context], kv: Any):
        self.aux = [p for p in params.values() if p.grad_req == "null"]
        # Only a store of several workers takes part; a local one is the Trainer's.
        self.kv = kv if getattr(kv, "num_workers", 1) > 1 else None
        self.ctxs, self._ready = ctxs, False
        self.active = len(ctxs) > 1 or self.kv is not None

    def __call__(self) -> None:
        settle()
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
