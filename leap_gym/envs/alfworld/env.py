"""``leap/ALFWorld-v0``: the real ALFWorld text engine as a Gymnasium env, with privileged state for teachers.

Task sources: ``tasks="generated"`` (default; seeded games of all six task types built from the alfworld
wheel's scene data, ``split="train"`` on ALFWorld's training scenes, ``split="test"`` on its held-out ones) or
``tasks="files"`` (ALFWorld's ``json_2.1.1`` games under ``data_dir``/``$ALFWORLD_DATA``).

``info["privileged"]`` (students never see it, see ``leap_gym.wrappers.StudentView``):
``object_locations`` (object -> receptacle, or ``"agent"`` when held), ``receptacle_contents``, ``opened``
(openable receptacle -> bool), ``agent_location`` (the receptacles at the agent's position, ``[]`` before the
first ``go to``), ``shared_locations`` (groups of receptacles one ``go to`` reaches together),
``object_states`` (object -> subset of clean/hot/cool/toggled), ``goal`` (task type, target
object/receptacle/lamp classes, ``count``, required ``state``, ``satisfied`` instances), ``expert_plan`` (the
oracle's remaining commands from this very state) and ``expert_action`` (its first command).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from leap_gym.envs.alfworld import oracle
from leap_gym.envs.alfworld.engine import guard_argv, make_engine
from leap_gym.envs.alfworld.generate import SPLITS, generate_game
from leap_gym.envs.alfworld.tasks import (
    GRAMMARS,
    TASK_TYPES,
    Game,
    collect_game_dirs,
    data_root,
    load_game_dir,
    task_description,
)
from leap_gym.envs.alfworld.world import World
from leap_gym.envs.contract import RENDER_MODES, ResetNeeded, check_action, check_render_mode, task_index
from leap_gym.spaces import UnicodeText

TASK_SOURCES = ("generated", "files")
EXPERTS = ("oracle", "planner")
_IDLE_ACTION = "look"  # the expert action when there is nothing left to do (won, or a dead end)

# oracle verb -> engine action whose template words it in this game's grammar
_TEMPLATE_ACTIONS = {"put": "putobject", "take": "pickupobject", "open": "openobject", "use": "toggleobject",
                     "heat": "heatobject", "cool": "coolobject", "clean": "cleanobject"}


class ALFWorldEnv(gym.Env):
    """ALFWorld on textworld's ``PddlEnv``; ``reset(options={"task_index": i})`` picks the game.

    Args:
        tasks: ``"generated"`` or ``"files"``.
        split: generated: ``"train"`` | ``"test"``; files: a folder of ``json_2.1.1`` (``train``,
            ``valid_seen``, ``valid_unseen``, ...).
        data_dir: files only; the folder with ``json_2.1.1`` (default ``$ALFWORLD_DATA``).
        grammar: ``"file"`` keeps each game's wording (released files: ``put X in/on Y``); ``"alfworld"`` uses
            the alfworld package grammar (``move X to Y``). Generated games always use the package grammar.
        task_types: restrict to these ALFWorld task types.
        task_seed: the generation seed (generated tasks ``(task_seed, task_index)`` are fixed games).
        num_tasks: files: keep the first N; generated: the range ``task_index`` is drawn from when a reset
            gives none (default 1,000,000).
        expert: ``"oracle"`` (fact-based, any state, microseconds) or ``"planner"`` (Fast Downward, seconds).
        fast: ``False`` runs the unmodified engine (the speed reference; identical outputs).
        cache_dir: where translated game files persist across processes (files: default
            ``~/.cache/leap-gym/alfworld-sas`` or ``$LEAP_GYM_CACHE``; ``False`` keeps them in memory only;
            generated games are kept in memory unless a folder is given).
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the current observation).
        privileged: ``False`` skips the world model and the expert's plan at every step (about a third of a
            step's time with ``expert="oracle"``, and the planner's search with ``expert="planner"``);
            ``info["privileged"]`` is then ``{}``.

    The call rules (step before reset, task indexes, steps after the end) are those of
    ``leap_gym.envs.contract``.
    """

    metadata = {"render_modes": list(RENDER_MODES)}
    privileged_info_keys: tuple[str, ...] = ()

    def __init__(self, tasks: str = "generated", split: str | None = None, data_dir: str | None = None,
                 grammar: str = "file", task_types: tuple[str, ...] | list[str] | None = None,
                 task_seed: int = 0, num_tasks: int | None = None, expert: str = "oracle", fast: bool = True,
                 cache_dir: str | bool | None = None, render_mode: str | None = None,
                 privileged: bool = True):
        self.render_mode = check_render_mode(render_mode)
        self.privileged = bool(privileged)
        if tasks not in TASK_SOURCES:
            raise ValueError(f"tasks must be one of {TASK_SOURCES}, got {tasks!r}")
        if grammar not in GRAMMARS:
            raise ValueError(f"grammar must be one of {GRAMMARS}, got {grammar!r}")
        if expert not in EXPERTS:
            raise ValueError(f"expert must be one of {EXPERTS}, got {expert!r}")
        task_types = tuple(task_types) if task_types else TASK_TYPES
        unknown = set(task_types) - set(TASK_TYPES)
        if unknown:
            raise ValueError(f"unknown task types {sorted(unknown)}; known: {TASK_TYPES}")
        self.tasks, self.grammar, self.task_types = tasks, grammar, task_types
        self.task_seed, self.expert, self.fast = int(task_seed), expert, fast
        self.cache_dir = cache_dir if cache_dir is not None or tasks == "files" else False
        self.observation_space = UnicodeText()
        self.action_space = UnicodeText()
        if tasks == "files":
            self.split = split or "valid_seen"
            self._root = data_root(data_dir)
            self._dirs = collect_game_dirs(self._root, self.split, task_types)
            if num_tasks is not None:
                self._dirs = self._dirs[:num_tasks]
            if not self._dirs:
                raise ValueError(f"no ALFWorld games of types {task_types} under {self._root / self.split}")
            self.num_tasks = len(self._dirs)
        else:
            self.split = split or "train"
            if self.split not in SPLITS:
                raise ValueError(f"generated tasks have splits {SPLITS}, got {self.split!r}")
            self.num_tasks = int(num_tasks) if num_tasks is not None else 1_000_000
        self._engine = None
        self._game: Game | None = None
        self._loaded_key: tuple | None = None
        self._state = None
        self._won = False
        self._terminated = False

    # -- games ---------------------------------------------------------------------------------------------
    def game(self, task_index: int) -> Game:
        """The game at ``task_index`` (generated games are built and validated on first use)."""
        if self.tasks == "files":
            return load_game_dir(self._dirs[task_index], self._root, self.grammar)
        return generate_game(self.split, self.task_seed, task_index, task_types=self.task_types)

    def _engine_for(self):
        if self._engine is None:
            self._engine = make_engine(fast=self.fast, planner=self.expert == "planner" and self.privileged,
                                       cache_dir=self.cache_dir)
        return self._engine

    # -- Gymnasium API -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        index = task_index(options, self.num_tasks)
        if index is None:
            index = int(self.np_random.integers(self.num_tasks))
        engine = self._engine_for()
        key = (self.tasks, self.split, self.task_seed, index)
        with guard_argv():
            if key != self._loaded_key:
                self._loaded_key = None
                self._game = self.game(index)
                try:
                    engine.load(self._game.data)
                except Exception as e:  # a game that passed the load-time checks but not the engine's parser
                    where = self._game.meta.get("path", self._game.task_id)
                    raise ValueError(f"cannot load ALFWorld game {where}: {type(e).__name__}: {e}") from None
                self._loaded_key = key
                templates = engine._logic.actions  # forwarded by the wrappers to the PddlEnv
                self._templates = {verb: templates[name].template for verb, name in _TEMPLATE_ACTIONS.items()
                                   if name in templates}
                self._task = task_description(self._game.data["grammar"])
            self._state = engine.reset()
        if self.privileged:
            self._static = World.from_facts(self._state["_facts"], self._state["_entity_infos"])
        self._won = self._terminated = False
        return self._state.feedback, self._info(self._state, True)

    def step(self, action: str):
        if self._state is None:
            raise ResetNeeded()
        command = check_action(action).strip()
        if self._terminated:  # the contract: nothing runs after the end
            return self._state.feedback, 0.0, True, False, self._info(self._state, False)
        valid = command in self._state["_valid_commands"]
        with guard_argv():
            self._state, _, _ = self._engine.step(command)
        won = bool(self._state["won"])
        reward = 1.0 if won and not self._won else 0.0
        self._won = self._won or won
        self._terminated = won
        return self._state.feedback, reward, won, False, self._info(self._state, valid)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._state is None:
            raise ResetNeeded("render")
        return self._state.feedback

    def _info(self, state, valid: bool) -> dict[str, Any]:
        goal = self._game.goal
        privileged: dict[str, Any] = {}
        if self.privileged:
            world = World.from_facts(state["_facts"], state["_entity_infos"], self._static)
            if self.expert == "planner":
                plan = list(state.get("policy_commands") or [])
            else:
                plan = oracle.plan(world, goal, self._templates)
            privileged = world.privileged(goal)
            privileged["expert_plan"] = plan
            privileged["expert_action"] = plan[0] if plan else _IDLE_ACTION
        won = bool(state["won"])
        return {
            "task": self._task,
            "task_id": self._game.task_id,
            "task_type": goal.task_type,
            "admissible_actions": list(state["admissible_commands"]),
            "action_valid": bool(valid),
            "won": won,
            "score": 1.0 if won else 0.0,
            "privileged": privileged,
        }

    def close(self) -> None:
        self._engine = None
        self._state = None
        self._loaded_key = None
