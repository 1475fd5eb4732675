"""setup.py's requirements: the numpy pin, and the route for CUDA builds of MXNet."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _requires(cli, tmp_path, **env):
    result = cli.python("setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), cwd=ROOT,
                        timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "resnet_gluon.egg-info" / "requires.txt", encoding="utf-8") as f:
        return f.read().split("\n\n")[0].split()


def test_numpy_below_2_and_mxnet_1_x_on_python_3_8_to_3_12(cli, tmp_path):
    assert sorted(_requires(cli, tmp_path)) == ["matplotlib>=3.3", "mxnet<2,>=1.9",
                                           "numpy<2,>=1.17", "tqdm>=4.40"]
    info = (tmp_path / "resnet_gluon.egg-info" / "PKG-INFO").read_text()
    assert "\nRequires-Python: >=3.8,<3.13\n" in info


def test_cuda_users_can_leave_the_cpu_wheel_out(cli, tmp_path):
    assert sorted(_requires(cli, tmp_path, RESNET_GLUON_NO_MXNET="1")) == [
        "matplotlib>=3.3", "numpy<2,>=1.17", "tqdm>=4.40"]


def test_mxnet_imports_with_the_installed_numpy_after_resnet_gluon(cli):
    import mxnet
    import numpy

    assert tuple(int(v) for v in numpy.__version__.split(".")[:2]) < (2, 0)
    assert mxnet.__version__.startswith("1.9")
    # the alias is restored only where numpy lacks it (numpy 1.24 to 1.26), to the builtin
    probe = ("import warnings; warnings.simplefilter('ignore'); import numpy; "
             "had = hasattr(numpy, 'bool'); import resnet_gluon, mxnet; "
             "print(had, numpy.bool is bool)")
    result = cli.python("-c", probe)
    assert result.returncode == 0, result.stderr
    had = tuple(int(v) for v in numpy.__version__.split(".")[:2]) < (1, 24)
    assert result.stdout.split() == [str(had), "True"]
