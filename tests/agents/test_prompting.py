"""The student prompt builder and the tolerant REASON/ACTION parser."""

from __future__ import annotations

import pytest

from leap_gym.agents.base import INVALID_ACTION
from leap_gym.agents.prompting import build_messages, format_target, parse_output, system_prompt
from leap_gym.specs import get_spec


@pytest.mark.parametrize("text, reason, action", [
    ("REASON: the mug is here\nACTION: take mug 1 from shelf 1", "the mug is here",
     "take mug 1 from shelf 1"),
    ("reason: lower case\naction: go to shelf 1", "lower case", "go to shelf 1"),
    ("  Reason :   spaced   out  \n\n  Action :   go to shelf 1   \n", "spaced out", "go to shelf 1"),
    ("**REASON:** bold\n**ACTION:** open fridge 1", "bold", "open fridge 1"),
    ("### Reason: heading\n### Action: look", "heading", "look"),
    ("ACTION: inventory", "", "inventory"),  # missing reason
    ("REASON: one\nACTION: go to desk 1\nREASON: more rambling\nACTION: go to bed 1", "one", "go to desk 1"),
    ("REASON: extra text after\nACTION: look\nThis is why I looked around.", "extra text after", "look"),
    ("REASON: fix it\nACTION:\n```bash\nfind . -name '*.txt' | wc -l\n```", "fix it",
     "find . -name '*.txt' | wc -l"),
    ("REASON: inline\nACTION: `ls -la`", "inline", "ls -la"),
    ("```\nREASON: fenced whole\nACTION: go to sofa 1\n```", "fenced whole", "go to sofa 1"),
    ("I think we should count.\n```sh\nwc -l notes.txt\n```", "I think we should count.", "wc -l notes.txt"),
    ("REASON: same line ACTION: go to cart 1", "same line", "go to cart 1"),
    ("REASON: multi\nline reason\nACTION: look", "multi line reason", "look"),
    ("Thought: react style\nAction: search[blue shoes]", "react style", "search[blue shoes]"),
    ("REASON: windows\r\nACTION: look\r\n", "windows", "look"),
])
def test_parse_tolerant(text, reason, action):
    out = parse_output(text)
    assert out.format_ok and (out.reason, out.action) == (reason, action)
    assert out.raw_text == text


@pytest.mark.parametrize("text", ["", "   ", "I do not know what to do.", "REASON: thinking only",
                                  "REASON: empty action\nACTION:   \n", None, 42, "ACTION:\n```\n```"])
def test_parse_unparseable_is_invalid_never_raises(text):
    out = parse_output(text)
    assert out.action == INVALID_ACTION and not out.format_ok


def test_parse_snaps_to_candidates():
    cands = ["go to shelf 1", "take mug 1 from shelf 1"]
    assert parse_output("REASON: r\nACTION: Go To  Shelf 1.", cands).action == "go to shelf 1"
    assert parse_output("take mug 1 from shelf 1", cands).action == "take mug 1 from shelf 1"
    assert not parse_output("take mug 1 from shelf 1").format_ok  # bare text needs candidates to be accepted
    # not a candidate: kept verbatim (the env decides validity)
    assert parse_output("REASON: r\nACTION: go to shelf 9", cands).action == "go to shelf 9"


def test_format_target_round_trips():
    text = format_target("  the mug is\n usually here ", "take mug 1 from shelf 1")
    assert text == "REASON: the mug is usually here\nACTION: take mug 1 from shelf 1"
    out = parse_output(text)
    assert (out.reason, out.action, out.format_ok) == ("the mug is usually here", "take mug 1 from shelf 1",
                                                       True)


def test_build_messages_content_and_history_window():
    history = [(f"obs {i}", f"act {i}") for i in range(8)]
    msgs = build_messages("find the key", history, "You are in the hall.", ["go to kitchen", "go to garden"],
                          k=3, env="leap/ALFWorld-v0")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == system_prompt("alfworld") and "Nothing happens." in msgs[0]["content"]
    user = msgs[1]["content"]
    assert "obs 4" not in user and "act 4" not in user
    assert all(f"act {i}" in user for i in (5, 6, 7)) and "[6] OBSERVATION: obs 5" in user
    assert user.count("TASK: find the key") == 2  # repeated after the history, as in the paper's prompt
    assert user.index("You are in the hall.") < user.index("- go to kitchen")
    no_hist = build_messages("t", history, "o", None, k=0)[1]["content"]
    assert "HISTORY" not in no_hist and "CANDIDATE" not in no_hist


def test_build_messages_clips_long_history_observations_only():
    long = "x" * 5000
    user = build_messages("t", [(long, "a")], long, None, max_obs_chars=100)[1]["content"]
    assert "OBSERVATION: " + "x" * 100 + " ...\n" in user  # history clipped
    assert "OBSERVATION: " + long + "\n" in user  # the current observation is never clipped


def test_env_family():
    assert get_spec("leap/WebShop-v0").family == "webshop"
    assert get_spec("leap/InterCodeBash-v0").family == "bash"
    assert get_spec("ALFWorld").family == "alfworld"
    assert get_spec(None) is None and get_spec("leap-test/Toy-v0") is None


WEBSHOP_CANDS = ["click[back to search]", "click[next >]", "search[<query>]"]


@pytest.mark.parametrize("action, filled", [
    ("search[red running shoes]", "search[red running shoes]"),
    ("SEARCH[red shoes]", "search[red shoes]"),    # in the template's spelling
    ("search[red shoes", "search[red shoes]"),     # generation stopped before the bracket
    ("search[red shoes] now", "search[red shoes]"),
    ("search[<query>]", None),                     # the template itself is no search
    ("search[]", None),
    ("search[  ]", None),
    ("click[red shoes]", None),
    ("serch[red shoes]", None),
])
def test_fill_template(action, filled):
    from leap_gym.agents.prompting import fill_template, is_template

    assert fill_template(action, WEBSHOP_CANDS) == filled
    assert fill_template(action, None) is None and fill_template(action, ["look"]) is None
    assert [is_template(c) for c in WEBSHOP_CANDS] == [False, False, True]
    assert not is_template("click[< prev]") and not is_template("go to cabinet 1")


def test_fit_step_prompt_drops_oldest_history_then_clips_the_observation():
    from leap_gym.agents.prompting import fit_step_prompt
    from leap_gym.records import Step, Trajectory

    steps = [Step(observation=f"obs {t} " + "y" * 50, action=f"act {t}") for t in range(4)]
    steps.append(Step(observation="now " + "z" * 1000, action="", admissible_actions=["look"]))
    traj = Trajectory(env_id="leap/ALFWorld-v0", task_id="t", task="find the key", steps=steps)

    def chars(messages):  # one "token" per character
        return [0] * sum(len(m["content"]) for m in messages)

    full = fit_step_prompt(traj, 4, k=3)
    assert full.shown == 3 and full.ids == [] and full.fits
    bare = len(chars(fit_step_prompt(traj, 4, k=0).messages))
    one = fit_step_prompt(traj, 4, k=3, tokenize=chars, budget=bare + 200)
    assert one.shown == 1
    assert "act 3" in one.messages[1]["content"] and "act 2" not in one.messages[1]["content"]
    whole = fit_step_prompt(traj, 4, k=3, tokenize=chars, budget=bare - 300)
    assert (whole.shown, whole.fits, whole.clipped, len(whole.ids)) == (0, False, False, bare)
    clipped = fit_step_prompt(traj, 4, k=3, tokenize=chars, budget=bare - 300, clip_observation=True)
    assert clipped.fits and clipped.clipped and len(clipped.ids) <= bare - 300
    current = clipped.messages[1]["content"]
    assert "OBSERVATION: now " in current and " ...\n" in current
