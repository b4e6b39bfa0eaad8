"""leap-gym: benchmark envs with privileged state, and the LEAP loop for students that beat their teacher.

Importing the package registers the ``leap/*`` environments with Gymnasium through string entry points, so
``import leap_gym`` stays light: no torch, transformers or textworld until an env or a model is built. A new
benchmark is its env package plus one ``BenchmarkSpec`` passed to ``register_benchmark``.
"""

from leap_gym.registration import list_envs, register_benchmark, register_envs
from leap_gym.specs import BenchmarkSpec

__version__ = "0.1.0"

register_envs()

__all__ = ["BenchmarkSpec", "__version__", "list_envs", "register_benchmark", "register_envs"]
