"""LLM teachers: LEAP's privileged correction through any OpenAI-compatible chat endpoint, and a self-teacher.

``LLMTeacher`` sends the whole student trajectory plus the privileged state in one request and asks for JSON
with one corrected reason/action per student step (LEAP's correction call). Replies are validated (same
length, required keys, the corrected action admissible where the env offers candidates); a bad reply is
retried with the error pointed out (so a response cache never replays the same bad answer), and after the last
try the valid steps are kept and the rest marked invalid in ``Correction.metadata`` instead of dropping the
episode.

``SelfTeacher`` is the paper's self-improvement setting: the student's own model (served through any chat
backend, e.g. ``leap-gym serve``) prompted step by step in the student format plus the privileged state; a
step counts as corrected only when its action differs from the student's and is valid.

A backend is anything with ``chat(messages, **params) -> result`` where ``result.text`` is the reply and
``result.cost`` its price (``leap_gym.agents.backends.openai_chat.OpenAIChat``), or a dict of ``OpenAIChat``
keyword arguments, so both teachers can be built from a run config alone::

    teacher:
      kind: leap_gym.agents.teachers.llm:LLMTeacher
      kwargs: {backend: {model: gpt-4o, base_url: "https://api.openai.com/v1", api_key_env: OPENAI_API_KEY}}

A reply the teacher cannot parse is dropped from the backend's cache (``forget``), so a re-run asks again.
``privilege`` > 0 shows the privileged state (the LLM teachers use all of it); 0 hides it, which makes the
"teacher without privilege" reference of a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from leap_gym.agents.backends.openai_chat import BackendError, OpenAIChat
from leap_gym.agents.base import INVALID_ACTION
from leap_gym.agents.prompting import build_messages, fill_template, match_candidate, parse_output
from leap_gym.agents.teachers.base import Teacher, same_action
from leap_gym.records import Correction, Trajectory
from leap_gym.specs import get_spec


class ChatBackend(Protocol):
    def chat(self, messages: list[dict[str, str]], **params: Any) -> Any: ...


def make_backend(backend: ChatBackend | dict[str, Any]) -> ChatBackend:
    """``backend`` itself, or an ``OpenAIChat`` built from a dict of its keyword arguments (a run
    config's)."""
    if isinstance(backend, dict):
        kwargs = dict(backend)
        if "model" not in kwargs:
            raise ValueError(f"an endpoint needs a model name; got keys {sorted(kwargs)}")
        if isinstance(kwargs.get("prices"), list):  # YAML has no tuples
            kwargs["prices"] = tuple(kwargs["prices"])
        return OpenAIChat(**kwargs)
    return backend


def _forget(backend: ChatBackend, result: Any) -> None:
    """Drop an unusable reply from the backend's cache, where it has one."""
    forget = getattr(backend, "forget", None)
    if forget is not None and not isinstance(result, str):
        forget(result)


# What an LLM teacher is told to correct for an env whose spec names no mode (see BenchmarkSpec.teacher_mode).
GENERIC_MODE = "Correct every step that does not make progress towards the goal."

_MAX_FIELD_CHARS = 3000


def privileged_summary(trajectory: Trajectory, t: int = 0) -> dict[str, Any]:
    """The privileged state at step ``t`` reduced to what a teacher prompt needs (bulky fields clipped)."""
    if not trajectory.steps:
        return {}
    priv = trajectory.steps[t].info.get("privileged", {})
    spec = get_spec(trajectory.env_id)
    fields = spec.privileged_fields if spec else None  # the env's choice of fields; none chosen: all of them
    chosen = {k: priv[k] for k in fields if k in priv} if fields else dict(priv)
    out = {}
    for k, v in chosen.items():
        text = json.dumps(v, ensure_ascii=False)
        out[k] = v if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS] + " ...(clipped)"
    return out


def correction_messages(trajectory: Trajectory, privileged: bool = True) -> list[dict[str, str]]:
    """LEAP's correction request, in our own words: role, input, tasks, per-env mode, output schema;
    ``privileged=False`` leaves the privileged state out (the teacher knows what the student knows)."""
    spec = get_spec(trajectory.env_id)
    mode = spec.teacher_mode if spec and spec.teacher_mode else GENERIC_MODE
    system = (
        "You are a teacher helping a student agent learn a text-based task. You can see a PRIVILEGED STATE "
        "that is hidden from the student (it will never see it, also not at test time).\n"
        "You get the student's trajectory as JSON: for each timestep its observation, candidate actions (if "
        "any), reason and action.\n"
        "Your tasks:\n"
        "1. Summarise the student's mistakes.\n"
        "2. For every timestep, assume the student acted as recorded up to that point, and give the reason "
        "and action that would be best from there. Use the privileged state to choose well.\n"
        "3. Reasons must rely only on what the student has observed so far. NEVER reveal privileged facts in "
        "a reason (hidden locations, target ids, the exact hidden answer); give general, transferable "
        "hints.\n4. When candidate actions are given, the corrected action must be one of them, verbatim.\n"
        f"Mode: {mode}\n"
        "Reply with one JSON object in a ```json fenced block, exactly:\n"
        '{"summary": "<mistakes>", "trajectory": [{"timestep": 0, "corrected_reason": "<reason>", '
        '"corrected_action": "<action>", "is_corrected": true}, ...]}\n'
        "with exactly one entry per student timestep, in order."
    )
    steps = [{"timestep": i, "observation": s.observation, "candidate_actions": s.admissible_actions,
              "reason": s.reason, "action": s.action} for i, s in enumerate(trajectory.steps)]
    state = privileged_summary(trajectory) if privileged else "(not available for this task)"
    user = (f"TASK: {trajectory.task}\n\nPRIVILEGED STATE:\n"
            f"{json.dumps(state, ensure_ascii=False, indent=1)}\n\n"
            f"STUDENT TRAJECTORY ({len(steps)} "
            f"timesteps):\n{json.dumps(steps, ensure_ascii=False, indent=1)}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class ReplyError(ValueError):
    """A teacher reply that cannot be used as a whole (no JSON, wrong shape)."""


def extract_json(text: str) -> Any:
    """The JSON object in a reply: a fenced block if present, else the outermost braces."""
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    candidates = [fence.group(1)] if fence else []
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start:end + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError:
            continue
    raise ReplyError("no parseable JSON object in the reply")


def validate_reply(data: Any, trajectory: Trajectory) -> tuple[list[Correction], list[str]]:
    """Per-step corrections from a parsed reply, and the problems found (empty when the reply is fully valid).

    Invalid steps become ``Correction(was_corrected=False, metadata={"valid": False, "error": ...})`` carrying
    the student's own action, so callers can keep the valid part.
    """
    if not isinstance(data, dict) or not isinstance(data.get("trajectory"), list):
        raise ReplyError('the reply must be an object with a "trajectory" list')
    entries = data["trajectory"]
    n = len(trajectory.steps)
    problems = [] if len(entries) == n else [f"expected {n} trajectory entries, got {len(entries)}"]
    by_step: dict[int, dict] = {}
    for pos, entry in enumerate(entries):
        if isinstance(entry, dict):
            ts = entry.get("timestep", pos)
            by_step.setdefault(ts if isinstance(ts, int) else pos, entry)
    out = []
    for t, step in enumerate(trajectory.steps):
        entry = by_step.get(t)
        error = None
        if entry is None:
            error = "missing entry"
        elif not isinstance(entry.get("corrected_action"),
                            str) or not isinstance(entry.get("corrected_reason"), str):
            error = "corrected_reason and corrected_action must be strings"
        else:
            action = entry["corrected_action"].strip()
            if not action and entry.get("is_corrected") is not False:
                error = "empty corrected_action"
            elif action and step.admissible_actions is not None:
                snapped = (match_candidate(action, step.admissible_actions)
                           or fill_template(action, step.admissible_actions))
                if snapped is None:
                    error = f"corrected_action {action!r} is not among the candidates"
                action = snapped or action
        if error:
            problems.append(f"timestep {t}: {error}")
            out.append(Correction(t, step.reason, step.action, False, {"valid": False, "error": error}))
            continue
        keep = entry.get("is_corrected") is False or not action
        action = step.action if keep else action
        corrected = entry["corrected_reason"].strip()
        reason = step.reason if keep and not corrected else corrected
        out.append(Correction(t, reason, action, not same_action(action, step.action), {"valid": True}))
    return out, problems


@dataclass
class TeacherStats:
    requests: int = 0
    retries: int = 0
    failed_episodes: int = 0
    invalid_steps: int = 0
    cost: float = 0.0


class LLMTeacher(Teacher):
    """LEAP's correction through a chat backend (GPT-4o in the paper; any OpenAI-compatible model here)."""

    name = "llm"

    def __init__(self, backend: ChatBackend | dict[str, Any], max_tries: int = 3, temperature: float = 0.3,
                 max_tokens: int = 4096, privilege: float = 1.0):
        self.backend, self.max_tries = make_backend(backend), max_tries
        self.privilege = privilege
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.stats = TeacherStats()

    def correct(self, trajectory: Trajectory) -> list[Correction]:
        if not trajectory.steps:
            return []
        messages = correction_messages(trajectory, privileged=self.privilege > 0)
        best: list[Correction] | None = None
        for attempt in range(self.max_tries):
            self.stats.requests += 1
            self.stats.retries += attempt > 0
            try:
                result = self.backend.chat(messages, **self.params)
            except BackendError as e:  # e.g. the trajectory exceeds the model's context: not worth retrying
                self.stats.failed_episodes += 1
                error = {"valid": False, "error": f"backend: {e}"[:500]}
                return [Correction(t, s.reason, s.action, False, dict(error))
                        for t, s in enumerate(trajectory.steps)]
            self.stats.cost += float(getattr(result, "cost", 0.0) or 0.0)
            text = getattr(result, "text", result)
            try:
                corrections, problems = validate_reply(extract_json(text), trajectory)
            except ReplyError as e:
                problems, corrections = [str(e)], None
                _forget(self.backend, result)
            if corrections is not None and (best is None or _valid(corrections) > _valid(best)):
                best = corrections
            if not problems:
                return corrections
            messages = messages + [{"role": "assistant", "content": text},
                                   {"role": "user",
                                    "content": "Your reply had problems: " + "; ".join(problems[:10])
                                    + ". Reply again with the full corrected JSON, one entry per timestep."}]
        if best is None:
            self.stats.failed_episodes += 1
            error = f"no usable reply after {self.max_tries} tries: {'; '.join(problems[:3])}"[:500]
            return [Correction(t, s.reason, s.action, False, {"valid": False, "error": error})
                    for t, s in enumerate(trajectory.steps)]
        self.stats.invalid_steps += len(best) - _valid(best)
        return best

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        prefix = Trajectory(trajectory.env_id, trajectory.task_id, trajectory.task, trajectory.steps[: t + 1])
        c = self.correct(prefix)[t]
        return c.reason, c.action


def _valid(corrections: list[Correction]) -> int:
    return sum(c.metadata.get("valid", True) for c in corrections)


class SelfTeacher(Teacher):
    """The student's own model as teacher: student prompt + privileged state, one generation per step."""

    name = "self"

    def __init__(self, backend: ChatBackend | dict[str, Any], history: int = 5, max_steps: int | None = None,
                 temperature: float = 0.0, max_tokens: int = 96, privilege: float = 1.0):
        self.backend, self.history, self.max_steps = make_backend(backend), history, max_steps
        self.privilege = privilege
        self.params = {"temperature": temperature, "max_tokens": max_tokens}
        self.stats = TeacherStats()

    def messages(self, trajectory: Trajectory, t: int) -> list[dict[str, str]]:
        steps = trajectory.steps
        history = [(s.observation, s.action) for s in steps[:t]]
        msgs = build_messages(trajectory.task, history, steps[t].observation, steps[t].admissible_actions,
                              k=self.history, env=trajectory.env_id)
        if self.privilege <= 0:
            return msgs
        hint = json.dumps(privileged_summary(trajectory, t), ensure_ascii=False)
        msgs[0]["content"] += ("\nYou also see a PRIVILEGED STATE hidden from the student; use it to choose "
                               "the best action, but do not mention its facts in your reason.")
        msgs[1]["content"] = f"PRIVILEGED STATE: {hint}\n" + msgs[1]["content"]
        return msgs

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        self.stats.requests += 1
        result = self.backend.chat(self.messages(trajectory, t), **self.params)
        self.stats.cost += float(getattr(result, "cost", 0.0) or 0.0)
        out = parse_output(getattr(result, "text", result), trajectory.steps[t].admissible_actions)
        if not out.format_ok:
            _forget(self.backend, result)
        return out.reason, out.action

    def correct(self, trajectory: Trajectory) -> list[Correction]:
        out = []
        for t, step in enumerate(trajectory.steps):
            if self.max_steps is not None and t >= self.max_steps:
                out.append(Correction(t, step.reason, step.action, False, {"valid": True, "skipped": True}))
                continue
            reason, action = self.propose(trajectory, t)
            cands = step.admissible_actions
            if action != INVALID_ACTION and cands is not None:
                action = match_candidate(action, cands) or fill_template(action, cands) or INVALID_ACTION
            valid = action != INVALID_ACTION
            changed = valid and not same_action(action, step.action)
            out.append(Correction(t, reason if changed else step.reason, action if changed else step.action,
                                  changed, {"valid": valid}))
            self.stats.invalid_steps += not valid
        return out
