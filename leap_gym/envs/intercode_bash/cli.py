"""``leap-gym intercode ...``: build the Debian root file system, check the sandbox, build the original
layers.

Cheap to import (the CLI lists every subcommand at start-up): it loads the sandbox and root file system
helpers, not the env; the work happens in the handlers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from leap_gym.envs.intercode_bash.rootfs import build_debian_rootfs, resolve_rootfs
from leap_gym.envs.intercode_bash.sandbox import Sandbox, SandboxConfig, SandboxError


def cmd_build_rootfs(args: argparse.Namespace) -> int:
    try:
        path, seconds = build_debian_rootfs(mirror=args.mirror, force=args.force)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Build one sandbox on this machine and report what works (root or rootless, the rootfs, a command)."""
    try:
        rootfs = resolve_rootfs(args.rootfs)
        start = time.perf_counter()
        with Sandbox(SandboxConfig(layers=(rootfs.base,), binds=rootfs.binds)) as box:
            ready = time.perf_counter() - start
            res = box.exec(["/bin/bash", "-c", "id -u; hostname; bash --version | head -1"])
    except (SandboxError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    mode = "root (uid 0 inside mapped to the sandbox uid)" if os.geteuid() == 0 else "rootless"
    print(f"sandbox ok: {mode}, rootfs={rootfs.name}, built in {ready * 1000:.0f} ms")
    print(res.output.decode("utf-8", "replace"), end="")
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("intercode", help="InterCode Bash: root file system and sandbox tools")
    sub = p.add_subparsers(dest="intercode_command", required=True)
    b = sub.add_parser("build-rootfs", help="build the faithful Debian root with mmdebstrap (needs root)")
    b.add_argument("--mirror", default=None, help="Debian mirror URL (default: mmdebstrap's)")
    b.add_argument("--force", action="store_true", help="rebuild even if already built")
    b.set_defaults(func=cmd_build_rootfs)
    c = sub.add_parser("check", help="build one sandbox here and run a command in it")
    c.add_argument("--rootfs", default="host", choices=["host", "debian"])
    c.set_defaults(func=cmd_check)
