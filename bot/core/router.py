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
    # Answered in a private chat only (staff routes, anything with personal data): in a group the engine
    # says so and does nothing else. Default: True unless everyone may use the route.
    private_only: bool = True


@dataclass
class Router:
    """A feature's handlers. Routers are consulted in the order listed in bot/handlers/__init__.py."""

    name: str
    routes: list[Route] = field(default_factory=list)

    def _add(
        self, kind: Kind, keys: Iterable[str], roles: Iterable[Role] | None, private_only: bool | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        allowed = frozenset(roles) if roles is not None else EVERYONE
        private = private_only if private_only is not None else allowed != EVERYONE

        def deco(fn: HandlerFn) -> HandlerFn:
            for key in keys:
                self.routes.append(Route(kind, key, fn, allowed, private))
            return fn

        return deco

    def command(
        self, *names: str, roles: Iterable[Role] | None = None, private_only: bool | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Handle /name (and its aliases)."""
        return self._add("command", names, roles, private_only)

    def callback(
        self, prefix: str, roles: Iterable[Role] | None = None, private_only: bool | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Handle inline buttons whose data starts with "prefix:". The rest must be validated by the handler."""
        return self._add("callback", [prefix], roles, private_only)

    def contact(
        self, roles: Iterable[Role] | None = None, private_only: bool | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        return self._add("contact", [""], roles, private_only)

    def location(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        return self._add("location", [""], roles)

    def file(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """A photo, document or voice message outside any dialog."""
        return self._add("file", [""], roles)

    def text(self, roles: Iterable[Role] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Free text outside any dialog (the policy parser is the last of these)."""
        return self._add("text", [""], roles)


def parse_id(raw: str | None) -> int | None:
    """A positive integer id from untrusted input (ASCII digits only), or None."""
    value = parse_number(raw, 18)
    return value if value is not None and value > 0 else None


def parse_number(raw: str | None, max_digits: int = 6) -> int | None:
    """A non-negative integer (a page number, a menu choice) from untrusted input, or None.

    ASCII digits only: str.isdigit() is also true for "²" or "①", which int() then refuses, and
    int() itself would take full-width "３" or a leading "+"/"_"."""
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
