"""An exponential moving average of a net's weights, kept beside training.

Averaging the weights of the last few hundred steps lands nearer the middle of
the basin SGD rattles around in: the averaged net usually tests better than the
last one, for nothing but a copy of the weights (Polyak averaging; the EMA of
the fast-training records).  :class:`WeightAverage` keeps the average, swaps it
into the net for evaluation and saving, and saves and loads itself so that a
resumed run goes on exactly.
"""
import contextlib
from typing import Dict, Iterator

from mxnet import gluon, nd

from ._checks import FRACTION

__all__ = ["WeightAverage"]


class WeightAverage:
    """The EMA of every parameter of a net (BatchNorm's running statistics too).

    After the ``n``-th :meth:`update` the average moves toward the weights by
    ``1 - d`` with ``d = min(decay, (1 + n) / (10 + n))``: early on, while the
    weights change fast, it follows them closely (TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``).

    Parameters
    ----------
    net : mxnet.gluon.Block
        An initialised net; the average lives on its first context.
    decay : float
        In (0, 1), e.g. 0.999: the average spans about ``1 / (1 - decay)`` steps.
    """

    def __init__(self, net: gluon.Block, decay: float):
        FRACTION.check("ema decay", decay)
        if decay == 0:
            raise ValueError("ema decay must be in (0, 1), e.g. 0.999; got 0.")
        self.decay, self.updates = decay, 0
        self._params = net._collect_params_with_prefix()
        self.average: Dict[str, nd.NDArray] = {
            name: p.list_data()[0].copy() for name, p in self._params.items()}

    def update(self) -> None:
        """Move the average toward the net's present weights (after each step)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self._params.items():  # in place: one temporary a parameter a step
            avg = self.average[name]
            avg *= d
            avg += (1 - d) * p.list_data()[0]

    def apply(self) -> None:
        """Put the average into the net, on every device (the net's weights are lost)."""
        self._set(self.average)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the net holds the average; its own weights come back after."""
        saved = {name: p.list_data()[0].copy() for name, p in self._params.items()}
        self.apply()
        try:
            yield
        finally:
            self._set(saved)

    def _set(self, values: Dict[str, nd.NDArray]) -> None:
        for name, p in self._params.items():
            for arr in p.list_data():  # in place, on every device
                values[name].copyto(arr)

    def save(self, path: str) -> None:
        """Write the average as a params file (the net's own parameter names)."""
        nd.save(path, self.average)

    def load(self, path: str, updates: int) -> None:
        """Read what :meth:`save` wrote; ``updates`` is how many steps it had averaged."""
        loaded = nd.load(path)
        if set(loaded) != set(self.average):
            raise ValueError(f"{path} holds other parameters than the net "
                             f"({sorted(set(loaded) ^ set(self.average))[:3]}...).")
        ctx = next(iter(self.average.values())).context
        self.average = {k: v.as_in_context(ctx) for k, v in loaded.items()}
        self.updates = updates
