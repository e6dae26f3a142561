"""The policy knowledge base: topic entries and county overrides read from knowledge/, and its checks."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LANGS = ("zh_CN", "en")
_LANG_KEY = {"zh_CN": "zh", "en": "en"}
PARAM_STATUSES = ("confirmed", "unconfirmed", "varies")
HOSPITAL_LEVELS = ("township", "county", "city")


def _yaml_load(text: str) -> Any:
    # The C loader is several times faster; start-up time matters to the bot.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def lang_key(lang: str) -> str:
    """The key used inside KB files for a language ("zh" or "en")."""
    return _LANG_KEY.get(lang, "zh")


@dataclass(frozen=True)
class Param:
    """A named figure: its national default, the year it is for, and how sure we are of it."""

    name: str
    value: Any  # None when only local figures exist
    unit: dict[str, str]
    year: int | None
    status: str  # confirmed | unconfirmed | varies | local
    value_en: Any = None  # a text value written differently in English


@dataclass(frozen=True)
class Topic:
    """One knowledge-base entry (one contract topic id)."""

    id: str
    title: dict[str, str]
    keywords: tuple[str, ...]
    synonyms: tuple[str, ...]
    objects: tuple[str, ...]  # things (拖拉机, 大学): strong only in a question that asks for help or money
    terms: tuple[str, ...]
    combos: tuple[tuple[tuple[str, ...], ...], ...]  # each part: alternatives ("低保|特困 + 看病|住院")
    fallback_combos: tuple[tuple[tuple[str, ...], ...], ...]  # only when no topic has a strong word
    examples: tuple[str, ...]
    params: dict[str, Param]
    answer: dict[str, str]
    how_to_apply: dict[str, str]
    ask: dict[str, str]
    document: dict[str, Any]
    figures_year: int | None
    calculator: str | None
    levels: dict[str, tuple[str, ...]]
    source: Path


@dataclass(frozen=True)
class Office:
    """A county office villagers can go to: name, phone, address, and the topics it handles."""

    name: dict[str, str]
    phone: str
    address: dict[str, str]
    topics: tuple[str, ...]  # topic ids, or "medical.*" for every topic of a group

    def handles(self, topic_id: str) -> bool:
        return any(t == topic_id or (t.endswith(".*") and topic_id.startswith(t[:-1])) for t in self.topics)


@dataclass(frozen=True)
class County:
    """Local overrides for one county: parameter values, calculator inputs and offices."""

    code: str
    name: dict[str, str]
    year: int | None
    example: bool
    params: dict[str, dict[str, Param]]  # topic id -> param name -> local value
    calculators: dict[str, Any]
    source: Path
    offices: tuple[Office, ...] = ()

    def office_for(self, topic_id: str) -> Office | None:
        """The first office that handles this topic, if the county file lists one."""
        return next((o for o in self.offices if o.handles(topic_id)), None)


@dataclass
class KnowledgeBase:
    """All topics, all counties, and the contract list of topic ids."""

    topics: dict[str, Topic]
    counties: dict[str, County]
    contract_ids: tuple[str, ...]
    problems: list[str] = field(default_factory=list)  # found while loading


def _as_str_dict(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v).strip() for k, v in raw.items()}
    if raw is None:
        return {}
    return {"zh": str(raw).strip()}


def _str_tuple(raw: Any) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(str(x).strip() for x in raw if str(x).strip())


def _combos(raw: Any) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """ "低保|特困 + 看病|住院" → ((低保, 特困), (看病, 住院))."""
    return tuple(
        tuple(
            tuple(a.strip() for a in part.split("|") if a.strip())
            for part in str(c).split("+")
            if part.strip()
        )
        for c in raw or ()
    )


def _param(name: str, raw: Any, *, local: bool = False) -> Param:
    raw = raw if isinstance(raw, dict) else {"value": raw}
    unit = raw.get("unit") or {}
    if isinstance(unit, str):
        unit = {"zh": unit, "en": unit}
    status = "local" if local else str(raw.get("status", "confirmed"))
    year = raw.get("year")
    return Param(
        name=name,
        value=raw.get("value"),
        unit={k: "" if v is None else str(v) for k, v in unit.items()},
        year=int(year) if year is not None else None,
        status=status,
        value_en=raw.get("value_en"),
    )


def _load_topic(path: Path, problems: list[str]) -> Topic | None:
    try:
        raw = _yaml_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        problems.append(f"{path.name}: not valid YAML: {e}")
        return None
    if not isinstance(raw, dict) or "id" not in raw:
        problems.append(f"{path.name}: no id")
        return None
    params = {str(k): _param(str(k), v) for k, v in (raw.get("params") or {}).items()}
    levels = {str(k): _str_tuple(v) for k, v in (raw.get("levels") or {}).items()}
    doc = raw.get("document") or {}
    year = raw.get("figures_year")
    return Topic(
        id=str(raw["id"]),
        title=_as_str_dict(raw.get("title")),
        keywords=_str_tuple(raw.get("keywords")),
        synonyms=_str_tuple(raw.get("synonyms")),
        objects=_str_tuple(raw.get("objects")),
        terms=_str_tuple(raw.get("terms")),
        combos=_combos(raw.get("combos")),
        fallback_combos=_combos(raw.get("fallback_combos")),
        examples=_str_tuple(raw.get("examples")),
        params=params,
        answer=_as_str_dict(raw.get("answer")),
        how_to_apply=_as_str_dict(raw.get("how_to_apply")),
        ask=_as_str_dict(raw.get("ask")),
        document=dict(doc) if isinstance(doc, dict) else {"zh": str(doc)},
        figures_year=int(year) if year is not None else None,
        calculator=raw.get("calculator"),
        levels=levels,
        source=path,
    )


def _load_county(path: Path, problems: list[str]) -> County | None:
    try:
        raw = _yaml_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        problems.append(f"{path.name}: not valid YAML: {e}")
        return None
    code = str(raw.get("code") or path.stem)
    params: dict[str, dict[str, Param]] = {}
    for topic_id, body in (raw.get("topics") or {}).items():
        params[str(topic_id)] = {
            str(k): _param(str(k), v, local=True) for k, v in ((body or {}).get("params") or {}).items()
        }
    year = raw.get("year")
    offices = tuple(
        Office(
            name=_as_str_dict(o.get("name")),
            phone=str(o.get("phone") or "").strip(),
            address=_as_str_dict(o.get("address")),
            topics=_str_tuple(o.get("topics")),
        )
        for o in raw.get("offices") or ()
        if isinstance(o, dict)
    )
    if any(not isinstance(o, dict) for o in raw.get("offices") or ()):
        problems.append(f"{path.name}: every office must be a mapping (name, phone, address, topics)")
    return County(
        offices=offices,
        code=code,
        name=_as_str_dict(raw.get("name")) or {"zh": code, "en": code},
        year=int(year) if year is not None else None,
        example=bool(raw.get("example", False)),
        params=params,
        calculators=dict(raw.get("calculators") or {}),
        source=path,
    )


def load_knowledge(knowledge_dir: Path) -> KnowledgeBase:
    """Read knowledge_dir/policies/*.yaml, counties/*.yaml and the topic contract policy-topics.yaml."""
    problems: list[str] = []
    topics: dict[str, Topic] = {}
    for path in sorted((knowledge_dir / "policies").glob("*.yaml")):
        topic = _load_topic(path, problems)
        if topic is None:
            continue
        if topic.id in topics:
            problems.append(f"{path.name}: topic {topic.id} defined twice")
        topics[topic.id] = topic
    counties: dict[str, County] = {}
    for path in sorted((knowledge_dir / "counties").glob("*.yaml")):
        county = _load_county(path, problems)
        if county is not None:
            counties[county.code] = county
    contract: tuple[str, ...] = ()
    contract_path = knowledge_dir / "policy-topics.yaml"
    if contract_path.exists():
        raw = _yaml_load(contract_path.read_text(encoding="utf-8")) or {}
        contract = tuple(str(t["id"]) for t in raw.get("topics") or ())
    else:
        problems.append("policy-topics.yaml (the topic id contract) is missing")
    return KnowledgeBase(topics=topics, counties=counties, contract_ids=contract, problems=problems)


_FIELD = re.compile(r"\{([^{}]*)\}")
# A phone number as written on a notice: digits, with an area code, dashes or spaces ("0371-12345678").
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{4,18}[0-9]")


def referenced_params(text: str) -> set[str]:
    """Names of {parameters} used in an answer text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def check_knowledge(kb: KnowledgeBase) -> list[str]:
    """Problems in the knowledge base: missing contract ids, empty answers, unknown parameters, bad counties."""
    problems = list(kb.problems)
    for cid in kb.contract_ids:
        if cid not in kb.topics:
            problems.append(f"contract topic {cid} has no knowledge-base entry")
    for tid, topic in kb.topics.items():
        where = topic.source.name
        if kb.contract_ids and tid not in kb.contract_ids:
            problems.append(f"{where}: {tid} is not a contract topic id")
        if topic.source.stem != tid:
            problems.append(f"{where}: file name should be {tid}.yaml")
        for lang in ("zh", "en"):
            if not topic.title.get(lang):
                problems.append(f"{where}: empty title.{lang}")
            if not topic.answer.get(lang):
                problems.append(f"{where}: empty answer.{lang}")
            if not topic.how_to_apply.get(lang):
                problems.append(f"{where}: empty how_to_apply.{lang}")
            if not topic.ask.get(lang):
                problems.append(f"{where}: empty ask.{lang}")
            if not topic.document.get(lang):
                problems.append(f"{where}: empty document.{lang}")
            try:
                used = referenced_params(topic.answer.get(lang, ""))
            except ValueError as e:
                problems.append(f"{where}: answer.{lang} has a broken {{field}}: {e}")
                continue
            for name in sorted(used - set(topic.params)):
                problems.append(f"{where}: answer.{lang} uses {{{name}}} but there is no such parameter")
        if not topic.document.get("year"):
            problems.append(f"{where}: document has no year")
        if not topic.keywords:
            problems.append(f"{where}: no keywords")
        if len(topic.examples) < 2:
            problems.append(f"{where}: fewer than 2 example questions")
        for p in topic.params.values():
            if p.status not in PARAM_STATUSES:
                problems.append(f"{where}: parameter {p.name} has unknown status {p.status!r}")
            if p.status != "varies" and p.value is None:
                problems.append(f"{where}: parameter {p.name} has no value (mark it status: varies)")
            if p.value is not None and p.year is None:
                problems.append(f"{where}: parameter {p.name} has a value but no year")
        if topic.calculator and topic.calculator != "inpatient":
            problems.append(f"{where}: unknown calculator {topic.calculator!r}")
    for code, county in kb.counties.items():
        where = county.source.name
        if county.year is None:
            problems.append(f"{where}: county {code} has no year for its figures")
        for tid, params in county.params.items():
            if tid not in kb.topics:
                problems.append(f"{where}: override for unknown topic {tid}")
                continue
            for name in params:
                if name not in kb.topics[tid].params:
                    problems.append(f"{where}: {tid} has no parameter {name}")
        for i, office in enumerate(county.offices, 1):
            label = office.name.get("zh") or f"#{i}"
            if not office.name.get("zh"):
                problems.append(f"{where}: office #{i} has no name.zh")
            if not _PHONE.fullmatch(office.phone):
                problems.append(f"{where}: office {label} phone {office.phone!r} is not a phone number")
            if not office.address.get("zh"):
                problems.append(f"{where}: office {label} has no address.zh")
            if not office.topics:
                problems.append(f"{where}: office {label} lists no topics")
            for t in office.topics:
                known = t in kb.topics or (t.endswith(".*") and any(k.startswith(t[:-1]) for k in kb.topics))
                if not known:
                    problems.append(f"{where}: office {label} lists unknown topic {t}")
        inpatient = county.calculators.get("inpatient")
        if inpatient is not None:
            levels = inpatient.get("levels") or {}
            for level, fig in levels.items():
                if level not in HOSPITAL_LEVELS:
                    problems.append(f"{where}: unknown hospital level {level}")
                    continue
                for key in ("deductible", "ratio"):
                    if not isinstance((fig or {}).get(key), int | float):
                        problems.append(f"{where}: inpatient {level}.{key} must be a number")
                ratio = (fig or {}).get("ratio")
                if isinstance(ratio, int | float) and not 0 < ratio <= 100:
                    problems.append(f"{where}: inpatient {level}.ratio must be a percentage")
    return problems
