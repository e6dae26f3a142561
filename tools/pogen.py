"""Write a pair of .po catalogs (zh_CN, en) from a Python table of key -> (zh, en).

Used once to seed a domain's catalogs; afterwards the .po files are the source and are edited directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

HEADER = '''# Bangfu {domain} messages ({lang}).
msgid ""
msgstr ""
"Project-Id-Version: bangfu\\n"
"Language: {lang}\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"

'''


def esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write(domain: str, table: dict[str, tuple[str, str]], root: Path = Path("locales")) -> None:
    for i, lang in enumerate(("zh_CN", "en")):
        out = [HEADER.format(domain=domain, lang=lang)]
        for key, texts in table.items():
            out.append(f'msgid "{esc(key)}"\nmsgstr "{esc(texts[i])}"\n\n')
        path = root / lang / "LC_MESSAGES" / f"{domain}.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(out), encoding="utf-8")


if __name__ == "__main__":
    sys.exit("import and call write(domain, table)")
