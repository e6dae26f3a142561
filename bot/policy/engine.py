"""PolicyEngine: villager question in, PolicyAnswer out. Channel-free and database-free."""

from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from bot.clock import Clock, SystemClock
from bot.policy.kb import (
    HOSPITAL_LEVELS,
    County,
    KnowledgeBase,
    Param,
    Topic,
    check_knowledge,
    lang_key,
    load_knowledge,
    referenced_params,
)
from bot.policy.matcher import TopicMatcher
from bot.policy.messages import Messages
from bot.policy.ngram import MODEL_FILE, NgramModel, prepare, prepare_words
from bot.policy.text import Normalizer

log = logging.getLogger(__name__)

NONE_TOPIC = "none"
ANSWER_MIN = 2.2  # one strong word, or three hints; two hints alone are not enough
CLARIFY_RATIO = 0.8  # second topic this close to the first: ask which one
FOLLOWUP_BONUS = 1.5  # a short or "那…呢" question leans towards the previous topic
CONTEXT_TTL = timedelta(minutes=5)
CONTEXT_VERSION = 1
# Combining the two voices (keyword parser, n-gram model). Calibrated on the tests/policy question sets
# (dev, fresh, probe*, tuning) so that a wrong answer is rarer than a decline; see README.md.
NG_SUPPORT = 0.1  # the n-gram model gives the keyword parser's topic at least this: they agree
NG_DISAGREE = 0.5  # the n-gram model prefers another topic this strongly: ask which one
NG_VETO = 0.8  # the n-gram model says "no policy topic" this strongly over a keyword answer: decline
VETO_BELOW = 3.0  # ...unless the keyword parser's score is at least this (a formal name, or two words)
NG_ALONE = 0.75  # the keyword parser found nothing and the n-gram model is this sure: answer
NG_CLARIFY = 0.45  # ...this sure: ask, with its best topics as buttons (one topic: "您问的是…吗？")
NG_WEAK = (
    0.5  # the keyword parser has only a hint (score ≥ 1) for the n-gram model's topic, this sure: answer
)
NG_TAG = 0.4  # a case or hardship is tagged with the n-gram model's topic from this probability
KIND_MIN = 0.55  # a non-question kind needs this probability to override a policy answer
CHAT_MAX_LEN = 12  # chit-chat is short
SHORT_MAX = {"zh_CN": 300, "en": 700}  # the first message, in characters: a farmer reads it to the end
STALE_YEARS = 3  # a figure older than this is shown with its year, never as the current standard
# What a question asks for, by its words; the answer's first message gives that part of the entry.
ASPECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("docs", ("材料", "带什么", "资料", "证件", "手续", "要带", "准备什么", "哪些东西", "单子")),
    ("where", ("哪里", "哪个部门", "找谁", "去哪", "在哪", "哪儿", "找哪", "什么地方", "哪个单位", "电话")),
    ("when", ("什么时候", "啥时候", "几月", "哪天", "多久", "截止", "时间", "几号", "好久")),
    ("amount", ("多少", "几多", "好多", "标准", "比例", "几个钱", "补几", "给几", "百分之", "金额", "钱")),
    (
        "how",
        (
            "怎么申请",
            "如何申请",
            "咋申请",
            "怎么办理",
            "怎么办",
            "咋办",
            "流程",
            "怎么弄",
            "咋弄",
            "步骤",
            "怎么交",
            "咋交",
            "怎么报",
            "咋报",
            "申请",
        ),
    ),
    (
        "who",
        (
            "条件",
            "能不能",
            "能否",
            "可以",
            "符合",
            "够不够",
            "能办",
            "能吃",
            "能领",
            "能享受",
            "有没有",
            "谁能",
        ),
    ),
)
# Per aspect, in order, one search for any of its words (the same test as `any(w in text for w in words)`).
_ASPECT_SEARCH = tuple((name, re.compile("|".join(map(re.escape, words))).search) for name, words in ASPECTS)
# Words in the label of an answer's bullet ("· 要带：…") that show which aspect it covers.
BULLET_ASPECTS: dict[str, tuple[str, ...]] = {
    "docs": ("要带", "材料", "资料", "带上", "准备"),
    "when": ("时间", "什么时候", "截止", "期限", "何时"),
    "amount": (
        "多少",
        "标准",
        "比例",
        "补助",
        "金额",
        "起付",
        "封顶",
        "报销",
        "交",
        "发",
        "贷",
        "补",
        "额度",
        "利息",
    ),
    "how": ("流程", "怎么", "申请", "步骤", "办理", "程序"),
    "who": ("条件", "对象", "谁能", "哪些人", "范围", "适用"),
    "where": ("地点", "哪里", "找谁", "部门"),
}


def _likely(topics: dict[str, float], floor: float) -> list[tuple[str, float]]:
    """The topics other than "none" with a probability of at least floor, likeliest first, ties in class order.

    The start of the whole ranking (a stable sort by descending probability) down to floor, without sorting
    the many unlikely topics: the engine reads only the first few of them, and only above a floor.
    """
    return sorted(
        ((t, p) for t, p in topics.items() if p >= floor and t != NONE_TOPIC), key=itemgetter(1), reverse=True
    )


@dataclass
class PolicyAnswer:
    """What the engine decided about one question."""

    topic: str  # a contract topic id, or "none"
    confidence: float  # 0–1
    alternatives: list[str]  # other candidate topic ids, best first
    decision: str  # "answer" | "clarify" | "decline" | "forward" (a person must handle it: case, hardship)
    text: str  # HTML-escaped text, ready for Telegram HTML parse mode
    options: list[tuple[str, str]] = field(default_factory=list)  # (topic id, label) buttons for clarify
    context: dict[str, Any] = field(default_factory=dict)  # pass back into the next answer() for follow-ups
    kind: str = "question"  # "question" | "case" | "hardship" | "other" | "chat" (see POLICY_API.md)
    kind_confidence: float = 1.0  # the n-gram model's probability of that kind
    detail: str = (
        ""  # the whole answer (HTML-escaped) behind the "详细说明" button; "" when text is all of it
    )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's --json output)."""
        d = asdict(self)
        d["answer"] = d.pop("text")
        d["options"] = [list(o) for o in self.options]
        return d


def _fmt_number(value: float, lang: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}" if lang == "en" else str(value)
    return f"{value:g}"


@dataclass(frozen=True)
class _ShortParts:
    """Pre-rendered pieces of a topic's first message (plain text, not yet escaped)."""

    title: str
    intro: tuple[str, bool]  # the answer's first line, and whether it shows a figure
    first_bullet: tuple[str, bool]
    bullets: dict[str, list[tuple[str, bool]]]  # aspect -> the bullets that cover it, in order
    # aspect -> per bullet, its two-character pieces in order (repeats kept): computed once, at load
    bullet_pairs: dict[str, list[tuple[str, ...]]]
    how: str
    office: str
    footer: str

    def footer_in(self, escaped: str) -> bool:
        return html.escape(self.footer, quote=False) in escaped


class PolicyEngine:
    """Answers villagers' policy questions from the knowledge base, for one county (or national figures)."""

    def __init__(
        self,
        kb: KnowledgeBase,
        county: County | None,
        messages: Messages,
        normalizer: Normalizer,
        matcher: TopicMatcher,
        clock: Clock,
    ) -> None:
        self.kb = kb
        self.county = county
        self.messages = messages
        self.normalizer = normalizer
        self.matcher = matcher
        self.clock = clock
        self.ngram: NgramModel | None = None
        self._year = clock.now().year
        # Answer texts depend only on the topic, language and county: render them once, at load.
        self._short: dict[str, dict[str, _ShortParts]] = {
            lang: {tid: self._short_parts(topic, lang) for tid, topic in kb.topics.items()}
            for lang in ("zh_CN", "en")
        }
        self._static: dict[str, dict[str, tuple[str, str]]] = {
            lang: {tid: self._render_static(topic, lang) for tid, topic in kb.topics.items()}
            for lang in ("zh_CN", "en")
        }

    @classmethod
    def load(
        cls,
        knowledge_dir: Path,
        county: str | None = None,
        *,
        locales_dir: Path | None = None,
        clock: Clock | None = None,
    ) -> PolicyEngine:
        """Read the knowledge base and build the tokenizer now (not on the first question)."""
        knowledge_dir = Path(knowledge_dir)
        kb = load_knowledge(knowledge_dir)
        chosen: County | None = None
        if county:
            chosen = kb.counties.get(county)
            if chosen is None:
                raise ValueError(f"no county {county!r} in {knowledge_dir / 'counties'}")
        if locales_dir is None:
            sibling = knowledge_dir.parent / "locales"
            if sibling.is_dir():
                locales_dir = sibling
            else:
                from bot.settings import data_dir

                locales_dir = data_dir("locales")
        normalizer = Normalizer()
        matcher = TopicMatcher(kb, normalizer)
        engine = cls(kb, chosen, Messages.load(locales_dir), normalizer, matcher, clock or SystemClock())
        engine.ngram = NgramModel.load(MODEL_FILE)
        return engine

    def topic_ids(self) -> list[str]:
        """The topic ids this engine can answer (to validate a clarify button's data)."""
        return list(self.kb.topics)

    def check(self) -> list[str]:
        """Problems in the knowledge base (empty when all is well)."""
        problems = check_knowledge(self.kb)
        for lang in ("zh_CN", "en"):
            for key in self.messages.missing(lang):
                problems.append(f"policy.po ({lang}) has no message {key}")
        return problems

    # ---- deciding -------------------------------------------------------------------------------------

    def triage(self, text: str) -> tuple[str, float]:
        """The message's kind ("question", "case", "hardship", "other", "chat") and its probability.

        The n-gram model alone, no context: usable on its own (e.g. to route a message before answering).
        """
        if self.ngram is None:
            return "question", 0.0
        kinds, _ = self.ngram.predict(prepare(self.normalizer, text))
        kind = max(kinds, key=lambda k: kinds[k])
        return kind, round(kinds[kind], 3)

    def answer(
        self,
        question: str,
        lang: str = "zh_CN",
        context: dict[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> PolicyAnswer:
        """Triage one message, then answer, clarify, decline or forward it; context is the previous answer's."""
        now = self._now(now)
        prev = self._live_context(context, now)
        simple = self.normalizer.simplify(question)
        norm, words = self.normalizer.normalize_words(simple)
        text = norm.text.replace(" ", "")
        if self.ngram is not None:
            kinds, topics = self.ngram.predict(prepare_words(words))
        else:
            kinds, topics = {"question": 1.0}, {}
        kind = max(kinds, key=kinds.__getitem__)
        kind_p = kinds[kind]
        if not text and kind != "chat":
            return self._decline(lang, prev, now, 0.0, [])
        scores, _hits = self.matcher.score(text) if text else ({}, [])
        prev_topic = prev.get("topic") if prev else None
        followup = prev_topic in self.kb.topics and (norm.followup or len(text) <= 6)
        if followup and prev_topic is not None:
            bonus = FOLLOWUP_BONUS
            if norm.amounts and self.kb.topics[prev_topic].calculator:
                bonus += 1.0  # "三万呢" after an estimate: a new bill for the same estimate
            scores[prev_topic] = scores.get(prev_topic, 0.0) + bonus
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        kw_best, s1 = ranked[0] if ranked else (NONE_TOPIC, 0.0)
        s2 = ranked[1][1] if len(ranked) > 1 else 0.0
        # The n-gram model's likeliest topic other than "none", the first in its class order on a tie (max()
        # keeps the first); the next ones are sorted only where they are read (_likely).
        ng_best, pn = max(topics.items(), key=itemgetter(1)) if topics else (NONE_TOPIC, 0.0)
        if ng_best == NONE_TOPIC:
            others = [kv for kv in topics.items() if kv[0] != NONE_TOPIC]
            ng_best, pn = max(others, key=itemgetter(1)) if others else (NONE_TOPIC, 0.0)
        p_none = topics.get(NONE_TOPIC, 0.0)
        if p_none > pn:
            ng_best = NONE_TOPIC
        strong = s1 >= ANSWER_MIN
        contested = ng_best not in (NONE_TOPIC, kw_best) and pn >= NG_DISAGREE
        agree = strong and (
            kw_best == ng_best
            or (topics.get(kw_best, 0.0) >= NG_SUPPORT and not contested)
            or (followup and kw_best == prev_topic)  # the conversation is the second voice ("三万呢")
        )

        # Chit-chat and out-of-scope messages: never a policy answer unless both voices name a topic.
        if kind == "chat" and kind_p >= KIND_MIN and not strong and len(text) <= CHAT_MAX_LEN:
            raw = question.lower()
            key = (
                "policy.triage.thanks"
                if any(w in raw for w in ("谢", "thank", "辛苦"))
                else "policy.triage.chat"
            )
            return self._route(kind, kind_p, NONE_TOPIC, lang, prev, now, key)
        if (
            kind == "other"
            and not agree
            and (kind_p >= KIND_MIN or (ng_best == NONE_TOPIC and s1 < VETO_BELOW))
        ):
            # Out of scope by the kind head: sure, or the topic head sees no policy and no formal name is named.
            return self._route(kind, kind_p, NONE_TOPIC, lang, prev, now)

        # The topic both voices support, if any (also tags a case or hardship).
        if agree:
            topic = kw_best
        elif (
            not strong
            and ng_best != NONE_TOPIC
            and (pn >= NG_ALONE or (pn >= NG_WEAK and scores.get(ng_best, 0.0) >= 1.0))
        ):
            topic = ng_best  # the n-gram model alone and sure, or agreeing with a hint of the keyword parser
        else:
            topic = NONE_TOPIC
        if followup and strong and kw_best == prev_topic and kind != "hardship":
            kind, kind_p = "question", kinds.get("question", 0.0)  # "三万呢" right after an estimate
        if kind in ("case", "hardship") and kind_p >= KIND_MIN:
            if topic == NONE_TOPIC and ng_best != NONE_TOPIC and pn >= NG_TAG:
                topic = ng_best  # a tag for the person who handles it, not an answer
            if topic == NONE_TOPIC and followup and prev_topic:
                topic = prev_topic  # "是不是弄错了？" right after an answer: about that topic
            return self._route(kind, kind_p, topic, lang, prev, now)

        level = self.matcher.level(text)
        amount = norm.amounts[0] if norm.amounts else None
        aspect = self._aspect(text)
        if strong:
            confidence = self._confidence(s1, s2)
            alternatives = [t for t, s in ranked[1:4] if s >= ANSWER_MIN / 2]
            if s2 >= CLARIFY_RATIO * s1 and s2 >= ANSWER_MIN * 0.8:
                close = [t for t, s in ranked[:3] if s >= CLARIFY_RATIO * s1][:3]
                return self._clarify(close, lang, now, confidence, *self._keep(prev, close[0], amount, level))
            if agree:
                best = kw_best
            elif contested:
                close = [kw_best, ng_best]
                return self._clarify(close, lang, now, confidence, *self._keep(prev, kw_best, amount, level))
            elif ng_best == NONE_TOPIC and p_none >= NG_VETO and s1 < VETO_BELOW:
                return self._decline(lang, prev, now, s1 / 2, [kw_best])
            else:
                best = kw_best
            return self._render(
                best,
                lang,
                now,
                confidence,
                alternatives,
                *self._keep(prev, best, amount, level),
                aspect,
                text,
            )
        if topic != NONE_TOPIC:
            alternatives = [t for t, _ in _likely(topics, 0.1)[1:3]]
            return self._render(
                topic,
                lang,
                now,
                round(pn, 3),
                alternatives,
                *self._keep(prev, topic, amount, level),
                aspect,
                text,
            )
        if ng_best != NONE_TOPIC and pn >= NG_CLARIFY:
            close = [t for t, _ in _likely(topics, 0.15)[:3]]
            if kw_best in self.kb.topics and kw_best not in close and s1 >= ANSWER_MIN / 2:
                close.append(kw_best)
            # One topic alone is offered only when the n-gram model is fairly sure or a keyword hints at it.
            if len(close) >= 2 or (close and (pn >= NG_WEAK or scores.get(close[0], 0.0) > 0)):
                return self._clarify(
                    close, lang, now, round(pn, 3), *self._keep(prev, close[0], amount, level)
                )
        if kind in ("case", "hardship"):
            # A topic-less personal line ("那笔钱还扣不扣？") goes to a person, never a guess.
            return self._route(kind, kind_p, prev_topic or NONE_TOPIC, lang, prev, now)
        declined = self._decline(lang, prev, now, s1, [t for t, s in ranked[:3] if s >= ANSWER_MIN / 2])
        declined.kind, declined.kind_confidence = kind, round(kind_p, 3)
        return declined

    @staticmethod
    def _aspect(text: str) -> str | None:
        """What the question asks for: "docs", "where", "when", "amount", "how", "who", or None."""
        for name, words in _ASPECT_SEARCH:
            if words(text) is not None:
                return name
        return None

    @staticmethod
    def _keep(
        prev: dict[str, Any] | None, topic: str, amount: float | None, level: str | None
    ) -> tuple[float | None, str | None]:
        """A follow-up on the same topic keeps the bill and hospital level already given ("县医院呢").

        Another topic forgets them: an old bill is not the new question's.
        """
        if prev and prev.get("topic") == topic:
            amount = amount if amount is not None else prev.get("amount")
            level = level or prev.get("level")
        return amount, level

    def _route(
        self,
        kind: str,
        kind_p: float,
        topic: str,
        lang: str,
        prev: dict[str, Any] | None,
        now: datetime,
        key: str = "policy.triage.chat",
    ) -> PolicyAnswer:
        """Chat, out-of-scope, case or hardship: a short reply; case and hardship go to a person."""
        if kind == "chat":
            decision = "decline"
        elif kind == "other":
            key, decision = "policy.triage.other", "decline"
        else:
            key, decision = f"policy.triage.{kind}", "forward"
        text = html.escape(self.messages.get(lang, key), quote=False)
        context = dict(prev) if prev else self._context(now, None, None, None)
        return PolicyAnswer(topic, round(kind_p, 3), [], decision, text, [], context, kind, round(kind_p, 3))

    def answer_topic(
        self,
        topic_id: str,
        lang: str = "zh_CN",
        context: dict[str, Any] | None = None,
        *,
        now: datetime | None = None,
    ) -> PolicyAnswer:
        """The answer for a topic the villager picked (a clarify button). topic_id comes from the client."""
        now = self._now(now)
        prev = self._live_context(context, now)
        if topic_id not in self.kb.topics:
            return self._decline(lang, prev, now, 0.0, [])
        amount = prev.get("amount") if prev else None
        level = prev.get("level") if prev else None
        return self._render(topic_id, lang, now, 1.0, [], amount, level)

    def _now(self, now: datetime | None) -> datetime:
        now = now or self.clock.now()
        return now if now.tzinfo else now.replace(tzinfo=UTC)

    @staticmethod
    def _confidence(s1: float, s2: float) -> float:
        strength = 1.0 - math.exp(-s1 / 3.0)
        margin = (s1 - s2) / s1 if s1 > 0 else 0.0
        return round(max(0.0, min(1.0, 0.5 * strength + 0.5 * margin)), 3)

    def _live_context(self, context: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
        if not context or context.get("v") != CONTEXT_VERSION:
            return None
        try:
            at = datetime.fromisoformat(str(context["at"]))
        except (KeyError, ValueError):
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if not timedelta(0) <= now - at <= CONTEXT_TTL:
            return None
        return context

    def _context(
        self, now: datetime, topic: str | None, amount: float | None, level: str | None
    ) -> dict[str, Any]:
        return {
            "v": CONTEXT_VERSION,
            "at": now.isoformat(),
            "topic": topic,
            "amount": amount,
            "level": level,
            "county": self.county.code if self.county else None,
        }

    def _decline(
        self, lang: str, prev: dict[str, Any] | None, now: datetime, top: float, alternatives: list[str]
    ) -> PolicyAnswer:
        text = self.messages.get(lang, "policy.decline")
        confidence = round(1.0 - min(top / ANSWER_MIN, 1.0) * 0.5, 3)
        # Keep a still-fresh context: one unclear message should not forget the topic being discussed.
        context = dict(prev) if prev else self._context(now, None, None, None)
        return PolicyAnswer(
            NONE_TOPIC, confidence, alternatives, "decline", html.escape(text, quote=False), [], context
        )

    def _clarify(
        self,
        close: list[str],
        lang: str,
        now: datetime,
        confidence: float,
        amount: float | None,
        level: str | None,
    ) -> PolicyAnswer:
        key = lang_key(lang)
        labels = [
            (tid, self.kb.topics[tid].title.get(key) or self.kb.topics[tid].title["zh"]) for tid in close
        ]
        if len(labels) == 1:
            text = self.messages.get(lang, "policy.confirm_question", topic=labels[0][1])
        else:
            text = self.messages.get(lang, "policy.clarify_question", first=labels[0][1], second=labels[1][1])
        context = self._context(now, None, amount, level)
        context["pending"] = close
        return PolicyAnswer(
            close[0], confidence, close[1:], "clarify", html.escape(text, quote=False), labels, context
        )

    # ---- rendering ------------------------------------------------------------------------------------

    def _local_params(self, topic: Topic) -> dict[str, Param]:
        if self.county is None:
            return {}
        return self.county.params.get(topic.id, {})

    def _region(self, lang: str, topic: Topic) -> tuple[str, int | None]:
        """Which region and year the figures of this answer are for."""
        county = self.county
        local = county is not None and (
            bool(self._local_params(topic))
            or (topic.calculator is not None and topic.calculator in county.calculators)
        )
        if county is not None and local:
            name = county.name.get(lang_key(lang)) or county.name.get("zh", county.code)
            key = "policy.region_example" if county.example else "policy.region_county"
            return self.messages.get(lang, key, county=name), county.year
        return self.messages.get(lang, "policy.region_national"), topic.figures_year

    def _param_text(self, param: Param, lang: str, local: Param | None) -> str:
        key = lang_key(lang)
        p = local or param
        value = p.value_en if (key == "en" and p.value_en is not None) else p.value
        unit = p.unit.get(key, "")
        if value is None:
            return self.messages.get(lang, "policy.param.varies")
        shown = _fmt_number(value, lang) if isinstance(value, int | float) else str(value)
        shown = f"{shown} {unit}".strip() if key == "en" and unit else f"{shown}{unit}"
        if local is not None and self.county is not None:
            if self.county.example:
                return self.messages.get(lang, "policy.param.example", value=shown)
            name = self.county.name.get(key) or self.county.name.get("zh", self.county.code)
            if self.county.year is not None and self._year - self.county.year > STALE_YEARS:
                return self.messages.get(lang, "policy.param.stale", value=shown, year=self.county.year)
            return self.messages.get(
                lang, "policy.param.local", value=shown, region=name, year=self.county.year
            )
        if param.year is not None and self._year - param.year > STALE_YEARS:
            # An old national figure is history, not the current standard.
            return self.messages.get(lang, "policy.param.stale", value=shown, year=param.year)
        if param.status == "unconfirmed":
            return self.messages.get(lang, "policy.param.unconfirmed", value=shown)
        if param.status == "varies":
            return self.messages.get(lang, "policy.param.varies_ref", value=shown)
        return shown

    def _document_line(self, lang: str, document: str, year: str) -> str:
        """ "Based on: document (year)", without repeating a year the document's name already carries."""
        if not year or year in document:
            return self.messages.get(lang, "policy.document_no_year", document=document)
        return self.messages.get(lang, "policy.document", document=document, year=year)

    def _body(self, topic: Topic, lang: str) -> str:
        return "\n".join(line for line, _ in self._body_lines(topic, lang)).strip()

    def _body_lines(self, topic: Topic, lang: str) -> list[tuple[str, bool]]:
        """The answer's lines with their figures filled in, and whether each line shows a figure."""
        key = lang_key(lang)
        local = self._local_params(topic)
        values = {name: self._param_text(p, lang, local.get(name)) for name, p in topic.params.items()}
        template = (topic.answer.get(key) or topic.answer.get("zh", "")).strip()
        out: list[tuple[str, bool]] = []
        for line in template.splitlines():
            try:
                names = referenced_params(line)
                # A figure is shown when a named parameter has a value (not "各地不一样").
                fig = any(
                    (local.get(n) or topic.params[n]).value is not None for n in names if n in topic.params
                )
                out.append((line.format_map(values), fig))
            except (KeyError, ValueError, IndexError):
                log.exception("knowledge base answer for %s/%s has a bad {field}", topic.id, key)
                out.append((line, False))
        return out

    def _office(self, topic: Topic, lang: str) -> str:
        """Whom to ask: the county's office for this topic (name, phone, address), else the topic's ask."""
        key = lang_key(lang)
        office = self.county.office_for(topic.id) if self.county else None
        if office is None:
            return self.messages.get(lang, "policy.ask_whom", text=topic.ask.get(key, ""))
        mark = self.messages.get(lang, "policy.office_example") if self.county and self.county.example else ""
        return self.messages.get(
            lang,
            "policy.office",
            name=office.name.get(key) or office.name.get("zh", ""),
            phone=office.phone,
            address=office.address.get(key) or office.address.get("zh", ""),
            example=mark,
        )

    def _short_parts(self, topic: Topic, lang: str) -> _ShortParts:
        """The pieces of an answer's first message: title, the body's lines by aspect, office, footer."""
        key = lang_key(lang)
        lines = [(ln.strip(), fig) for ln, fig in self._body_lines(topic, lang) if ln.strip()]
        intro = lines[0] if lines else ("", False)
        bullets: dict[str, list[tuple[str, bool]]] = {}
        for line, fig in lines[1:]:
            label = line.lstrip("·•-* ").split("：", 1)[0].split(":", 1)[0][:12]
            for aspect, words in BULLET_ASPECTS.items():
                if any(w in label for w in words):
                    bullets.setdefault(aspect, []).append((line.lstrip("·•-* "), fig))
        region, year = self._region(lang, topic)
        return _ShortParts(
            title=self.messages.get(lang, "policy.title", title=topic.title.get(key) or topic.title["zh"]),
            intro=intro,
            first_bullet=(lines[1][0].lstrip("·•-* "), lines[1][1]) if len(lines) > 1 else ("", False),
            bullets=bullets,
            bullet_pairs={
                aspect: [tuple(line[i : i + 2] for i in range(len(line) - 1)) for line, _ in lines]
                for aspect, lines in bullets.items()
            },
            how=self.messages.get(lang, "policy.how_to_apply", text=topic.how_to_apply.get(key, "")),
            office=self._office(topic, lang),
            footer=self.messages.get(lang, "policy.footer_short", region=region, year=year or ""),
        )

    def _short_text(
        self, topic: Topic, lang: str, aspect: str | None, estimate: str, question: str = ""
    ) -> tuple[str, bool]:
        """The first message (plain text, ≤ SHORT_MAX): the one thing asked, the office, the figures' year."""
        parts = self._short[lang][topic.id]
        if estimate:
            focus, fig = estimate, True
        elif aspect == "where" or (aspect == "how" and "how" not in parts.bullets):
            focus, fig = parts.how, False
        elif aspect in parts.bullets:
            # Of the lines about this aspect, the one sharing most two-character pieces with the question
            # (each of the line's pieces counted, the first such line on a tie).
            pairs = {question[i : i + 2] for i in range(len(question) - 1)}
            shared = [sum(map(pairs.__contains__, grams)) for grams in parts.bullet_pairs[aspect]]
            focus, fig = parts.bullets[aspect][shared.index(max(shared))]
        else:
            focus, fig = parts.intro
            if focus.endswith(("：", ":")) and parts.first_bullet[0]:
                focus, fig = f"{focus}{parts.first_bullet[0]}", fig or parts.first_bullet[1]
        pieces = [parts.title, focus, parts.office]
        if fig:
            pieces.append(parts.footer)
        text = "\n".join(p for p in pieces if p)
        limit = SHORT_MAX.get(lang, SHORT_MAX["zh_CN"])
        if len(text) > limit:
            room = limit - (len(text) - len(focus)) - 1
            cut = focus[:room]
            # Whole lines first (an estimate's levels), else whole sentences, else whole clauses.
            stop = cut.rfind("\n")
            if stop <= room // 3:
                stop = max(cut.rfind(c) for c in "。；;")
            if stop <= room // 3:
                stop = max(cut.rfind(c) for c in "，,")
            focus = (cut[: stop + 1].rstrip("\n") if stop > room // 3 else cut) + "…"
            text = "\n".join(p for p in [parts.title, focus, parts.office, parts.footer if fig else ""] if p)
        return text, fig

    def _render(
        self,
        topic_id: str,
        lang: str,
        now: datetime,
        confidence: float,
        alternatives: list[str],
        amount: float | None,
        level: str | None,
        aspect: str | None = None,
        question: str = "",
    ) -> PolicyAnswer:
        topic = self.kb.topics[topic_id]
        if lang not in self._static:
            lang = "zh_CN"
        head, tail = self._static[lang][topic_id]
        parts = [head]
        calc = ""
        if topic.calculator == "inpatient":
            region, year = self._region(lang, topic)
            calc = self._inpatient_estimate(topic, lang, amount, level, region, year)
            if calc:
                parts.append(html.escape(calc, quote=False))
        parts.append(tail)
        if calc and not self._short[lang][topic_id].footer_in(tail):
            parts.append(html.escape(self._short[lang][topic_id].footer, quote=False))
        short, _ = self._short_text(topic, lang, aspect, calc, question)
        context = self._context(now, topic_id, amount, level)
        return PolicyAnswer(
            topic_id,
            confidence,
            alternatives,
            "answer",
            html.escape(short, quote=False),
            [],
            context,
            detail="\n\n".join(parts),
        )

    def _render_static(self, topic: Topic, lang: str) -> tuple[str, str]:
        """The fixed parts of a topic's answer (before and after any estimate), HTML-escaped."""
        key = lang_key(lang)
        region, year = self._region(lang, topic)
        head = [
            self.messages.get(lang, "policy.title", title=topic.title.get(key) or topic.title["zh"]),
            self._body(topic, lang),
        ]
        doc_year = topic.document.get("year", "")
        shows_figures = any(fig for _, fig in self._body_lines(topic, lang))
        tail = [
            self.messages.get(lang, "policy.how_to_apply", text=topic.how_to_apply.get(key, "")),
            self._office(topic, lang),
            self._document_line(lang, topic.document.get(key, ""), str(doc_year)),
            self.messages.get(
                lang, "policy.footer", region=region, year=year or doc_year, office=topic.ask.get(key)
            )
            if shows_figures
            else "",
        ]
        return (
            html.escape("\n\n".join(p for p in head if p), quote=False),
            html.escape("\n\n".join(p for p in tail if p), quote=False),
        )

    def _inpatient_estimate(
        self, topic: Topic, lang: str, amount: float | None, level: str | None, region: str, year: int | None
    ) -> str:
        """The inpatient estimate with its working, or why it cannot be made without local figures."""
        figures = self.county.calculators.get("inpatient") if self.county else None
        levels = (figures or {}).get("levels") or {}
        if not levels:
            if amount is None:
                return ""
            target = topic.params.get("target_ratio")
            ratio_text = self._param_text(target, lang, None) if target else "70%"
            cost = self.messages.get(lang, "policy.calc.cost", cost=_fmt_number(amount, lang))
            need = self.messages.get(
                lang,
                "policy.calc.need_local",
                cost=_fmt_number(amount, lang) + ("元" if lang != "en" else " yuan"),
                ratio=ratio_text,
            )
            return f"{cost}\n{need}"
        if amount is None:
            return self.messages.get(lang, "policy.calc.need_cost")
        cap = figures.get("yearly_cap") if figures else None
        chosen = [level] if level in levels else [lv for lv in HOSPITAL_LEVELS if lv in levels]
        lines = [
            self.messages.get(lang, "policy.calc.title"),
            self.messages.get(lang, "policy.calc.cost", cost=_fmt_number(amount, lang)),
        ]
        for lv in chosen:
            fig = levels[lv]
            deductible = float(fig["deductible"])
            ratio = float(fig["ratio"])
            name = self.messages.get(lang, f"policy.level.{lv}")
            if amount <= deductible:
                lines.append(
                    self.messages.get(
                        lang,
                        "policy.calc.below",
                        level=name,
                        cost=_fmt_number(amount, lang),
                        deductible=_fmt_number(deductible, lang),
                    )
                )
                continue
            paid = round((amount - deductible) * ratio / 100)
            if cap is not None and paid > float(cap):
                lines.append(
                    self.messages.get(
                        lang,
                        "policy.calc.capped",
                        level=name,
                        cap=_fmt_number(float(cap), lang),
                        own=_fmt_number(round(amount - float(cap)), lang),
                    )
                )
                continue
            lines.append(
                self.messages.get(
                    lang,
                    "policy.calc.line",
                    level=name,
                    cost=_fmt_number(amount, lang),
                    deductible=_fmt_number(deductible, lang),
                    ratio=_fmt_number(ratio, lang),
                    paid=_fmt_number(paid, lang),
                    own=_fmt_number(round(amount - paid), lang),
                )
            )
        lines.append(self.messages.get(lang, "policy.calc.assume", region=region, year=year or ""))
        return "\n".join(lines)
