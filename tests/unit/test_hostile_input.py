"""The pure rules that keep a hostile registry's names, listings, bodies and timing in bounds."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from regsync.daemon.base.safetext import EscapingFormatter, escape_controls, shown_name
from regsync.daemon.cli.console import describe
from regsync.daemon.config import parse_config
from regsync.daemon.engine.events import LogEvent
from regsync.daemon.engine.filters import INVALID_TAG, rule_tags
from regsync.daemon.engine.slots import BlobSlots, Waiter, cap, grantable
from regsync.daemon.engine.throughput import Floor, RateWindow
from regsync.daemon.oci.jsondoc import TooDeepError, parse_json
from regsync.daemon.oci.reference import is_reference, is_tag, quoted_path, split_tags
from regsync.daemon.registry.answers import parse_error_body
from regsync.daemon.registry.pagination import (
    ListingLimits,
    ListingTally,
    PageRefused,
    next_page,
)
from regsync.daemon.settings import Limits

DIGEST = "sha256:" + "a" * 64


# names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["1.0", "latest", "_x", "A-b.c_d", "v" * 128, "0"])
def test_valid_tags(tag: str) -> None:
    assert is_tag(tag) and is_reference(tag)


@pytest.mark.parametrize("tag", [
    "", "..", ".hidden", "-x", "../../v2/victim/app/manifests/latest", "a/b", "a%2Fb", "a?b",
    "a#b", "a b", "a\x1b[2J", "a\r\n", "v" * 129, "é", "١٢", "a:b", "sha256:" + "0" * 63,
])
def test_invalid_tags(tag: str) -> None:
    assert not is_tag(tag)
    assert not is_reference(tag)


def test_a_digest_is_a_reference_but_not_a_tag() -> None:
    assert is_reference(DIGEST) and not is_tag(DIGEST)


def test_split_tags_keeps_order() -> None:
    assert split_tags(["b", "..", "a", "x\x1b"]) == (["b", "a"], ["..", "x\x1b"])


def test_quoted_path_cannot_climb_or_add_segments() -> None:
    assert quoted_path("a/b", "manifests", "../x") == "/v2/a/b/manifests/..%2Fx"
    assert quoted_path("a", "manifests", "t?x#y z") == "/v2/a/manifests/t%3Fx%23y%20z"
    assert quoted_path("a", "blobs", DIGEST) == f"/v2/a/blobs/{DIGEST}"
    for bad in ("a/../b", "a//b", "./a"):
        with pytest.raises(ValueError):
            quoted_path(bad, "tags", "list")


def test_rule_tags_drops_invalid_names_escaped_before_any_filter() -> None:
    config = parse_config(
        "registries: {s: {url: 'http://s'}, d: {url: 'http://d'}}\n"
        "sync_rules: [{name: r, source: {registry: s, repository: a},"
        " target: {registry: d, repository: b}, tags: {include: ['.']}}]\n"
    )
    selection = rule_tags(config.rules[0], ["1.0", "../x", "red\x1b[31m"])
    assert selection.kept == ("1.0",)
    assert selection.dropped == (("../x", INVALID_TAG), ("red\\x1b[31m", INVALID_TAG))


# escaping ----------------------------------------------------------------------------------
def test_escape_controls() -> None:
    assert escape_controls("plain ascii and 日本語 é") == "plain ascii and 日本語 é"
    assert escape_controls("a\x1b[2Jb\r\x07\x7f\x9b") == "a\\x1b[2Jb\\x0d\\x07\\x7f\\x9b"
    assert escape_controls("rtl\u202eoverride\u2028") == "rtl\\u202eoverride\\u2028"
    assert escape_controls("one\ntwo", keep_newlines=True) == "one\ntwo"
    assert escape_controls("one\ntwo") == "one\\x0atwo"


def test_shown_name_is_quoted_escaped_and_capped() -> None:
    assert shown_name("a\x1bb") == "'a\\x1bb'"
    long = shown_name("x" * 5000, limit=10)
    assert long == "'xxxxxxxxxx...(5000 characters)'"


def test_log_lines_and_console_lines_carry_no_raw_escapes() -> None:
    record = logging.LogRecord("regsync", logging.WARNING, __file__, 1, "tag %s", ("a\x1b[2J",),
                               None)
    assert EscapingFormatter("%(message)s").format(record) == "tag a\\x1b[2J"
    line = describe(LogEvent("warning", "tag a\x1b]0;owned\x07", "r\x1b"), verbose=False)
    assert "\x1b" not in line and "\x07" not in line and "a\\x1b]0;owned\\x07" in line


def test_error_body_entries_are_escaped_and_capped() -> None:
    body = b'{"errors": [{"code": "\\u001b' + b"X" * 5000 + b'", "message": "\\u001b[2Jm"}]}'
    (entry,) = parse_error_body(body)
    assert entry.code.startswith("\\x1bXXX") and len(entry.code) <= 64
    assert entry.message == "\\x1b[2Jm"
    many = b'{"errors": [' + b",".join([b'{"code": "A"}'] * 1000) + b"]}"
    assert len(parse_error_body(many)) == 20


# JSON depth --------------------------------------------------------------------------------
def test_parse_json_bounds_depth_without_recursion_error() -> None:
    assert parse_json(b'{"a": [1, {"b": [2]}]}') == {"a": [1, {"b": [2]}]}
    assert parse_json("[" * 64 + "]" * 64) is not None
    for deep in ("[" * 65 + "]" * 65, "[" * 900 + "]" * 900, "[" * 200_000):
        with pytest.raises(TooDeepError, match="nested deeper than 64"):
            parse_json(deep)
    with pytest.raises(ValueError):
        parse_json(b"{not json")


# listings ----------------------------------------------------------------------------------
BASE = "https://reg.example:5000"
PATH = "/v2/app/tags/list"


@pytest.mark.parametrize(("link", "target"), [
    ("</v2/app/tags/list?last=b&n=2>", "/v2/app/tags/list?last=b&n=2"),
    ("/v2/app/tags/list?last=b", "/v2/app/tags/list?last=b"),
    (f"{BASE}/v2/app/tags/list?last=b", "/v2/app/tags/list?last=b"),
    ("HTTPS://REG.EXAMPLE:5000/v2/app/tags/list", "/v2/app/tags/list"),
    ("?last=c", "/v2/app/tags/list?last=c"),
])
def test_next_page_on_the_same_origin(link: str, target: str) -> None:
    assert next_page(BASE, PATH, link.strip("<>")) == target


def test_default_ports_are_the_same_origin() -> None:
    assert next_page("https://reg.example", PATH, "https://reg.example:443/v2/app/tags/list")


@pytest.mark.parametrize("link", [
    "https://evil.example:5000/v2/app/tags/list",
    "http://reg.example:5000/v2/app/tags/list",
    "https://reg.example:5001/v2/app/tags/list",
    "https://reg.example/v2/app/tags/list",
    "//evil.example/v2/app/tags/list",
    "https://user:pw@reg.example:5000/v2/app/tags/list",
    "https://reg.example:x/v2/app/tags/list",
])
def test_next_page_to_another_origin_is_refused(link: str) -> None:
    with pytest.raises(PageRefused, match="another origin"):
        next_page(BASE, PATH, link)


@pytest.mark.parametrize("link", ["/v2/victim/tags/list", "/v2/app/manifests/latest",
                                  "/v2/app/tags/list/../../victim/tags/list"])
def test_next_page_to_another_path_is_refused(link: str) -> None:
    with pytest.raises(PageRefused, match="another path"):
        next_page(BASE, PATH, link)


def test_listing_tally_bounds() -> None:
    tally = ListingTally(ListingLimits(max_names=3, max_bytes=100))
    tally.add_body(60)
    tally.add_names(3, has_next=True)
    assert tally.bytes_left == 40
    with pytest.raises(PageRefused, match="more than 3 names") as names:
        tally.add_names(1, has_next=False)
    assert names.value.limit == "max_tags"
    with pytest.raises(PageRefused, match="larger than 100 bytes") as size:
        tally.add_body(41)
    assert size.value.limit == "max_listing_bytes"
    with pytest.raises(PageRefused, match="empty page") as empty:
        ListingTally(ListingLimits(10, 100)).add_names(0, has_next=True)
    assert empty.value.limit is None


def test_limits_are_configurable_and_default_for_large_repositories() -> None:
    assert Limits().max_tags == 1_000_000 and Limits().max_listing_bytes >= 131 * 1_000_000
    config = parse_config(
        "global: {limits: {max_tags: 10, max_listing_bytes: 2000, min_throughput: 5,"
        " throughput_window: 2s}}\n"
    )
    assert config.global_.limits == Limits(10, 2000, 5, 2.0)
    with pytest.raises(Exception, match="max_tagz"):
        parse_config("global: {limits: {max_tagz: 10}}\n")


# the throughput floor ----------------------------------------------------------------------
def test_floor_deadline_counts_time_to_first_byte() -> None:
    rate = RateWindow(Floor(min_rate=100, window=10), start=5.0)
    assert rate.deadline() == 15.0
    rate.add(8.0, 999)  # under 100 B/s * 10 s: the first window still ends the transfer
    assert rate.deadline() == 15.0


def test_floor_deadline_moves_with_bytes_and_survives_short_pauses() -> None:
    rate = RateWindow(Floor(min_rate=100, window=10), start=0.0)
    rate.add(1.0, 5000)
    assert rate.deadline() == 11.0  # 5000 bytes keep it alive until they leave the window
    rate.add(12.0, 10)  # too late: it broke at 11 and the caller was cancelled then
    assert rate.deadline() == 11.0
    steady = RateWindow(Floor(min_rate=100, window=10), start=0.0)
    for second in range(1, 100):
        steady.add(float(second), 150)  # 150 B/s: always above the floor
        assert steady.deadline() > second
    assert len(steady._times) <= 12  # only the last window's samples are kept


def test_floor_trickle_breaks_within_one_window() -> None:
    rate = RateWindow(Floor(min_rate=1000, window=1), start=0.0)
    now = 0.0
    while now < rate.deadline():
        now += 0.2
        rate.add(now, 1)
    assert 1.0 <= now <= 1.2


# fair blob slots ---------------------------------------------------------------------------
def test_cap_leaves_a_slot_for_other_registries() -> None:
    assert [cap(n) for n in (1, 2, 5)] == [1, 1, 4]


def test_grantable_policy() -> None:
    a1, a2, b1, c1 = Waiter("a", 1), Waiter("a", 2), Waiter("b", 3), Waiter("c", 4)
    assert grantable([a1, a2], {}, 2) == a1
    assert grantable([a2], {"a": 1}, 2) is None  # a is at its cap: the last slot waits for others
    assert grantable([a2, b1], {"a": 1}, 2) == b1
    assert grantable([b1, c1], {"a": 2, "b": 1}, 5) == c1  # fewest held first
    assert grantable([b1, c1], {"a": 2, "b": 1, "c": 1}, 5) == b1  # then first come
    assert grantable([b1], {"a": 2}, 2) is None  # no free slot


async def test_blob_slots_leave_room_for_another_registry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slots = BlobSlots(3)
    order: list[str] = []

    async def transfer(key: str, seconds: float) -> None:
        async with slots.slot(key):
            order.append(key)
            await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(transfer, "slow", 1000.0)
        await trio.sleep(1)
        assert slots.held("slow") == 2
        start = trio.current_time()
        await transfer("fast", 1.0)
        await transfer("fast", 1.0)
        assert trio.current_time() - start == 2.0  # never waited for the slow ones
        nursery.cancel_scope.cancel()
    assert slots.held("slow") == 0 and order[:3] == ["slow", "slow", "fast"]


async def test_blob_slots_cancelled_waiter_leaves_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slots = BlobSlots(1)
    async with trio.open_nursery() as nursery:
        async def hold() -> None:
            async with slots.slot("a"):
                await trio.sleep(10)

        nursery.start_soon(hold)
        await trio.sleep(1)
        with trio.move_on_after(1):
            async with slots.slot("b"):
                raise AssertionError("granted while the only slot is held")
    async with slots.slot("b"):
        assert slots.held("b") == 1
    assert slots.held("a") == slots.held("b") == 0
