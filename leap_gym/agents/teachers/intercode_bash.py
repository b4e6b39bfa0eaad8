"""The InterCode Bash expert teacher, with a privilege knob (LEAP's realizability ablation), and its leak
facts.

- ``privilege < 0.25``: no privileged state. A rule-based guesser reads the query (paths, extensions, quoted
  words, numbers, key phrases) and writes the command a careful student would, then submits once it has run
  it. This is the "teacher without privilege" baseline: it knows bash, not the answer.
- ``0.25 <= privilege < 0.75`` (default 0.5): acts on the env's privileged expert action (the gold command, or
  ``submit`` once the gold's effect is reached). Generated golds use only names stated in the query, so a
  student can realise them. The reason explains the command's syntax in general first-person terms: which
  tool, which options and why, and never a literal from the gold (a path, pattern or value not already
  visible) nor its output.
- ``privilege >= 0.75``: gives the gold command directly and states the gold output.

Reasons are short first-person sentences from templates, varied deterministically per task, step and seed.

A student command other than the gold one is kept (not corrected) when it reached the gold's effect: the env
then records ``submit`` as the expert's next action (its output equals the gold's and the file changes match),
so submitting next scores 1.0, as fast as the gold would. Only teachers with privilege judge this (the gold's
output is privileged); the reason then explains the student's own command.
"""

from __future__ import annotations

import hashlib
import re
import shlex

from leap_gym.agents.teachers.base import Teacher, plan_shortened
from leap_gym.records import Trajectory

SUBMIT = "submit"
_PATH = re.compile(r"(/[\w./*-]*\w)")
_QUOTED = re.compile(r"'([^']*)'")
_EXT = re.compile(r"(?:\*)?\.([A-Za-z0-9]+)\b(?! ?/)")
_NUMBER = re.compile(r"\b(\d+)\b")
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1", "{}", "+", "\\;", "(", ")", "!"})
# Common programs: naming one explains syntax, it reveals nothing about the answer (even where it is an
# argument, as in ``xargs -I{} sort`` or ``which env``).
PROGRAMS = frozenset("""
awk basename bash cal cat cd chgrp chmod chown comm cp cpio crontab curl cut date dd df diff dig dirname du
echo egrep env expr fgrep file find fmt fold free grep gunzip gzip head hostname id jq join kill less ln
locate ls md5sum mkdir mktemp more mv nl nohup od paste pgrep ping pkill printf ps pstree pwd readlink
realpath rename rev rm rmdir sed seq sh sha1sum sha256sum shuf sleep sort split stat strings sum tac tail
tar tee test time top touch tr tree true false type uname uniq unzip uptime wc wget which who whoami xargs
yes zcat zip
""".split())

# What each generated family's command does, in general terms (no literal from the task or its answer).
SYNTAX: dict[str, tuple[str, ...]] = {
    "find_ext": ("I need every regular file with a given extension at any depth, so I use find with -type f "
                 "and a quoted -name glob; quoting keeps the shell from expanding the pattern itself.",
                 "Searching recursively by file name is find's job: -type f keeps only regular files and "
                 "-name takes the extension pattern in quotes."),
    "count_ext": ("To count matching files I list them with find (-type f plus a quoted -name pattern) and "
                  "pipe the list into wc -l, which counts lines, one per file.",
                  "Counting files is listing them and counting the lines: find with -type f and -name, then "
                  "| wc -l."),
    "grep_list": ("grep -r searches a directory tree and -l prints only the names of the files that match, "
                  "which is exactly the list asked for.",
                  "I want file names, not matching lines, so I run grep recursively (-r) with -l."),
    "count_lines": ("wc -l counts lines; reading the file through < keeps the file name out of the output so "
                    "only the number is printed.",
                    "To get just the line count I redirect the file into wc -l, which then prints only the "
                    "number."),
    "count_words": ("wc -w counts words; feeding the file through < makes it print the number alone.",
                    "Counting words is wc -w, and redirecting the file into it avoids printing the file "
                    "name."),
    "grep_count": ("grep -c prints how many lines match a pattern instead of the lines themselves.",
                   "I only need the number of matching lines, which is what grep's -c option reports."),
    "head": ("head -n N prints the first N lines of a file.",
             "The first lines of a file come from head, with -n setting how many."),
    "tail": ("tail -n N prints the last N lines of a file.",
             "The last lines of a file come from tail, with -n setting how many."),
    "sort_unique": ("sort -u sorts the lines and keeps one copy of each, in one step.",
                    "Sorting and dropping duplicates is sort with the -u flag."),
    "cut_column": ("cut selects fields: -d sets the separator (a comma here) and -f picks the field number.",
                   "For one column of comma-separated text I use cut with -d, for the delimiter and -f for "
                   "the field."),
    "find_mtime": ("find's -mtime -N keeps files modified less than N days ago; -type f restricts it to "
                   "files.",
                   "Filtering by modification age is find -mtime with a minus sign meaning 'less than'."),
    "find_size": ("find's -size +Nk keeps files bigger than N kibibytes; -type f limits it to regular files.",
                  "Filtering by size is find -size with a plus sign for 'larger than' and k for kilobytes."),
    "delete_ext": ("find can delete what it matches: -type f with a quoted -name pattern selects the files "
                   "and -delete removes them, including in subdirectories.",
                   "To remove matching files recursively I let find select them (-type f -name '*.ext' "
                   "style) and finish with -delete."),
    "chmod_exec": ("The scripts may sit in subdirectories, so a plain glob is not enough: find selects them "
                   "and -exec chmod +x {} + changes them all.",
                   "chmod +x adds the execute bit; running it through find -exec reaches files at every "
                   "depth."),
    "replace_text": ("sed -i edits the file in place, and s/old/new/g replaces every occurrence on each "
                     "line.",
                     "An in-place substitution is sed -i with the s command and the g flag for all "
                     "occurrences."),
    "archive": ("tar -czf writes a gzip-compressed archive; -C changes into the parent first so the archive "
                "stores the folder by its own name, not its full path.",
                "I create the tarball with tar -czf, using -C so the member paths start at the folder's "
                "name."),
    "copy_ext": ("I make the target directory with mkdir -p, then cp with a glob copies the matching "
                 "top-level files into it; && runs the copy only if the directory exists.",
                 "mkdir -p creates the new folder and a glob passed to cp picks the files from the source "
                 "directory only, not its subdirectories."),
    "make_file": ("echo with output redirection (>) writes the line into a new file; single quotes keep the "
                  "text as one argument.",
                  "To create a file with a line of text I echo the quoted text and redirect it with >."),
    "rename": ("mv renames a file when the destination is a new name in the same directory.",
               "Renaming is mv from the old name to the new one."),
}
SUBMIT_REASONS = ("The last command did what the task asked, so I'll submit.",
                  "The output shows the task is done; submitting now.",
                  "That completed the task, so I'm submitting.")
GUESS_REASONS = ("From the wording of the task, I think this command does what is asked.",
                 "Reading the request, this is the command I would try.",
                 "This command should match what the task describes.")


def _band(privilege: float) -> int:
    return 0 if privilege < 0.25 else (1 if privilege < 0.75 else 2)


def _choose(options: tuple[str, ...], *key) -> str:
    h = int(hashlib.sha256(repr(key).encode()).hexdigest()[:8], 16)
    return options[h % len(options)]


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, posix=True)
    except ValueError:
        return command.split()


def command_names(command: str) -> list[str]:
    """The programs a command line runs (first word of each pipeline/list segment), in order."""
    names, expect = [], True
    for tok in re.split(r"\s+", command.strip()):
        if not tok:
            continue
        if tok in ("|", "||", "&&", ";") or tok.endswith(";"):
            expect = True
            continue
        if expect and re.fullmatch(r"[A-Za-z_][\w.+-]*", tok):
            names.append(tok)
        expect = tok in ("xargs", "sudo", "exec", "time", "-exec", "nohup")
    return names


def _general_syntax_reason(command: str) -> str:
    """For a task outside the generated families: name the tools and options, never the literals."""
    names = list(dict.fromkeys(command_names(command)))
    flags = list(dict.fromkeys(w for w in _words(command) if re.fullmatch(r"--?[A-Za-z][\w-]*", w)))
    tools = " piped into ".join(names) if "|" in command else " and ".join(names)
    text = f"I can do this with {tools or 'a single command'}"
    if flags:
        text += f"; the options {' '.join(flags[:6])} select exactly what the task asks for"
    return text + ", applied to the files and values the task names."


class BashExpertTeacher(Teacher):
    """Programmatic InterCode Bash teacher at a privilege level (see the module docstring)."""

    name = "bash-expert"

    def __init__(self, privilege: float = 0.5, seed: int = 0):
        if not 0.0 <= privilege <= 1.0:
            raise ValueError(f"privilege must lie in [0, 1], got {privilege}")
        self.privilege, self.seed, self.band = float(privilege), int(seed), _band(privilege)

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        steps = trajectory.steps[: t + 1]
        step = steps[t]
        query = trajectory.task or steps[0].observation
        key = (self.seed, trajectory.task_id, t)
        if self.band == 0:
            guess = guess_command(query)
            if any(s.action.strip() == guess for s in steps[:t]):
                return _choose(SUBMIT_REASONS, *key), SUBMIT
            return _choose(GUESS_REASONS, *key) + " " + _general_syntax_reason(guess), guess
        priv = step.info.get("privileged") or {}
        action = priv.get("expert_action") or guess_command(query)
        if action == SUBMIT:
            reason = _choose(SUBMIT_REASONS, *key)
            if self.band == 2 and priv.get("gold_output"):
                reason += f" The expected output is: {priv['gold_output'].strip()[:300]}"
            return reason, SUBMIT
        if self.band == 2:
            out = (priv.get("gold_output") or "").strip()
            reason = f"The command that solves this is {action}."
            return reason + (f" It prints: {out[:300]}" if out else " It prints nothing."), action
        family = step.info.get("task_type", "")
        reason = _choose(SYNTAX[family], *key) if family in SYNTAX else _general_syntax_reason(action)
        return reason, action


    def keep_reason(self, trajectory: Trajectory, t: int) -> str | None:
        step = trajectory.steps[t]
        action = step.action.strip()
        priv = step.info.get("privileged") or {}
        if self.band == 0 or action == SUBMIT or priv.get("expert_action") == SUBMIT:
            return None  # submitting is the only optimal move once the effect is reached: nothing to keep
        if not plan_shortened(trajectory, t):
            return None
        reason = _general_syntax_reason(action)
        if self.band == 2:
            out = (priv.get("gold_output") or "").strip()
            reason += f" It prints: {out[:300]}" if out else " It prints nothing."
        return reason


# --------------------------------------------------------------------------------------------- guesser


def _clean_path(p: str) -> str:
    return p.rstrip(".,;:)")


def guess_command(query: str) -> str:
    """Best bash command for a query, from its words alone (the privilege-0 teacher)."""
    q = query.strip()
    low = q.lower()
    paths = [_clean_path(p) for p in _PATH.findall(q)]
    quoted = _QUOTED.findall(q)
    exts = [e for e in _EXT.findall(q.replace("/", " /")) if not e.isdigit()]
    numbers = [int(n) for n in _NUMBER.findall(re.sub(_PATH, " ", q))]
    target = paths[0] if paths else "."
    ext = exts[0] if exts else "txt"
    n = numbers[0] if numbers else 10

    def has(*words: str) -> bool:
        return any(w in low for w in words)

    if has("rename", "move the file", "change the name") and len(paths) >= 2:
        return f"mv {paths[0]} {paths[1]}"
    if has("replace", "change all", "becomes") and len(quoted) >= 2:
        return f"sed -i 's/{quoted[0]}/{quoted[1]}/g' {target}"
    if has("create the file", "write the text", "make a file") and quoted:
        return f"echo '{quoted[0]}' > {target}"
    if has("tar", "archive", "tarball"):
        out = next((p for p in paths if p.endswith((".tar.gz", ".tgz"))), "archive.tar.gz")
        src = next((p for p in paths if p != out), target)
        return f"tar -czf {out} {src}"
    if has("copy", "copies"):
        dest = paths[1] if len(paths) > 1 else "/tmp/copy"
        src, dest = (paths[0], paths[1]) if len(paths) > 1 and not has("holding", "and copy") else (
            (paths[1], paths[0]) if len(paths) > 1 else (target, dest))
        return f"mkdir -p {dest} && cp {src}/*.{ext} {dest}"
    if has("executable", "execute permission", "executable bit"):
        return f"chmod +x {target}/*.sh"
    if has("delete", "remove", "clean up"):
        return f"find {target} -name '*.{ext}' -delete"
    if has("modified", "changed"):
        return f"find {target} -type f -mtime -{n}"
    if has("larger", "bigger", "exceed"):
        return f"find {target} -type f -size +{n}k"
    if has("column", "field"):
        k = next((v for w, v in _ORDINALS.items() if f"{w} " in low), numbers[0] if numbers else 1)
        return f"cut -d, -f{k} {target}"
    if has("unique", "distinct", "duplicates"):
        return f"sort -u {target}"
    if has("last", "final", "bottom"):
        return f"tail -n {n} {target}"
    if has("first", "top"):
        return f"head -n {n} {target}"
    if has("words"):
        return f"wc -w {target}"
    if has("lines") and quoted:
        return f"grep -c '{quoted[0]}' {target}"
    if has("lines", "line count"):
        return f"wc -l {target}"
    if has("contain", "mention", "includes") and quoted:
        return f"grep -rl '{quoted[0]}' {target}"
    if has("how many", "count", "number of"):
        return f"find {target} -name '*.{ext}' | wc -l"
    if exts or has("find", "list"):
        return f"find {target} -type f -name '*.{ext}'"
    return f"ls -R {target}"


# --------------------------------------------------------------------------------------------- leak facts


def _visible_text(trajectory: Trajectory, t: int) -> str:
    steps = trajectory.steps[: t + 1]
    parts = [trajectory.task] + [s.observation for s in steps] + [s.action for s in steps[:t]]
    return "\n".join(p for p in parts if p).lower()


def _seen(fact: str, visible: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(fact.lower()) + r"(?![\w])", visible) is not None


def privileged_only_facts(trajectory: Trajectory, t: int) -> list[str]:
    """Distinctive tokens of the gold command and of its output that the student has not seen by step ``t``.

    Gold tokens count unless they are program names, options or shell operators (the syntax a teacher may
    explain); output facts are its non-trivial lines and the file names in them.
    """
    step = trajectory.steps[t]
    priv = step.info.get("privileged") or {}
    visible = _visible_text(trajectory, t)
    gold, output = priv.get("gold_command", ""), priv.get("gold_output", "")
    programs = set(command_names(gold)) | PROGRAMS
    facts: list[str] = []
    for i, word in enumerate(_words(gold)):
        word = word.strip("'\"")
        # tar's bundled options (tar czf)
        option_cluster = i > 0 and _words(gold)[i - 1] == "tar" and re.fullmatch(r"[A-Za-z]+", word)
        if (len(word) < 3 or word in programs or word in _OPERATORS or word.startswith("-") or option_cluster
                or not re.search(r"[A-Za-z0-9]", word)):
            continue
        facts.append(word)
    for line in output.splitlines():
        line = line.strip()
        if len(line) >= 2:
            facts.append(line)
        for token in re.findall(r"[\w.-]*\w\.\w+|/[\w./-]+", line):
            facts.append(token)
            if token.rsplit("/", 1)[-1] not in programs:
                facts.append(token.rsplit("/", 1)[-1])
    out, seen = [], set()
    for f in facts:
        if f and f not in seen and len(f) >= 2 and not _seen(f, visible):
            seen.add(f)
            out.append(f)
    return out
