"""The channel → transport registry: whoever sends (the outbox sender, a runner) routes each message by
its channel to that channel's transport. Today there is one channel, Telegram; a console, WeCom or SMS
transport registers the same way."""

from __future__ import annotations

from collections.abc import Iterator

from bot.core.types import SendError, Transport


class NoTransport(SendError):
    """No transport is registered for a message's channel (it cannot be sent from this process)."""


class Transports:
    """Transports by channel; one per channel."""

    def __init__(self, *transports: Transport) -> None:
        self._by_channel: dict[str, Transport] = {}
        for transport in transports:
            self.add(transport)

    def add(self, transport: Transport) -> None:
        if transport.channel in self._by_channel:
            raise ValueError(f"two transports for channel {transport.channel!r}")
        self._by_channel[transport.channel] = transport

    def for_channel(self, channel: str) -> Transport:
        """The transport of `channel`; NoTransport when none is registered."""
        try:
            return self._by_channel[channel]
        except KeyError:
            raise NoTransport(f"no transport for channel {channel!r}") from None

    def __contains__(self, channel: object) -> bool:
        return channel in self._by_channel

    def __iter__(self) -> Iterator[Transport]:
        return iter(self._by_channel.values())

    @classmethod
    def of(cls, transport: Transport | Transports) -> Transports:
        """A registry from one transport (or the registry itself)."""
        return transport if isinstance(transport, Transports) else cls(transport)
