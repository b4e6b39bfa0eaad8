"""InterCode Bash without Docker: a stdlib Linux sandbox, the original's reward, generated and original tasks.

Usage::

    env = gym.make("leap/InterCodeBash-v0")  # generated tasks, host root, compat="intercode"
    env = gym.make("leap/InterCodeBash-v0", tasks="files", data_dir="path/to/intercode", rootfs="debian")

``rootfs="debian"`` needs ``leap-gym intercode build-rootfs`` once (root + mmdebstrap);
``leap-gym intercode check`` builds one sandbox and reports whether this machine supports it.

Modules: ``env`` (``InterCodeBashEnv``), ``sandbox`` (host side, ``SandboxPool``) and ``sandbox_init`` (the
in-sandbox PID 1), ``rootfs`` (host and Debian roots), ``generated`` and ``original`` (task sources),
``reward`` (the original's reward), ``cli`` (the ``leap-gym intercode`` subcommands).
"""
