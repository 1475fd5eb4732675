"""A net's graph built for inference: BatchNorm folded away, then oneDNN's fusions.

In inference a BatchNorm is a fixed affine map of its input, so after a convolution it can be
folded into that convolution's weights and bias, exactly (the running statistics, ``gamma``
and ``beta``; computed in float64, stored in float32).  :func:`fold_batchnorm` does that on
the net's graph; :func:`for_inference` then casts to bfloat16 if asked (MXNet's AMP pass, at
the graph's edges as in :func:`resnet_gluon.precision.mixed_precision`) and lets MXNet's MKLDNN
subgraph backend fuse each convolution with its ReLU and the residual sum.  The order
matters: a bf16 graph that still holds its BatchNorms runs *slower* fused than unfused, and a
fused float32 graph cast to bf16 afterwards stays float32 (AMP keeps MXNet's fused
convolutions in float32).  Training never goes through here: the nets it trains keep their
BatchNorms.
"""
import json
import os
import warnings
from typing import Dict, List, Optional, Tuple

import mxnet as mx
from mxnet import gluon, nd

from .precision import _Checked, check_dtype, require_bfloat16

__all__ = ["fold_batchnorm", "for_inference", "graph_ops", "global_pool_sees_1x1"]

NDArrays = Dict[str, nd.NDArray]


def _trace(net: gluon.HybridBlock) -> Tuple[mx.sym.Symbol, mx.sym.Symbol, NDArrays, list]:
    """The net's graph on a ``data`` input, its parameters' values and their contexts."""
    if not isinstance(net, gluon.HybridBlock):
        raise TypeError(f"an inference graph needs a HybridBlock (its graph is rewritten), "
                        f"got {type(net).__name__}; build the net from HybridBlocks, as "
                        f"resnet_gluon.build_resnet does.")
    data = mx.sym.var("data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a SymbolBlock's "cannot decide type" notes
        graph = net(data)
    params = net.collect_params()
    contexts = next(iter(params.values())).list_ctx()
    return graph, data, {p.name: p.data(contexts[0]) for p in params.values()}, contexts


def graph_ops(graph: mx.sym.Symbol) -> Dict[str, int]:
    """How many nodes of each operator a graph holds (variables aside)."""
    counts: Dict[str, int] = {}
    for node in json.loads(graph.tojson())["nodes"]:
        if node["op"] != "null":
            counts[node["op"]] = counts.get(node["op"], 0) + 1
    return counts


def _fold_graph(graph: mx.sym.Symbol, values: NDArrays) -> Tuple[mx.sym.Symbol, NDArrays]:
    """``graph`` with each BatchNorm that alone reads a Convolution's output folded into it,
    and the new parameter values."""
    doc = json.loads(graph.tojson())
    nodes = doc["nodes"]
    readers: Dict[Tuple[int, int], List[int]] = {}
    for i, node in enumerate(nodes):
        for src, out, _ in node["inputs"]:
            readers.setdefault((src, out), []).append(i)
    for src, out, _ in doc["heads"]:
        readers.setdefault((src, out), []).append(-1)
    values = dict(values)
    folded: Dict[int, int] = {}  # BatchNorm node -> the convolution that replaces it
    for i, node in enumerate(nodes):
        if node["op"] == "BatchNorm" and _fold_one(nodes, i, readers, values):
            folded[i] = node["inputs"][0][0]
    if not folded:
        return graph, values
    return mx.sym.load_json(json.dumps(_without(doc, folded))), values


def _fold_one(nodes: list, i: int, readers: Dict[Tuple[int, int], List[int]],
              values: NDArrays) -> bool:
    """Fold BatchNorm node ``i`` into the convolution it reads, in ``nodes`` and ``values``;
    False (nothing changed) where it does not read a convolution's output alone, or that
    convolution's weights are computed (cast) rather than parameters."""
    node = nodes[i]
    src, out, _ = node["inputs"][0]
    conv = nodes[src]
    weights = [nodes[j] for j, _, _ in conv["inputs"][1:]]
    stats = [nodes[j]["name"] for j, _, _ in node["inputs"][1:]]
    attrs = node.get("attrs", {})
    if (conv["op"] != "Convolution" or readers[(src, out)] != [i]
            or attrs.get("axis", "1") != "1"  # channels first, as the weights' first axis
            or conv.get("attrs", {}).get("layout", "None") not in ("None", "NCW", "NCHW", "NCDHW")
            or any(w["op"] != "null" or w["name"] not in values for w in weights)
            or any(s not in values for s in stats)):
        return False
    # NDArray arithmetic in float64 on the loaded arrays, not a trip through NumPy: arrays
    # made from NumPy ran oneDNN's batch-1 convolutions 3x slower here (same bits, same
    # kernels; measured, not understood).
    gamma, beta, mean, var = (values[s].astype("float64") for s in stats)
    if attrs.get("fix_gamma", "True") == "True":  # MXNet's operator default
        gamma = nd.ones_like(gamma)
    scale = gamma / nd.sqrt(var + float(attrs.get("eps", "0.001")))
    weight = values[weights[0]["name"]]
    bias = (values[weights[1]["name"]].astype("float64") if len(weights) > 1
            else nd.zeros(weight.shape[0], ctx=weight.context, dtype="float64"))
    bias_name = weights[1]["name"] if len(weights) > 1 else conv["name"] + "_bias"
    values[weights[0]["name"]] = (weight.astype("float64") * scale.reshape(
        (-1,) + (1,) * (weight.ndim - 1))).astype("float32")
    values[bias_name] = ((bias - mean) * scale + beta).astype("float32")
    if len(weights) == 1:  # a convolution without bias gets one
        nodes.append({"op": "null", "name": bias_name, "inputs": []})
        conv["inputs"].append([len(nodes) - 1, 0, 0])
        conv.setdefault("attrs", {})["no_bias"] = "False"
    for s in stats:
        values.pop(s)
    return True


def _without(doc: dict, folded: Dict[int, int]) -> dict:
    """The graph ``doc`` without the folded BatchNorm nodes (and their statistics), each
    reader of one reading its convolution instead."""
    nodes = doc["nodes"]
    dead = set(folded) | {j for i in folded for j, _, _ in nodes[i]["inputs"][1:]}
    index: Dict[int, int] = {}
    kept = []
    for i, node in enumerate(nodes):
        if i not in dead:
            index[i] = len(kept)
            kept.append(node)

    def moved(ref):
        src, out, version = ref
        if src in folded:  # a BatchNorm's output is now its convolution's
            src, out = folded[src], 0
        return [index[src], out, version]

    for node in kept:
        node["inputs"] = [moved(r) for r in node["inputs"]]
    return {"nodes": kept, "heads": [moved(h) for h in doc["heads"]],
            "arg_nodes": [k for k, node in enumerate(kept) if node["op"] == "null"],
            "attrs": doc.get("attrs", {})}


def _block(graph: mx.sym.Symbol, data: mx.sym.Symbol, values: NDArrays, contexts: list,
           check=None) -> gluon.SymbolBlock:
    """A block over ``graph`` holding ``values``; it checks an input batch with ``check``
    (a ResNet's ``check_batch``), so a bad batch gets the net's own clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        block = _Checked(graph, data, check=check)
    for name, param in block.collect_params().items():
        param._load_init(values[name], contexts, cast_dtype=True, dtype_source="saved")
    return block


def fold_batchnorm(net: gluon.HybridBlock) -> gluon.SymbolBlock:
    """``net`` for inference with every BatchNorm that follows a convolution folded into it.

    Each such BatchNorm's running statistics, scale and shift become the convolution's
    weights and bias (a convolution without a bias gets one), computed in float64; the
    outputs equal ``net``'s in predict mode within float32 rounding.  A BatchNorm after
    anything else is kept.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised net, float32 (any ResNet of :func:`resnet_gluon.build_resnet`, a
        loaded export).

    Returns
    -------
    mxnet.gluon.SymbolBlock
        A new block with parameters of its own on ``net``'s contexts; ``net`` is unchanged.
        For inference only (it has no BatchNorm to train).
    """
    graph, data, values, contexts = _trace(net)
    graph, values = _fold_graph(graph, values)
    return _block(graph, data, values, contexts, getattr(net, "check_batch", None))


def _to_bfloat16(graph: mx.sym.Symbol, values: NDArrays, cast_weights: bool
                 ) -> Tuple[mx.sym.Symbol, NDArrays]:
    """MXNet's AMP pass: bf16 convolutions and dense layer, the scores cast back to float32.
    ``cast_weights``: their weights stored in bf16 once (else cast in the graph at each call,
    as a portable file needs; those casts cost 3.5x at batch 1 here)."""
    from mxnet.contrib import amp

    aux = set(graph.list_auxiliary_states())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, args, auxs = amp.convert_model(
            graph, {k: v for k, v in values.items() if k not in aux},
            {k: v for k, v in values.items() if k in aux}, target_dtype="bfloat16",
            cast_optional_params=cast_weights)
    return graph, {**args, **auxs}


def _can_fuse(contexts: list) -> bool:
    return (all(c.device_type == "cpu" for c in contexts)
            and mx.runtime.Features().is_enabled("MKLDNN"))


def for_inference(net: gluon.HybridBlock, dtype: str = "float32",
                  fuse: Optional[bool] = None) -> gluon.SymbolBlock:
    """``net`` as the fastest exact inference graph this MXNet builds, in ``dtype``.

    The steps, in the order that pays: BatchNorm folded into the convolutions
    (:func:`fold_batchnorm`); for bfloat16, MXNet's AMP pass (bf16 convolutions and dense
    layer, their weights stored in bf16 once, the input cast to bf16 as it enters the graph,
    the scores back to float32); then, on a CPU, MXNet's
    MKLDNN subgraph backend (``optimize_for('MKLDNN')``), which fuses each convolution with
    the ReLU after it and the residual sum.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        An initialised float32 net (a loaded model, a loaded export).
    dtype : {'float32', 'bfloat16'}, default 'float32'
    fuse : bool, optional
        Apply the MKLDNN fusions and, in bfloat16, store the weights in bf16 once (default:
        on a CPU build of MXNet with oneDNN, for CPU contexts).  ``False`` gives the portable
        graph ``export --dtype bfloat16`` writes: unfused, float32 weights cast in the graph.
        A graph that is already mixed-precision (a bfloat16 export) and still holds a
        BatchNorm is not fused: that was measured slower than leaving it.

    Returns
    -------
    mxnet.gluon.SymbolBlock
        Hybridized, any batch size; its outputs are float32.  It has no layers to look into
        (use ``net`` itself for :func:`resnet_gluon.visualize.feature_maps` or Grad-CAM).

    Warns
    -----
    UserWarning
        bfloat16 on a CPU without native bf16 (slower than float32).

    Raises
    ------
    RuntimeError
        bfloat16 on a CPU without AVX-512, where it cannot run
        (:func:`resnet_gluon.precision.require_bfloat16`).
    """
    check_dtype(dtype)
    graph, data, values, contexts = _trace(net)
    graph, values = _fold_graph(graph, values)
    fuse = _can_fuse(contexts) if fuse is None else fuse
    if dtype == "bfloat16":
        require_bfloat16()
        graph, values = _to_bfloat16(graph, values, cast_weights=fuse)
    unfused = graph
    ops = graph_ops(graph)
    mixed_with_batchnorm = "amp_cast" in ops and "BatchNorm" in ops
    if fuse and not mixed_with_batchnorm:
        os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # no "backend MKLDNN" banner
        graph = graph.optimize_for("MKLDNN", dedup_subgraph=True)
    block = _block(graph, data, values, contexts, getattr(net, "check_batch", None))
    block.plan_shapes = lambda shape: not global_pool_sees_1x1(unfused, shape)
    block.hybridize(static_alloc=True)
    return block


def global_pool_sees_1x1(graph: mx.sym.Symbol, shape: Tuple[int, ...]) -> bool:
    """Whether a global pooling of ``graph`` gets a 1x1 map for input ``shape``."""
    nodes = json.loads(graph.tojson())["nodes"]
    internals = graph.get_internals()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, shapes, _ = internals.infer_shape_partial(data=shape)
    shape_of = dict(zip(internals.list_outputs(), shapes))
    for node in nodes:
        if node["op"] == "Pooling" and node.get("attrs", {}).get("global_pool") == "True":
            source = nodes[node["inputs"][0][0]]["name"]
            if tuple((shape_of.get(source + "_output") or (0, 0))[-2:]) == (1, 1):
                return True
    return False
