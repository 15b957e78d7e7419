"""Every ``hrnet ...`` command shown in README.md and docs/*.md parses with the real command line, so docs
and CLI cannot drift apart. Synopsis notation is read as a user would: ``[optional]`` parts are typed,
``a|b`` means one of them, ``X...`` means one or more X, and ``--input H W`` takes numbers."""

import re
import shlex
from pathlib import Path

import pytest

from hrnet.cli.main import parse_args

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def _code_lines(text: str) -> list[str]:
    lines = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines.extend(line.strip() for line in joined.splitlines())
    return lines


def _argv(line: str) -> list[str] | None:
    """The arguments after ``hrnet`` (or ``-m hrnet.cli.main``) of a documented command, or None."""
    line = line.removeprefix("$ ")
    if "-m hrnet.cli.main " in line:
        line = "hrnet " + line.split("-m hrnet.cli.main ", 1)[1]
    if not line.startswith("hrnet "):
        return None
    line = re.split(r" {3,}", line, maxsplit=1)[0]  # a synopsis table: the description after the command
    tokens = shlex.split(line, comments=True)[1:]
    if not tokens or tokens[0].endswith(":"):  # printed output such as "hrnet train: error: ..."
        return None
    argv = []
    for token in tokens:
        token = token.removeprefix("[")
        while token.count("]") > token.count("["):
            token = token[:-1]
        token = token.removesuffix("...")
        if "|" in token and "=" not in token:
            token = token.split("|")[0]
        if token:
            argv.append(token)
    for i, token in enumerate(argv[:-2]):
        if token == "--input":
            argv[i + 1:i + 3] = [a if a.isdigit() else "64" for a in argv[i + 1:i + 3]]
    return argv


COMMANDS = [(f"{doc.name}: {line}", argv) for doc in DOCS for line in _code_lines(doc.read_text())
            if (argv := _argv(line)) is not None]


def test_the_docs_show_commands():
    assert len(COMMANDS) > 40
    shown = {argv[0] for _, argv in COMMANDS}
    assert {"train", "eval", "predict", "convert", "weights", "export", "bench", "info"} <= shown


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where, argv):
    try:
        args = parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{where} does not parse (exit {e.code})")
    assert callable(args.run)
    for token in argv:  # overrides written anywhere reach the config
        if re.match(r"^[a-z_]+(\.[\w-]+)+=", token) and isinstance(getattr(args, "overrides", None), list):
            assert token in args.overrides, f"{where}: {token} is not taken as an override"
