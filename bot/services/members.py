"""Household members' details as rosters write them (与户主关系, 健康状况, 文化程度, 职业): the common
words mapped to stable ids, so a reader in another language sees them translated. A word no table
knows is shown as written."""

from __future__ import annotations

from bot.i18n import Translator
from bot.store.models import HouseholdMember

RELATION: dict[str, str] = {
    "户主": "head", "本人": "head",
    "配偶": "spouse", "妻": "spouse", "妻子": "spouse", "丈夫": "spouse", "之妻": "spouse", "之夫": "spouse",
    "长子": "eldest_son", "次子": "second_son", "三子": "third_son", "儿子": "son", "之子": "son",
    "长女": "eldest_daughter", "次女": "second_daughter", "三女": "third_daughter", "女儿": "daughter",
    "之女": "daughter",
    "父亲": "father", "之父": "father", "母亲": "mother", "之母": "mother",
    "孙子": "grandson", "之孙子": "grandson", "外孙子": "grandson",
    "孙女": "granddaughter", "之孙女": "granddaughter", "外孙女": "granddaughter",
    "儿媳": "daughter_in_law", "之儿媳": "daughter_in_law", "女婿": "son_in_law", "之女婿": "son_in_law",
    "兄弟": "sibling", "姐妹": "sibling", "兄弟姐妹": "sibling", "其他": "other",
}  # fmt: skip
HEALTH: dict[str, str] = {
    "健康": "healthy",
    "长期慢性病": "chronic", "慢性病": "chronic",
    "大病": "serious", "患有大病": "serious", "重病": "serious",
    "残疾": "disabled", "残疾人": "disabled",
}  # fmt: skip
EDUCATION: dict[str, str] = {
    "文盲或半文盲": "illiterate", "文盲": "illiterate", "半文盲": "illiterate",
    "学龄前儿童": "preschool", "学前": "preschool",
    "小学": "primary", "初中": "junior_high", "高中": "senior_high",
    "中专": "vocational", "中职": "vocational", "职高": "vocational",
    "大专": "college", "高职": "college", "本科": "university", "本科及以上": "university",
    "在校生": "in_school",
}  # fmt: skip
OCCUPATION: dict[str, str] = {
    "务农": "farming", "农民": "farming",
    "务工": "migrant_work", "外出务工": "migrant_work", "打工": "migrant_work",
    "学生": "student", "在校生": "student",
    "公益岗位": "public_job", "公益性岗位": "public_job",
    "个体": "self_employed", "个体经营": "self_employed",
    "退休": "retired", "无": "none", "无业": "none",
}  # fmt: skip
_TABLES = {"relation": RELATION, "health": HEALTH, "education": EDUCATION, "occupation": OCCUPATION}


def member_word(t: Translator, field: str, value: str) -> str:
    """One detail in the reader's language: Chinese readers see the roster's own word."""
    value = value.strip()
    ident = _TABLES[field].get(value)
    if ident is None or t.lang.startswith("zh"):
        return value
    key = f"households.member.{field}.{ident}"
    return t(key) if t.has(key) else value


def member_detail(t: Translator, m: HouseholdMember) -> str:
    """ "配偶，1962年生，健康，初中，务农" / "spouse, born 1962, healthy, junior high, farming"."""
    parts = [member_word(t, "relation", m.relation or "")]
    if m.birth_year:
        parts.append(t("households.member.born", year=m.birth_year))
    for field in ("health", "education", "occupation"):
        parts.append(member_word(t, field, getattr(m, field) or ""))
    return t("households.member.sep").join(p for p in parts if p)
