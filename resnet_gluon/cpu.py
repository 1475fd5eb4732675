"""The CPU under MXNet: AMX for oneDNN where the CPU has it, and what the kernels ran on.

MXNet 1.9.1 bundles oneDNN v2.4.4, which can run bfloat16 and INT8 convolutions on the AMX
tiles of a Sapphire Rapids Xeon but never asks Linux for them: a process may execute AMX
instructions only after ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``, and oneDNN
only uses them when ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX`` (the variable alone dies of
SIGILL).  :func:`enable_amx` does both, before oneDNN's first primitive:
``import resnet_gluon`` calls it first of all.

What cannot be helped: oneDNN reads its ISA limit once, at its first primitive.  A process that
ran an MXNet operator before importing resnet_gluon keeps the ISA it started with;
``python -m resnet_gluon info`` shows which one the convolutions ran on.

Nothing here imports MXNet.
"""
import ctypes
import dataclasses
import os
import platform
import subprocess
import sys
from typing import Dict, List, Optional, Set

__all__ = ["ISA_FLAGS", "AmxStatus", "amx_status", "enable_amx", "settle", "cpu_flags",
           "cpu_model", "kernel_isas", "parse_verbose", "thread_count_problem"]

_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA = 158, 0x1023, 18
_ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
_AMX_ISA = "AVX512_CORE_AMX"
#: ISA flags worth naming, as /proc/cpuinfo spells them.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
             "amx_int8")


def thread_count_problem(environ=None) -> Optional[str]:
    """What is wrong with ``OMP_NUM_THREADS``, in words, or None when it is unset or usable.

    MXNet reads the variable as one integer when it is imported: a word (``abc``) or
    OpenMP's nested list (``2,1``) ends the process with a C++ abort, and 0 makes OpenMP
    complain and pick a count of its own.  Checked before MXNet starts.
    """
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS")
    if value is None or value.strip().isdigit() and int(value) > 0:
        return None
    return (f"OMP_NUM_THREADS={value!r} is not a positive whole number of threads (MXNet "
            f"would abort on it or ignore it). Set it to the number of physical cores, "
            f"e.g. OMP_NUM_THREADS=2, or unset it.")


@dataclasses.dataclass(frozen=True)
class AmxStatus:
    """Whether oneDNN may use AMX in this process, and why (not)."""

    enabled: bool
    reason: str


_status = AmxStatus(False, "enable_amx() has not run")


def amx_status() -> AmxStatus:
    """What :func:`enable_amx` decided for this process."""
    return _status


def _cpuinfo(field: str) -> Optional[str]:
    """The value of ``field`` for the first CPU in Linux's ``/proc/cpuinfo``, or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> Set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_model() -> Optional[str]:
    """The CPU's model name (Linux ``/proc/cpuinfo``; None elsewhere)."""
    return _cpuinfo("model name")


def _request_amx_permission() -> Optional[str]:
    """Ask Linux to let this process use the AMX tiles: None if granted, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0:
        return None
    return os.strerror(ctypes.get_errno())


def enable_amx() -> AmxStatus:
    """Let oneDNN run bf16 and INT8 on AMX, where the CPU and the kernel allow it.

    Requests the tiles for this process and sets ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX`` for
    oneDNN's first primitive, unless ``RESNET_GLUON_AMX=0`` or the user set
    ``DNNL_MAX_CPU_ISA``/``ONEDNN_MAX_CPU_ISA`` (theirs wins; the tiles are still requested,
    so that an AMX value of theirs does not die of SIGILL).  Never raises: without AMX, or
    when Linux refuses, oneDNN is left as it is.  Call :func:`settle` once MXNet is
    imported, so that child processes do not inherit the variable.
    """
    global _status
    _status = _decide()
    return _status


def _decide() -> AmxStatus:
    if os.environ.get("RESNET_GLUON_AMX") == "0":
        return AmxStatus(False, "turned off by RESNET_GLUON_AMX=0")
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return AmxStatus(False, f"AMX is for x86-64 Linux; this is {sys.platform} "
                                f"{platform.machine()}")
    missing = [f for f in ("amx_tile", "amx_bf16", "amx_int8") if f not in cpu_flags()]
    if missing:
        return AmxStatus(False, f"this CPU has no AMX ({', '.join(missing)} not in "
                                f"/proc/cpuinfo)")
    user = next(((v, os.environ[v]) for v in _ISA_VARS if os.environ.get(v)), None)
    refused = _request_amx_permission()
    if refused:
        return AmxStatus(False, f"Linux refused the AMX tiles ({refused}); oneDNN stays on "
                                f"AVX-512" + (f" (and {user[0]}={user[1]} may fail)" if user
                                              else ""))
    if user:
        return AmxStatus(_AMX_ISA in user[1].upper() or user[1].upper() == "ALL",
                         f"{user[0]}={user[1]} set by the user (AMX tiles granted)")
    os.environ["DNNL_MAX_CPU_ISA"] = _AMX_ISA
    return AmxStatus(True, f"AMX tiles granted; oneDNN may use {_AMX_ISA}")


def settle() -> None:
    """Have oneDNN read its ISA limit now (one tiny convolution), then drop the
    ``DNNL_MAX_CPU_ISA`` that :func:`enable_amx` set: a child process that runs plain MXNet,
    without asking Linux for the tiles, would die of SIGILL under it."""
    if not _status.enabled or "set by the user" in _status.reason:
        return
    import mxnet as mx

    x = mx.nd.ones((1, 1, 1, 1))
    mx.nd.Convolution(x, x, kernel=(1, 1), num_filter=1, no_bias=True).wait_to_read()
    os.environ.pop("DNNL_MAX_CPU_ISA", None)


# A fresh process: resnet_gluon's set-up, then one convolution in fp32 and one in bf16.
_PROBE = """
import warnings
import resnet_gluon
import mxnet as mx
from mxnet.contrib import amp
from mxnet.gluon import nn
warnings.simplefilter("ignore")
net = nn.HybridSequential()
net.add(nn.Conv2D(16, 3, padding=1, in_channels=16))
net.initialize()
net.hybridize()
x = mx.nd.ones((1, 16, 8, 8))
net(x).wait_to_read()
amp.convert_hybrid_block(net, target_dtype="bfloat16", ctx=mx.cpu())(x).wait_to_read()
"""


def kernel_isas(timeout: float = 120.0) -> Dict[str, str]:
    """What oneDNN reports in a fresh process that imports resnet_gluon and runs a tiny fp32
    and bf16 convolution: ``version``, ``isa`` (its ISA limit) and ``conv_float32`` /
    ``conv_bfloat16`` (the kernel that ran).  Empty if the probe failed."""
    env = dict(os.environ, DNNL_VERBOSE="1")
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout, env=env).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_verbose(out.splitlines())


def parse_verbose(lines: List[str]) -> Dict[str, str]:
    """``version``, ``isa`` and ``conv_<dtype>`` from oneDNN's verbose lines."""
    found: Dict[str, str] = {}
    for line in lines:
        parts = line.strip().split(",")
        if len(parts) < 3 or not parts[0].endswith("_verbose"):
            continue
        if parts[1] == "info" and parts[2].startswith("oneDNN"):
            found["version"] = parts[2].split("(")[0].strip()
        elif parts[1:3] == ["info", "cpu"] and len(parts) > 3 and parts[3].startswith("isa:"):
            found["isa"] = parts[3][4:]
        elif parts[1] == "exec" and len(parts) > 6 and parts[3] == "convolution":
            src = next((p for p in parts if p.startswith("src_")), "")
            dtype = src.split(":")[0][4:] if src else "?"
            name = {"f32": "float32", "bf16": "bfloat16", "s8": "int8", "u8": "int8"}.get(
                dtype, dtype)
            found[f"conv_{name}"] = parts[4]  # the last: the probe's, after any set-up
    return found
