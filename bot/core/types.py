"""Plain data types for what comes in from a chat channel and what goes out to it.

Runners (Telegram via aiogram or python-telegram-bot, the console, later WeCom or SMS) translate
their own updates into `Incoming` and execute the `Outgoing` actions the core returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str = ""
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str
    user_id: str | None = None  # the contact's own user id; equal to the sender's when sharing self
    name: str = ""


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file the user sent, by the channel's reference (Telegram file_id)."""

    file_id: str
    unique_id: str | None = None
    kind: Literal["photo", "document", "voice"] = "photo"  # voice: a voice message (or an audio note)
    size: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update from a user, already stripped of anything channel-specific."""

    channel: str
    user: User
    chat_id: str
    update_id: str | None = None  # unique per channel; used to drop redelivered updates
    message_id: str | None = None
    text: str | None = None
    command: str | None = None  # "start" for "/start abc"; None for plain text
    args: str = ""  # "abc" for "/start abc"
    callback_data: str | None = None  # an inline button press
    callback_id: str | None = None
    location: Location | None = None
    contact: Contact | None = None
    files: tuple[FileRef, ...] = ()
    chat_type: str = "private"
    # Which bot of the channel received it (Telegram: the bot id, the token's prefix): update ids are only
    # unique per bot, so a new token or a Bot API server numbering from 1 again is not "redelivered".
    bot_id: str = ""

    @staticmethod
    def parse_command(text: str) -> tuple[str | None, str]:
        """Split "/cmd@bot args" into ("cmd", "args"); plain text gives (None, "")."""
        if not text.startswith("/"):
            return None, ""
        head, _, rest = text[1:].partition(" ")
        cmd = head.split("@", 1)[0].lower()
        return (cmd or None), rest.strip()


@dataclass(frozen=True, slots=True)
class Button:
    """An inline button: either callback data (<= 64 bytes) or a URL."""

    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class KeyButton:
    """A reply-keyboard button; may ask the client to share location or the phone contact."""

    text: str
    request_location: bool = False
    request_contact: bool = False


@dataclass(frozen=True, slots=True)
class InlineKeyboard:
    rows: tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class ReplyKeyboard:
    rows: tuple[tuple[KeyButton, ...], ...]
    one_time: bool = True
    placeholder: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveKeyboard:
    pass


Markup = InlineKeyboard | ReplyKeyboard | RemoveKeyboard


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo to send: a channel file reference or raw bytes."""

    file_id: str | None = None
    data: bytes | None = None
    filename: str = "photo.png"


@dataclass(frozen=True, slots=True)
class Document:
    filename: str
    data: bytes
    mime: str = "application/octet-stream"


# How a Reply's text is written. "markup": the core's simple semantic markup (<b>, <i>, <u>, <s>, <code>,
# <pre>, <a href="...">, with & < > escaped as &amp; &lt; &gt;), what the catalogs and `Translator` produce;
# "plain": literal text. Each channel renders it its own way (bot/runners/render.py): Telegram as HTML,
# the console and channels without formatting as plain text.
TextFormat = Literal["markup", "plain"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A message to one chat on one channel. Text is already rendered in the recipient's language."""

    chat_id: str
    text: str | None = None
    markup: Markup | None = None
    photo: Photo | None = None
    document: Document | None = None
    format: TextFormat = "markup"
    channel: str = field(kw_only=True)  # which channel's transport sends it (the account's channel)
    # Set by the core when the message was written to the outbox in the update's transaction (its
    # dedup key): the runner sends it at once and marks that row sent; the sender delivers it otherwise.
    outbox_key: str | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class AnswerCallback:
    """Acknowledge an inline button press (stops the client's spinner), optionally with a toast."""

    callback_id: str
    text: str | None = None
    alert: bool = False


@dataclass(frozen=True, slots=True)
class SetCommands:
    """Set the command menu shown in one chat (depends on the user's role and language)."""

    chat_id: str
    commands: tuple[tuple[str, str], ...]
    channel: str = field(kw_only=True)


Outgoing = Reply | AnswerCallback | SetCommands


@dataclass(slots=True)
class Result:
    """What the core returns for one update."""

    actions: list[Outgoing] = field(default_factory=list)


class FileSource(Protocol):
    """Port the runner provides so the core can fetch a user's file bytes (Telegram getFile)."""

    async def download(self, file_id: str) -> bytes: ...


class SendError(Exception):
    """Base of the errors a Transport raises when a channel refuses or fails a message."""


class RetryAfter(SendError):
    """The channel asks us to wait (Telegram 429 with retry_after)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class Unreachable(SendError):
    """The recipient blocked the bot or the chat is gone (Telegram 403, or 400 chat not found)."""


class TransientError(SendError):
    """A 5xx or network error: try again later with backoff."""


class OutcomeUnknown(TransientError):
    """The request went out but its answer was lost (timeout, connection cut after sending): the channel
    may or may not have delivered the message. What to do depends on the message's kind
    (bot/scheduler/README.md, "Unknown outcomes")."""


class Transport(Protocol):
    """Port a channel adapter provides for sending (runners' replies and the outbox sender)."""

    channel: str

    async def send(self, action: Outgoing) -> str | None:
        """Send one action; return the channel's message id if any. Raises SendError subclasses."""
        ...

    async def download(self, file_id: str) -> bytes:
        """Fetch the bytes of a file the user sent (Telegram getFile + download)."""
        ...
