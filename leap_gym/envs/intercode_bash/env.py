"""``leap/InterCodeBash-v0``: InterCode Bash (NL2Bash) in a per-episode Linux sandbox, with the original
reward.

Episode: the first observation is the task's query; each action runs as a fresh ``bash -c`` in the episode's
working directory (InterCode's ``cd`` emulation); ``submit`` ends the episode with the reward (1.0 = solved)
and ``skip`` ends it with 0. At reset the gold command runs in a second sandbox built from the same layers at
the same reset time; its output and file-system changes are the privileged state and the reward's reference.

``compat="intercode"`` reproduces the original's command wrapping (the action is pasted into
``/bin/bash -c "<action>"`` and re-split, which changes quoted commands) and its whitespace status parser;
``compat="clean"`` runs the action as written, tracks ``cd`` through bash itself and parses status lines
properly. Deviations from the original in both modes (see the spec): every episode starts from pristine
layers, a timed-out command is killed with everything it started, output is capped at 1 MiB (the command is
killed past 16 MiB), the gold gets 60 s instead of no timeout, and a broken reward computation yields reward 0
with ``info["reward_info"]["error"]`` set instead of raising. An action holding a NUL byte or longer than the
kernel accepts for one argument is invalid (nothing runs); a sandbox that dies under an episode ends it with
``truncated=True`` and ``info["env_error"]`` (see SECURITY.md for what the sandbox promises).

Determinism: fixed hostname, environment (no LANG, no TZ), tmpfs size and ``noatime``; generated files are
created in sorted order with times relative to the reset time. What cannot be pinned: ``/proc``'s link count
(the host's process count) and mount time, so ``ls -l /`` golds (original fs3 #26, fs4 #2, #11) may differ
between the gold's sandbox and the agent's; with ``rootfs="host"`` tool versions follow the host.
"""

from __future__ import annotations

import shlex
import time
from typing import Any

import gymnasium as gym

from leap_gym.envs.contract import RENDER_MODES, ResetNeeded, check_action, check_render_mode, task_index
from leap_gym.envs.intercode_bash import reward as rw
from leap_gym.envs.intercode_bash.generated import FAMILIES, Task, generate_task
from leap_gym.envs.intercode_bash.original import OriginalTasks
from leap_gym.envs.intercode_bash.rootfs import resolve_rootfs
from leap_gym.envs.intercode_bash.sandbox import (
    PATH_ENV,
    Limits,
    Sandbox,
    SandboxConfig,
    SandboxError,
    SandboxPool,
)
from leap_gym.spaces import UnicodeText

TIMED_OUT = "Command timed out"
MALFORMED = "Malformed command"
SANDBOX_LOST = "The sandbox stopped working"
# Linux's MAX_ARG_STRLEN: the longest single command-line argument (terminating NUL included) execve accepts.
# Each action reaches bash as one such argument (its script), so a longer one can never run.
MAX_ACTION_BYTES = 32 * 4096 - 1


def simplify_path(current: str, path: str) -> str:
    """InterCode's path resolution for ``cd``: textual, no quoting, ``~``, ``-`` or variable awareness."""
    if not path:
        return current
    base = "" if path.startswith("/") else current
    parts: list[str] = []
    for part in (base + "/" + path).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def decode_output(data: bytes, truncated: bool) -> str:
    """Strict UTF-8 as the original; a cut at the output cap may split a character, so trim that first."""
    if truncated:
        for cut in range(4):
            try:
                return data[: len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
    return data.decode("utf-8")


class InterCodeBashEnv(gym.Env):
    """InterCode Bash without Docker. See the module docstring for the episode and the compat modes.

    Args:
        tasks: ``"generated"`` (default: seeded task families), ``"files"`` (the 200 original NL2Bash tasks
            read from ``data_dir``) or ``"package"`` (the toy set inside the ``intercode-bench`` package).
        data_dir: for ``tasks="files"``: a folder with ``nl2bash_fs_{1..4}.json`` and
            ``setup_nl2b_fs_{1..4}.sh`` (or an InterCode checkout).
        split: generated: ``"train"`` (default), ``"test"`` or ``"valid"``; files: the file systems,
            ``"train"`` (1-2, as the LEAP paper trains), ``"test"`` (3-4, as it tests), ``"all"`` (default) or
            ``"fs1"`` .. ``"fs4"``; ``info["task_id"]`` (``nl2bash_fs_<n>.json:<i>``) names a task's file
            system either way. The package's toy set has no splits (``"all"`` or unset).
        task_seed, families, num_tasks: the generated task stream; a reset without ``task_index`` draws an
            index in ``[0, num_tasks)`` from the reset seed.
        rootfs: ``"host"`` (read-only binds of the host's /usr; no set-up) or ``"debian"`` (faithful; build
            once with ``leap-gym intercode build-rootfs``).
        compat: ``"intercode"`` or ``"clean"``.
        timeout, gold_timeout: seconds per agent command and for the gold.
        spares: ready sandboxes kept per config, built in the background while the agent acts; a reset takes
            two (the agent's and the gold's). 0 disables the pool: each reset then builds both (~100-250 ms).
        same_hostname: give the gold's sandbox the agent's hostname (the original's differ, so ``env`` and
            ``hostname`` golds could not reach 1.0 there).
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the last observation).
        privileged: ``False`` skips the per-step check of whether submitting now would win (a ``git status``
            in the sandbox when the output matches the gold's); ``info["privileged"]`` is then ``{}``. The
            gold still runs at reset: the reward needs it.

    The call rules (step before reset, task indexes, steps after the end) are those of
    ``leap_gym.envs.contract``.
    """

    metadata = {"render_modes": list(RENDER_MODES)}
    # the reward details after submit name the gold's file changes: teachers may read them, students not
    privileged_info_keys: tuple[str, ...] = ("reward_info",)

    def __init__(self, tasks: str = "generated", data_dir: str | None = None, split: str | None = None,
                 task_seed: int = 0, families: list[str] | None = None, num_tasks: int = 100_000,
                 rootfs: str = "host", compat: str = "intercode", timeout: float = 10.0,
                 gold_timeout: float = 60.0, spares: int = 2, same_hostname: bool = True,
                 render_mode: str | None = None, privileged: bool = True):
        if compat not in ("intercode", "clean"):
            raise ValueError(f"compat must be 'intercode' or 'clean', got {compat!r}")
        if tasks not in ("generated", "files", "package"):
            raise ValueError(f"tasks must be 'generated', 'files' or 'package', got {tasks!r}")
        self.render_mode = check_render_mode(render_mode)
        self.privileged = bool(privileged)
        self.observation_space = UnicodeText()
        self.action_space = UnicodeText()
        split = split or ("train" if tasks == "generated" else "all")
        self.tasks, self.split, self.task_seed, self.compat = tasks, split, int(task_seed), compat
        self.families = tuple(families) if families else tuple(FAMILIES)
        self.num_tasks = int(num_tasks)
        self.limits = Limits(timeout=float(timeout))
        self.gold_limits = Limits(timeout=float(gold_timeout))
        self.same_hostname = same_hostname
        self.rootfs = resolve_rootfs(rootfs)
        self._source = None
        if tasks == "generated":
            generate_task(0, self.task_seed, split, self.families)  # validate arguments now
        else:
            self._source = OriginalTasks(tasks, data_dir, self.rootfs, split)
            self.num_tasks = len(self._source)
        self._pool = SandboxPool(spares)
        self._sandbox: Sandbox | None = None
        self._task: Task | None = None
        self._done = True
        self._result: rw.RewardResult | None = None

    # ------------------------------------------------------------------------------------------ tasks

    def get_task(self, index: int) -> Task:
        if self._source is not None:
            return self._source.task(index)
        return generate_task(index, self.task_seed, self.split, self.families)

    def __len__(self) -> int:
        return self.num_tasks

    def _config(self, task: Task, hostname: str) -> SandboxConfig:
        layers = (self._source.layer(task, self.rootfs),) if task.fs is not None else ()
        return SandboxConfig(layers=layers + (self.rootfs.base,), binds=self.rootfs.binds, hostname=hostname)

    def _env_vars(self, task: Task, hostname: str) -> dict[str, str]:
        return {"PATH": PATH_ENV, "HOME": "/root", "HOSTNAME": hostname, **task.env}

    # ------------------------------------------------------------------------------------------ API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        index = task_index(options, self.num_tasks)
        if index is None:
            index = int(self.np_random.integers(0, self.num_tasks))
        self.close_sandbox()
        self._done = True  # until the new episode is ready: a failed reset leaves no episode to step in
        task = self.get_task(index)
        now = float(int(time.time()))
        hostname = "3b8f4c2e9d1a"
        self._env = self._env_vars(task, hostname)
        self._task = task
        gold_host = hostname if self.same_hostname else "9c4e1f7a2b6d"
        for attempt in range(2):  # a ready sandbox may have died while waiting: once more with new ones
            try:
                self._start(task, now, hostname, gold_host)
                break
            except SandboxError:
                if attempt:
                    raise
        self._workdir, self._last_obs, self._done, self._result = "/", task.query, False, None
        self._expert_done = False
        return task.query, self._info(action_valid=True)

    def _start(self, task: Task, now: float, hostname: str, gold_host: str) -> None:
        """Take the agent's and the gold's sandboxes, fill both and run the gold; only the agent's is kept."""
        self._sandbox = None
        gold_box = self._pool.get(self._config(task, gold_host))
        try:
            self._sandbox = self._pool.get(self._config(task, hostname))
            self._sandbox.send(Sandbox.populate_request(task.entries, now))
            self._gold = self._run_gold(gold_box, task, gold_host, now)
            self._sandbox.receive()
        except BaseException:
            self.close_sandbox()
            raise
        finally:
            gold_box.close()

    def _run_gold(self, box: Sandbox, task: Task, hostname: str, now: float) -> dict:
        """Gold in its own sandbox from the same layers and reset time: output, changes, hashes of new paths.

        One round trip for the file system, the gold and the status; a second one for the hashes, if any.
        """
        env = self._env_vars(task, hostname)
        argv = self._argv(task.gold)
        requests = [Sandbox.populate_request(task.entries, now)]
        if argv is not None:
            requests.append(box.exec_request(argv, "/", env, self.gold_limits))
        requests.append({"op": "status"})
        box.send_batch(requests)
        replies = box.receive_batch()
        if argv is None:
            out, valid = MALFORMED, False
        else:
            out, _, valid = self._observe(Sandbox.exec_result(*replies[1]))
        status = replies[-1][1].decode("utf-8", "surrogateescape")
        gold = {"output": out, "corrupt": not valid or out == MALFORMED, "status": status, "hashes": {},
                "error": None, "changes": []}
        try:
            gold["changes"] = self._parse(status)
        except Exception as e:  # e.g. the original parser on a path with a space
            gold["error"] = f"gold status could not be parsed: {type(e).__name__}: {e}"
        new = sorted({path for path, code in gold["changes"] if code in rw.NEW_CODES})
        try:
            requests = [box.exec_request(self._hash_argv(p), "/", env, self.limits) for p in new]
        except ValueError as e:  # a path shlex cannot split: the original's reward would crash
            gold["error"] = f"gold changes cannot be hashed: {e}"
            return gold
        if requests:
            box.send_batch(requests)
            for path, reply in zip(new, box.receive_batch(), strict=True):
                gold["hashes"][path] = self._hash_text(Sandbox.exec_result(*reply))
        return gold

    def _parse(self, status: str) -> list[tuple[str, str]]:
        return rw.parse_status(status) if self.compat == "intercode" else rw.parse_status_lines(status)

    def _hash_argv(self, path: str) -> list[str]:
        """The original's content check: ``md5sum`` for dotted paths, else ``md5deep -r`` (absent: equal)."""
        if self.compat == "intercode":
            return shlex.split(("md5sum " if "." in path else "md5deep -r ") + path)
        return ["md5sum", path] if "." in path else ["md5deep", "-r", path]

    @staticmethod
    def _hash_text(res) -> str:
        return res.output.decode("utf-8", "replace") + f"\n[rc={res.rc}]"

    def _hash(self, box: Sandbox, path: str) -> str:
        return self._hash_text(box.exec(self._hash_argv(path), "/", self._env, self.limits))

    def step(self, action: str):
        if self._task is None:
            raise ResetNeeded()
        check_action(action)
        if self._done:  # the contract: nothing runs after the end
            return self._last_obs, 0.0, True, False, self._info(False, action_executed=False,
                                                                result=self._result)
        problem = self._invalid(action)
        if problem:  # before any parsing: shlex.split is quadratic in the action's length
            self._last_obs = problem
            return problem, 0.0, False, False, self._info(action_valid=False, action_executed=False)
        stripped = action.strip()
        if stripped == "skip":
            self._done = True
            self._last_obs = "skipped"
            return "skipped", 0.0, True, False, self._info(action_valid=True, action_executed=False)
        if stripped.startswith("submit"):
            try:
                result = self._reward()
            except SandboxError as e:
                return self._lost(e)
            self._done = True
            self._result = result
            info = self._info(action_valid=True, action_executed=True, result=result)
            return self._last_obs, float(result.reward), True, False, info
        try:
            obs, executed, valid = self._run_agent(action)
            self._expert_done = self.privileged and self._would_succeed(obs)
        except SandboxError as e:
            return self._lost(e)
        self._last_obs = obs
        return obs, 0.0, False, False, self._info(action_valid=valid, action_executed=executed)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._task is None:
            raise ResetNeeded("render")
        return self._last_obs

    @staticmethod
    def _invalid(action: str) -> str | None:
        """Why ``action`` can never run as a command line (a NUL byte, longer than the kernel allows), or
        None."""
        if "\0" in action:
            return "Invalid action: it contains a NUL byte, which a command line cannot hold"
        if len(action) > MAX_ACTION_BYTES // 4:
            size = len(action.encode("utf-8", "surrogatepass"))
            if size > MAX_ACTION_BYTES:
                return (f"Invalid action: it is {size} bytes long, over the kernel's limit of "
                        f"{MAX_ACTION_BYTES} bytes for one command-line argument")
        return None

    def _lost(self, error: SandboxError):
        """The sandbox died under the episode (its PID 1 was killed, e.g. by the host's OOM killer): end the
        episode as truncated and say why; the next reset takes a new sandbox."""
        self._done = True
        self.close_sandbox()
        reason = f"{SANDBOX_LOST} ({error}); the episode ends here, the next reset starts a new sandbox"
        self._last_obs = reason
        info = self._info(action_valid=False, action_executed=False)
        info["env_error"] = reason
        return reason, 0.0, False, True, info

    # ------------------------------------------------------------------------------------------ commands

    def _run_agent(self, action: str) -> tuple[str, bool, bool]:
        if self.compat == "clean":
            return self._run_clean(action)
        is_cd = action.startswith("cd")
        cwd = self._workdir
        if is_cd:
            try:
                arg = action[action.index("cd ") + 3:].strip()
            except ValueError:  # "cd", "cd..": the original crashes here
                return MALFORMED, False, False
            new = simplify_path(self._workdir, arg)
            action, cwd = "cd " + new, "/"
        out, executed, valid = self._execute(self._sandbox, action, cwd, self._env, self.limits)
        if is_cd and executed:
            self._workdir = new
        return out, executed, valid

    def _argv(self, action: str) -> list[str] | None:
        """The argv a shell string runs as: re-split inside ``<shell> -c "..."`` (intercode) or as written."""
        shell = self._task.shell if self._task is not None else "/bin/bash"
        if self.compat == "clean":
            return [shell, "-c", action]
        try:
            return shlex.split(shell + ' -c "' + action.strip() + '"')
        except ValueError:
            return None

    @staticmethod
    def _observe(res) -> tuple[str, bool, bool]:
        if res.timed_out:
            return TIMED_OUT, False, True
        try:
            out = decode_output(res.output, res.flooded or res.total_bytes > len(res.output))
        except UnicodeDecodeError:
            return MALFORMED, False, True
        return out, res.rc == 0, True

    def _execute(self, box: Sandbox, action: str, cwd: str, env: dict,
                 limits: Limits) -> tuple[str, bool, bool]:
        """(observation, executed, valid) for one shell string, wrapped as the compat mode says."""
        argv = self._argv(action)
        if argv is None:
            return MALFORMED, False, False
        return self._observe(box.exec(argv, cwd, env, limits))

    def _run_clean(self, action: str) -> tuple[str, bool, bool]:
        """A lone ``cd DIR`` changes the working directory (resolved by bash); anything else runs as
        written."""
        try:
            words = shlex.split(action)
        except ValueError:
            words = []
        if words and words[0] == "cd" and len(words) <= 2 and not any(c in action for c in ";&|<>`$("):
            out, executed, valid = self._execute(self._sandbox, action + " && pwd", self._workdir, self._env,
                                                 self.limits)
            if executed:
                self._workdir = out.strip().splitlines()[-1] if out.strip() else self._workdir
                return "", True, True
            return out, executed, valid
        return self._execute(self._sandbox, action, self._workdir, self._env, self.limits)

    # ------------------------------------------------------------------------------------------ reward

    def _reward(self) -> rw.RewardResult:
        gold = self._gold
        try:
            if gold["error"]:
                raise RuntimeError(gold["error"])
            agent = self._parse(self._sandbox.status())
            p1, miss, extra, same = rw.file_diff_part(agent, gold["changes"])
            correct = sum(self._hash(self._sandbox, p) == gold["hashes"].get(p) for p in same)
            p2 = round(0.33 * correct / len(same), 2) if same else 0.33
            eval_obs = None if gold["corrupt"] else gold["output"]
            sim, p3 = rw.similarity_part(self._last_obs, eval_obs)
            return rw.RewardResult(reward=rw.combine(p1, p2, p3),
                                   parts={"file_diff": p1, "file_changes": p2, "answer_similarity": p3},
                                   diff_miss=miss, diff_extra=extra, same=same, same_correct=correct,
                                   similarity=sim)
        except SandboxError:
            raise  # no reward can be computed without the agent's sandbox: the episode is lost, not failed
        except Exception as e:  # never raise into a training loop: a flagged zero instead
            return rw.RewardResult(reward=0.0, error=f"{type(e).__name__}: {e}")

    def _would_succeed(self, obs: str) -> bool:
        """Whether submitting now scores 1.0 (checked only when the observation already equals the gold's)."""
        if obs != self._gold["output"] or self._gold["error"]:
            return False
        try:
            return set(self._parse(self._sandbox.status())) == set(self._gold["changes"])
        except SandboxError:
            raise
        except Exception:
            return False

    # ------------------------------------------------------------------------------------------ info

    def _info(self, action_valid: bool, action_executed: bool | None = None,
              result: rw.RewardResult | None = None) -> dict[str, Any]:
        task, gold = self._task, self._gold
        privileged = {}
        if self.privileged:
            expert = "submit" if (self._expert_done or self._done) else task.gold
            privileged = {
                "gold_command": task.gold,
                "gold_output": gold["output"],
                "gold_changes": [list(x) for x in gold["changes"]],
                "expert_action": expert,
                "expert_plan": [expert] if expert == "submit" else [task.gold, "submit"],
            }
        won = result is not None and result.reward == 1.0
        info = {
            "task": task.query, "task_id": task.task_id, "task_type": task.task_type,
            "admissible_actions": None, "action_valid": action_valid, "won": won,
            "score": float(result.reward) if result is not None else 0.0,
            "privileged": privileged, "workdir": self._workdir,
        }
        if action_executed is not None:
            info["action_executed"] = action_executed
        if result is not None:
            info["reward_info"] = result.to_info()
        return info

    # ------------------------------------------------------------------------------------------ cleanup

    def close_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def close(self) -> None:
        self.close_sandbox()
        self._pool.close()
        super().close()

