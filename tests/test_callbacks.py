"""Typed button payloads (bot/core/callbacks.py) and the route registry that refuses two owners."""

from __future__ import annotations

import pytest

from bot import buttons
from bot.core.callbacks import COUNT, ID, REST, TOKEN, Callback, CallbackError, one_of
from bot.core.context import Ctx
from bot.core.engine import routing_table
from bot.core.router import Router
from bot.handlers import all_routers


def test_pack_and_parse_round_trip() -> None:
    assert buttons.VISIT_REMINDER.pack(12) == "rm:visit:12"
    assert buttons.VISIT_REMINDER.parse("rm:visit:12") == (12,)
    assert buttons.CHECKIN_REMINDER.pack() == "rm:checkin"
    assert buttons.CHECKIN_REMINDER.parse("rm:checkin") == ()
    assert buttons.DIFFICULTY_ASSIGN_TO.parse(buttons.DIFFICULTY_ASSIGN_TO.pack(3, 40)) == (3, 40)
    assert buttons.CONFIRM_VISIT.parse("vc:7:n") == (7, "n")
    dialog = Callback("d", None, TOKEN, REST)
    assert dialog.parse(dialog.pack("0a1b2c3d", "hh:12")) == ("0a1b2c3d", "hh:12")  # the rest keeps its ':'


@pytest.mark.parametrize(
    "data",
    [
        "rm:visit:",  # a field missing
        "rm:visit:12:3",  # one too many
        "rm:visit:0",  # ids are positive
        "rm:visit:-3",
        "rm:visit:１２",  # full-width digits: str.isdigit says yes, we say no
        "rm:visit:١٢",  # Arabic-Indic digits
        "rm:visit:²",
        "rm:visit:1e3",
        "rm:visit:" + "9" * 19,  # longer than any id of ours
        "rm:visits:12",  # another action
        "rx:visit:12",  # another prefix
        "rm:visit:12 ",
        "",
        None,
    ],
)
def test_parse_refuses_malformed(data: str | None) -> None:
    assert buttons.VISIT_REMINDER.parse(data) is None


def test_words_counts_and_limits() -> None:
    assert buttons.CONFIRM_VISIT.parse("vc:7:maybe") is None
    assert buttons.CHECKIN_REMINDER.parse("rm:checkin:") is None
    page = Callback("hh", "p", COUNT)
    assert page.parse("hh:p:0") == (0,) and page.parse("hh:p:123456") is None
    assert Callback("dr", None, one_of("resume", "new")).parse("dr:resume") == ("resume",)
    assert Callback("d", None, TOKEN, REST).parse("d:XYZ:1") is None  # nonces are lowercase hex
    with pytest.raises(CallbackError):
        Callback("d", None, TOKEN, REST).pack("ab", "x" * 70)  # over Telegram's 64 bytes
    with pytest.raises(CallbackError):
        buttons.VISIT_REMINDER.pack(0)  # a value parse would refuse is never sent
    with pytest.raises(CallbackError):
        Callback("a:b", None, ID)  # a prefix cannot contain the separator
    assert Callback("x", None, REST).parse("x:" + "a" * 62) is not None
    assert Callback("x", None, REST).parse("x:" + "a" * 63) is None  # over 64 bytes is refused too


def test_every_feature_button_is_owned_by_one_route() -> None:
    table = routing_table(all_routers())
    families = [v for v in vars(buttons).values() if isinstance(v, Callback)]
    assert families
    for family in families:
        assert len(table[("callback", family.prefix)]) == 1, family.prefix


async def _noop(ctx: Ctx) -> None:
    return None


def test_registry_refuses_two_routes_claiming_one_prefix() -> None:
    a, b = Router("a"), Router("b")
    a.callback("zz")(_noop)
    b.callback("zz")(_noop)
    with pytest.raises(ValueError, match="'zz'"):
        routing_table([a, b])
    engine_owned = Router("c")
    engine_owned.callback("d")(_noop)  # dialog buttons belong to the engine
    with pytest.raises(ValueError, match="engine"):
        routing_table([engine_owned])
    twice = Router("e")
    twice.command("visit")(_noop)
    with pytest.raises(ValueError, match="visit"):
        routing_table([*all_routers(), twice])


def test_join_is_for_known_good_values_and_still_measures() -> None:
    dialog = Callback("d", None, TOKEN, REST)
    assert dialog.join("0a1b2c3d", "kind:routine") == "d:0a1b2c3d:kind:routine"
    assert dialog.parse(dialog.join("0a1b2c3d", "kind:routine")) == ("0a1b2c3d", "kind:routine")
    with pytest.raises(CallbackError):
        dialog.join("0a1b2c3d", "值" * 20)  # 60 bytes of value: over 64 in all
