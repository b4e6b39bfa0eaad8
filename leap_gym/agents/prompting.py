"""The step prompt format and the answer format, shared by HF students, prompting baselines and training rows.

A student step is one chat: a system message (role, the env's rules, the output format) and one user message
(task, the student's own last ``k`` observation-action pairs, the task again, the current observation and the
candidate actions when the env has them). The answer is ``format_target``'s reason line then action line;
``parse_output`` reads it back tolerantly and never raises.

``fit_step_prompt`` is the prompt at step ``t`` of a trajectory fitted to a token budget: training rows
(``leap_gym.leap.dataset``) and the acting student (``HFStudent``, over its own record of the episode) both
call it, so the prompts trained on are the prompts acted on.

Only student-view information goes in: the task text, observations, the student's own actions and the
admissible actions. Nothing here reads ``info``; callers pass those pieces explicitly, which keeps the
privileged state out by construction (``HFStudent`` additionally strips privileged keys from any ``info`` it
gets).

The fixed strings are kept short on purpose: a 1M-parameter student is trained on prompts cut to a few hundred
tokens, so every rule line costs context that the history could use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from leap_gym.agents.base import INVALID_ACTION, AgentOutput
from leap_gym.records import Trajectory
from leap_gym.specs import get_spec

DEFAULT_HISTORY = 5

ROLE = "You are an agent solving a task in a text environment, one action per turn."


def answer_head(reason: str) -> str:
    """The answer format up to its action: the reason marker, ``reason`` as given, then the action marker on
    the next line. The action follows after a space (constrained acting scores each candidate as that
    continuation)."""
    return f"REASON: {reason}\nACTION:"


def format_target(reason: str, action: str) -> str:
    """The assistant text a student is trained to produce: the reason on one line, then the action."""
    return f"{answer_head(' '.join(reason.split()))} {action.strip()}"


# The answer format as format_target writes it, so the rule shows exactly what the student is trained on.
FORMAT_RULE = "Answer in exactly this format:\n" + format_target("<one short sentence>", "<one action>")

# The rules for an env without a benchmark spec (each spec carries its env's own, ``BenchmarkSpec.rules``).
GENERIC_RULES = "Pick the action verbatim from the candidate actions when they are given."


def env_rules(env: str | None) -> str:
    """The rules of an env id's (or family name's) benchmark spec, looked up exactly; generic rules without
    one."""
    spec = get_spec(env)
    return spec.rules if spec else GENERIC_RULES


def system_prompt(env: str | None = None) -> str:
    return f"{ROLE}\n{env_rules(env)}\n{FORMAT_RULE}"


def clip_text(text: str, max_chars: int | None) -> str:
    """``text`` stripped, cut to ``max_chars`` with a trailing `` ...`` when longer (``None``: uncut)."""
    text = text.strip()
    if max_chars is not None and len(text) > max_chars:
        return text[:max_chars].rstrip() + " ..."
    return text


def build_user_prompt(task: str, history: Sequence[tuple[str, str]], observation: str,
                      admissible_actions: Sequence[str] | None, k: int = DEFAULT_HISTORY,
                      max_obs_chars: int | None = 600) -> str:
    """The user message; ``history`` holds the student's own earlier ``(observation, action)`` pairs."""
    k = max(int(k), 0)
    kept = list(history)[-k:] if k else []
    first = len(history) - len(kept)
    lines = [f"TASK: {task.strip()}"]
    if kept:
        lines.append(f"HISTORY (last {len(kept)} of {len(history)} steps):")
        for i, (obs, act) in enumerate(kept, start=first + 1):
            lines.append(f"[{i}] OBSERVATION: {clip_text(obs, max_obs_chars)}")
            lines.append(f"[{i}] ACTION: {act.strip()}")
        lines.append(f"TASK: {task.strip()}")
    lines.append(f"OBSERVATION: {observation.strip()}")
    if admissible_actions is not None:
        lines.append("CANDIDATE ACTIONS:")
        lines.extend(f"- {a}" for a in admissible_actions)
    lines.append("Your answer (REASON, then ACTION):")
    return "\n".join(lines)


def build_messages(task: str, history: Sequence[tuple[str, str]], observation: str,
                   admissible_actions: Sequence[str] | None, k: int = DEFAULT_HISTORY,
                   env: str | None = None, max_obs_chars: int | None = 600) -> list[dict[str, str]]:
    """Chat messages for one student decision (system + user); append ``format_target`` for a training row.

    ``env`` (an env id such as ``leap/WebShop-v0`` or a family name) picks the rule text; ``k`` bounds the
    history so prompts stay short as episodes grow (older steps are dropped, never the current observation);
    ``max_obs_chars`` clips long *history* observations (WebShop pages), never the current one.
    """
    return [{"role": "system", "content": system_prompt(env)},
            {"role": "user", "content": build_user_prompt(task, history, observation, admissible_actions, k,
                                                          max_obs_chars)}]


# Token ids of a prompt as a caller counts them (acting: the rendered prompt; training rows: prompt + answer).
Tokenize = Callable[[list[dict[str, str]]], list[int]]


@dataclass
class FittedPrompt:
    """A prompt fitted to a token budget: its messages, how many earlier steps it shows, its token ids as the
    caller's ``tokenize`` counted them (empty without one), whether they fit the budget, and whether the
    current observation was clipped to make them fit."""

    messages: list[dict[str, str]]
    shown: int
    ids: list[int] = field(default_factory=list)
    fits: bool = True
    clipped: bool = False


def fit_step_prompt(trajectory: Trajectory, t: int, *, k: int = DEFAULT_HISTORY,
                    max_obs_chars: int | None = 600, tokenize: Tokenize | None = None,
                    budget: int | None = None,
                    clip_observation: bool = False) -> FittedPrompt:
    """The step-format prompt the student sees at step ``t`` of ``trajectory``: its own ``(observation,
    action)`` pairs of ``steps[:t]`` (no reasons, as the paper), the observation and candidates of
    ``steps[t]``.

    Fitted to ``budget`` tokens as ``tokenize`` counts them: the most history, at most ``k`` steps, that fits;
    older steps go first, never the current observation. When not even the history-free prompt fits,
    ``clip_observation`` (training rows) clips the current observation, halving it down to about 200
    characters, until the prompt fits; otherwise the history-free prompt is returned whole with ``fits=False``
    and its caller decides (a training row is kept up to a hard cap, acting cuts it from the left).
    ``max_obs_chars`` clips the history's observations (``build_messages``).
    """
    step = trajectory.steps[t]
    history = [(s.observation, s.action) for s in trajectory.steps[:t]]

    def prompt(shown: int, obs_chars: int | None = None) -> list[dict[str, str]]:
        return build_messages(trajectory.task, history, clip_text(step.observation, obs_chars),
                              step.admissible_actions, k=shown, env=trajectory.env_id,
                              max_obs_chars=max_obs_chars)

    most = min(max(int(k), 0), t)
    if tokenize is None or budget is None:
        return FittedPrompt(prompt(most), most)
    for shown in range(most, -1, -1):
        ids = tokenize(messages := prompt(shown))
        if len(ids) <= budget:
            return FittedPrompt(messages, shown, ids)
    whole = FittedPrompt(messages, 0, ids, fits=False)
    chars = len(step.observation)
    while clip_observation and chars > 200:
        chars //= 2
        ids = tokenize(messages := prompt(0, chars))
        if len(ids) <= budget:
            return FittedPrompt(messages, 0, ids, clipped=True)
    return whole


# ------------------------------------------------------------------------------------------------------------
# Parsing

# A marker is the word, optionally wrapped in markdown (**ACTION**:, ### Action -), then ':' or '-'.
_MARK = r"[*_#>`\s]*{word}[*_`]*\s*[:：\-][*_`]*[ \t]*"
_ACTION_LINE = re.compile(r"(?im)^" + _MARK.format(word="action"))
_ACTION_ANY = re.compile(r"(?i)\baction[*_`]*\s*[:：][*_`]*[ \t]*")
_REASON = re.compile(r"(?i)(?:^|\b)" + _MARK.format(word=r"(?:reason|reasoning|thought|think)"))
_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.S)
_NEXT_MARK = re.compile(r"(?i)\s*\b(?:reason|reasoning|thought)\s*:.*$")


def _first_line_of(text: str) -> str:
    """First non-empty line; a fenced block right at the start contributes its first line instead."""
    text = text.lstrip()
    if text.startswith("```"):
        m = _FENCE.match(text)
        text = m.group(1) if m else text.strip("`")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("```"):
            return line
    return ""


def _clean_action(line: str) -> str:
    line = _NEXT_MARK.sub("", line).strip()
    line = line.strip("*_").strip()
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "`'\"":
        line = line[1:-1].strip()
    return line


def _norm(text: str) -> str:
    return " ".join(text.lower().strip(" .!\t").split())


def match_candidate(action: str, candidates: Sequence[str] | None) -> str | None:
    """The candidate equal to ``action`` up to case, spacing and a trailing period, else ``None``."""
    if not candidates:
        return None
    if action in candidates:
        return action
    target = _norm(action)
    for c in candidates:
        if _norm(c) == target:
            return c
    return None


_SLOT = re.compile(r"<[^<>\s][^<>]*>")


def is_template(candidate: str) -> bool:
    """Whether a candidate is a pattern with a free-text slot (WebShop lists ``search[<query>]``), not an
    action."""
    return _SLOT.search(candidate) is not None


def fill_template(action: str, candidates: Sequence[str] | None) -> str | None:
    """``action`` if it fills a template candidate's slot (``search[red shoes]`` for ``search[<query>]``),
    with the template's closing text restored when generation stopped short of it (``search[red shoes`` ->
    ``search[red shoes]``) and anything after the closing text dropped; else ``None``. Matching ignores case
    in the fixed parts; the slot needs real text."""
    for c in candidates or ():
        parts = _SLOT.split(c)
        if len(parts) != 2:
            continue
        head, tail = parts
        if not action.lower().startswith(head.lower()):
            continue
        slot = action[len(head):]
        end = slot.lower().find(tail.lower()) if tail else -1
        if end >= 0:
            slot = slot[:end]
        if slot.strip() and slot.strip() != c[len(head):len(c) - len(tail)]:
            return head + slot + tail
    return None


def parse_output(text: str | None, admissible_actions: Sequence[str] | None = None) -> AgentOutput:
    """Read ``REASON: ... ACTION: ...`` from model text; never raises.

    Tolerates any case, markdown emphasis around the markers, extra spacing, a missing reason, text after the
    action (only the first line after ``ACTION:`` counts) and fenced code blocks (after ``ACTION:``, or as the
    whole answer, as bash models like to write). With ``admissible_actions`` an action equal to a candidate up
    to case/spacing is returned in the candidate's exact spelling, and a bare answer equal to a candidate is
    accepted. Anything else unparseable gives ``AgentOutput(reason, INVALID_ACTION, text, format_ok=False)``.
    """
    raw = text if isinstance(text, str) else ""
    body = raw.replace("\r\n", "\n")
    m = _ACTION_LINE.search(body) or _ACTION_ANY.search(body)
    reason = ""
    action = ""
    if m:
        head, tail = body[:m.start()], body[m.end():]
        rm = _REASON.search(head)
        reason = head[rm.end():] if rm else head
        action = _clean_action(_first_line_of(tail))
    else:
        rm = _REASON.search(body)
        fence = _FENCE.search(body)
        if fence:  # a bare fenced block: the command is its first line
            action = _clean_action(_first_line_of(fence.group(1)))
            reason = body[rm.end():fence.start()] if rm else body[:fence.start()]
        elif admissible_actions and match_candidate(body.strip(), admissible_actions):
            action = body.strip()
    reason = " ".join(reason.replace("```", " ").split())
    snapped = match_candidate(action, admissible_actions) if action else None
    if snapped is not None:
        action = snapped
    if not action:
        return AgentOutput(reason=reason, action=INVALID_ACTION, raw_text=raw, format_ok=False)
    return AgentOutput(reason=reason, action=action, raw_text=raw, format_ok=True)


__all__ = ["DEFAULT_HISTORY", "FORMAT_RULE", "GENERIC_RULES", "ROLE", "FittedPrompt", "answer_head",
           "build_messages", "build_user_prompt", "clip_text", "env_rules", "fill_template",
           "fit_step_prompt",
           "format_target", "is_template", "match_candidate", "parse_output", "system_prompt"]
