"""``leap/ALFWorld-v0``: ALFWorld's text engine with privileged state, generated tasks and a fact-based
oracle.

Nothing heavy is imported here: textworld/alfworld load when an env is built (``leap_gym.envs.alfworld.env``).
"""
