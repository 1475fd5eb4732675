"""Residual blocks: the notebook's ``Residual`` and a ``Bottleneck`` for depth 50+.

``Residual`` is d2l-zh 5.11's block line for line, written as a HybridBlock so
that the net hybridizes, exports and quantizes.  Its children keep the book's
names (``conv1 conv2 conv3 bn1 bn2``) and registration order, so weights map
1:1 from ``d2lzh.Residual``.
"""
from typing import Optional

from mxnet.symbol import Symbol
from mxnet.gluon import nn

from ._checks import check_in_channels, check_input, check_positive_int

__all__ = ["Residual", "Bottleneck"]


class _ResidualUnit(nn.HybridBlock):
    """What both block kinds share: argument checks and input checks."""

    #: Output channels per ``num_channels`` (torchvision's name for it).
    expansion = 1
    #: The child that holds the 1x1 projection of the shortcut (None: the identity).
    _SHORTCUT = "conv3"

    def __init__(self, num_channels: int, use_1x1conv: bool, strides: int,
                 in_channels: int, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        check_positive_int("num_channels", num_channels)
        check_positive_int("strides", strides)
        check_in_channels(in_channels)
        if not isinstance(use_1x1conv, bool):
            raise TypeError(f"use_1x1conv must be True or False, got {use_1x1conv!r}.")
        out_channels = num_channels * self.expansion
        # Without the projection the shortcut is the identity: it can change
        # neither the size nor the channel count of X, so Y + X could not add.
        if strides != 1 and not use_1x1conv:
            raise ValueError(
                f"{name}({num_channels}, strides={strides}) shrinks height and "
                f"width, so the shortcut needs the 1x1 convolution too: pass "
                f"use_1x1conv=True (as resnet_block does for the first block of a "
                f"stage), or use strides=1.")
        if in_channels and in_channels != out_channels and not use_1x1conv:
            raise ValueError(
                f"{name}({num_channels}) maps {in_channels} input channels to "
                f"{out_channels}, so the shortcut needs the 1x1 convolution: pass "
                f"use_1x1conv=True, or give it {out_channels}-channel input.")
        self._num_channels = num_channels

    @property
    def _shortcut(self) -> Optional[nn.Conv2D]:
        return getattr(self, self._SHORTCUT)

    def forward(self, x, *args):
        """Check an NDArray input, then run the block (imperative or cached)."""
        # Symbols pass through: they are being traced by a hybridized parent.
        if not isinstance(x, Symbol):
            name = type(self).__name__
            check_input(x, self.conv1.weight.shape[1], self.conv1.weight.dtype, name)
            out_channels = self._num_channels * self.expansion
            if self._shortcut is None and x.shape[1] != out_channels:
                raise ValueError(
                    f"{name}({self._num_channels}) without the 1x1 convolution adds "
                    f"its input to its {out_channels}-channel output, so it needs "
                    f"{out_channels}-channel input; got {x.shape[1]} channels "
                    f"(input shape {x.shape}). Build it with use_1x1conv=True to "
                    f"project the shortcut.")
        return super().forward(x, *args)


class Residual(_ResidualUnit):
    """The residual block of d2l-zh 5.11 (ResNet-18/34's basic block).

    Two 3x3 convolutions, each followed by batch normalisation, with ReLU after
    the first and after the sum with the shortcut.  The convolutions keep
    their biases and the 1x1 projection has no batch norm, as in the book.

    Parameters
    ----------
    num_channels : int
        Output channels of both 3x3 convolutions (and of the block).
    use_1x1conv : bool, default False
        Project the shortcut with a 1x1 convolution (``conv3``); needed when the
        block changes the channel count or the stride.
    strides : int, default 1
        Stride of the first 3x3 convolution and of the projection.
    in_channels : int, default 0
        Input channels, when known; lets every shape be known before the first
        forward.  0 infers it from the first input, as the book does.
    **kwargs
        Passed to :class:`mxnet.gluon.HybridBlock` (``prefix``, ``params``).

    Examples
    --------
    >>> blk = Residual(6, use_1x1conv=True, strides=2)
    >>> blk.initialize()
    >>> blk(mx.nd.random.uniform(shape=(4, 3, 6, 6))).shape
    (4, 6, 3, 3)
    """

    expansion = 1

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 in_channels: int = 0, **kwargs):
        super().__init__(num_channels, use_1x1conv, strides, in_channels, **kwargs)
        # The book's children, in the book's order (weights map 1:1 by order).
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides,
                               in_channels=in_channels)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1,
                               in_channels=num_channels)
        if use_1x1conv:
            self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides,
                                   in_channels=in_channels)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm(in_channels=num_channels)
        self.bn2 = nn.BatchNorm(in_channels=num_channels)

    def hybrid_forward(self, F, X):
        Y = F.Activation(self.bn1(self.conv1(X)), act_type="relu")
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.Activation(Y + X, act_type="relu")


class Bottleneck(_ResidualUnit):
    """The bottleneck block of ResNet-50/101/152, in the book's style.

    1x1 (``num_channels``) -> 3x3 (``num_channels``, carries the stride, as in
    torchvision's ResNet v1.5) -> 1x1 (``4 * num_channels``), each followed by
    batch normalisation; conv biases kept and no batch norm on the projection,
    as in :class:`Residual`.

    Parameters
    ----------
    num_channels : int
        Width of the bottleneck; the block outputs ``4 * num_channels``.
    use_1x1conv : bool, default False
        Project the shortcut with a 1x1 convolution (``conv4``).
    strides : int, default 1
        Stride of the 3x3 convolution and of the projection.
    in_channels : int, default 0
        Input channels, when known (0 infers them at the first forward).
    **kwargs
        Passed to :class:`mxnet.gluon.HybridBlock`.
    """

    expansion = 4
    _SHORTCUT = "conv4"

    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1,
                 in_channels: int = 0, **kwargs):
        super().__init__(num_channels, use_1x1conv, strides, in_channels, **kwargs)
        out_channels = num_channels * self.expansion
        self.conv1 = nn.Conv2D(num_channels, kernel_size=1, in_channels=in_channels)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides,
                               in_channels=num_channels)
        self.conv3 = nn.Conv2D(out_channels, kernel_size=1, in_channels=num_channels)
        # The projection shortcut, last of the convolutions as conv3 is in Residual.
        self.conv4 = nn.Conv2D(out_channels, kernel_size=1, strides=strides,
                               in_channels=in_channels) if use_1x1conv else None
        self.bn1 = nn.BatchNorm(in_channels=num_channels)
        self.bn2 = nn.BatchNorm(in_channels=num_channels)
        self.bn3 = nn.BatchNorm(in_channels=out_channels)

    def hybrid_forward(self, F, X):
        Y = F.Activation(self.bn1(self.conv1(X)), act_type="relu")
        Y = F.Activation(self.bn2(self.conv2(Y)), act_type="relu")
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.conv4(X)
        return F.Activation(Y + X, act_type="relu")
