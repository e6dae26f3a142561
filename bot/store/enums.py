"""Closed vocabularies of the domain. Values are stable ids; labels come from locales/."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CADRE = "cadre"  # 帮扶干部
    LEADER = "leader"  # 工作队长 / 第一书记
    TOWNSHIP = "township"  # 乡镇联系人 / 乡镇干部 (escalation above the team leader; scope: their village's township)
    COUNTY = "county"  # 县级干部 (乡村振兴局 etc.; scope: their village's county)
    ADMIN = "admin"
    VILLAGER = "villager"  # 群众


class HouseholdStatus(StrEnum):
    """What a household is in today's terms. Since 2021 there are no 未脱贫 households: POOR is kept only
    so records from before then still read; it is never offered for a new record."""

    LIFTED = "lifted"  # 脱贫户
    MONITORED = "monitored"  # 监测户 (防止返贫监测对象)
    GENERAL = "general"  # 一般户 (never registered as poor)
    POOR = "poor"  # 未脱贫: records from before 2021 only


class PovertyCause(StrEnum):
    """The standard list of causes of poverty (致贫原因)."""

    ILLNESS = "illness"  # 因病
    DISABILITY = "disability"  # 因残
    SCHOOLING = "schooling"  # 因学
    DISASTER = "disaster"  # 因灾
    LAND = "land"  # 缺土地
    WATER = "water"  # 缺水
    SKILLS = "skills"  # 缺技术
    LABOUR = "labour"  # 缺劳力
    FUNDS = "funds"  # 缺资金
    TRANSPORT = "transport"  # 交通条件落后
    MOTIVATION = "motivation"  # 自身发展动力不足


POVERTY_CAUSE_ZH: dict[PovertyCause, str] = {
    PovertyCause.ILLNESS: "因病",
    PovertyCause.DISABILITY: "因残",
    PovertyCause.SCHOOLING: "因学",
    PovertyCause.DISASTER: "因灾",
    PovertyCause.LAND: "缺土地",
    PovertyCause.WATER: "缺水",
    PovertyCause.SKILLS: "缺技术",
    PovertyCause.LABOUR: "缺劳力",
    PovertyCause.FUNDS: "缺资金",
    PovertyCause.TRANSPORT: "交通条件落后",
    PovertyCause.MOTIVATION: "自身发展动力不足",
}

# The statuses offered for new records (templates, drop-downs, error messages), in current terms.
HOUSEHOLD_STATUS_ZH: dict[HouseholdStatus, str] = {
    HouseholdStatus.LIFTED: "脱贫户",
    HouseholdStatus.MONITORED: "监测户",
    HouseholdStatus.GENERAL: "一般户",
}
# Every status's label, including the one old records may still carry.
HOUSEHOLD_STATUS_LABEL_ZH: dict[HouseholdStatus, str] = {**HOUSEHOLD_STATUS_ZH, HouseholdStatus.POOR: "未脱贫"}


class MonitorKind(StrEnum):
    """监测对象类型."""

    UNSTABLE = "unstable"  # 脱贫不稳定户
    MARGINAL = "marginal"  # 边缘易致贫户
    SUDDEN = "sudden"  # 突发严重困难户


class MonitorRisk(StrEnum):
    """Risk types (风险类型) a case names, as on the screening form."""

    ILLNESS = "illness"  # 因病
    DISABILITY = "disability"  # 因残
    SCHOOLING = "schooling"  # 因学
    DISASTER = "disaster"  # 因灾 (自然灾害)
    ACCIDENT = "accident"  # 因意外事故
    JOBLESS = "jobless"  # 务工就业不稳
    INCOME_DROP = "income_drop"  # 收入骤减 / 产业经营失败
    HOUSING = "housing"  # 住房安全
    WATER = "water"  # 饮水安全
    OTHER = "other"


class MonitorSource(StrEnum):
    SELF_REPORT = "self_report"  # 农户自主申报
    CADRE_CHECK = "cadre_check"  # 干部排查
    DEPARTMENT = "department"  # 部门筛查预警


class MonitorStep(StrEnum):
    """The steps of a case, in order. Identification walks ACCEPT (self-reports only) .. MEASURES, then
    FOLLOW_UP while monitored; closing walks VERIFY .. ANNOUNCE again and ends at CLOSED."""

    ACCEPT = "accept"  # 乡镇受理 (self-report)
    VERIFY = "verify"  # 入户核实
    COMPARE = "compare"  # 信息比对
    ASSESS = "assess"  # 民主评议
    PUBLICIZE = "publicize"  # 村内公示
    TOWNSHIP = "township"  # 乡镇审核
    COUNTY = "county"  # 县级审批/确认
    ANNOUNCE = "announce"  # 结果公告
    MEASURES = "measures"  # 帮扶措施
    FOLLOW_UP = "follow_up"  # 监测帮扶中 (monthly follow-up)
    CLOSED = "closed"  # 风险消除
    REJECTED = "rejected"  # 不纳入 (not identified)


class MonitorPhase(StrEnum):
    IDENTIFY = "identify"  # 识别纳入
    CLOSE = "close"  # 风险消除


class VisitKind(StrEnum):
    ROUTINE = "routine"  # 日常走访
    SPRING = "spring"  # 春耕走访
    SUMMER = "summer"  # 夏收走访
    AUTUMN = "autumn"  # 秋播走访
    CONDOLENCE = "condolence"  # 慰问
    POLICY = "policy"  # 政策宣讲


SEASONAL_KINDS = (VisitKind.SPRING, VisitKind.SUMMER, VisitKind.AUTUMN)


class LocationStatus(StrEnum):
    OK = "ok"
    NONE = "none"  # no signal / not shared: visit kept, marked "no location"
    FAR = "far"  # farther than the configured distance from the household: flagged


class DifficultyCategory(StrEnum):
    ILLNESS = "illness"
    SCHOOLING = "schooling"
    HOUSING = "housing"
    WATER = "water"
    INDUSTRY = "industry"
    EMPLOYMENT = "employment"
    INFRASTRUCTURE = "infrastructure"
    OTHER = "other"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class DifficultyStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


class CaseKind(StrEnum):
    """How a case came to be (triage of a villager's message, or a button they pressed)."""

    CASE = "case"  # a personal matter or a grievance
    HARDSHIP = "hardship"  # illness costs, disaster, lost income, a death or disability
    OTHER = "other"  # out of scope, passed on at the villager's request
    CALLBACK = "callback"  # a voice message or a picture: "please call me back"


class CaseStatus(StrEnum):
    OPEN = "open"  # waiting for the cadre's first reply
    REPLIED = "replied"  # the cadre answered; not closed yet
    LEADER = "leader"  # handed to the team leader
    RESOLVED = "resolved"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after retries, or recipient unreachable
    UNKNOWN = "unknown"  # sent, the answer was lost; not resent (bot/scheduler/README.md, "Unknown outcomes")
