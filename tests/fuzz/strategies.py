"""Input strategies shared by the fuzz targets: the text people (and attackers) send."""

from __future__ import annotations

from hypothesis import strategies as st

# Digits that are not 0-9: superscripts pass str.isdigit(), full-width and other scripts pass \d.
ODD_DIGITS = "²³¹⁰₀０１２３４５６７８９٣٤۵߁०১๑"
CONTROL = "".join(map(chr, range(0, 32))) + "\x7f\u200b\u200e\u202e\ufeff\u2028"
DATEISH = "0123456789-./年月日号 　今天昨前大"

digits = st.text(alphabet="0123456789" + ODD_DIGITS, min_size=1, max_size=20)
hostile = st.text(alphabet=CONTROL + ODD_DIGITS + "=+-@'\"<>&;:/\\*%{}[]()", max_size=30)
any_text = st.text(max_size=80)
dateish = st.text(alphabet=DATEISH + ODD_DIGITS, max_size=16)
texts = st.one_of(any_text, hostile, digits, dateish, st.text(alphabet=st.characters(codec="utf-8"), max_size=400))


def mixed(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Pieces joined: realistic words with hostile bits between them."""
    return st.lists(st.one_of(*parts), min_size=1, max_size=6).map("".join)
