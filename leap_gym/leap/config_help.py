"""The config's fields for the command line: their docs for ``--help`` and ``--key.sub value`` options.

The docs are read from the config dataclasses themselves (``leap_gym.leap.config``): a field's
``metadata["help"]`` when given, else the comment lines right above the field plus its trailing comment, so
the comments a developer writes next to a field are what ``leap-gym train --help`` shows and nothing is
restated. ``argparse`` options are not registered one by one: a ``--key.sub value`` option becomes the
override ``key.sub=value`` and goes through the same schema check, so a misspelt key gets the config's own
message (``unknown config key 'training.max_stepz' (known: ...)``) rather than argparse's.
``HfArgumentParser`` and ``TrlParser`` (the installed maintained parsers) take flat dataclasses, while these
sections nest and share field names (``seed``, ``batch_size``, ``kwargs``) and hold mappings (``env.kwargs``),
so the config keeps its own parser.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from functools import cache
from typing import Any

import yaml

from leap_gym.leap.config import LeapConfig, load_config, to_dict

_FIELD = re.compile(r"\s+(\w+)\s*:")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: doc}`` for one config dataclass (see the module doc; "" for a field with no comment)."""
    src = textwrap.dedent(inspect.getsource(cls))
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(src).readline)
                if tok.type == tokenize.COMMENT}
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    pending: list[str] = []
    for number, line in enumerate(src.splitlines(), 1):
        text = line.strip()
        match = _FIELD.match(line)
        if text.startswith("#"):
            pending.append(comments.get(number, ""))
        elif match and match.group(1) in names:
            trailing = [comments[number]] if number in comments else []
            docs[match.group(1)] = " ".join(pending + trailing).strip()
            pending = []
        else:  # a blank line, the docstring, a continuation line: comments above do not carry over
            pending = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("help"):
            docs[f.name] = str(f.metadata["help"])
    return docs


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is dict:
        return "MAP"
    if origin is list:
        return "LIST"
    return {bool: "BOOL", int: "INT", float: "FLOAT", str: "STR"}.get(tp, "VALUE")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value else '""'
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def config_fields(base: dict[str, Any] | None = None
                  ) -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """``[(section, section doc, [(dotted key, type, default, doc)])]``; defaults are those of ``base`` (a
    preset such as the demo's) over the dataclass defaults. Run-level scalars come first as section
    ``run``."""
    values = to_dict(load_config(None, base=base))
    hints = typing.get_type_hints(LeapConfig)
    top_docs = field_docs(LeapConfig)
    run_fields: list[tuple[str, str, str, str]] = []
    sections: list[tuple[str, str, list[tuple[str, str, str, str]]]] = []
    for f in dataclasses.fields(LeapConfig):
        tp = hints[f.name]
        if not dataclasses.is_dataclass(tp):
            run_fields.append((f.name, _type_name(tp), _show(values[f.name]), top_docs.get(f.name, "")))
            continue
        docs, sub_hints = field_docs(tp), typing.get_type_hints(tp)
        rows = [(f"{f.name}.{g.name}", _type_name(sub_hints[g.name]), _show(values[f.name][g.name]),
                 docs.get(g.name, "")) for g in dataclasses.fields(tp)]
        sections.append((f.name, _plain(inspect.getdoc(tp)), rows))
    return [("run", _plain(inspect.getdoc(LeapConfig)), run_fields), *sections]


def _plain(doc: str | None) -> str:
    return (doc or "").replace("``", "")


def format_config_help(base: dict[str, Any] | None = None, width: int = 110) -> str:
    """Every config field with its type, default and doc, grouped by section, for an argparse epilog; with a
    preset ``base`` the defaults shown are the preset's."""
    order = ("the values shown, then overrides" if base is not None else
             "the defaults shown, then the --config YAML, then overrides")
    out = [textwrap.fill(f"config fields ({order}; an override is key.sub=value or --key.sub value, "
                         "values in YAML):", width)]
    for section, doc, rows in config_fields(base):
        out.append("")
        out.append(textwrap.fill(f"{section}: {doc}", width, subsequent_indent="  "))
        for key, tp, default, fdoc in rows:
            out.append(f"  --{key} {tp}  (default: {default})")
            if fdoc:
                out.append(textwrap.fill(fdoc, width, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(out)


def _bool_field(key: str) -> bool:
    tp: Any = LeapConfig
    for part in key.split("."):
        if not dataclasses.is_dataclass(tp):
            return False
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return False
        tp = hints[part]
    return tp is bool


def _is_bool(text: str) -> bool:
    try:
        return isinstance(yaml.safe_load(text), bool)
    except yaml.YAMLError:
        return False


def options_to_overrides(argv: list[str]) -> list[str]:
    """``--key.sub value`` / ``--key.sub=value`` -> ``key.sub=value`` (a BOOL field's option alone means
    true), for dotted names and the run-level fields (``--seed``, ``--iterations``, ``--run_dir``); everything
    else passes unchanged (the commands' own options are named with dashes and never dotted)."""
    out: list[str] = []
    top = {f.name for f in dataclasses.fields(LeapConfig)}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
        if not name or ("." not in name and name not in top):
            out.append(arg)
        elif "=" in arg:
            out.append(arg[2:])
        else:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            takes_next = (nxt is not None and not nxt.startswith("--")
                          and not (_bool_field(name) and not _is_bool(nxt)))
            out.append(f"{name}={nxt}" if takes_next else f"{name}=true")
            i += takes_next
        i += 1
    return out
