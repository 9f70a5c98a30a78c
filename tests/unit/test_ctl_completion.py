"""Shell completion generated from the argparse tree, exercised in a real bash."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from regsync.ctl.completion import option_choices, script, tree
from regsync.ctl.main import main
from regsync.ctl.parser import build


def test_tree_follows_the_parser() -> None:
    nodes = tree(build())
    assert {"run", "status", "tasks", "registries", "executions", "completion"} <= set(nodes[""])
    assert {"list", "show", "add", "edit", "rm", "enable", "disable"} <= set(nodes["tasks"])
    assert {"--source", "--include", "--cron", "--server", "-o"} <= set(nodes["tasks add"])
    assert {"bash", "zsh"} <= set(nodes["completion"])
    assert option_choices(build())["-o"] == ["table", "json"]


def complete(words: list[str]) -> list[str]:
    """What bash offers after `words` (the last one is the word being completed)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.fail("bash is not installed")
    program = (
        script(build(), "bash")
        + f"\nCOMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + '_regsyncctl; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True,
                          check=True, timeout=10)
    return done.stdout.split()


def test_bash_completes_commands_subcommands_options_and_choices() -> None:
    assert set(complete(["regsyncctl", "ta"])) == {"tasks"}
    assert set(complete(["regsyncctl", "tasks", "e"])) == {"edit", "enable"}
    assert "--source" in complete(["regsyncctl", "-o", "json", "tasks", "add", "nginx", "--s"])
    assert complete(["regsyncctl", "logs", "x", "-o", "j"]) == ["json"]
    assert complete(["regsyncctl", "tasks", "edit", "t", "--clear", "pl"]) == ["platform"]


def test_completion_command_prints_the_scripts() -> None:
    out = io.StringIO()
    assert main(["completion", "zsh"], stdout=out, stderr=io.StringIO(), environ={}) == 0
    text = out.getvalue()
    assert text.startswith("#compdef regsyncctl")
    assert "bashcompinit" in text and "complete -F _regsyncctl regsyncctl" in text
