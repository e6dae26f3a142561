"""`bangfu chat --as NAME_OR_PHONE`: the same core in a terminal, for trying the bot without Telegram.

The console speaks as a roster person on the "console" channel (the account is bound through a real
invite code, so onboarding runs exactly as on Telegram). Replies are printed as plain text; buttons
get numbers — type the number to press one. Extra commands: /loc LAT LON, /photo PATH,
/contact PHONE, /quit. Input is read line by line with plain readline (no terminal tricks), so the
console can be scripted: `printf '/help\\n/quit\\n' | bangfu chat --as 王建国`.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import or_, select

from bot.clock import Clock
from bot.core.bootstrap import App, build_core
from bot.core.router import parse_number
from bot.core.types import (
    AnswerCallback,
    Contact,
    FileRef,
    Incoming,
    InlineKeyboard,
    Location,
    Outgoing,
    RemoveKeyboard,
    Reply,
    ReplyKeyboard,
    User,
)
from bot.fsperm import private_dir, write_private
from bot.i18n import Translator
from bot.runners.render import plain
from bot.services.onboarding import create_invite, find_person, normalize_phone
from bot.settings import Settings
from bot.store.migrate import upgrade_async
from bot.store.models import Account, Household, Person

CHANNEL = "console"


class LocalFiles:
    """The console's FileSource: a "file id" is a path on this machine (sent with /photo PATH)."""

    async def download(self, file_id: str) -> bytes:
        """The file's bytes."""
        return await asyncio.to_thread(Path(file_id).read_bytes)


@dataclass
class _Choice:
    text: str
    data: str | None = None  # inline button: callback data
    location: bool = False
    contact: bool = False


class Console:
    """One terminal conversation with the core."""

    def __init__(self, app: App, user: User, phone: str | None, t: Translator, out: TextIO) -> None:
        self.app = app
        self.user = user
        self.phone = phone
        self.t = t
        self.out = out
        self.choices: list[_Choice] = []
        self._seq = itertools.count(1)

    def say(self, text: str) -> None:
        self.out.write(plain(text) + "\n")
        self.out.flush()

    def incoming(self, **kw: Any) -> Incoming:
        n = next(self._seq)
        if kw.get("callback_data") is not None:
            kw["callback_id"] = f"console-{n}"
        return Incoming(channel=CHANNEL, user=self.user, chat_id=self.user.id, message_id=str(n), **kw)

    async def send(self, **kw: Any) -> None:
        result = await self.app.core.handle(self.incoming(**kw))
        self.render(result.actions)

    def parse(self, line: str) -> dict[str, Any] | None:
        """What a typed line means; None when it was handled here (a hint printed)."""
        if line.startswith("\\"):
            return {"text": line[1:]}  # "\1" sends a literal "1" instead of pressing button 1
        choice = parse_number(line, 4)
        if choice is not None and self.choices and 1 <= choice <= len(self.choices):
            return self.press(self.choices[choice - 1])
        head, _, rest = line.partition(" ")
        if head == "/loc":
            try:
                lat, lon = (float(x) for x in rest.replace(",", " ").split())
            except ValueError:
                self.say(self.t("console.bad_loc"))
                return None
            return {"location": Location(lat, lon)}
        if head == "/photo":
            path = Path(rest.strip()).expanduser()
            if not path.is_file():
                self.say(self.t("console.no_file", path=str(path)))
                return None
            ref = FileRef(str(path.resolve()), path.name, "photo", path.stat().st_size, path.name)
            return {"files": (ref,)}
        if head == "/contact":
            return {"contact": Contact(phone=rest.strip(), user_id=self.user.id)}
        command, args = Incoming.parse_command(line)
        return {"text": line, "command": command, "args": args}

    def press(self, choice: _Choice) -> dict[str, Any] | None:
        if choice.data is not None:
            return {"callback_data": choice.data}
        if choice.location:
            self.say(self.t("console.share_location_hint"))
            return None
        if choice.contact:
            if not self.phone:
                self.say(self.t("console.share_contact_hint"))
                return None
            return {"contact": Contact(phone=self.phone, user_id=self.user.id)}
        return {"text": choice.text}

    def render(self, actions: list[Outgoing]) -> None:
        """Print replies; number the buttons of this batch (they replace the previous ones)."""
        batch: list[_Choice] = []
        markup_seen = False
        for a in actions:
            if isinstance(a, AnswerCallback):
                if a.text:
                    self.say(self.t("console.toast", text=a.text))
                continue
            if not isinstance(a, Reply):
                continue  # the command menu has no meaning here
            lines: list[str] = []
            if a.photo is not None and a.photo.data:
                # Saved like a document, so the chart or photo can be opened in an image viewer.
                saved = self._save(a.photo.filename, a.photo.data)
                lines.append(self.t("console.photo_saved", name=a.photo.filename, size=len(a.photo.data),
                                    path=str(saved)))
            elif a.photo is not None:  # a photo the channel already has (a file id): nothing to save here
                lines.append(self.t("console.photo", name=a.photo.filename, size=0))
            if a.document is not None:
                saved = self._save(a.document.filename, a.document.data)
                lines.append(self.t("console.document", name=a.document.filename, size=len(a.document.data),
                                    path=str(saved)))
            if a.text:
                lines.append(a.text if a.format == "markup" else html.escape(a.text, quote=False))
            mine = a.chat_id == self.user.id and a.channel == CHANNEL
            if a.markup is not None and mine:
                markup_seen = True
                for row in self._rows(a.markup):
                    start = len(batch)
                    batch.extend(row)
                    lines.append("  ".join(f"[{start + i + 1}] {b.text}" for i, b in enumerate(row)))
            elif a.markup is not None:
                lines.extend("  ".join(f"[{b.text}]" for b in row) for row in self._rows(a.markup))
            text = "\n".join(lines)
            if not mine:
                # A notification the core sends to someone else (a leader, a household): shown, not pressable.
                text = self.t("console.to_other", chat=f"{a.channel}:{a.chat_id}") + "\n" + text
            self.say(text)
        if markup_seen:
            self.choices = batch

    @staticmethod
    def _rows(markup: Any) -> list[list[_Choice]]:
        """The keyboard's buttons row by row (one printed line per row, as on the phone)."""
        if isinstance(markup, InlineKeyboard):
            rows = [[_Choice(b.text, data=b.data) for b in row if b.data] for row in markup.rows]
        elif isinstance(markup, ReplyKeyboard):
            rows = [[_Choice(b.text, location=b.request_location, contact=b.request_contact) for b in row]
                    for row in markup.rows]
        else:
            assert isinstance(markup, RemoveKeyboard)
            rows = []
        return [r for r in rows if r]

    def _save(self, filename: str, data: bytes) -> Path:
        """Write what the bot sent to media_dir/console/, never over an earlier file of the same name;
        owner-only (folder 0700, file 0600) whatever the umask."""
        media = self.app.core.settings.media_dir
        folder = private_dir(media / "console", root=media)
        name = Path(filename).name or "file"
        path = folder / name
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        write_private(path, data)
        return path.resolve()


async def _identity(app: App, as_person: str | None, t: Translator, out: TextIO) -> tuple[User, str | None, str | None] | None:
    """The console user for --as, and the invite code to bind it with if it is not bound yet.

    --as names a roster person (name or phone) or, for a villager, a household (its phone, its code,
    or its head's name)."""
    if not as_person:
        out.write(plain(t("console.guest")) + "\n")
        return User("guest", "guest"), None, None
    async with app.core.sessions() as s, s.begin():
        people = await find_person(s, as_person)
        households = [] if people else await _find_household(s, as_person)
        if len(people) + len(households) != 1:
            key = "console.many_people" if people or households else "console.no_person"
            out.write(plain(t(key, who=as_person, count=len(people) + len(households))) + "\n")
            return None
        if people:
            person: Person = people[0]
            external, name, phone = str(person.id), person.name, person.phone
        else:
            household = households[0]
            external, name, phone = f"household-{household.id}", household.head_name, household.phone
        account = (
            await s.execute(select(Account).where(Account.channel == CHANNEL, Account.external_id == external))
        ).scalar_one_or_none()
        code = None
        bound = account is not None and (
            account.person_id == person.id if people else account.household_id == households[0].id
        )
        if not bound:
            # Bind through a real invite code so the console exercises the same onboarding as Telegram.
            invite = await create_invite(
                s, app.core.clock.now(), valid_days=1,
                **({"person": person} if people else {"household": households[0]}),
            )
            code = invite.code
        return User(external, name), phone, code


async def _find_household(s: Any, ref: str) -> list[Household]:
    """Households matching a phone number, a household code or exactly a head's name."""
    phone = normalize_phone(ref)
    cond = or_(Household.code == ref.strip(), Household.head_name == ref.strip())
    if len(phone) >= 7:
        cond = or_(cond, Household.phone == phone)
    return list((await s.execute(select(Household).where(cond).limit(5))).scalars())


async def run_console(
    settings: Settings,
    as_person: str | None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    clock: Clock | None = None,
) -> int:
    """Chat with the core in a terminal as a roster person (or an unbound guest); returns an exit code."""
    await upgrade_async(settings.database_url)
    app = build_core(settings, clock)
    app.core.files = LocalFiles()
    try:
        t = app.core.catalogs.get(settings.default_language)
        who = await _identity(app, as_person, t, stdout)
        if who is None:
            return 1
        user, phone, code = who
        console = Console(app, user, phone, t, stdout)
        console.say(t("console.intro", name=user.name))
        if code is not None:
            await console.send(text=f"/start {code}", command="start", args=code)
        while True:
            stdout.write("> ")
            stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                stdout.write("\n")
                break
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            if (kw := console.parse(line)) is not None:
                await console.send(**kw)
        console.say(t("console.bye"))
        return 0
    finally:
        await app.close()
