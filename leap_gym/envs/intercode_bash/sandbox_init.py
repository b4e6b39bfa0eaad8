"""The in-sandbox side of the InterCode Bash sandbox: namespace set-up and the PID-1 command loop.

This file runs in a fresh interpreter whose argv is just ``bash`` (the program comes on stdin, so PID 1's
``/proc/1/cmdline`` reads like the original's, and no host path leaks), never imported by the trainer:
creating namespaces needs ``unshare`` and ``fork`` in a single-threaded process, and the trainer is
multi-threaded. It uses the standard library only, so it also runs inside a bare root file system.

Life cycle: the host starts the interpreter ahead of time (a warm spare), later sends one config frame; the
helper opens the layer directories (as the caller: a root caller's cache is not reachable by the sandbox uid),
drops to the sandbox uid when started as root, creates user/mount/PID/net/UTS/IPC namespaces, maps uid 0
inside to that (never to host root), and forks PID 1 of the new PID namespace. PID 1 builds an overlay root
(read-only layers below a size-capped tmpfs upper), a fresh ``/proc`` with sensitive parts read-only, a
minimal ``/dev``, ``pivot_root``s into it, brings up loopback only, drops capabilities to Docker's default
set, installs a seccomp filter in the spirit of Docker's default profile (inherited by every command) and then
serves framed requests on two pipes: ``exec`` (one command in its own session, timeout killing every process
in the sandbox, output caps), ``populate`` (write a generated file system), ``snapshot`` and ``status`` (an
emulation of ``git status --short`` over the paths present at snapshot time, computed inside the sandbox so
planted symlinks resolve in the sandbox root, never on the host).

Frames: 4-byte big-endian header length, a JSON header, then ``header["n"]`` raw payload bytes.
"""

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_MOVE, MS_REC, MS_PRIVATE, MS_RELATIME = 8192, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME = 1, 4, 15
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
SYSCALLS = {"x86_64": {"pivot_root": 155, "capset": 126}, "aarch64": {"pivot_root": 41, "capset": 91}}
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP, IFF_RUNNING = 0x8913, 0x8914, 0x1, 0x40

# Docker's default capability set (what the original's commands ran with).
DOCKER_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
# SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
CHDIR_FAILED = ('OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd '
                '("{}") set in config.json failed: no such file or directory: unknown\r\n')
NOT_FOUND = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "{}": '
             'executable file not found in $PATH: unknown\r\n')

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


class SetupError(Exception):
    """A failed set-up step; ``feature`` names the kernel feature that was missing."""

    def __init__(self, message, feature=""):
        super().__init__(message)
        self.feature = feature


def _check(ret, what, feature=""):
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {err})", feature)


def _b(s):
    return None if s is None else os.fsencode(s)


def mount(source, target, fstype, flags=0, data=None, feature=""):
    _check(libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {fstype or source} on {target}", feature)


def read_frame(fd):
    head = _read_exact(fd, 4)
    if head is None:
        return None, b""
    header = json.loads(_read_exact(fd, struct.unpack(">I", head)[0]))
    n = header.get("n", 0)
    return header, (_read_exact(fd, n) if n else b"")


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def write_frame(fd, header, payload=b""):
    header = dict(header, n=len(payload))
    data = json.dumps(header).encode()
    msg = struct.pack(">I", len(data)) + data + payload
    view = memoryview(msg)
    while view:
        view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------------------------- set-up


def stage(cfg, owner=None):
    """Mount a small tmpfs on /tmp with the layers (and the builder's disk dir) bound at fixed paths.

    As host root this runs in a first mount namespace before dropping to the sandbox uid, because the layers
    usually live under root's private cache, which that uid cannot traverse; the fixed paths also keep host
    paths out of the sandbox's ``/proc/mounts``.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    # open first: the directories may lie under /tmp, which the staging tmpfs is about to cover
    fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in cfg["layers"]]
    disk = os.open(cfg["upper_dir"], os.O_PATH | os.O_DIRECTORY) if cfg.get("upper_dir") else None
    opts = "size=1m,mode=0755" + (f",uid={owner},gid={owner}" if owner is not None else "")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for i, fd in enumerate(fds):
        os.mkdir(f"/tmp/l{i}")
        mount(f"/proc/self/fd/{fd}", f"/tmp/l{i}", None, MS_BIND | MS_REC)
        os.close(fd)
    if disk is not None:
        os.mkdir("/tmp/disk")
        mount(f"/proc/self/fd/{disk}", "/tmp/disk", None, MS_BIND)
        os.close(disk)


def setup(cfg, staged):
    """Runs in PID 1 of the new namespaces: build the root, pivot into it, restrict what commands may do."""
    if staged:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
    else:
        stage(cfg)
    if cfg.get("upper_dir"):  # the layer builder writes to a directory on disk: <dir>/upper, <dir>/work
        upper, work, root = "/tmp/disk/upper", "/tmp/disk/work", "/tmp/root"
        os.mkdir(root)
    else:
        os.mkdir("/tmp/up")
        mount("tmpfs", "/tmp/up", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmpfs_size']},mode=0755")
        upper, work, root = "/tmp/up/upper", "/tmp/up/work", "/tmp/up/root"
        for d in (upper, work, root):
            os.mkdir(d)
    lowers = [f"/tmp/l{i}" for i in range(len(cfg["layers"]))]
    top = os.stat(lowers[0])
    os.chmod(upper, stat.S_IMODE(top.st_mode))
    os.utime(upper, ns=(top.st_atime_ns, top.st_mtime_ns))
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    try:
        mount("overlay", root, "overlay", MS_NOATIME, opts + ",userxattr", feature="overlayfs")
    except SetupError:
        mount("overlay", root, "overlay", MS_NOATIME, opts,
              feature="overlayfs in user namespaces (Linux >= 5.11)")
    for src, dst, ro in cfg.get("binds", []):
        target = root + dst
        if not os.path.lexists(target):
            os.makedirs(target, exist_ok=True)
        mount(src, target, None, MS_BIND | MS_REC)
        if ro:
            _remount_ro(target, src)
    _mount_proc(root)
    _mount_dev(root, cfg)
    os.chdir(root)
    _check(libc.syscall(_syscall("pivot_root"), b".", b"."), "pivot_root", "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    hostname = cfg["hostname"].encode()
    _check(libc.sethostname(hostname, len(hostname)), "sethostname", "UTS namespaces")
    _loopback_up()
    _drop_capabilities()
    install_seccomp()


def _syscall(name):
    machine = os.uname().machine
    if machine not in SYSCALLS:
        raise SetupError(f"unsupported architecture {machine!r}", "an x86_64 or aarch64 kernel")
    return SYSCALLS[machine][name]


def _remount_ro(target, src):
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    st = os.statvfs(src)
    for bit, flag in ((os.ST_NOEXEC, MS_NOEXEC), (os.ST_NOATIME, MS_NOATIME),
                      (os.ST_NODIRATIME, MS_NODIRATIME), (getattr(os, "ST_RELATIME", 4096), MS_RELATIME)):
        if st.f_flag & bit:
            flags |= flag
    mount(None, target, None, flags)


def _mount_proc(root):
    proc = root + "/proc"
    os.makedirs(proc, exist_ok=True)
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, feature="procfs in a PID namespace")
    for part in ("sys", "sysrq-trigger", "irq", "bus", "fs"):
        path = f"{proc}/{part}"
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _mount_dev(root, cfg):
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        open(f"{dev}/{name}", "w").close()
        mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore")):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    try:
        mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    except SetupError:
        pass  # pseudo-terminals are optional; commands have no TTY in the original either
    os.mkdir(f"{dev}/shm")
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['shm_size']},mode=1777")
    pinned = cfg["pinned_time"]
    for path in (f"{dev}/pts", f"{dev}/shm", dev):
        os.utime(path, (pinned, pinned), follow_symlinks=False)


def _loopback_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP | IFF_RUNNING, b""))
    finally:
        s.close()


def _drop_capabilities():
    """Bounding set and effective/permitted set to Docker's defaults, and no new privileges on exec."""
    keep = 0
    for cap in DOCKER_CAPS:
        keep |= 1 << cap
    for cap in range(64):
        if not keep & (1 << cap):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
                break  # past the kernel's last capability
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)(keep & 0xFFFFFFFF, keep & 0xFFFFFFFF, 0, keep >> 32, keep >> 32, 0)
    _check(libc.syscall(_syscall("capset"), header, data), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


# ---------------------------------------------------------------------------------------------- seccomp

# A deny list in the spirit of Docker's default seccomp profile (which allows a list instead): what a
# container without CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_BOOT and friends
# cannot do, plus the kernel interfaces Docker blocks outright (keyrings, bpf, perf, io_uring, userfaultfd).
# Denied calls fail with EPERM, so commands print a normal error instead of dying. Numbers: x86_64's table and
# the generic table that aarch64 uses (include/uapi/asm-generic/unistd.h).
DENIED_SYSCALLS = {
    "acct": (163, 89), "add_key": (248, 217), "request_key": (249, 218), "keyctl": (250, 219),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282), "syslog": (103, 116),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kcmp": (312, 272),
    "pidfd_getfd": (438, 438), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "reboot": (169, 142), "swapon": (167, 224),
    "swapoff": (168, 225), "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442), "setns": (308, 268),
    "clock_settime": (227, 112), "clock_adjtime": (305, 266), "settimeofday": (164, 170),
    "adjtimex": (159, 171), "sethostname": (170, 161), "setdomainname": (171, 162), "quotactl": (179, 60),
    "fanotify_init": (300, 262),
    "open_by_handle_at": (304, 265), "lookup_dcookie": (212, 18), "vhangup": (153, 58),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
}
# Calls denied only for some arguments: clone/unshare with a namespace flag, socket/socketpair outside these
# families (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK: AF_VSOCK reaches the host whatever the network namespace).
# clone3 passes its flags in memory a filter cannot read: ENOSYS makes the C library fall back to clone.
ARG_SYSCALLS = {"clone": (56, 220), "unshare": (272, 97), "socket": (41, 198), "socketpair": (53, 199),
                "clone3": (435, 435)}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
CLONE_NAMESPACES = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 \
    | 0x40000000  # NEWTIME NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
SOCKET_FAMILIES = (1, 2, 10, 16)
X32_SYSCALL_BIT = 0x40000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
RET_KILL_PROCESS, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06


def seccomp_program(machine):
    """The classic-BPF filter for ``machine`` as packed ``struct sock_filter`` records.

    Another architecture's calling convention (i386 via ``int 0x80`` on x86_64) would read the numbers through
    a different table, so a foreign ``arch`` kills the process; x32 numbers (bit 30) are denied.
    """
    column = 0 if machine == "x86_64" else 1
    eperm, enosys = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
    eafnosupport = RET_ERRNO | errno.EAFNOSUPPORT
    nr = {name: numbers[column] for name, numbers in ARG_SYSCALLS.items()}
    prog = [(LD_W_ABS, 0, 0, 4), (JEQ, "load_nr", "kill", AUDIT_ARCH[machine]), ("kill",),
            (RET, 0, 0, RET_KILL_PROCESS), ("load_nr",), (LD_W_ABS, 0, 0, 0)]
    if machine == "x86_64":
        prog.append((JGE, "eperm", 0, X32_SYSCALL_BIT))
    prog += [(JEQ, "eperm", 0, numbers[column]) for numbers in DENIED_SYSCALLS.values()]
    prog += [(JEQ, "enosys", 0, nr["clone3"]), (JEQ, "flags", 0, nr["clone"]),
             (JEQ, "flags", 0, nr["unshare"]), (JEQ, "family", 0, nr["socket"]),
             (JEQ, "family", 0, nr["socketpair"]), (RET, 0, 0, RET_ALLOW),
             ("flags",), (LD_W_ABS, 0, 0, 16), (JSET, "eperm", "allow", CLONE_NAMESPACES),
             ("family",), (LD_W_ABS, 0, 0, 16)]  # args[0]'s low word (little-endian); the kernel reads an int
    prog += [(JEQ, "allow", 0, family) for family in SOCKET_FAMILIES]
    prog += [(RET, 0, 0, eafnosupport), ("allow",), (RET, 0, 0, RET_ALLOW), ("eperm",), (RET, 0, 0, eperm),
             ("enosys",), (RET, 0, 0, enosys)]
    return _assemble(prog)


def _assemble(prog):
    """Resolve label jumps (relative, forward only, at most 255 instructions) and pack the instructions."""
    labels, index = {}, 0
    for ins in prog:
        if len(ins) == 1:
            labels[ins[0]] = index
        else:
            index += 1
    out, index = [], 0
    for ins in prog:
        if len(ins) == 1:
            continue
        code, jt, jf, k = ins
        jt, jf = ((labels[j] - index - 1) if isinstance(j, str) else j for j in (jt, jf))
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise SetupError("seccomp filter jump out of range")
        out.append(struct.pack("HBBI", code, jt, jf, k))
        index += 1
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp():
    """Filter this process and everything it starts (needs no_new_privs, set before)."""
    machine = os.uname().machine
    if machine not in AUDIT_ARCH:
        raise SetupError(f"unsupported architecture {machine!r}", "an x86_64 or aarch64 kernel")
    program = seccomp_program(machine)
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    ulong = ctypes.c_ulong
    ret = libc.prctl(PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0))
    _check(ret, "seccomp", "seccomp filters (CONFIG_SECCOMP_FILTER)")


# ---------------------------------------------------------------------------------------------- commands


def _exec_path(argv, env):
    """execvpe without the stdlib's lazy imports (the host's stdlib is gone after pivot_root).

    Returns, on failure, the text the original's runtime printed (a Docker-like message).
    """
    name = argv[0]
    dirs = [""] if "/" in name else env.get("PATH", "/usr/bin:/bin").split(":")
    error = None
    for d in dirs:
        try:
            os.execve(os.path.join(d, name) if d else name, argv, env)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                error = e
    if error is None:
        return NOT_FOUND.format(name)
    return f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{name}": ' \
           f'{os.strerror(error.errno).lower()}: unknown\r\n'


class Loop:
    """PID 1: serve requests until the host closes the channel (then the kernel kills the namespace)."""

    def __init__(self, cfg, rfd, wfd):
        self.cfg, self.rfd, self.wfd = cfg, rfd, wfd
        self.tracked = {}
        self.ignored = frozenset(cfg["ignored_names"])
        self.devnull = os.open("/dev/null", os.O_RDWR)

    def serve(self):
        # PID 1 of a namespace gets only the signals it handles: handle none, or `kill -INT 1` would stop it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            header, payload = read_frame(self.rfd)
            if header is None or header["op"] == "exit":
                return
            try:
                reply, body = getattr(self, "op_" + header["op"])(header, payload)
            except Exception as e:  # a bad request must not kill PID 1 (that would end the episode)
                reply, body = {"error": f"{type(e).__name__}: {e}"}, b""
            write_frame(self.wfd, reply, body)

    def op_batch(self, req, _payload):
        """Several requests in one round trip (a reset's populate, gold and status); bodies are
        concatenated."""
        replies, bodies = [], []
        for sub in req["requests"]:
            reply, body = getattr(self, "op_" + sub["op"])(sub, b"")
            replies.append(dict(reply, n=len(body)))
            bodies.append(body)
        return {"replies": replies}, b"".join(bodies)

    def op_exec(self, req, _payload):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            self._child(req, wfd)
        os.close(wfd)
        out, total, cap, kill_at = bytearray(), 0, req["output_cap"], req["kill_output"]
        deadline = time.monotonic() + req["timeout"]
        timed_out = flooded = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not select.select([rfd], [], [], remaining)[0]:
                continue
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if len(out) < cap:
                out += chunk[: cap - len(out)]
            if total > kill_at:
                flooded = True
                break
        os.close(rfd)
        status = None
        if not (timed_out or flooded):
            status = self._wait(pid, deadline)
            timed_out = status is None
        if status is None:
            self.kill_all()
            rc = -signal.SIGKILL
        else:
            rc = os.waitstatus_to_exitcode(status)
        self.reap()
        return {"rc": rc, "timed_out": timed_out, "flooded": flooded, "total": total}, bytes(out)

    def _child(self, req, wfd):
        try:
            os.setsid()
            os.dup2(self.devnull, 0)
            os.dup2(wfd, 1)
            os.dup2(wfd, 2)
            os.closerange(3, 1 << 16)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            for name, value in req["rlimits"].items():
                resource.setrlimit(getattr(resource, name), (value, value))
            try:
                os.chdir(req["cwd"])
            except OSError:
                os.write(2, CHDIR_FAILED.format(req["cwd"]).encode())
                os._exit(126)
            os.write(2, _exec_path(req["argv"], req["env"]).encode())
            os._exit(126)
        finally:
            os._exit(126)

    def _wait(self, pid, deadline):
        """Wait for the command itself (its output may have closed early); None when the deadline passes."""
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return status
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if pidfd is not None:
                    select.select([pidfd], [], [], remaining)
                else:
                    time.sleep(min(remaining, 0.002))
        finally:
            if pidfd is not None:
                os.close(pidfd)

    @staticmethod
    def kill_all():
        """SIGKILL every process of the namespace but PID 1, until none is left (a fork bomb needs several
        passes)."""
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                return
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                pass
            Loop.reap()

    @staticmethod
    def reap():
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # -------------------------------------------------------------------------------- file system

    def op_populate(self, req, _payload):
        """Create a generated file system: entries in order, then times relative to the reset time."""
        entries = req["entries"]
        now = req["now"]
        for e in entries:
            path, kind = e["path"], e["kind"]
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
            elif kind == "symlink":
                os.symlink(e["target"], path)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(e["content"].encode("utf-8"))
            if kind != "symlink":
                os.chmod(path, e.get("mode", 0o755 if kind == "dir" else 0o644))
        # times last and deepest first, so creating children does not bump a parent's mtime again
        for e in sorted(entries, key=lambda e: -e["path"].count("/")):
            t = now - e.get("age", 0)
            os.utime(e["path"], (t, t), follow_symlinks=False)
        for d in req.get("touch_dirs", []):
            os.utime(d, (now, now))
        if req.get("snapshot"):
            return self.op_snapshot(req, b"")
        return {"ok": True}, b""

    def _walk(self):
        """(path, lstat) of every file and symlink git would consider, skipping ignored names and .git."""
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                it = os.scandir("/" + rel if rel else "/")
            except OSError:
                continue
            with it:
                for entry in it:
                    if entry.name in self.ignored or entry.name == ".git":
                        continue
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(path)
                    elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                        yield path, st

    @staticmethod
    def _digest(path, st):
        if stat.S_ISLNK(st.st_mode):
            return "l:" + os.readlink("/" + path)
        h = hashlib.md5()
        try:
            fd = os.open("/" + path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            return f"e:{e.errno}"
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                h.update(chunk)
        finally:
            os.close(fd)
        return "f:" + h.hexdigest()

    @staticmethod
    def _key(st):
        return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

    def op_snapshot(self, req, _payload):
        """Remember the tracked files (what ``git add -A`` would commit now)."""
        self.tracked = {p: (self._key(st), self._digest(p, st)) for p, st in self._walk()}
        return {"tracked": len(self.tracked)}, b""

    def op_status(self, req, _payload):
        """``git status --short`` over the snapshot: ' M', ' T', ' D' for tracked paths, '??' for new ones."""
        seen, changed, untracked = set(), [], []
        for path, st in self._walk():
            old = self.tracked.get(path)
            if old is None:
                untracked.append(path)
                continue
            seen.add(path)
            key, digest = old
            if self._key(st) == key:
                continue
            if stat.S_ISLNK(st.st_mode) != digest.startswith("l:"):
                changed.append((path, "T"))
            elif (st.st_mode & 0o100) != (key[0] & 0o100) or self._digest(path, st) != digest:
                changed.append((path, "M"))
        changed += [(p, "D") for p in self.tracked if p not in seen]
        tracked_dirs = set()
        for p in self.tracked:
            parts = p.split("/")
            for i in range(1, len(parts)):
                tracked_dirs.add("/".join(parts[:i]))
        shown = set()
        for path in untracked:  # an untracked file inside a directory without tracked files shows as "dir/"
            parts = path.split("/")
            label = path
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) not in tracked_dirs:
                    label = "/".join(parts[:i]) + "/"
                    break
            shown.add(label)
        lines = [f" {code} {quote_path(p)}" for p, code in sorted(changed)]
        lines += [f"?? {quote_path(p)}" for p in sorted(shown)]
        return {"ok": True}, "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}


def quote_path(path):
    """Git's path quoting in short status (core.quotePath on, spaces quoted too)."""
    raw = path.encode("utf-8", "surrogateescape")
    if not any(b < 0x20 or b >= 0x7F or b in (0x20, 0x22, 0x5C) for b in raw):
        return path
    out = []
    for b in raw:
        if b in _ESCAPES:
            out.append(_ESCAPES[b])
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\{b:03o}")
        else:
            out.append(chr(b))
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------------------------------------- main


def main(rfd, wfd):
    """Serve one sandbox on the host's pipes ``rfd``/``wfd``."""
    cfg, _ = read_frame(rfd)
    if cfg is None:
        return 0
    if not cfg.get("setup", True):  # bwrap built the namespaces and the root; we are its child
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        try:
            install_seccomp()
        except SetupError as e:
            write_frame(wfd, {"error": str(e), "feature": e.feature})
            return 1
        loop = Loop(cfg, rfd, wfd)
        write_frame(wfd, {"ready": True, "pid": os.getpid()})
        loop.serve()
        return 0
    staged = False
    try:
        uid, gid = cfg["uid"], cfg["gid"]
        if os.geteuid() == 0 and uid != 0:
            _check(libc.unshare(CLONE_NEWNS), "unshare", "mount namespaces")
            stage(cfg, owner=uid)
            staged = True
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        else:
            uid, gid = os.geteuid(), os.getegid()
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC
        _check(libc.unshare(flags), "unshare", "user namespaces (check user.max_user_namespaces, "
               "kernel.unprivileged_userns_clone and AppArmor's restrict_unprivileged_userns)")
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    except SetupError as e:
        write_frame(wfd, {"error": str(e), "feature": e.feature})
        return 1
    except OSError as e:
        write_frame(wfd, {"error": f"sandbox set-up failed: {e}", "feature": "user namespaces"})
        return 1
    pid = os.fork()
    if pid:
        os.close(rfd)
        os.close(wfd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        setup(cfg, staged)
    except SetupError as e:
        write_frame(wfd, {"error": str(e), "feature": e.feature})
        return 1
    except OSError as e:
        write_frame(wfd, {"error": f"sandbox set-up failed: {e}", "feature": ""})
        return 1
    libc.prctl(PR_SET_NAME, b"bash", 0, 0, 0)
    # Not dumpable: commands (root inside, same uid) must not open /proc/1/fd/* and forge replies to the host
    # (a reward hack), nor read PID 1's memory or environment. Commands themselves are dumpable again after
    # exec.
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    loop = Loop(cfg, rfd, wfd)
    write_frame(wfd, {"ready": True, "pid": os.getpid()})
    loop.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
