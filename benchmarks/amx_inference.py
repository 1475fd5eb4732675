"""A quick look at AMX: ResNet-18 inference (batch 32, 1x96x96) in fp32 and in bf16.

bf16 is MXNet's ``amp.convert_hybrid_block`` of the hybridized net; ``RESNET_GLUON_AMX=0``
runs the same without AMX.  Run each case in its own process, alternating, several rounds:

    for r in 1 2 3; do for v in 1 0; do for d in float32 bfloat16; do
      RESNET_GLUON_AMX=$v OMP_NUM_THREADS=2 python benchmarks/amx_inference.py $d; done; done; done

Prints ``DTYPE amx=BOOL: N img/s`` (10 batches after 3 warm-ups).  The throughput benchmark
(``throughput.py``) is where bf16 rows are to be measured against torchvision.
"""
import sys
import time
import warnings

import resnet_gluon  # noqa: F401  first: it lets MXNet import with numpy >= 1.24
import mxnet as mx
from mxnet.contrib import amp

import resnet_gluon
from resnet_gluon import build_resnet

warnings.simplefilter("ignore")  # amp's "Cannot decide type" for the input

if __name__ == "__main__":
    dtype = sys.argv[1] if len(sys.argv) > 1 else "float32"
    if dtype not in ("float32", "bfloat16"):
        sys.exit(f"usage: {sys.argv[0]} [float32|bfloat16], got {dtype!r}")
    net = build_resnet(18, in_channels=1)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.uniform(shape=(32, 1, 96, 96))
    net(x).wait_to_read()
    if dtype == "bfloat16":
        net = amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
    for _ in range(3):
        net(x).wait_to_read()
    tic, n = time.time(), 10
    for _ in range(n):
        net(x).wait_to_read()
    print(f"{dtype} amx={resnet_gluon.cpu.amx_status().enabled}: "
          f"{n * x.shape[0] / (time.time() - tic):.0f} img/s")
