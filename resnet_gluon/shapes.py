"""Shape checks for notebooks: notebook cell 8 as functions, and parameter counts."""
import html
import sys
from typing import List, NamedTuple, Optional, Sequence, TextIO, Tuple, Union

import numpy as np
from mxnet import nd
from mxnet.gluon import Block

from ._checks import check_channels_first, check_input, first_uninitialized

__all__ = ["check_input_size", "layer_shapes", "print_shapes", "format_shapes",
           "count_parameters", "shapes", "ShapeTable", "LayerShape"]

Shape = Tuple[int, ...]


def _as_input(net: Block, x: Union[Sequence[int], nd.NDArray]) -> nd.NDArray:
    params = list(net.collect_params().values())
    p = first_uninitialized(params)
    if p is not None:
        raise RuntimeError(
            f"{net.name} has parameters that are not initialised ({p.name}). "
            f"Call net.initialize() first, as notebook cell 8 does.")
    ctx = params[0].list_ctx()[0] if params else None
    if isinstance(x, nd.NDArray):
        return x.as_in_context(ctx) if ctx is not None else x
    shape = tuple(x)
    if len(shape) != 4 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise ValueError(
            f"input shape must be four positive integers (N, C, H, W), got {x!r}; "
            f"the notebook uses (1, 1, 224, 224).")
    # Like the notebook: a uniform random batch, on the net's device.
    return nd.random.uniform(shape=shape, ctx=ctx) if ctx is not None \
        else nd.random.uniform(shape=shape)


def check_input_size(shape: Sequence[int], small_input: bool = False) -> None:
    """Refuse an input ``(N, C, H, W)`` whose stem output would hold more numbers than
    MXNet's 2**31 per array (the largest output of the net)."""
    n, c, h, w = shape
    stride = 1 if small_input else 2
    stem = n * 64 * -(-h // stride) * -(-w // stride)
    if stem >= 2**31 - 1:
        raise ValueError(f"--input {n},{c},{h},{w} is too large: the stem's output would hold "
                         f"{stem:,} numbers, more than MXNet's 2**31 per array. Give a "
                         f"smaller batch or image.")


def layer_shapes(net: Block, x: Union[Sequence[int], nd.NDArray] = (1, 1, 224, 224)
                 ) -> List[Tuple[str, Shape]]:
    """Run an input through the top-level layers of ``net``, one at a time.

    Parameters
    ----------
    net : mxnet.gluon.Block
        An initialised sequential net (``build_resnet18()`` after
        ``initialize()``, or the notebook's own ``nn.Sequential``).
    x : tuple of int or NDArray, default (1, 1, 224, 224)
        An input batch, or its shape (a uniform random batch is drawn).

    Returns
    -------
    list of (str, tuple)
        ``(layer.name, output shape)`` for each top-level layer, in order.

    Raises
    ------
    RuntimeError
        The net is not initialised.
    ValueError, TypeError
        The input is not a 4-D floating-point batch the net accepts.
    """
    X = _as_input(net, x)
    stem = getattr(net[0], "weight", None) if len(net) else None
    if stem is not None:
        check_input(X, stem.shape[1], stem.dtype, net.name)
        if not stem.shape[1]:  # the first batch fixes the channels for good
            check_channels_first(X, net.name)
    rows = []
    for layer in net:
        X = layer(X)
        rows.append((layer.name, tuple(X.shape)))
    return rows


def format_shapes(rows: Sequence[Tuple[str, Shape]]) -> str:
    """The rows as notebook cell 8 prints them, one ``name output shape:\\t shape`` a line."""
    return "\n".join(f"{name} output shape:\t {shape}" for name, shape in rows)


def print_shapes(net: Block, x: Union[Sequence[int], nd.NDArray] = (1, 1, 224, 224),
                 file: Optional[TextIO] = None) -> List[Tuple[str, Shape]]:
    """Print each top-level layer's output shape exactly as notebook cell 8 does.

    Parameters
    ----------
    net, x
        As for :func:`layer_shapes`.
    file : file-like, optional
        Where to print (standard output by default).

    Returns
    -------
    list of (str, tuple)
        The rows that were printed.
    """
    rows = layer_shapes(net, x)
    print(format_shapes(rows), file=file if file is not None else sys.stdout)
    return rows


def count_parameters(net: Block) -> Tuple[int, int]:
    """Count the parameters of ``net``.

    Parameters
    ----------
    net : mxnet.gluon.Block
        A net whose parameter shapes are known (built with ``in_channels``, or
        after one forward pass).

    Returns
    -------
    (int, int)
        All parameters, BatchNorm's running statistics included, and the
        trainable ones (``grad_req != 'null'``).  The notebook's ResNet-18 on
        1-channel input with 10 classes has 11,186,186 and 11,178,378.

    Raises
    ------
    RuntimeError
        A parameter's shape is still unknown.
    """
    total = trainable = 0
    for p in net.collect_params().values():
        if p.shape is None or any(d == 0 for d in p.shape):
            raise RuntimeError(
                f"the shape of {p.name} is not known yet: {p.shape}. Run one batch "
                f"through the net first, or build it with in_channels set.")
        size = int(np.prod(p.shape))
        total += size
        if p.grad_req != "null":
            trainable += size
    return total, trainable



class LayerShape(NamedTuple):
    """One row of a :class:`ShapeTable`."""

    name: str
    type: str
    shape: Shape
    params: int


class ShapeTable(list):
    """The result of :func:`shapes`: a list of :class:`LayerShape` rows.

    ``print(table)`` and ``repr(table)`` give notebook cell 8's lines; Jupyter
    shows ``_repr_html_``, a table of layer, type, output shape and parameters.
    """

    def __init__(self, rows: Sequence[LayerShape], input_shape: Shape):
        super().__init__(rows)
        self.input_shape = tuple(input_shape)

    @property
    def total_params(self) -> int:
        """Parameters of all rows, BatchNorm running statistics included."""
        return sum(row.params for row in self)

    def __str__(self) -> str:
        return format_shapes([(row.name, row.shape) for row in self])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th style='text-align:left'>{h}</th>"
                       for h in ("layer", "type", "output shape", "parameters"))
        body = "".join(
            f"<tr><td style='text-align:left'>{esc(r.name)}</td>"
            f"<td style='text-align:left'>{esc(r.type)}</td>"
            f"<td style='text-align:left'>{esc(str(r.shape))}</td>"
            f"<td style='text-align:right'>{r.params:,}</td></tr>" for r in self)
        return (f"<table><caption>input {esc(str(self.input_shape))}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"<tfoot><tr><td colspan='3' style='text-align:left'>total</td>"
                f"<td style='text-align:right'>{self.total_params:,}</td></tr></tfoot></table>")


def shapes(net: Block, x: Union[Sequence[int], nd.NDArray] = (1, 1, 224, 224)) -> ShapeTable:
    """Notebook cell 8 as a value: each top-level layer's type, output shape and size.

    As the last line of a Jupyter cell it displays as a table; printed, it
    gives the notebook's ``name output shape:\t shape`` lines.

    Parameters
    ----------
    net, x
        As for :func:`layer_shapes`.

    Returns
    -------
    ShapeTable
        One :class:`LayerShape` per top-level layer.

    Examples
    --------
    >>> net = build_resnet18(); net.initialize()
    >>> shapes(net, (1, 1, 224, 224))[-1]
    LayerShape(name='dense0', type='Dense', shape=(1, 10), params=5130)
    """
    X = _as_input(net, x)
    rows = layer_shapes(net, X)
    table = []
    for layer, (name, shape) in zip(net, rows):
        size = sum(int(np.prod(p.shape)) for p in layer.collect_params().values())
        table.append(LayerShape(name, type(layer).__name__, shape, size))
    return ShapeTable(table, X.shape)
