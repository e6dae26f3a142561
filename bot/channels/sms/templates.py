"""The SMS template table: key → (provider TemplateCode, the approved text, its parameters).

Only these can be sent; a parameter value is checked (no links, at most PARAM_MAX characters: Aliyun
refuses longer variables in notification templates) and the whole message's segments counted the way
carriers bill them: up to 70 characters (signature included) is one SMS, a longer one is split into
segments of 67 (each carries a concatenation header)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("templates.toml")
SINGLE = 70
SEGMENT = 67
PARAM_MAX = 35
_VAR = re.compile(r"\$\{(\w+)\}")
_LINK = re.compile(r"(https?://|www\.|\.(com|cn|net)\b)", re.I)


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    code: str
    text: str
    params: tuple[str, ...]

    def render(self, values: dict[str, str]) -> str:
        """The text the recipient reads (without the signature); TemplateError on a bad parameter."""
        missing = [p for p in self.params if p not in values]
        extra = [k for k in values if k not in self.params]
        if missing or extra:
            raise TemplateError(f"template {self.key}: missing {missing}, unknown {extra}")
        for k, v in values.items():
            if len(v) > PARAM_MAX or _LINK.search(v) or not v.strip():
                raise TemplateError(f"template {self.key}: parameter {k} refused ({len(v)} chars)")
        return _VAR.sub(lambda m: values[m.group(1)], self.text)


def segments(text: str, sign_name: str) -> int:
    """How many SMS the text costs with its 【signature】 (70 characters in one; else 67 per part)."""
    n = len(text) + len(sign_name) + 2
    return 1 if n <= SINGLE else -(-n // SEGMENT)


def load_templates(path: Path | None = None) -> dict[str, Template]:
    data = tomllib.loads((path or DEFAULT_FILE).read_text(encoding="utf-8"))
    out: dict[str, Template] = {}
    for key, d in data.items():
        params = tuple(d.get("params", []))
        if set(_VAR.findall(d["text"])) != set(params):
            raise TemplateError(f"template {key}: params {params} do not match its text")
        out[key] = Template(key, str(d["code"]), str(d["text"]), params)
    return out
