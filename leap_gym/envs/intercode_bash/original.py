"""The original InterCode Bash tasks: the 200 NL2Bash tasks (``files``) and the toy set of
``intercode-bench``.

Their file systems come from running the original setup scripts inside a sandbox whose upper layer lies on
disk, then ``git init/add/commit`` as the Dockerfile does, so every quirk of the scripts (failed ``touch -t``,
a stray ``.placeholder``, tarballs with build-time headers) is reproduced. The result is cached as a layer
keyed by the base root and the script, and every episode mounts it read-only below a fresh tmpfs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from leap_gym.envs.intercode_bash.generated import Task
from leap_gym.envs.intercode_bash.rootfs import HOSTNAME, RootFS, cache_dir, chown_tree, sandbox_uid
from leap_gym.envs.intercode_bash.sandbox import IGNORED_NAMES, PATH_ENV, Limits, Sandbox, SandboxConfig

FS_NUMBERS = (1, 2, 3, 4)
# split -> file systems; the LEAP paper trains on file systems 1-2 and tests on 3-4
FILE_SPLITS: dict[str, tuple[int, ...]] = {"train": (1, 2), "test": (3, 4), "all": FS_NUMBERS,
                                           **{f"fs{n}": (n,) for n in FS_NUMBERS}}
GIT_DATE = "2023-06-01T00:00:00+00:00"
LAYER_VERSION = "1"
_GITIGNORE = ("# Folders\n" + "\n".join(n for n in IGNORED_NAMES if not n.startswith("."))
              + "\n\n# Files\n.dockerenv")


def _find(data_dir: Path, name: str, subdirs: tuple[str, ...]) -> Path:
    for sub in ("",) + subdirs:
        p = data_dir / sub / name
        if p.is_file():
            return p
    raise FileNotFoundError(f"{name} not found in {data_dir} (looked in {', '.join(['.', *subdirs])}); pass "
                            "data_dir= an InterCode checkout or a folder holding the nl2bash json files and "
                            "the setup_nl2b_fs_*.sh scripts")


def _load_queries(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the task file: {e}") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and isinstance(d.get("query"), str)
                                             and isinstance(d.get("gold"), str) for d in data):
        raise ValueError(f"{path}: expected a JSON list of {{'query': str, 'gold': str}} objects")
    return data


def _package_assets() -> Path:
    spec = importlib.util.find_spec("intercode")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("tasks='package' needs the intercode-bench package: "
                                "pip install --no-deps intercode-bench (only its data files are read)")
    assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
    if not (assets / "datasets" / "bash_queries.json").is_file():
        raise FileNotFoundError(f"{assets}: intercode-bench is installed but has no bash_queries.json")
    return assets


def _first_command(gold: str) -> str:
    word = gold.strip().split()[0] if gold.strip() else "empty"
    return os.path.basename(word.strip("`$("))


class OriginalTasks:
    """Tasks, setup scripts and the cached layers of the original InterCode Bash data."""

    def __init__(self, source: str, data_dir: str | os.PathLike | None, rootfs: RootFS, split: str = "all"):
        self.tasks: list[Task] = []
        self.scripts: dict[int, tuple[str, bytes]] = {}  # fs number -> (script name, bytes)
        self.gitignore = _GITIGNORE.encode()
        if source == "files":
            if split not in FILE_SPLITS:
                raise ValueError("tasks='files' splits by file system: split must be one of "
                                 f"{list(FILE_SPLITS)}, got {split!r}")
            if data_dir is None:
                raise ValueError("tasks='files' needs data_dir= (an InterCode checkout or a folder with "
                                 "nl2bash_fs_{1..4}.json and setup_nl2b_fs_{1..4}.sh); the library does not "
                                 "ship them")
            root = Path(data_dir)
            if not root.is_dir():
                raise FileNotFoundError(f"data_dir {root} is not a directory")
            for n in FILE_SPLITS[split]:
                qpath = _find(root, f"nl2bash_fs_{n}.json", ("data/nl2bash",))
                script = _find(root, f"setup_nl2b_fs_{n}.sh", ("docker/bash_scripts",))
                self.scripts[n] = (script.name, script.read_bytes())
                for i, item in enumerate(_load_queries(qpath)):
                    self.tasks.append(Task(
                        task_id=f"nl2bash_fs_{n}.json:{i}", query=item["query"], gold=item["gold"],
                        task_type=_first_command(item["gold"]), fs=n,
                        env={"file_system_version": str(n), "script": script.name}))
            ignore = [p for p in (root / "docker.gitignore", root / "docker" / "docker.gitignore")
                      if p.is_file()]
            if ignore:
                self.gitignore = ignore[0].read_bytes()
        else:
            if split != "all":
                raise ValueError(f"tasks='package' (the toy set) has no splits: leave split unset or 'all', "
                                 f"got {split!r}")
            assets = _package_assets()
            self.scripts[0] = ("setup_fs.sh", (assets / "docker" / "setup_fs.sh").read_bytes())
            for i, item in enumerate(_load_queries(assets / "datasets" / "bash_queries.json")):
                self.tasks.append(Task(task_id=f"bash_queries.json:{i}", query=item["query"],
                                       gold=item["gold"], task_type=_first_command(item["gold"]), fs=0,
                                       shell="/bin/sh"))
        self.rootfs = rootfs
        self._layers: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.tasks)

    def task(self, index: int) -> Task:
        return self.tasks[index]

    def layer(self, task: Task, rootfs: RootFS) -> str:
        if task.fs not in self._layers:
            self._layers[task.fs] = build_layer(rootfs, *self.scripts[task.fs], self.gitignore)
        return self._layers[task.fs]


def build_layer(rootfs: RootFS, script_name: str, script: bytes, gitignore: bytes) -> str:
    """Run the setup script and the Dockerfile's git commit in a sandbox; cache the upper dir as a layer."""
    key = hashlib.sha256(b"\0".join([rootfs.digest.encode(), script_name.encode(), script, gitignore,
                                     LAYER_VERSION.encode()])).hexdigest()[:20]
    target = cache_dir() / "layers" / f"{script_name.rsplit('.', 1)[0]}-{key}"
    if target.is_dir():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        (work / "upper").mkdir()
        (work / "work").mkdir()
        (work / "upper" / script_name).write_bytes(script)
        os.chmod(work / "upper" / script_name, 0o755)
        (work / "upper" / ".gitignore").write_bytes(gitignore)
        os.chmod(work, 0o755)
        chown_tree(work, sandbox_uid())
        config = SandboxConfig(layers=(rootfs.base,), binds=rootfs.binds, hostname=HOSTNAME,
                               upper_dir=str(work))
        env = {"PATH": PATH_ENV, "HOME": "/root", "HOSTNAME": HOSTNAME}
        git_env = dict(env, GIT_AUTHOR_DATE=GIT_DATE, GIT_COMMITTER_DATE=GIT_DATE)
        limits = Limits(timeout=300.0)
        with Sandbox(config) as box:
            run = box.exec(["/" + script_name], "/", env, limits)
            if run.timed_out:
                raise RuntimeError(f"{script_name} timed out while building its layer")
            steps = [["git", "config", "--global", "user.email", "intercode@pnlp.org"],
                     ["git", "config", "--global", "user.name", "intercode"], ["git", "init", "-q"],
                     ["git", "add", "-A"], ["git", "commit", "-q", "-m", "initial commit"]]
            for argv in steps:
                res = box.exec(argv, "/", git_env, limits)
                if res.rc != 0:
                    raise RuntimeError(f"building the layer for {script_name}: {' '.join(argv)} failed: "
                                       f"{res.output.decode('utf-8', 'replace')[-500:]}")
        shutil.rmtree(work / "work", ignore_errors=True)
        try:
            os.rename(work / "upper", target)
        except OSError:  # built concurrently by another process
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(target)
