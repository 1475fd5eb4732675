"""Issue 27: break the code on purpose once per row, run that row's test, restore; report.

Not a test (pytest does not collect it): a check of the tests. Run it alone, on a clean tree:
    python tests/break_checks.py [ROW WORDS ...]
Each row's test must fail while its break is in place; the file is restored after each.
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = "tests/"
BREAKS = [
    ("native bf16 kernels (row 1, AVX512-BF16 case)", "training ignores --dtype bfloat16",
     "resnet_gluon/train.py", "runner = mixed_precision(net, dtype)", "runner = net",
     T + "test_precision.py::test_bf16_training_runs_its_convolutions_on_this_cpus_native_kernels"),
    # (row, what is broken, file, old, new, test id)
    ("test_hosts dead server", "a worker's parameter-server watchdog never fires",
     "resnet_gluon/_watchdog.py", "if not self.armed.is_set() or idle < self.timeout:",
     "if True:", T + "test_hosts.py::test_a_dead_server_and_a_cut_link_end_every_process_with_a_reason"),
    ("test_launch dead worker", "the launcher does not stop the others when a worker dies",
     "resnet_gluon/launch.py", "failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]",
     "failed = []", T + "test_launch.py::test_a_dead_worker_stops_the_others"),
    ("test_predict bomb", "the image is padded to a square before it is shrunk (the old bug)",
     "resnet_gluon/predict.py", "    side = max(h, w)\n",
     "    side = max(h, w)\n    img = np.pad(img, ((0, side - h), (0, side - w)), constant_values=border)\n    h = w = side\n",
     T + "test_predict.py::test_a_decompression_bomb_is_shrunk_before_padding_and_the_good_image_labelled"),
    ("test_checkpoint mid-epoch kill", "--checkpoint-every is ignored (epoch-end checkpoints only)",
     "resnet_gluon/train.py", "if config.checkpoint_every and done % config.checkpoint_every == 0",
     "if False and done % config.checkpoint_every == 0",
     T + "test_checkpoint.py::test_resume_after_sigkill_is_bit_identical"),
    ("shipped INT8 agreement", "INT8 calibrated on images at half their brightness",
     "resnet_gluon/sources.py",
     '        return info.prepare(_pick(images, num, seed, "the Fashion-MNIST training set"))',
     '        return info.prepare(_pick(images, num, seed, "the Fashion-MNIST training set")) / 2',
     T + "test_inference.py::test_on_the_test_set_bf16_agrees_with_float32_and_int8_as_before"),
    ("ONNX check failing branch", "the check passes whatever the difference",
     "resnet_gluon/cli.py", "    ok = diff <= limit", "    ok = True",
     T + "test_export.py::test_an_onnx_file_that_disagrees_with_mxnet_fails_the_check"),
    ("parameter counts from summary()", "ResNet-34's third stage has 5 blocks instead of 6",
     "resnet_gluon/model.py", '34: ("basic", (3, 4, 6, 3)),', '34: ("basic", (3, 4, 5, 3)),',
     T + "test_model.py::test_family_counts_are_mxnets_own"),
    ("test_shapes on cpu(1)", "the random batch is drawn on the default context",
     "resnet_gluon/shapes.py", "return nd.random.uniform(shape=shape, ctx=ctx) if ctx is not None",
     "return nd.random.uniform(shape=shape) if ctx is not None",
     T + "test_shapes.py::test_runs_on_the_nets_context"),
    ("README's predict line", "predict prints probabilities to 2 decimals",
     "resnet_gluon/cli.py", 'print(f"{p.file}: " + ", ".join(f"{c} {v:.3f}" for c, v in p.top))',
     'print(f"{p.file}: " + ", ".join(f"{c} {v:.2f}" for c, v in p.top))',
     T + "test_pretrained.py::test_predict_and_evaluate_use_the_shipped_weights_with_no_options"),
    ("two contexts to 1e-9", "BatchNorm statistics averaged over devices 1e-7 off",
     "resnet_gluon/distributed.py", "mean = nd.add_n(*copies) / len(copies)",
     "mean = nd.add_n(*copies) / (len(copies) + 1e-7)",
     T + "test_train.py::test_two_contexts_match_one_context"),
    ("one run per directory", "the run directory's lock never holds",
     "resnet_gluon/run.py", "fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
     T + "test_run.py::test_two_runs_started_together_leave_exactly_one_run"),
]

only = sys.argv[1:]
for row, what, path, old, new, test in BREAKS:
    if only and not any(o in row for o in only):
        continue
    full = f"{ROOT}/{path}"
    original = open(full, encoding="utf-8").read()
    assert original.count(old) == 1, (row, old)
    try:
        open(full, "w", encoding="utf-8").write(original.replace(old, new))
        tic = time.time()
        result = subprocess.run([f"{sys.executable}", "-m", "pytest", "-q", "-x",
                                 "-p", "no:cacheprovider", test], cwd=ROOT, capture_output=True,
                                text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    finally:
        open(full, "w", encoding="utf-8").write(original)
    summary = [l for l in result.stdout.splitlines() if " passed" in l or " failed" in l][-1:]
    error = [l for l in result.stdout.splitlines() if l.startswith("E ")][:1]
    print(f"{row} | broken: {what} | {test.split('::')[-1]} | rc {result.returncode} | "
          f"{summary} | {error} | {time.time() - tic:.0f} s", flush=True)
