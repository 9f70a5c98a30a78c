"""regsyncctl apply's client-side preparation of a file (ctl/prepare.py): pure, no daemon."""

from __future__ import annotations

import pytest
import yaml
from regsync.ctl.client import CtlError
from regsync.ctl.prepare import prepare

ENV = {"PW": "s3cr$t", "HOST": "r.example", "EMPTY": ""}


def test_a_plain_document_is_sent_byte_for_byte() -> None:
    text = "# my comment\nregistries:\n  a: {url: 'https://${HOST}'}\n"
    assert prepare(text, source="f", expand_env=False, environ=ENV) == text


def test_anchors_are_written_out() -> None:
    text = "x: &v {a: 1}\ny: *v\nz: {<<: *v, b: 2}\n"
    sent = prepare(text, source="f", expand_env=False, environ=ENV)
    assert "&" not in sent and "*" not in sent and "<<" not in sent
    assert yaml.safe_load(sent) == {"x": {"a": 1}, "y": {"a": 1}, "z": {"a": 1, "b": 2}}


def test_variables_expand_and_arrive_literal() -> None:
    text = ("r: {url: 'https://${HOST}', password: '${PW}', user: '${NOPE:-anon}',\n"
            "    empty: '${EMPTY:-d}', cost: '$$5'}\nn: 3\n")
    sent = yaml.safe_load(prepare(text, source="f", expand_env=True, environ=ENV))
    # every `$` doubled: the daemon reads `$$` as one `$` and never looks up a variable
    assert sent == {"r": {"url": "https://r.example", "password": "s3cr$$t", "user": "anon",
                          "empty": "d", "cost": "$$5"}, "n": 3}


@pytest.mark.parametrize(("text", "message"), [
    ("a: {b: '${UNSET}'}\n", "f: a.b: environment variable UNSET is not set (used as ${UNSET})"),
    ("a: ['${oops']\n", "f: a[0]: invalid variable reference"),
    ("a: [1\n", "f: line 2, column 1: invalid YAML"),
])
def test_problems_name_the_place(text: str, message: str) -> None:
    with pytest.raises(CtlError) as caught:
        prepare(text, source="f", expand_env=True, environ=ENV)
    assert caught.value.message.startswith(message)
    assert caught.value.exit_code == 64


def test_a_default_is_never_shown() -> None:
    with pytest.raises(CtlError) as caught:
        prepare("a: '${X:-hunter2} ${Y}'\n", source="f", expand_env=True, environ={})
    assert "hunter2" not in caught.value.message
