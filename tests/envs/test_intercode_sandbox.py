"""The InterCode Bash sandbox holds: attacks stay inside, and the host is intact afterwards.

Every destructive command runs only after ``probe`` showed that the sandbox is isolated (a file written at
``/`` inside does not appear on the host, and the shell is a low PID of its own namespace).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from leap_gym.envs.intercode_bash.rootfs import host_rootfs
from leap_gym.envs.intercode_bash.sandbox import Limits, Sandbox, SandboxConfig

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux namespaces")
REPO = Path(__file__).resolve().parents[2]


def bash(box: Sandbox, script: str, timeout: float = 10.0) -> tuple[int, str]:
    res = box.exec(["/bin/bash", "-c", script], "/", limits=Limits(timeout=timeout))
    return res.rc, res.output.decode("utf-8", "replace")


def probe(box: Sandbox) -> None:
    """Refuse to go on unless commands demonstrably run in the sandbox, not on the host."""
    name = f"SEC_PROBE_{uuid.uuid4().hex}"
    rc, out = bash(box, f"touch /{name} && echo $$ && ls /{name}")
    assert rc == 0, out
    assert not os.path.exists("/" + name), "sandbox writes reached the host: refusing destructive tests"
    assert int(out.split()[0]) < 50, f"shell pid {out.split()[0]} is not in a fresh PID namespace"


def tree_signature(path: str) -> str:
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            st = os.lstat(p)
            h.update(f"{p}:{st.st_mode}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def rootfs():
    return host_rootfs()


@pytest.fixture
def box(rootfs):
    with Sandbox(SandboxConfig(layers=(rootfs.base,), binds=rootfs.binds, tmpfs_size="64m")) as b:
        probe(b)
        yield b


def test_isolation_basics(box):
    rc, out = bash(box,
                   "id -u; hostname; ip -o link 2>/dev/null | wc -l; ls /sys | wc -l; cat /proc/1/cmdline | "
                   "tr '\\0' ' '")
    lines = out.split("\n")
    assert lines[0] == "0" and lines[1] == "3b8f4c2e9d1a"
    assert lines[4].strip() == "bash -S", "PID 1 must not reveal host paths"


def test_rm_rf_root_leaves_host_and_layers_intact(box, rootfs, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("alive")
    before = tree_signature(rootfs.base)
    bash(box, "rm -rf --no-preserve-root / 2>/dev/null; true", timeout=30)
    assert canary.read_text() == "alive"
    assert Path("/usr/bin/bash").exists() and Path("/etc/passwd").exists()
    assert tree_signature(rootfs.base) == before
    res = box.exec(["/bin/bash", "-c", "true"], "/")  # the sandbox still answers: /bin (a symlink) is gone
    assert res.rc == 126 and b"executable file not found" in res.output


def test_fork_bomb_is_contained_and_killed(box):
    start = time.monotonic()
    res = box.exec(["/bin/bash", "-c", ":(){ :|:& };:"], "/", limits=Limits(timeout=3.0))
    assert res.timed_out and res.rc == -9
    assert time.monotonic() - start < 30
    rc, out = bash(box, "echo /proc/[0-9]*; echo $$")
    pids, me = out.split("\n")[0].split(), out.split("\n")[1]
    assert sorted(pids) == sorted(["/proc/1", f"/proc/{me}"]), f"processes survived the kill: {out}"


def test_endless_loop_times_out(box):
    start = time.monotonic()
    res = box.exec(["/bin/bash", "-c", "while :; do :; done"], "/", limits=Limits(timeout=1.0))
    assert res.timed_out and res.rc == -9
    assert time.monotonic() - start < 10


def test_background_job_holding_output_is_killed_at_timeout(box):
    res = box.exec(["/bin/bash", "-c", "sleep 1000 & echo started"], "/", limits=Limits(timeout=1.0))
    assert res.timed_out and res.output == b"started\n"
    rc, out = bash(box, "ps -e -o comm= | grep -c sleep")
    assert out.strip() == "0"


def test_huge_output_is_capped_and_killed(box):
    limits = Limits(timeout=20.0, output_cap=1 << 20, kill_output=16 << 20)
    res = box.exec(["/bin/bash", "-c", "yes"], "/", limits=limits)
    assert res.flooded and not res.timed_out
    assert len(res.output) == 1 << 20 and res.output.startswith(b"y\ny\n")


def test_filling_the_disk_stops_at_the_tmpfs_cap(box):
    # what the sandbox wrote is measured inside it (the box's tmpfs is 64m, its /dev/shm 16m), and the host
    # has no file of that name: the host's own free space moves with whatever else runs on it
    rc, out = bash(box, "dd if=/dev/zero of=/big bs=1M count=200 2>&1; dd if=/dev/zero of=/dev/shm/big bs=1M "
                        "count=100 2>&1; du -sm /big /dev/shm/big", timeout=30)
    assert out.count("No space left on device") == 2
    written = {path: int(mib) for mib, path in (line.split("\t") for line in out.splitlines()[-2:])}
    assert 0 < written["/big"] <= 64 and 0 < written["/dev/shm/big"] <= 16, out
    assert not Path("/big").exists()
    rc, out = bash(box, "rm -f /big /dev/shm/big; echo ok > /small && cat /small")
    assert out == "ok\n"


def test_host_files_are_not_readable(box):
    secret = f"/root/leap_gym_secret_{uuid.uuid4().hex}"
    Path(secret).write_text("top secret")
    try:
        rc, out = bash(box,
                       f"cat {secret} /etc/shadow {REPO}/setup.cfg /proc/1/root{secret} 2>&1; ls -A /root")
        assert "top secret" not in out and "[metadata]" not in out
        assert out.count("No such file or directory") + out.count("Permission denied") == 4
    finally:
        os.unlink(secret)


def test_host_tcp_listener_is_unreachable(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    rc, out = bash(box, f"echo hi > /dev/tcp/127.0.0.1/{port} 2>&1; echo hi > /dev/tcp/1.1.1.1/80 2>&1; "
                        "ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
                   timeout=5)
    t.join()
    server.close()
    assert not accepted
    assert "Connection refused" in out and "Network is unreachable" in out
    assert out.split()[-1] == "lo"


def test_memory_is_capped_for_the_whole_sandbox(rootfs):
    config = SandboxConfig(layers=(rootfs.base,), binds=rootfs.binds, memory_limit=128 << 20)
    with Sandbox(config) as b:
        probe(b)
        if not b._helper.cgroups:
            pytest.skip("no writable cgroup here (needs root or a delegated cgroup)")
        rc, out = bash(b, "python3 -c 'b = bytearray(400 << 20); print(len(b))'", timeout=30)
        assert rc != 0 and "419430400" not in out
        assert bash(b, "echo alive")[1] == "alive\n"


def test_commands_cannot_reach_pid_1s_channel_or_memory(box):
    """Forging a reply on PID 1's pipe to the host would be a reward hack: /proc/1 must be closed to
    commands."""
    rc, out = bash(box, "ls /proc/1/fd 2>&1; cat /proc/1/environ 2>&1; echo x > /proc/1/fd/1 2>&1; "
                        "head -c1 /proc/1/mem 2>&1; echo end")
    assert out.count("Permission denied") >= 3 and "PYTHONHOME" not in out, out
    assert bash(box, "echo alive")[1] == "alive\n"


def test_signals_to_pid_1_do_not_stop_the_sandbox(box):
    rc, out = bash(box, "kill -INT 1; kill -TERM 1; kill -9 1; kill -HUP 1; echo sent")
    assert out.endswith("sent\n")
    assert bash(box, "echo alive")[1] == "alive\n"


def test_host_processes_cannot_be_killed(box):
    victim = subprocess.Popen(["sleep", "60"])
    try:
        rc, out = bash(box, f"kill -9 {victim.pid} 2>&1; kill -9 -1 2>&1; echo done")
        assert "No such process" in out
        time.sleep(0.2)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_kernel_knobs_and_hostname_stay_local(box):
    host_name = socket.gethostname()
    rc, out = bash(box, "echo 3 > /proc/sys/vm/drop_caches 2>&1; echo 1 > /proc/sysrq-trigger 2>&1; "
                        "hostname evil; hostname")
    assert "/proc/sys/vm/drop_caches: Read-only file system" in out
    assert out.strip().endswith("3b8f4c2e9d1a") and socket.gethostname() == host_name  # no CAP_SYS_ADMIN


def test_planted_symlinks_resolve_inside_the_sandbox(box):
    rc, _ = bash(box, "mkdir /testbed && echo data > /testbed/a.txt")
    box.snapshot()
    rc, out = bash(box,
                   "ln -s /etc/hostname /testbed/leak.txt; rm /testbed/a.txt; ln -s /dev/zero "
                   "/testbed/a.txt; mkfifo /testbed/pipe.txt")
    status = box.status()  # must not hang on /dev/zero or the FIFO, nor read host files
    assert status.splitlines() == [" T testbed/a.txt", "?? testbed/leak.txt"]
    res = box.exec(["md5sum", "testbed/leak.txt"], "/")
    inside = hashlib.md5(b"3b8f4c2e9d1a\n").hexdigest()
    assert res.output.decode().split()[0] == inside


def test_git_status_emulation(box):
    bash(box, "mkdir -p /w/d/e /w/keep && echo 1 > /w/a.txt && echo 2 > /w/d/b.txt && echo x > /w/keep/k && "
              "chmod 644 /w/a.txt")
    box.snapshot()
    bash(box, "echo 3 >> /w/a.txt; rm /w/d/b.txt; chmod +x /w/keep/k; mkdir -p /w/new/x /w/empty /w/etc; "
              "touch /w/new/x/f /w/etc/ignored '/w/sp ace' /w/d/e/n")
    assert box.status().splitlines() == [" M w/a.txt", " D w/d/b.txt", " M w/keep/k", "?? w/d/e/",
                                         "?? w/new/", '?? "w/sp ace"']


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("backend", ["native", "bwrap"])
def test_rootless_sandbox(backend):
    """As an unprivileged user (nobody) the sandbox works, uid 0 inside mapped to that user; the bwrap
    fallback too."""
    with _rootless_cache(backend) as cache:
        _run_rootless(cache, backend)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("backend", ["native", "bwrap"])
def test_seccomp_denies_attacks_rootless(backend):
    """The same attacks through ``env.step`` as an unprivileged user, where the sandbox's root holds every
    capability of its user namespace: the filter, not missing capabilities, stops them."""
    script = textwrap.dedent("""
        import json, sys
        from leap_gym.envs.intercode_bash.env import InterCodeBashEnv
        e = InterCodeBashEnv(spares=0)
        e.reset(options={"task_index": 0})
        print(json.dumps([e.step(a)[0] for a in json.loads(sys.argv[1])]))
        e.close()
    """)
    with _rootless_cache(backend) as cache:
        proc = _as_nobody([_rootless_python(cache, backend), "-c", script,
                           json.dumps([a[1] for a in ATTACKS] + [SANE])], _rootless_env(cache, backend))
    assert proc.returncode == 0, proc.stderr
    *observations, sane = json.loads(proc.stdout)
    for (name, _, expected), obs in zip(ATTACKS, observations, strict=True):
        assert "PWNED" not in obs and expected in obs, (name, obs)
    assert sane == "7\nfine\n"


@contextlib.contextmanager
def _rootless_cache(backend: str):
    if backend == "bwrap":
        from leap_gym.envs.intercode_bash.sandbox import find_bwrap
        if find_bwrap() is None:
            pytest.skip("no bwrap binary")
    tmp = Path(tempfile.mkdtemp(prefix="leap-gym-rootless-"))
    os.chmod(tmp, 0o755)
    cache = tmp / "cache"
    cache.mkdir()
    shutil.chown(cache, "nobody", "nogroup")
    try:
        yield cache
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _as_nobody(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd="/")


def _run_rootless(cache: Path, backend: str) -> None:
    script = textwrap.dedent("""
        from leap_gym.envs.intercode_bash.rootfs import host_rootfs
        from leap_gym.envs.intercode_bash.sandbox import Sandbox, SandboxConfig
        rf = host_rootfs()
        with Sandbox(SandboxConfig(layers=(rf.base,), binds=rf.binds)) as b:
            r = b.exec(["/bin/bash", "-c",
                        "id -u; touch /rootless_probe && echo wrote; cat /proc/self/uid_map"])
            print(r.output.decode())
    """)
    env = _rootless_env(cache, backend)
    proc = _as_nobody([_rootless_python(cache, backend), "-c", script], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "0" and lines[1] == "wrote"
    assert lines[2].split() == ["0", "65534", "1"]
    assert not os.path.exists("/rootless_probe")


# ------------------------------------------------------------------------------------ attacks through
# env.step

# (name, action, text that must not appear, text that must appear). Written without double quotes, so they
# read the same in both compat modes. Each would succeed (print PWNED) without the seccomp filter.
ATTACKS = [
    ("vsock", "python3 -c 'import socket; socket.socket(socket.AF_VSOCK)' && echo PWNED",
     "Address family not supported"),
    ("packet socket",
     "python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)' && echo PWNED",
     "Address family not supported"),
    ("nested user namespace and tmpfs",
     "unshare -Urm sh -c 'mount -t tmpfs -o size=100% none /mnt && echo PWNED'", "Operation not permitted"),
    ("user namespace alone", "unshare -U true && echo PWNED", "Operation not permitted"),
    ("ptrace",
     "python3 -c 'import ctypes, os, sys; l = ctypes.CDLL(None, use_errno=True); l.ptrace(0, 0, 0, 0) "
     "and sys.exit(os.strerror(ctypes.get_errno()))' && echo PWNED", "Operation not permitted"),
    ("kernel log", "dmesg && echo PWNED", "Operation not permitted"),
    ("clock", "date -s @0 && echo PWNED", "Operation not permitted"),
]
SANE = ("python3 -c 'import socket, threading; [socket.socket(f) for f in (1, 2, 10)]; "
        "t = threading.Thread(target=print, args=(7,)); t.start(); t.join()'; sleep 0.1 & wait; echo fine")


@pytest.fixture(scope="module")
def attack_env():
    from leap_gym.envs.intercode_bash.env import InterCodeBashEnv

    e = InterCodeBashEnv(spares=1)
    e.reset(options={"task_index": 0})
    probe(e._sandbox)
    yield e
    e.close()


@pytest.mark.parametrize("name, action, expected", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_seccomp_denies_attacks_through_step(attack_env, name, action, expected):
    obs, reward, term, trunc, info = attack_env.step(action)
    assert "PWNED" not in obs and expected in obs, obs
    assert not (term or trunc) and attack_env.step("echo alive")[0] == "alive\n"


def test_allowed_sockets_threads_and_jobs_still_work(attack_env):
    assert attack_env.step(SANE)[0] == "7\nfine\n"


def _syscall_script(calls: list[tuple]) -> str:
    """A python3 -c action calling raw syscalls ``(nr, *args)`` and printing ``nr result errno`` per call; a
    child made by a clone that should not have worked exits at once."""
    return ("python3 -c 'import ctypes, os\nl = ctypes.CDLL(None, use_errno=True)\nl.syscall.restype = "
            f"ctypes.c_long\nfor c in {calls!r}:\n    ctypes.set_errno(0)\n    r = "
            "l.syscall(*[ctypes.c_long(a) for a in c])\n    r == 0 and c[0] in (56, 220) and os._exit(0)\n  "
            "  print(c[0], r, ctypes.get_errno())'")


def test_seccomp_denies_each_listed_syscall(attack_env):
    import errno

    from leap_gym.envs.intercode_bash import sandbox_init as si

    column = 0 if os.uname().machine == "x86_64" else 1
    nr = {name: numbers[column] for name, numbers in {**si.DENIED_SYSCALLS, **si.ARG_SYSCALLS}.items()}
    denied = [(numbers[column], 0, 0, 0, 0, 0) for numbers in si.DENIED_SYSCALLS.values()]
    obs = attack_env.step(_syscall_script(denied))[0]
    results = {int(n): (int(r), int(e)) for n, r, e in (line.split() for line in obs.splitlines())}
    wrong = {name: results[numbers[column]] for name, numbers in si.DENIED_SYSCALLS.items()
             if results[numbers[column]] != (-1, errno.EPERM)}
    assert len(results) == len(denied) and not wrong, wrong
    by_argument = [(nr["unshare"], 0x10000000), (nr["clone"], 0x10000000 | 17, 0, 0, 0, 0),
                   (nr["socket"], 40, 1, 0), (nr["socketpair"], 17, 3, 0, 0), (nr["clone3"], 0, 0),
                   (nr["unshare"], 0x400), (nr["socket"], 2, 1, 0)]
    lines = [line.split() for line in attack_env.step(_syscall_script(by_argument))[0].splitlines()]
    assert [(int(r), int(e)) for _, r, e in lines[:5]] == [(-1, errno.EPERM), (-1, errno.EPERM),
                                                           (-1, errno.EAFNOSUPPORT), (-1, errno.EAFNOSUPPORT),
                                                           (-1, errno.ENOSYS)], lines
    assert int(lines[5][1]) == 0 and int(lines[6][1]) >= 0, lines  # unshare(CLONE_FILES) and AF_INET: allowed


def _rootless_env(cache: Path, backend: str) -> dict:
    site = [p for p in sys.path if p.endswith("site-packages")]
    return {"PATH": os.environ["PATH"], "LEAP_GYM_CACHE": str(cache), "HOME": str(cache),
            "LEAP_GYM_SANDBOX_BACKEND": backend, "PYTHONPATH": os.pathsep.join([str(REPO), *site])}


def _rootless_python(cache: Path, backend: str) -> str:
    """An interpreter reachable by nobody (a venv under /root is not) that imports leap_gym, else skip."""
    check = "import subprocess, sys, leap_gym.envs.intercode_bash.env; subprocess.run([sys.executable, '-V'])"
    for python in (sys.executable, "/usr/bin/python3"):
        if _as_nobody([python, "-c", check], _rootless_env(cache, backend)).returncode == 0:
            return python
    pytest.skip("no Python interpreter with leap_gym importable by the nobody user")


# ------------------------------------------------------------------------------------ leftovers

def _python(script: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _sandbox_cgroups(owner: int) -> list[Path]:
    from leap_gym.envs.intercode_bash.sandbox import _own_cgroup

    parents = {_own_cgroup(c) for c in ("memory", "pids", "")} - {None}
    return [p for parent in parents for p in parent.glob(f"leap-gym-sandbox-{owner}-*")]


def test_close_reaps_every_helper_and_removes_their_cgroups():
    """After ``env.close()`` (before the process exits) no helper is left as a zombie and no cgroup
    remains."""
    proc = _python("""
        import glob, json, os
        from leap_gym.envs.intercode_bash import sandbox
        from leap_gym.envs.intercode_bash.env import InterCodeBashEnv
        e = InterCodeBashEnv(spares=2)
        for i in range(4):
            e.reset(options={"task_index": i})
            e.step("ls")
        made = sorted({p for paths in sandbox._cgroups_of.values() for p in paths})
        e.close()
        children = []
        for path in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = open(path).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                children.append(fields[0])
        left = [p for p in made if os.path.exists(p)]
        print(json.dumps({"made": made, "left": left, "children": children}))
    """)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["children"] == [], "helpers left behind (Z = zombie)"
    assert result["left"] == []


def test_cgroups_of_a_killed_run_are_swept_at_the_next_start():
    """``kill -9`` of a run leaves its sandbox cgroups; the next process removes those of dead owners only."""
    from leap_gym.envs.intercode_bash.sandbox import sweep_stale_cgroups

    proc = _python("""
        import os, signal
        from leap_gym.envs.intercode_bash.env import InterCodeBashEnv
        e = InterCodeBashEnv(spares=1)
        e.reset(options={"task_index": 0})
        print("ready", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out, err = proc.communicate(timeout=120)
    assert out == "ready\n", err
    left = _sandbox_cgroups(proc.pid)
    if not left:
        pytest.skip("no writable cgroup here (needs root or a delegated cgroup)")
    live = left[0].parent / f"leap-gym-sandbox-{os.getpid()}-0"  # a live owner's: kept
    live.mkdir()
    try:
        removed = sweep_stale_cgroups()
        assert _sandbox_cgroups(proc.pid) == [] and set(map(str, left)) <= set(removed)
        assert live.is_dir()
    finally:
        live.rmdir()


def _run_filter(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Evaluate a classic-BPF seccomp program (the instructions the filter uses) on one ``seccomp_data``."""
    import struct

    data = struct.pack("<iIQ6Q", nr, arch, 0, *(list(args) + [0] * 6)[:6])
    code = [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif op == 0x06:
            return k
        else:
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
            pc += 1 + (jt if taken else jf)


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_filter_program_for_each_architecture(machine):
    """The filter's decisions per architecture, including the one this machine is not (tables differ: 56 is
    clone on x86_64 but openat on aarch64, which must pass whatever its first argument)."""
    import errno

    from leap_gym.envs.intercode_bash import sandbox_init as si

    program, arch = si.seccomp_program(machine), si.AUDIT_ARCH[machine]
    column = 0 if machine == "x86_64" else 1
    nr = {name: numbers[column] for name, numbers in {**si.DENIED_SYSCALLS, **si.ARG_SYSCALLS}.items()}
    eperm, allow = si.RET_ERRNO | errno.EPERM, si.RET_ALLOW
    for name in si.DENIED_SYSCALLS:
        assert _run_filter(program, nr[name], arch) == eperm, name
    assert _run_filter(program, nr["clone"], arch, (0x10000000 | 17,)) == eperm
    assert _run_filter(program, nr["clone"], arch, (0x01200000 | 17,)) == allow  # fork's flags
    assert _run_filter(program, nr["unshare"], arch, (0x00020000,)) == eperm
    assert _run_filter(program, nr["unshare"], arch, (0x400,)) == allow
    assert _run_filter(program, nr["socket"], arch, (40, 1)) == si.RET_ERRNO | errno.EAFNOSUPPORT
    assert _run_filter(program, nr["socket"], arch, (1 << 32 | 2, 1)) == allow  # the kernel reads an int
    assert all(_run_filter(program, nr["socketpair"], arch, (f, 1)) == allow for f in si.SOCKET_FAMILIES)
    assert _run_filter(program, nr["clone3"], arch) == si.RET_ERRNO | errno.ENOSYS
    assert _run_filter(program, 0x40000003, 0x40000003) == si.RET_KILL_PROCESS  # i386 (int 0x80) on x86_64
    read, openat = (0, 257) if machine == "x86_64" else (63, 56)
    assert _run_filter(program, read, arch) == allow
    assert _run_filter(program, openat, arch, (2**64 - 100,)) == allow
    if machine == "x86_64":
        assert _run_filter(program, si.X32_SYSCALL_BIT | 0, arch) == eperm
