"""Root file systems for the sandbox: ``host`` (read-only binds of the host's /usr) and ``debian``
(mmdebstrap).

Both give a base layer directory owned by the sandbox uid (a single-id user namespace shows other owners as
``nobody``, and overlay copy-up of such directories fails) plus the read-only binds to add on top.

``host`` needs no set-up: a small skeleton (a synthetic ``/etc`` — never the host's, which holds secrets — and
the usr-merge symlinks) with the host's ``/usr`` bound read-only. Tool versions then follow the host, so gold
outputs may differ between machines. ``debian`` is the faithful root: the original image's package list
installed by ``mmdebstrap`` into the cache once (``leap-gym intercode build-rootfs``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from leap_gym.envs.intercode_bash.sandbox import DEFAULT_SANDBOX_UID

# The original image's apt-get line (docker/nl2bash.Dockerfile), installed on Debian bookworm's minbase.
DEBIAN_PACKAGES = ("bash", "python3", "psmisc", "bsdmainutils", "cron", "imagemagick", "dnsutils", "git",
                   "tree", "net-tools", "iputils-ping", "coreutils", "curl", "cpio", "jq")
DEBIAN_SUITE = "bookworm"
HOSTNAME = "3b8f4c2e9d1a"
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
         f"172.17.0.2\t{HOSTNAME}\n")
_USRMERGE = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_COPIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "os-release", "debian_version",
               "mime.types", "magic", "inputrc", "bash.bashrc", "profile", "protocols", "services", "shells")


def cache_dir() -> Path:
    """``$LEAP_GYM_CACHE`` or ``$XDG_CACHE_HOME/leap-gym`` or ``~/.cache/leap-gym``, plus ``intercode``."""
    base = os.environ.get("LEAP_GYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "leap-gym")
    return Path(base) / "intercode"


def sandbox_uid() -> int:
    """The host uid that owns layers: the dedicated sandbox uid as root, our own uid otherwise."""
    return DEFAULT_SANDBOX_UID if os.geteuid() == 0 else os.geteuid()


@dataclass(frozen=True)
class RootFS:
    name: str
    base: str
    binds: tuple[tuple[str, str, bool], ...]
    digest: str  # identifies the base for layer caches


def chown_tree(path: str | os.PathLike, uid: int) -> None:
    """Give a whole tree to ``uid`` (symlinks themselves, not their targets)."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.lchown(root, uid, uid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def _etc_files() -> dict[str, str]:
    return {
        "passwd": ("root:x:0:0:root:/root:/bin/bash\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        "group": "root:x:0:\nnogroup:x:65534:\n",
        "hostname": HOSTNAME + "\n",
        "hosts": HOSTS,
        "resolv.conf": "",
        "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n",
        "mtab": "",
    }


def host_rootfs() -> RootFS:
    """The skeleton base (cached, rebuilt when the host's layout changes) and binds of the host's system
    dirs."""
    binds: list[tuple[str, str, bool]] = [("/usr", "/usr", True)]
    layout = []
    for name in _USRMERGE:
        p = Path("/") / name
        if p.is_symlink():
            layout.append((name, "link", os.readlink(p)))
        elif p.is_dir():
            layout.append((name, "dir", ""))
            binds.append((str(p), "/" + name, True))
    etc_copies = [n for n in _ETC_COPIES if os.path.lexists(f"/etc/{n}")]
    uid = sandbox_uid()
    digest = hashlib.sha256(repr((layout, etc_copies, sorted(_etc_files().items()), uid,
                                  1)).encode()).hexdigest()
    base = cache_dir() / "rootfs" / f"host-{digest[:16]}"
    if not base.is_dir():
        _build_host_skeleton(base, layout, etc_copies, uid)
    return RootFS("host", str(base), tuple(binds), digest)


def _build_host_skeleton(base: Path, layout, etc_copies, uid: int) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".host-", dir=base.parent))
    os.chmod(tmp, 0o755)
    for d in ("usr", "etc", "tmp", "root", "home", "var/tmp", "var/log", "var/lib", "proc", "dev", "sys",
              "mnt", "opt", "srv", "media", "run", "boot"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    os.chmod(tmp / "tmp", 0o1777)
    os.chmod(tmp / "var/tmp", 0o1777)
    os.chmod(tmp / "root", 0o700)
    for name, kind, target in layout:
        if kind == "link":
            os.symlink(target, tmp / name)
        else:
            (tmp / name).mkdir()
    for name, text in _etc_files().items():
        _write(tmp / "etc" / name, text)
    for name in etc_copies:
        src, dst = Path("/etc") / name, tmp / "etc" / name
        if src.is_symlink() and name != "os-release":
            os.symlink(os.readlink(src), dst)
        elif src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copyfile(src, dst)
    _pin_times(tmp)
    chown_tree(tmp, uid)
    try:
        os.rename(tmp, base)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)


def _pin_times(root: Path, when: float = 1685577599.0) -> None:
    for dirpath, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
        os.utime(dirpath, (when, when))


# ------------------------------------------------------------------------------------------------ debian


def debian_dir() -> Path:
    return cache_dir() / "rootfs" / f"debian-{DEBIAN_SUITE}"


def debian_rootfs() -> RootFS:
    base = debian_dir()
    stamp = _stamp(base)
    if not stamp.is_file():
        raise FileNotFoundError(
            f"the Debian root file system is not built (expected at {base}); build it once with "
            "`leap-gym intercode build-rootfs` (needs root and the mmdebstrap package)")
    digest = stamp.read_text().strip()
    return RootFS("debian", str(base), (), digest)


def build_debian_rootfs(mirror: str | None = None, force: bool = False, log=print) -> tuple[Path, float]:
    """Build the Debian root with mmdebstrap into the cache; returns (path, seconds). Needs root."""
    target = debian_dir()
    if _stamp(target).is_file() and not force:
        log(f"already built: {target}")
        return target, 0.0
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is not installed (Debian/Ubuntu: apt-get install mmdebstrap)")
    if os.geteuid() != 0:
        raise RuntimeError("building the Debian root needs root (mmdebstrap's root mode); run it with sudo")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".debian-", dir=target.parent))
    start = time.monotonic()
    cmd = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(DEBIAN_PACKAGES), DEBIAN_SUITE,
           str(tmp)]
    if mirror:
        cmd.append(mirror)
    log("$ " + " ".join(cmd))
    try:
        subprocess.run(cmd, check=True)
        finalize_debian(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _stamp(target).unlink(missing_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.rename(tmp, target)
    digest = hashlib.sha256(f"{DEBIAN_SUITE}:{','.join(DEBIAN_PACKAGES)}:{time.time()}".encode()).hexdigest()
    _stamp(target).write_text(digest + "\n")
    seconds = time.monotonic() - start
    log(f"built {target} in {seconds:.1f} s")
    return target, seconds


def finalize_debian(root: Path) -> None:
    """Fix-ups after mmdebstrap: fixed hostname and hosts, no resolver, no apt partial dirs, owner = sandbox
    uid."""
    for name, text in (("hostname", HOSTNAME + "\n"), ("hosts", HOSTS), ("resolv.conf", "")):
        p = root / "etc" / name
        if p.is_symlink() or p.exists():
            p.unlink()
        _write(p, text)
    for partial in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        shutil.rmtree(root / partial, ignore_errors=True)
    os.chmod(root, 0o755)
    chown_tree(root, sandbox_uid())


def _stamp(root: Path) -> Path:
    """Marks a finished build; beside the root, not in it (a file at / would show up in ``ls -a /``)."""
    return root.with_name(root.name + ".done")


def resolve_rootfs(name: str) -> RootFS:
    if name == "host":
        return host_rootfs()
    if name == "debian":
        return debian_rootfs()
    raise ValueError(f"unknown rootfs {name!r}; expected 'host' or 'debian'")
