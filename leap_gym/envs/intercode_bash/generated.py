"""Generated InterCode Bash tasks: seeded file systems and task families with gold commands (our training
data).

A task is a pure function of ``(split, seed, index)``: a small file tree under one root directory (sorted
creation order, file ages in seconds relative to the reset time, so ``-mtime`` tasks are stable) and a query
whose gold command uses only names stated in the query, so a student can realise it. Families cover find,
count, grep, sort, head, cut, time and size filters, deletion, permissions, in-place edits, archives, copies,
new files and renames.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

DAY = 86400.0
ROOTS = ("/testbed", "/workspace", "/data", "/project")
DIR_WORDS = ("docs", "src", "logs", "notes", "config", "reports", "backup", "scripts", "assets", "drafts",
             "results", "archive", "cache", "build", "lib2", "tests")
FILE_WORDS = ("alpha", "beta", "gamma", "delta", "notes", "report", "summary", "todo", "main", "utils",
              "data", "index", "readme", "server", "client", "config", "setup", "draft", "result", "table")
EXTS = ("txt", "log", "py", "sh", "csv", "md", "json", "conf")
WORDS = ("apple", "river", "stone", "cloud", "error", "warning", "signal", "orange", "planet", "engine",
         "forest", "silver", "window", "garden", "rocket", "marble", "coffee", "yellow", "sunset", "winter")
ORDINALS = ("first", "second", "third", "fourth")


@dataclass
class Task:
    """One task: what the student reads, the gold command and the file system it runs on."""

    task_id: str
    query: str
    gold: str
    task_type: str
    entries: list[dict] = field(default_factory=list)  # for populate(); empty for file-system tasks
    fs: int | None = None  # file-system number for the original tasks
    env: dict[str, str] = field(default_factory=dict)  # extra command environment
    # the original wraps actions as '<shell> -c "<action>"' (/bin/sh for the toy set)
    shell: str = "/bin/bash"


class _Tree:
    """A random file tree; every file has text content and an age."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.root = rng.choice(ROOTS)
        self.dirs = [self.root]
        self.files: dict[str, dict] = {}
        for _ in range(rng.randint(3, 5)):
            parent = rng.choice(self.dirs)
            if parent.count("/") >= 4:
                continue
            name = rng.choice(DIR_WORDS)
            path = f"{parent}/{name}"
            if path not in self.dirs:
                self.dirs.append(path)
        for _ in range(rng.randint(10, 16)):
            self.add_file(rng.choice(self.dirs), rng.choice(EXTS))

    def fresh_name(self, d: str, ext: str) -> str:
        for _ in range(100):
            name = f"{self.rng.choice(FILE_WORDS)}{self.rng.choice(['', '', '1', '2', '_old', '_v2'])}.{ext}"
            if f"{d}/{name}" not in self.files:
                return f"{d}/{name}"
        raise RuntimeError("no fresh file name")

    def add_file(self, d: str, ext: str, content: str | None = None, age: float | None = None,
                 mode: int = 0o644) -> str:
        path = self.fresh_name(d, ext)
        if content is None:
            content = self.text(ext)
        self.files[path] = {"content": content, "age": age if age is not None else self.age(), "mode": mode}
        return path

    def age(self) -> float:
        return (self.rng.randint(0, 40) + 0.5) * DAY

    def text(self, ext: str, lines: int | None = None) -> str:
        rng = self.rng
        n = lines if lines is not None else rng.randint(2, 9)
        if ext == "csv":
            return "".join(",".join(rng.choice(WORDS) if k % 2 == 0 else str(rng.randint(1, 999))
                                    for k in range(4)) + "\n" for _ in range(n))
        if ext == "sh":
            return "#!/bin/sh\n" + "".join(f"echo {rng.choice(WORDS)}\n" for _ in range(n - 1))
        if ext == "py":
            return "".join(f"print('{rng.choice(WORDS)}')\n" for _ in range(n))
        return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) + "\n" for _ in range(n))

    def entries(self) -> list[dict]:
        out = [{"path": d, "kind": "dir", "mode": 0o755, "age": 0.0} for d in sorted(self.dirs)]
        for path in sorted(self.files):
            f = self.files[path]
            out.append({"path": path, "kind": "file", "content": f["content"], "mode": f["mode"],
                        "age": f["age"]})
        return out

    def with_ext(self, ext: str, under: str | None = None) -> list[str]:
        under = under or self.root
        return [p for p in self.files if p.endswith("." + ext) and p.startswith(under + "/")]

    def ensure_ext(self, ext: str, n: int = 2) -> None:
        while len(self.with_ext(ext)) < n:
            self.add_file(self.rng.choice(self.dirs), ext)

    def text_file(self, ext: str = "txt", lines: int | None = None) -> str:
        return self.add_file(self.rng.choice(self.dirs), ext, self.text(ext, lines))


def _pick(rng: random.Random, templates: tuple[str, ...], **kw) -> str:
    return rng.choice(templates).format(**kw)


def _find_ext(t: _Tree, rng):
    ext = rng.choice(EXTS)
    t.ensure_ext(ext, 2)
    q = _pick(rng, ("Find all files with the extension .{ext} under {d}.",
                    "List every .{ext} file in {d} and its subdirectories.",
                    "Show the paths of all regular files ending in .{ext} below {d}."), ext=ext, d=t.root)
    return q, f"find {t.root} -type f -name '*.{ext}'"


def _count_ext(t: _Tree, rng):
    ext = rng.choice(EXTS)
    t.ensure_ext(ext, 1)
    q = _pick(rng, ("How many .{ext} files are there under {d}, including subdirectories?",
                    "Count the .{ext} files anywhere below {d}.",
                    "Print the number of regular files named *.{ext} in {d} recursively."), ext=ext, d=t.root)
    return q, f"find {t.root} -type f -name '*.{ext}' | wc -l"


def _grep_list(t: _Tree, rng):
    word = rng.choice(WORDS)
    for _ in range(2):
        t.add_file(rng.choice(t.dirs), "txt", f"the {word} is here\n" + t.text("txt"))
    q = _pick(rng, ("List the files under {d} that contain the word '{w}'.",
                    "Which files below {d} mention '{w}'? Print their paths.",
                    "Print the names of all files in {d} (recursively) whose content includes '{w}'."),
              d=t.root, w=word)
    return q, f"grep -rl '{word}' {t.root}"


def _count_lines(t: _Tree, rng):
    f = t.text_file(rng.choice(("txt", "log", "md")), rng.randint(5, 30))
    q = _pick(rng, ("Count the number of lines in {f}.", "How many lines does {f} have?",
                    "Print the line count of the file {f}."), f=f)
    return q, f"wc -l < {f}"


def _count_words(t: _Tree, rng):
    f = t.text_file(rng.choice(("txt", "md")), rng.randint(3, 12))
    q = _pick(rng, ("How many words are in {f}?", "Count the words in the file {f}.",
                    "Print the number of words contained in {f}."), f=f)
    return q, f"wc -w < {f}"


def _grep_count(t: _Tree, rng):
    f = t.text_file("log", rng.randint(8, 25))
    lines = t.files[f]["content"].split("\n")
    word = rng.choice([w for w in WORDS if any(w in ln for ln in lines)] or list(WORDS))
    q = _pick(rng,
              ("How many lines of {f} contain '{w}'?",
               "Count the lines in {f} that include the string '{w}'.",
               "Print the number of lines matching '{w}' in {f}."), f=f, w=word)
    return q, f"grep -c '{word}' {f}"


def _head(t: _Tree, rng):
    f = t.text_file("txt", rng.randint(8, 20))
    n = rng.randint(2, 6)
    q = _pick(rng, ("Print the first {n} lines of {f}.", "Show only the top {n} lines of the file {f}.",
                    "Display the first {n} lines from {f}."), f=f, n=n)
    return q, f"head -n {n} {f}"


def _tail(t: _Tree, rng):
    f = t.text_file("log", rng.randint(8, 20))
    n = rng.randint(2, 6)
    q = _pick(rng, ("Print the last {n} lines of {f}.", "Show the final {n} lines of the file {f}.",
                    "Display the bottom {n} lines from {f}."), f=f, n=n)
    return q, f"tail -n {n} {f}"


def _sort_unique(t: _Tree, rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
    f = t.add_file(rng.choice(t.dirs), "txt", "".join(w + "\n" for w in words))
    q = _pick(rng, ("Print the distinct lines of {f} in sorted order.",
                    "Sort the lines of {f} and remove duplicates.",
                    "Show each unique line of {f} once, sorted alphabetically."), f=f)
    return q, f"sort -u {f}"


def _cut_column(t: _Tree, rng):
    f = t.text_file("csv", rng.randint(4, 10))
    k = rng.randint(1, 4)
    q = _pick(rng, ("Print the {o} comma-separated column of {f}.",
                    "Extract column {k} of the CSV file {f} (fields separated by commas).",
                    "Show field number {k} of every line in {f}, where fields are separated by ','."),
              f=f, o=ORDINALS[k - 1], k=k)
    return q, f"cut -d, -f{k} {f}"


def _find_mtime(t: _Tree, rng):
    n = rng.randint(2, 10)
    t.add_file(rng.choice(t.dirs), "txt", age=(n - 1 + 0.5) * DAY)
    t.add_file(rng.choice(t.dirs), "log", age=(n + 3.5) * DAY)
    q = _pick(rng, ("List the files under {d} modified within the last {n} days.",
                    "Find files in {d} whose content changed less than {n} days ago.",
                    "Which regular files below {d} were modified in the past {n} days?"), d=t.root, n=n)
    return q, f"find {t.root} -type f -mtime -{n}"


def _find_size(t: _Tree, rng):
    k = rng.randint(1, 3)
    for _ in range(rng.randint(1, 3)):
        line = " ".join(rng.choice(WORDS) for _ in range(8)) + "\n"
        t.add_file(rng.choice(t.dirs), rng.choice(("log", "txt", "csv")), line * rng.randint(80, 300))
    q = _pick(rng, ("Find the files under {d} larger than {k} kilobytes.",
                    "List the regular files in {d} (recursively) bigger than {k}k.",
                    "Which files below {d} exceed {k} KB in size?"), d=t.root, k=k)
    return q, f"find {t.root} -type f -size +{k}k"


def _delete_ext(t: _Tree, rng):
    ext = rng.choice(("log", "tmp", "bak"))
    for _ in range(rng.randint(2, 4)):
        t.add_file(rng.choice(t.dirs), ext)
    q = _pick(rng,
              ("Delete all .{ext} files under {d}.", "Remove every file ending in .{ext} anywhere below {d}.",
               "Clean up {d} by deleting its .{ext} files, including those in subdirectories."),
              ext=ext, d=t.root)
    return q, f"find {t.root} -type f -name '*.{ext}' -delete"


def _chmod_exec(t: _Tree, rng):
    for _ in range(rng.randint(2, 4)):
        t.add_file(rng.choice(t.dirs), "sh", mode=0o644)
    q = _pick(rng, ("Make every .sh file under {d} executable.", "Give all shell scripts (*.sh) below {d} "
                    "execute permission.", "Add the executable bit to each .sh file in {d} recursively."),
              d=t.root)
    return q, f"find {t.root} -type f -name '*.sh' -exec chmod +x {{}} +"


def _replace(t: _Tree, rng):
    a, b = rng.sample(WORDS, 2)
    f = t.add_file(rng.choice(t.dirs), "txt", "".join(f"{rng.choice(WORDS)} {a} {rng.choice(WORDS)}\n"
                                                      for _ in range(rng.randint(3, 8))))
    q = _pick(rng, ("Replace every occurrence of '{a}' with '{b}' in {f}.",
                    "In the file {f}, change all '{a}' to '{b}' in place.",
                    "Edit {f} so that each '{a}' becomes '{b}'."), a=a, b=b, f=f)
    return q, f"sed -i 's/{a}/{b}/g' {f}"


def _archive(t: _Tree, rng):
    sub = rng.choice([d for d in t.dirs if d != t.root] or [t.root])
    if sub == t.root:
        sub = f"{t.root}/docs"
        t.dirs.append(sub)
        t.add_file(sub, "txt")
    parent, base = sub.rsplit("/", 1)
    out = f"{t.root}/{base}_backup.tar.gz"
    q = _pick(rng, ("Create a gzip-compressed tar archive {out} of the directory {base} inside {p}.",
                    "Pack the folder {base} (in {p}) into the gzipped tarball {out}.",
                    "Archive directory {base} located in {p} as {out} using tar with gzip."), out=out,
              base=base, p=parent)
    return q, f"tar -czf {out} -C {parent} {base}"


def _copy_ext(t: _Tree, rng):
    ext = rng.choice(("txt", "log", "csv"))
    for _ in range(2):
        t.add_file(t.root, ext)
    new = f"{t.root}/{rng.choice(('copies', 'selected', 'collected', 'staging'))}"
    q = _pick(rng, ("Copy all .{ext} files directly inside {d} into a new directory {new}.",
                    "Create the directory {new} and copy the .{ext} files from {d} (not subdirectories) into "
                    "it.",
                    "Make a folder {new} holding copies of the top-level .{ext} files of {d}."),
              ext=ext, d=t.root, new=new)
    return q, f"mkdir -p {new} && cp {t.root}/*.{ext} {new}"


def _make_file(t: _Tree, rng):
    text = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randint(10, 99)}"
    path = t.fresh_name(rng.choice(t.dirs), "txt")
    q = _pick(rng, ("Create the file {f} containing the single line '{x}'.",
                    "Write the text '{x}' into a new file {f}.",
                    "Make a file {f} whose only line is '{x}'."), f=path, x=text)
    return q, f"echo '{text}' > {path}"


def _rename(t: _Tree, rng):
    f = t.text_file(rng.choice(EXTS))
    new = t.fresh_name(f.rsplit("/", 1)[0], f.rsplit(".", 1)[1])
    q = _pick(rng, ("Rename {f} to {n}.", "Move the file {f} to the new name {n}.",
                    "Change the name of {f} so it becomes {n}."), f=f, n=new)
    return q, f"mv {f} {new}"


FAMILIES: dict[str, Callable] = {
    "find_ext": _find_ext, "count_ext": _count_ext, "grep_list": _grep_list, "count_lines": _count_lines,
    "count_words": _count_words, "grep_count": _grep_count, "head": _head, "tail": _tail,
    "sort_unique": _sort_unique, "cut_column": _cut_column, "find_mtime": _find_mtime,
    "find_size": _find_size, "delete_ext": _delete_ext, "chmod_exec": _chmod_exec, "replace_text": _replace,
    "archive": _archive,
    "copy_ext": _copy_ext, "make_file": _make_file, "rename": _rename,
}
SPLIT_SALT = {"train": 0, "test": 1, "valid": 2}


def generate_task(index: int, seed: int = 0, split: str = "train",
                  families: tuple[str, ...] | None = None) -> Task:
    """Task ``index`` of the stream ``(split, seed)``; families cycle so every family appears equally
    often."""
    if split not in SPLIT_SALT:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SALT)}")
    if index < 0:
        raise ValueError(f"task_index must be >= 0, got {index}")
    names = families or tuple(FAMILIES)
    unknown = set(names) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown task families {sorted(unknown)}; known: {sorted(FAMILIES)}")
    family = names[index % len(names)]
    rng = random.Random(f"intercode-bash/{split}/{seed}/{index}")
    tree = _Tree(rng)
    query, gold = FAMILIES[family](tree, rng)
    return Task(task_id=f"{split}/{seed}/{index}", query=query, gold=gold, task_type=family,
                entries=tree.entries())
