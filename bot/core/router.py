"""Routers: which handler gets a command, a button press, a contact or free text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from bot.core.context import Ctx
from bot.store.enums import Role

HandlerFn = Callable[[Ctx], Awaitable[None]]
Kind = Literal["command", "callback", "contact", "location", "file", "text"]

STAFF = frozenset({Role.CADRE, Role.LEADER, Role.TOWNSHIP, Role.ADMIN})
LEADERS = frozenset({Role.LEADER, Role.TOWNSHIP, Role.ADMIN})
EVERYONE = frozenset(Role)


@dataclass(frozen=True)
class Route:
    kind: Kind
    key: str  # command name, callback prefix, or "" for contact/location/file/text
    fn: HandlerFn
    roles: frozenset[Role]


@dataclass
class Router:
    """A feature's handlers. Routers are consulted in the order listed in bot/handlers/__init__.py."""

    name: str
    routes: list[Route] = field(default_factory=list)

    def _add(
        self, kind: Kind, keys: Iterable[str], roles: Iterable[Role] | None
    ) -> Callable[[HandlerFn], HandlerFn]:
        allowed = frozenset(roles) if roles is not None else EVERYONE

        def deco(fn: HandlerFn) -> HandlerFn:
            for key in keys:
                self.routes.append(Route(kind, key, fn, allowed))
            return fn

        return deco

    def command(self, *names: str, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Handle /name (and its aliases)."""
        return self._add("command", names, roles)

    def callback(self, prefix: str, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Handle inline buttons whose data starts with "prefix:". The rest must be validated by the handler."""
        return self._add("callback", [prefix], roles)

    def contact(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        return self._add("contact", [""], roles)

    def location(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        return self._add("location", [""], roles)

    def text(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Free text outside any dialog (the policy parser is the last of these)."""
        return self._add("text", [""], roles)


def callback_parts(ctx: Ctx) -> list[str]:
    """The callback data split on ':' (prefix first)."""
    return (ctx.inc.callback_data or "").split(":")


def parse_id(raw: str | None) -> int | None:
    """A positive integer id from untrusted input, or None."""
    if raw is None or not raw.isdigit() or len(raw) > 18:
        return None
    value = int(raw)
    return value if value > 0 else None
