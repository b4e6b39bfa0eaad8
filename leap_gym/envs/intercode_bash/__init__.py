"""InterCode Bash without Docker: a stdlib Linux sandbox, the original's reward, generated and original tasks.

``env`` holds ``InterCodeBashEnv`` (``leap/InterCodeBash-v0``); ``sandbox``/``sandbox_init`` the sandbox;
``rootfs`` the root file systems; ``generated`` and ``original`` the task sources; ``reward`` the reward.
"""
