"""benchmarks/throughput.py runs as a new user runs it, and its sums are right."""
import json
import os

import pytest

import throughput  # benchmarks/, on the path through conftest.py
from common import needs_bfloat16

BENCHMARKS = os.path.dirname(os.path.abspath(throughput.__file__))


def test_forward_cost_is_the_issues_figure():
    # 0.637 GFLOP at 96x96; 1.73 GMAC (3.47 GFLOP) at 224x224.
    assert round(throughput.forward_gflop(96), 3) == 0.637
    assert round(throughput.forward_gflop(224), 2) == 3.47


def test_table_gives_ratios_to_torch_and_shares_of_the_peak():
    rows = [{"implementation": "torchvision fp32 eager", "batch": 32, "size": 96,
             "infer_img_s": 400.0, "train_img_s": 100.0},
            {"implementation": "resnet_gluon hybridized", "batch": 32, "size": 96,
             "infer_img_s": 520.0, "train_img_s": 150.0},
            {"implementation": "resnet_gluon int8", "batch": 32, "size": 96,
             "infer_img_s": 2000.0, "train_img_s": None}]
    lines = throughput.table(rows, {96: 0.5}, peak=400.0).splitlines()
    # 520 img/s x 0.5 GFLOP = 260 GFLOP/s = 65% of 400; training counts 3 forwards.
    assert lines[3] == "| resnet_gluon hybridized | 32 | 96 | 520.0 | 1.30 | 65% | 150.0 | 1.50 | 56% |"
    assert lines[4] == "| resnet_gluon int8 | 32 | 96 | 2000.0 | 5.00 | 250% | - | - | - |"
    targets = throughput._targets(rows, [{"size": 96, "batch": 128, "epoch_vs_step": 0.95}])
    assert targets == ["batch 32, 96x96: train 1.50x (>= 1.4), inference 1.30x (>= 1.3)",
                       "real epoch at 96x96, batch 128: 95.0% of the pure step (>= 90%)"]


@pytest.mark.slow
def test_quick_run_prints_the_table_and_writes_json(cli, tmp_path):
    result = cli.python(os.path.join(BENCHMARKS, "throughput.py"), "--quick", "--only",
                        "resnet_gluon hybridized,resnet_gluon int8", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "| resnet_gluon hybridized | 32 | 96 |" in result.stdout
    assert "| resnet_gluon int8 | 32 | 96 |" in result.stdout
    with open(tmp_path / "throughput.json", encoding="utf-8") as f:
        data = json.load(f)
    assert data["omp_num_threads"] == "2"
    assert max(data["matmul_peak_gflops"].values()) > 1
    rows = {r["implementation"]: r for r in data["rows"]}
    assert rows["resnet_gluon hybridized"]["infer_img_s"] > 0
    assert rows["resnet_gluon hybridized"]["train_img_s"] > 0
    assert rows["resnet_gluon int8"]["train_img_s"] is None
    assert (tmp_path / "throughput.md").read_text().startswith("# Throughput")


@pytest.mark.slow
def test_unknown_implementation_is_named(cli):
    result = cli.python(os.path.join(BENCHMARKS, "throughput.py"), "--only",
                        "resnet_gluon turbo", timeout=300)
    assert result.returncode == 2
    assert "unknown implementations ['resnet_gluon turbo']" in result.stderr


def test_the_isa_of_each_row_is_read_from_either_onednns_verbose_log():
    mxnet_log = "\n".join([
        "dnnl_verbose,info,oneDNN v2.4.4 (commit abc)",
        "dnnl_verbose,exec,cpu,reorder,jit:uni,undef,src_f32::blocked:abcd:f0,,,64,0.01",
        "dnnl_verbose,exec,cpu,convolution,jit:avx512_core_amx_bf16,forward_training,src_bf16",
        "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,backward_data,src_bf16",
        "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core_amx_bf16,forward_training,x",
        "dnnl_verbose,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,x"])
    assert throughput.convolution_isa(mxnet_log) == "avx512_core_amx_bf16 (75%)"
    torch_log = ("onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_amx,"
                 "forward_training,src:bf16::blocked:acdb::f0,,,mb32_ic64oc64,0.2\n"
                 "onednn_verbose,v1,primitive,exec,cpu,eltwise,jit:avx512_core,forward,x")
    assert throughput.convolution_isa(torch_log) == "avx512_core_amx"
    assert throughput.convolution_isa("no oneDNN here") == "-"


def test_the_amx_targets_are_the_issues_ratios():
    row = lambda name, infer, train: {"implementation": name, "batch": 32, "size": 96,
                                      "infer_img_s": infer, "train_img_s": train,
                                      "isa": "avx512_core_amx_bf16"}
    rows = [row("torchvision fp32 eager", 400.0, 100.0),
            row("torchvision bf16 channels_last", 800.0, 200.0),
            row("resnet_gluon hybridized", 500.0, 150.0),
            row("resnet_gluon hybridized (AMX off)", 520.0, 140.0),
            row("resnet_gluon bf16", 1000.0, 250.0),
            row("resnet_gluon int8", 2400.0, None)]
    targets = throughput._targets(rows, [])
    assert targets[1] == ("batch 32, 96x96: bf16 train step 1.25x torch bf16 (>= 1.2), INT8 "
                          "inference 3.00x torch bf16 (>= 2.5), bf16 inference 1.25x torch bf16 "
                          "(>= 1), fp32 inference with AMX on / off 0.96x (>= 1), fp32 train "
                          "step with AMX on / off 1.07x (>= 1)")
    lines = throughput.table(rows, {96: 0.5}, peak=400.0).splitlines()
    assert lines[0].endswith("| convolutions ran on |")
    assert lines[6].startswith("| resnet_gluon bf16 | 32 | 96 | 1000.0 | 2.50 |")
    assert lines[6].endswith("| avx512_core_amx_bf16 |")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", pytest.param("bfloat16", marks=needs_bfloat16),
                                       "int8"])
def test_the_openvino_comparison_times_our_side_as_the_commands_prepare_it(cli, precision):
    # OpenVINO's side needs its own venv (never ours); our side runs anywhere
    result = cli.python(os.path.join(BENCHMARKS, "vs_openvino.py"), "--child", "ours",
                        precision, "4", "--iters", "2")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) > 0


@pytest.mark.slow
@needs_bfloat16
def test_the_dnnl_breakdown_sums_the_inference_graphs_primitives(cli):
    import dnnl_breakdown

    kinds, kernels, counts = dnnl_breakdown.breakdown("fast16", 4)
    # the bf16 inference graph: 20 fused convolutions, no BatchNorm, no eltwise, no sum
    assert counts["convolution"] == 20 and "batch_normalization" not in counts
    assert "eltwise" not in counts and "sum" not in counts
    assert sum(kinds.values()) > 0


@pytest.mark.slow
def test_the_comparisons_onnxruntime_side_runs_our_onnx_file(cli, tmp_path):
    result = cli("export", "--format", "onnx", "--check-images", "0", "--out",
                 str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    result = cli.python(os.path.join(BENCHMARKS, "vs_openvino.py"), "--child", "onnxruntime",
                        "float32", "4", "--iters", "2", "--model", str(tmp_path / "m.onnx"))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) > 0
