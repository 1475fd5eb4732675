"""Checkpoints that survive a kill at any moment: atomic writes, SHA-256 checks, save/load/find.

A checkpoint is a directory ``RUN_DIR/checkpoints/ckpt-EEEE-SSSSSS`` (epoch,
step) holding ``net.params``, ``trainer.states`` and ``state.json``: the
loop's position, its metrics so far, the config, the structural names of the
parameters in the order of the optimizer state (``param_order``) and the
SHA-256 of both binary files.  It is built under a temporary name and renamed into place, so
a reader sees a whole checkpoint or none; :func:`load_checkpoint` checks every
file against its recorded digest before anyone trusts it.
"""
import errno
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import mxnet as mx
from mxnet import gluon

from ._checks import mxnet_reason, sha256

__all__ = ["CHECKPOINT_DIR", "CheckpointError", "atomic_write", "atomic_write_text", "write_error",
           "sha256",
           "save_checkpoint", "load_checkpoint", "find_checkpoints",
           "latest_valid_checkpoint", "remove_unfinished_checkpoints"]

CHECKPOINT_DIR = "checkpoints"
_PREFIX = "ckpt-"
# What fit's resume reads from state.json besides the files' digests.
_STATE_KEYS = ("epoch", "step", "partial", "history", "config")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or from another run."""


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(tmp_path)``, fsync, then rename over ``path``.

    A reader sees either the old file or the whole new one, never a torn one.

    Raises
    ------
    OSError
        The file could not be written (no space, a read-only directory, ...):
        ``filename`` is ``path``, never the temporary, and the old file is intact.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException as err:
        error = write_error(err, path)  # first: the free space, before the clean-up
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        raise error from None


def write_error(err: BaseException, path: str) -> BaseException:
    """``err`` met while writing ``path``, as an ``OSError`` that names ``path``.

    MXNet reports a full disk as "FileStream.Write incomplete", with no path
    and no cause; the free space tells which it was.  Errors that are not
    about writing are returned as they are.
    """
    if isinstance(err, mx.base.MXNetError):
        directory = os.path.dirname(os.path.abspath(path))
        if shutil.disk_usage(directory).free < 64 << 20:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return OSError(errno.EIO, f"MXNet could not write it ({mxnet_reason(err)})", path)
    if isinstance(err, OSError) and err.errno is not None:
        return OSError(err.errno, err.strerror, path)
    return err


def atomic_write_text(path: str, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: str, net: gluon.Block, trainer: Optional[gluon.Trainer],
                    state: Dict[str, Any], keep: int = 2,
                    extra_files: Optional[Dict[str, Callable[[str], None]]] = None) -> str:
    """Write a checkpoint directory atomically and drop all but the newest ``keep``.

    Parameters
    ----------
    run_dir : str
    net : mxnet.gluon.Block
    trainer : mxnet.gluon.Trainer or None
        None over the parameter server, where the servers hold the optimizer state.
    state : dict
        JSON-able; must hold ``epoch`` and ``step`` (they name the checkpoint).
    keep : int, default 2
    extra_files : dict, optional
        ``{file name: write(path)}``: more files of the checkpoint (e.g. the
        weight average), written, checksummed and verified like the others.

    Returns
    -------
    str
        The checkpoint's path.
    """
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    name = f"{_PREFIX}{state['epoch']:04d}-{state['step']:06d}"
    final, tmp = os.path.join(root, name), None
    try:
        os.makedirs(root, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=root)
        os.chmod(tmp, 0o777 & ~_umask())
        net.save_parameters(os.path.join(tmp, "net.params"))
        files = ["net.params"]
        if trainer is not None:
            trainer.save_states(os.path.join(tmp, "trainer.states"))
            files.append("trainer.states")
        for file_name, write in (extra_files or {}).items():
            write(os.path.join(tmp, file_name))
            files.append(file_name)
        state = dict(state, files={f: sha256(os.path.join(tmp, f)) for f in files})
        with open(os.path.join(tmp, "state.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        for f in os.listdir(tmp):
            with open(os.path.join(tmp, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):  # the same position again (a resumed run): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as err:
        error = write_error(err, final)  # first: the free space, before the clean-up
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise error from None
    for old in find_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoints(run_dir: str) -> List[str]:
    """Checkpoint directories of a run, oldest first (unfinished temporaries excluded)."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, n) for n in sorted(os.listdir(root)) if n.startswith(_PREFIX)]


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Read and verify a checkpoint's ``state.json``; check both files' SHA-256.

    Raises
    ------
    CheckpointError
        A file is missing, truncated or altered; the message names it.
    """
    state_file = os.path.join(path, "state.json")
    try:
        with open(state_file, encoding="utf-8") as f:
            state = json.load(f)
        files = state["files"]
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
    except FileNotFoundError:
        raise CheckpointError(f"{state_file} is missing: the checkpoint is incomplete.") from None
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{state_file} is truncated or corrupt ({err}).") from None
    for name, digest in files.items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise CheckpointError(f"{file} is missing: the checkpoint is incomplete.")
        if sha256(file) != digest:
            raise CheckpointError(f"{file} is truncated or corrupt (its SHA-256 differs "
                                  f"from the one recorded when it was written).")
    return state


def latest_valid_checkpoint(run_dir: str, log: Callable[[str], None] = print
                            ) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``(path, state)`` of the newest checkpoint that verifies, or None.

    Each newer one that fails :func:`load_checkpoint` is reported to ``log``
    and passed over.
    """
    for path in reversed(find_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            log(f"warning: skipping checkpoint {path}: {err}")
    return None


def remove_unfinished_checkpoints(run_dir: str) -> None:
    """Drop the temporaries of checkpoints a killed run was writing (never a finished one)."""
    root = os.path.join(run_dir, CHECKPOINT_DIR)
    for name in os.listdir(root) if os.path.isdir(root) else []:
        if name.startswith("." + _PREFIX):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
