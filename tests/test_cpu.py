"""The CPU set-up: AMX for oneDNN where it exists, the fall-backs, and what the kernels ran on."""
import os
import signal

import numpy as np
import pytest

from resnet_gluon import cpu

#: AMX as this process has it: the CPU's flags *and* the kernel's permission, as the library
#: decided at import (a kernel that refuses the tiles is no AMX machine for these tests).
HAS_AMX = cpu.amx_status().enabled
ISA_VARS = ("DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "RESNET_GLUON_AMX")


@pytest.fixture
def clean_env(monkeypatch):
    """No ISA variables, and the process's own AMX status back afterwards."""
    for name in ISA_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cpu, "_status", cpu.amx_status())
    return monkeypatch


def _enable(env, flags=("amx_tile", "amx_bf16", "amx_int8"), refused=None):
    """enable_amx() on a CPU with ``flags`` whose kernel answers ``refused`` (None: granted)."""
    env.setattr(cpu, "cpu_flags", lambda: set(flags))
    env.setattr(cpu, "_request_amx_permission", lambda: refused)
    return cpu.enable_amx()


def test_without_amx_in_the_cpu_flags_onednn_is_left_alone(clean_env):
    status = _enable(clean_env, flags=("avx512f", "avx512_vnni"))
    assert not status.enabled
    assert status.reason == ("this CPU has no AMX (amx_tile, amx_bf16, amx_int8 not in "
                             "/proc/cpuinfo)")
    assert "DNNL_MAX_CPU_ISA" not in os.environ


def test_a_refused_permission_leaves_onednn_alone(clean_env):
    status = _enable(clean_env, refused="Operation not permitted")
    assert not status.enabled
    assert status.reason == ("Linux refused the AMX tiles (Operation not permitted); oneDNN "
                             "stays on AVX-512")
    assert "DNNL_MAX_CPU_ISA" not in os.environ


def test_granted_it_sets_the_isa_limit_and_settle_drops_it(clean_env):
    assert _enable(clean_env).enabled and os.environ["DNNL_MAX_CPU_ISA"] == "AVX512_CORE_AMX"
    cpu.settle()
    assert "DNNL_MAX_CPU_ISA" not in os.environ


def test_the_users_own_isa_limit_wins(clean_env):
    clean_env.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE")
    status = _enable(clean_env)
    assert not status.enabled and status.reason == ("DNNL_MAX_CPU_ISA=AVX512_CORE set by the "
                                                    "user (AMX tiles granted)")
    cpu.settle()
    assert os.environ["DNNL_MAX_CPU_ISA"] == "AVX512_CORE"


def test_turned_off_by_the_variable(clean_env):
    clean_env.setenv("RESNET_GLUON_AMX", "0")
    assert cpu.enable_amx() == cpu.AmxStatus(False, "turned off by RESNET_GLUON_AMX=0")


def test_the_verbose_log_is_read():
    lines = ["dnnl_verbose,info,oneDNN v2.4.4 (commit 5818c40f07bdb6307f9bc64e929836fe036da644)",
             "dnnl_verbose,info,cpu,runtime:OpenMP",
             "dnnl_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support "
             "and Intel AMX with bfloat16 and 8-bit integer support",
             "dnnl_verbose,exec,cpu,convolution,gemm:jit,forward_inference,src_f32::blocked:abcd"
             ":f0 wei_f32::blocked:abcd:f0,,alg:convolution_direct,mb1_ic1oc1,0.01",
             "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core,forward_inference,src_f32::"
             "blocked:acdb:f0 wei_f32::blocked:Acdb16a:f0,,alg:convolution_direct,mb1,0.02",
             "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,forward_inference,"
             "src_bf16::blocked:acdb:f0 wei_bf16::blocked:AcdB16a2b:f0,,alg:x,mb1,0.03",
             "unrelated output"]
    assert cpu.parse_verbose(lines) == {
        "version": "oneDNN v2.4.4",
        "isa": "Intel AVX-512 with Intel DL Boost and bfloat16 support and Intel AMX with "
               "bfloat16 and 8-bit integer support",
        "conv_float32": "brgconv:avx512_core", "conv_bfloat16": "brgconv:avx512_core_amx_bf16"}


@pytest.mark.skipif(not HAS_AMX, reason="this CPU has no AMX (amx_tile, amx_bf16, amx_int8)")
def test_on_an_amx_machine_bf16_convolutions_run_on_amx_and_children_are_safe(cli):
    found = cpu.kernel_isas()
    assert "Intel AMX" in found["isa"] and "amx" in found["conv_bfloat16"], found
    assert "amx" not in found["conv_float32"]
    # Plain MXNet (no resnet_gluon, so no request for the tiles) in a bf16 convolution dies of
    # SIGILL under DNNL_MAX_CPU_ISA=AVX512_CORE_AMX; a child of a process that imported
    # resnet_gluon must not inherit the variable.
    plain = cpu._PROBE.replace("import resnet_gluon\n", "import numpy\nnumpy.bool = bool\n")
    assert cli.python("-c", plain, env={"DNNL_MAX_CPU_ISA": "AVX512_CORE_AMX"}).returncode == \
        -signal.SIGILL
    parent = ("import os, subprocess, sys, resnet_gluon\n"
              "assert 'DNNL_MAX_CPU_ISA' not in os.environ\n"
              f"sys.exit(subprocess.run([sys.executable, '-c', {plain!r}]).returncode)")
    result = cli.python("-c", parent)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_info_says_what_runs_where(cli):
    result = cli("info")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"resnet_gluon 0.1.0, mxnet 1.9.1 (oneDNN v2.4.4), numpy "
                               f"{np.__version__}, Python ")
    assert lines[1].startswith("cpu: ") and lines[2].startswith("isa flags: ")
    status = "on" if HAS_AMX else "off"
    assert lines[3].startswith(f"amx: {status} (")
    assert lines[4] == "threads: OMP_NUM_THREADS=2"
    # which bf16 case this CPU is: AMX, AVX512-BF16 (AMD Zen 4), emulated, no AVX-512 at all
    if HAS_AMX:
        assert lines[5] == "bfloat16: native, on the AMX tiles"
    elif "avx512_bf16" in cpu.cpu_flags():
        assert lines[5].startswith("bfloat16: native, on AVX512-BF16 (no AMX for this process")
    elif "avx512bw" in cpu.cpu_flags():
        assert lines[5].startswith("bfloat16: emulated: this CPU has neither AMX nor")
    else:  # an AVX2 EPYC (Zen 3): oneDNN has no bf16 convolution, so the probe's fails
        assert lines[5].startswith("bfloat16: unsupported: this CPU has no AVX-512 (no ")
        assert lines[8] == "convolution bfloat16: did not run"
    assert lines[7].startswith("convolution float32: ")
    assert lines[8].startswith("convolution bfloat16: ")
    assert ("amx" in lines[8]) == HAS_AMX
    if "avx512_bf16" in cpu.cpu_flags():  # native bf16 kernels, AMX or AVX512-BF16 ones
        assert "bf16" in lines[8], lines[8]
    assert "warning" not in result.stderr.lower() or "emulated" in lines[5]


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2,1", ""])
def test_a_thread_count_mxnet_cannot_take_is_named_before_mxnet_starts(cli, value):
    # Before: "abc" and "2,1" ended the process in C++ (SIGABRT, rc 134), "0" was shown
    # as a setting while OpenMP ignored it.
    assert cpu.thread_count_problem({"OMP_NUM_THREADS": value}).startswith(
        f"OMP_NUM_THREADS={value!r} is not a positive whole number of threads")
    result = cli("info", env={"OMP_NUM_THREADS": value})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"resnet-gluon: error: OMP_NUM_THREADS={value!r} is not a positive "
                             f"whole number of threads (MXNet would abort on it or ignore it). "
                             f"Set it to the number of physical cores, e.g. OMP_NUM_THREADS=2, "
                             f"or unset it.\n")
    result = cli.python("-c", "import resnet_gluon", env={"OMP_NUM_THREADS": value})
    assert result.returncode == 1 and "ValueError: OMP_NUM_THREADS=" in result.stderr


def test_a_usable_thread_count_passes():
    assert cpu.thread_count_problem({}) is None
    assert cpu.thread_count_problem({"OMP_NUM_THREADS": "2"}) is None
