"""setup.py's requirements: the numpy pin, Python 3.12's wheels, the route for CUDA builds."""
import os
import re

import pytest
from packaging.markers import Marker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sections(cli, tmp_path, **env):
    """requires.txt as ``{section: [requirement, ...]}``; "" is what every install gets."""
    result = cli.python("setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), cwd=ROOT,
                        timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "resnet_gluon.egg-info" / "requires.txt", encoding="utf-8") as f:
        text = f.read()
    sections = {"": text.split("\n\n")[0].split()}
    for name, body in re.findall(r"^\[([^\]]*)\]\n((?:.+\n?)+)", text, re.M):
        sections[name] = body.split()
    return sections


def _requires(cli, tmp_path, **env):
    return _sections(cli, tmp_path, **env)[""]


def _install_requires_on(python_version, sections):
    """What ``pip install resnet_gluon`` asks for on that Python (no extras)."""
    wanted = list(sections[""])
    for name, requirements in sections.items():
        if name.startswith(":") and Marker(name[1:]).evaluate({"python_version": python_version}):
            wanted += requirements
    return wanted


def test_numpy_below_2_and_mxnet_1_x_on_python_3_9_to_3_12(cli, tmp_path):
    assert sorted(_requires(cli, tmp_path)) == ["matplotlib>=3.3", "mxnet<2,>=1.9",
                                           "numpy<2,>=1.17", "tqdm>=4.40"]
    info = (tmp_path / "resnet_gluon.egg-info" / "PKG-INFO").read_text()
    assert "\nRequires-Python: >=3.9,<3.13\n" in info


def test_on_python_3_12_setuptools_comes_along_for_the_distutils_mxnet_imports(cli, tmp_path):
    sections = _sections(cli, tmp_path)
    assert "setuptools>=60" in _install_requires_on("3.12", sections)
    assert "setuptools>=60" not in _install_requires_on("3.11", sections)


@pytest.mark.slow
def test_the_requirements_resolve_to_wheels_on_python_3_12_and_numpy_stops_3_13(cli, tmp_path):
    """Needs the package index pip is configured with (it downloads about 90 MB)."""
    (tmp_path / "info").mkdir()
    sections = _sections(cli, tmp_path / "info")

    def download(python_version, into):
        return cli.python("-m", "pip", "download", "--only-binary=:all:", "--python-version",
                          python_version, "--platform", "manylinux2014_x86_64", "-d", str(into),
                          *_install_requires_on(python_version, sections), timeout=600)

    result = download("3.12", tmp_path / "312")
    assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(os.listdir(tmp_path / "312"))
    assert all(n.endswith(".whl") for n in names), names
    numpy_wheel = [n for n in names if n.startswith("numpy-")]
    assert len(numpy_wheel) == 1 and "-cp312-" in numpy_wheel[0], names
    assert any(n.startswith("mxnet-1.9") for n in names), names
    assert any(n.startswith("setuptools-") for n in names), names
    # 3.13: numpy < 2 has no wheels for it, which is why python_requires stops at 3.12
    result = download("3.13", tmp_path / "313")
    assert result.returncode != 0
    assert "No matching distribution found for numpy<2,>=1.17" in result.stderr, result.stderr


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
