"""A three-room text env that keeps the info contract: a fixture for tests of env-agnostic code (CLI,
wrappers)."""

from __future__ import annotations

import gymnasium as gym

from leap_gym.spaces import UnicodeText

ROOMS = ["hall", "kitchen", "garden"]


class ToyEnv(gym.Env):
    metadata = {"render_modes": []}
    privileged_info_keys = ("secret",)

    def __init__(self):
        self.observation_space = UnicodeText()
        self.action_space = UnicodeText()
        self.target = "garden"
        self.room = "hall"

    def _info(self, valid=True):
        plan = [] if self.room == self.target else [f"go to {self.target}"]
        acts = [f"go to {r}" for r in ROOMS if r != self.room]
        return {"task": f"find the key (it is in one of {ROOMS})", "task_id": f"toy/{self.target}",
                "task_type": "toy", "admissible_actions": acts, "action_valid": valid,
                "won": self.room == self.target, "score": float(self.room == self.target),
                "privileged": {"key_room": self.target, "expert_action": plan[0] if plan else "",
                               "expert_plan": plan},
                "secret": self.target}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = ROOMS[1 + int(self.np_random.integers(0, 2))]
        self.room = "hall"
        return f"You are in the {self.room}.", self._info()

    def step(self, action):
        valid = action in self._info()["admissible_actions"]
        if valid:
            self.room = action.removeprefix("go to ")
        obs = f"You are in the {self.room}." if valid else "Nothing happens."
        won = self.room == self.target
        return obs, float(won), won, False, self._info(valid)


TOY_ID = "leap-test/Toy-v0"
if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point="tests.toy_env:ToyEnv", max_episode_steps=5)
