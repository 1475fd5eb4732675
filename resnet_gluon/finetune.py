"""Fine-tuning: start a net from trained weights (the shipped ones, or a run's) for new data.

:func:`init_from` copies every parameter whose structural name and shape match, widens a
1-channel stem to the net's 3 channels (the gray kernel split evenly over R, G and B, so a
gray image repeated in the three channels gives the trained net's features exactly), and
leaves a new output layer (another class count) to a fresh, seeded initialisation.
``lr_body`` scales the learning rate of everything but the output layer (``lr_mult``, which
``gluon.Trainer`` and so :func:`resnet_gluon.train.fit` follow); 0 freezes the body.

>>> net = ResNetSpec(num_classes=5, in_channels=3).build()       # doctest: +SKIP
>>> init_from(net, lr_body=0.1)                                    # doctest: +SKIP
>>> fit(net, train_iter, test_iter, config)                        # doctest: +SKIP
"""
from typing import List, Optional, Sequence

import mxnet as mx
import numpy as np

from .config import parse_ctx
from .model import ResNet
from .trained import Contexts, load_model

__all__ = ["init_from"]


def init_from(net: ResNet, source: Optional[str] = None, ctx: Contexts = None,
              lr_body: float = 1.0, seed: int = 0,
              classes: Optional[Sequence[str]] = None) -> List[str]:
    """Load trained weights into ``net`` for fine-tuning; return what was not copied as is.

    Parameters
    ----------
    net : ResNet
        The net to train, built (``ResNetSpec(...).build()``) with the depth and stem of
        the source; its class count and input channels (1 or 3) may differ.
    source : str, optional
        None: the weights shipped in the package; else a run's ``model.params`` (or a
        checkpoint's ``net.params``), read with its ``config.json``.
    ctx : Context, list of Context or str, optional
        Where ``net``'s parameters live (default ``cpu``).
    lr_body : float, default 1.0
        Learning-rate factor of every layer but the output one; 0 freezes them.
    seed : int, default 0
        Seeds the new output layer's initialisation.
    classes : sequence of str, optional
        The net's class names.  The same names as the source's, in another order: the output
        layer's rows are reordered to them; other names: the output layer is new, even at
        the same count (its rows would stand for other classes).  None: kept by count.

    Returns
    -------
    list of str
        One line per parameter not copied as it was (widened, or new).

    Raises
    ------
    ValueError
        The architectures cannot map (another depth or stem, input channels other than 1
        to 3): the message names the first parameter that differs and why.
    """
    if isinstance(lr_body, bool) or not isinstance(lr_body, (int, float)) or lr_body < 0:
        raise ValueError(f"lr_body must be a number >= 0 (0 freezes the body), got {lr_body!r}.")
    if net[0].weight.shape[1] == 0:
        raise ValueError("the net's input channels are still to be inferred; build it with "
                         "in_channels=1 or 3 (ResNetSpec's default is 1).")
    trained, info = load_model(source)
    theirs = {k: p.data().asnumpy() for k, p in trained._collect_params_with_prefix().items()}
    ours = net._collect_params_with_prefix()
    head = {k for k in ours if k.startswith(f"{len(net) - 1}.")}  # the dense layer
    _check_maps(ours, theirs, head)
    if classes is not None and list(classes) != info.classes:
        if sorted(classes) == sorted(info.classes):  # the same classes, in another order
            rows = [info.classes.index(c) for c in classes]
            theirs.update({k: theirs[k][rows] for k in head})
        else:  # other classes: no row of the trained head stands for one of them
            theirs.update({k: np.zeros((0,)) for k in head})
    values, notes = {}, []
    for key, param in ours.items():
        value = theirs[key]
        if tuple(param.shape) == value.shape:
            values[key] = value
        elif key not in head:  # the stem, 1 -> 3 channels (checked above)
            values[key] = np.repeat(value, 3, axis=1) / 3
            notes.append(f"{key}: the 1-channel stem widened to 3 channels (gray kernel / 3)")
        else:
            why = "its classes are others" if value.size == 0 else f"the source has {value.shape}"
            notes.append(f"{key}: new, {param.shape} ({why})")
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(), ctx=parse_ctx(ctx), force_reinit=True)
    for key, value in values.items():
        ours[key].set_data(mx.nd.array(value, dtype=ours[key].dtype))
    for key, param in ours.items():
        if key not in head and param.grad_req != "null":  # BatchNorm's statistics stay null
            param.lr_mult = lr_body
            if lr_body == 0:
                param.grad_req = "null"
    return notes


def _check_maps(ours, theirs, head) -> None:
    """Refuse, naming the first difference, a net the trained weights cannot start."""
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    if missing or extra:
        first = missing[0] if missing else extra[0]
        raise ValueError(f"the trained weights do not map onto this net: {first} is in "
                         f"{'the net only' if missing else 'the weights only'} (another depth "
                         f"or stem). Build the net with the trained net's depth and "
                         f"small_input.")
    for key, param in ours.items():
        want, have = tuple(param.shape), theirs[key].shape
        if want == have or key in head:
            continue
        stem = key == "0.weight" and have[1] == 1 and want[1] == 3 and want[2:] == have[2:]
        if not stem:
            raise ValueError(f"the trained weights do not map onto this net: {key} is {have} "
                             f"in the weights and {want} in the net; only the output layer "
                             f"may differ (another class count) and a 1-channel stem may "
                             f"become 3 channels.")
