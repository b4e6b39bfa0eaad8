"""``leap-gym intercode``: the subcommand module imports cheaply and its handlers work."""

import subprocess
import sys

from leap_gym import cli


def _main(monkeypatch, argv):
    modules = list(cli._SUBCOMMAND_MODULES)
    if "leap_gym.envs.intercode_bash.cli" not in modules:  # until the integrator lists it in cli.py
        modules.append("leap_gym.envs.intercode_bash.cli")
    monkeypatch.setattr(cli, "_SUBCOMMAND_MODULES", modules)
    return cli.main(argv)


def test_subcommand_module_is_cheap_to_import():
    code = ("import sys, leap_gym.envs.intercode_bash.cli; "
            "print(any(m.startswith(('torch', 'transformers', 'leap_gym.envs.intercode_bash.env')) for m in "
            "sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_check_builds_a_sandbox(monkeypatch, capsys):
    assert _main(monkeypatch, ["intercode", "check"]) == 0
    out = capsys.readouterr().out
    assert "sandbox ok" in out and "3b8f4c2e9d1a" in out


def test_build_rootfs_reports_errors_clearly(monkeypatch, capsys):
    import leap_gym.envs.intercode_bash.rootfs as rootfs

    monkeypatch.setattr(rootfs.shutil, "which", lambda name: None)
    monkeypatch.setattr(rootfs, "_stamp", lambda root: root.with_name("never-built.done"))
    assert _main(monkeypatch, ["intercode", "build-rootfs"]) == 1
    assert "mmdebstrap is not installed" in capsys.readouterr().err
