"""Chinese labels of the enum values as ledgers print them (the ledgers are Chinese documents)."""

from __future__ import annotations

from functools import cache

from bot.i18n import Catalogs, Translator
from bot.store.enums import DifficultyCategory, DifficultyStatus, LocationStatus, Urgency, VisitKind

VISIT_KIND_ZH: dict[str, str] = {
    VisitKind.ROUTINE: "日常走访",
    VisitKind.SPRING: "春耕走访",
    VisitKind.SUMMER: "夏收走访",
    VisitKind.AUTUMN: "秋播走访",
    VisitKind.CONDOLENCE: "慰问",
    VisitKind.POLICY: "政策宣讲",
}
LOCATION_ZH: dict[str, str] = {
    LocationStatus.OK: "已定位",
    LocationStatus.NONE: "无定位",
    LocationStatus.FAR: "距离过远",
}
CATEGORY_ZH: dict[str, str] = {
    DifficultyCategory.ILLNESS: "看病就医",
    DifficultyCategory.SCHOOLING: "子女上学",
    DifficultyCategory.HOUSING: "住房安全",
    DifficultyCategory.WATER: "饮水安全",
    DifficultyCategory.INDUSTRY: "产业发展",
    DifficultyCategory.EMPLOYMENT: "务工就业",
    DifficultyCategory.INFRASTRUCTURE: "基础设施",
    DifficultyCategory.OTHER: "其他",
}
DIFFICULTY_STATUS_ZH: dict[str, str] = {
    DifficultyStatus.OPEN: "待受理",
    DifficultyStatus.ACKNOWLEDGED: "已受理",
    DifficultyStatus.ASSIGNED: "办理中",
    DifficultyStatus.RESOLVED: "已办结",
}
ESCALATION_ZH: dict[int, str] = {0: "工作队", 1: "乡镇"}


def label(table: dict[str, str], value: str | None) -> str:
    """The label of value, or the value itself when a newer enum member has no label yet."""
    if value is None:
        return ""
    return table.get(value, value)


@cache
def _zh() -> Translator:
    from bot.settings import data_dir

    return Catalogs(data_dir("locales")).get("zh_CN")


def urgency_label(value: str | None) -> str:
    """A difficulty's urgency as the chat shows it in Chinese (difficulty.urgency.* in cadre.po): one
    label table for the button the cadre pressed, the cards and the ledger."""
    if value is None:
        return ""
    try:
        return _zh()(f"difficulty.urgency.{Urgency(value).value}")
    except ValueError:  # a value newer than this code: shown as stored
        return value
