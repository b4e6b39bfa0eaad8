"""What a benchmark is: one ``BenchmarkSpec`` per env id, the single table every consumer looks up.

A spec names the env (id, entry point, episode budget, default constructor arguments), the student prompt's
rules, the programmatic privileged expert, the leak meter's privileged-only facts, what an LLM teacher is told
and shown, and the constructor keyword that seeds the task sample. Adding a benchmark means writing its env
package and one spec, registered with ``leap_gym.registration.register_benchmark``.

Code is named by ``"module:attr"`` strings, imported only when used: this module imports nothing of the envs
or the agents (no torch), and ``leap_gym.envs`` never needs ``leap_gym.agents``.

Lookups take an env id, an id with Gymnasium's module prefix (``"pkg.mod:leap-x/Env-v0"``: the module is
imported first, as ``gym.make`` does, since importing it is what registers the spec), or a spec's family name,
matched exactly (case aside), never by substring: ``leap/InterCodeSQL-v0`` is not ``bash``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark. Strings ``"module:attr"`` are imported on use; ``None`` means the consumer's generic
    default (or, for ``expert`` and ``leak_facts``, that the benchmark has none)."""

    env_id: str
    entry_point: str  # "module:Class" of the Gymnasium env
    max_episode_steps: int  # the episode budget (Gymnasium's TimeLimit)
    family: str  # short name: benchmark presets and prompts may name the env by it
    rules: str  # the env's rules in the student prompt (candidate actions listed)
    episode_rules: str | None = None  # the rules when the student writes its actions itself; None: ``rules``
    expert: str | None = None  # "module:Class" of the programmatic privileged expert (a Teacher)
    # "module:function" (trajectory, t) -> privileged-only facts for the leak meter
    leak_facts: str | None = None
    teacher_mode: str | None = None  # what an LLM teacher is told to correct; None: the generic mode
    privileged_fields: tuple[str, ...] | None = None  # privileged keys an LLM teacher sees; None: all of them
    seed_kwarg: str | None = "task_seed"  # constructor keyword that draws a different task sample
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # default constructor arguments


ALFWORLD = BenchmarkSpec(
    env_id="leap/ALFWorld-v0",
    entry_point="leap_gym.envs.alfworld.env:ALFWorldEnv",
    max_episode_steps=50,
    family="alfworld",
    rules=("You are in a household. Pick the action verbatim from the candidate actions. "
           "Do not repeat your last action if it did not help. "
           "\"Nothing happens.\" means the action was invalid."),
    episode_rules=("You are in a household. Commands: go to <place>, open <place>, close <place>, "
                   "take <object> from <place>, put <object> in/on <place>, clean/heat/cool <object> with "
                   "<place>, use <lamp>, examine <thing>, look, inventory. Name things exactly as the "
                   "observations do (\"desk 1\"). \"Nothing happens.\" means the command did not work: try "
                   "another one."),
    expert="leap_gym.agents.teachers.alfworld:ALFWorldExpertTeacher",
    leak_facts="leap_gym.agents.teachers.alfworld:privileged_only_facts",
    # LEAP's correction mode for the benchmark, in our words (Choudhury & Sodhi, 2025, arXiv 2410.05434; the
    # authors' prompts/<env>/correction_oracle_template.j2 in sanjibanc/leap_llm).
    teacher_mode=("Correct EVERY step: give the reason and action you would take in the student's position. "
                  "Reasons use common-sense hints (where such items are usually found) instead of naming "
                  "hidden locations. The agent can carry one object at a time."),
    privileged_fields=("goal", "object_locations", "expert_plan"),
)

WEBSHOP = BenchmarkSpec(
    env_id="leap/WebShop-v0",
    entry_point="leap_gym.envs.webshop.env:WebShopEnv",
    max_episode_steps=15,
    family="webshop",
    rules=("You are shopping on a website. Actions are search[query] or click[button], "
           "with the button taken verbatim from the candidate actions. "
           "Buy quickly: an unfinished task scores 0."),
    episode_rules=("You are shopping on a website. Actions are search[query] or click[button], with the "
                   "button text exactly as the page shows it. Buy quickly: an unfinished task scores 0."),
    expert="leap_gym.agents.teachers.webshop:WebShopExpertTeacher",
    leak_facts="leap_gym.agents.teachers.webshop:privileged_only_facts",
    teacher_mode=("Correct SPARINGLY: copy steps that are good enough and set is_corrected to false for "
                  "them. Fix indecision (a reasonable purchase beats running out of steps, which scores 0). "
                  "Prices in search queries do not help; fix only clearly poor queries."),
    privileged_fields=("goal", "target_asin", "target_product", "option_assignment", "expert_plan"),
)

INTERCODE_BASH = BenchmarkSpec(
    env_id="leap/InterCodeBash-v0",
    entry_point="leap_gym.envs.intercode_bash.env:InterCodeBashEnv",
    max_episode_steps=10,
    family="bash",
    rules=("You are in a Linux shell. The action is one bash command on a single line (under 100 "
           "characters), or submit when the task is done."),
    expert="leap_gym.agents.teachers.intercode_bash:BashExpertTeacher",
    leak_facts="leap_gym.agents.teachers.intercode_bash:privileged_only_facts",
    teacher_mode=("Correct as many steps as you can, to show how to recover from errors. Reasons are first "
                  "person and explain the command syntax, including syntax errors visible in the "
                  "observations. Any command with the same effect as the gold command is fine."),
    privileged_fields=("gold_command", "gold_output", "gold_changes"),
)

# env id -> spec, in registration order: the built-in three first (the tiny tokenizer's corpus lists their
# rules in this order).
SPECS: dict[str, BenchmarkSpec] = {s.env_id: s for s in (ALFWORLD, WEBSHOP, INTERCODE_BASH)}


def resolve_env_id(env_id: str) -> str:
    """``env_id`` without Gymnasium's ``module:`` prefix, after importing that module (it registers the
    env)."""
    module, sep, name = env_id.rpartition(":")
    if sep:
        importlib.import_module(module)
    return name


def get_spec(env: str | None) -> BenchmarkSpec | None:
    """The spec of an env id (``module:``-prefixed or not) or family name; ``None`` when no benchmark is
    named."""
    if not env:
        return None
    env_id = resolve_env_id(env)
    if env_id in SPECS:
        return SPECS[env_id]
    name = env_id.lower()
    return next((s for s in SPECS.values() if s.family.lower() == name), None)


def spec_for(env: str) -> BenchmarkSpec:
    """Like ``get_spec``, but an env without a spec is a one-line ``ValueError`` naming the known ids."""
    spec = get_spec(env)
    if spec is None:
        raise ValueError(f"no benchmark spec for {env!r}; known: {', '.join(SPECS)}")
    return spec


def load_symbol(path: str) -> Any:
    """The object a ``"module:attr"`` string names, importing its module."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
