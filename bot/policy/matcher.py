"""Topic matching: a private jieba tokenizer with the KB's terms, synonym weights, pinyin typo matching, scores."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import unicodedata
from collections import defaultdict
from itertools import compress, pairwise, repeat
from operator import eq
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from bot.policy.kb import KnowledgeBase, Topic
from bot.policy.text import Normalizer


def _import_jieba() -> ModuleType:
    """Import jieba without pkg_resources.

    jieba imports pkg_resources (about 0.4 s, a third of the bot's start-up budget) only to open its own
    data files, and falls back to a plain open() when that import fails. Unless something already loaded
    pkg_resources, make the import fail just for jieba's import.
    """
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        return importlib.import_module("jieba")
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # `import pkg_resources` → ImportError
    try:
        return importlib.import_module("jieba")
    finally:
        del sys.modules["pkg_resources"]


jieba = _import_jieba()
log = logging.getLogger(__name__)

# Weights of a hit by the kind of word it is in the topic's entry.
W_KEYWORD = 3.0  # formal names ("城乡居民医保")
W_SYNONYM = 2.5  # what villagers say ("合作医疗", "吃低保")
W_COMBO = 3.0  # words that together name the topic ("贫困户+贷款")
W_TERM = 1.0  # hints that only count together with something else ("报销", "县医院")
W_EXAMPLE = 0.5  # words of the example questions, scaled by how specific they are to one topic
TYPO_FACTOR = 0.9  # a homophone typo ("医报") counts a little less than the real word
# Words too common in questions to say anything about the topic.
STOPWORDS = frozenset(
    "多少 多少钱 什么 怎么 怎么办 怎样 如何 可以 能不能 有没有 是不是 哪里 哪些 哪个 需要 要不要 国家 政府 政策 一年 "
    "每个 每年 一个 现在 今年 还是 还有 自己 我们 家里 这个 那个 时候 什么时候 知道 告诉 问题 情况 办理 一下 给不给 "
    "能否 能够 是否 的话 就是 因为 所以 但是 如果 已经 没有 不能 能不 补不补".split()
)
W_OBJECT_INTENT = 1.5  # added to an object word's hint weight when the question asks for help or money
# Words that show a question asks about a benefit. "拖拉机坏了去哪修" names a machine but asks for none.
INTENT_WORDS = tuple(
    "补贴 补助 补 奖 政策 申请 办理 报销 报 领 发 钱 贷 免 资助 救助 扶持 帮扶 帮 优惠 条件 标准 待遇 国家 政府 "
    "困难 照顾 享受 穷 没钱 交不起 供不起 贫困户 脱贫户 咋办 怎么办 找谁 管不管".split()
)
# Any of INTENT_WORDS in a text, in one search (same answer as `any(w in text for w in INTENT_WORDS)`).
_INTENT = re.compile("|".join(map(re.escape, INTENT_WORDS)))
# Grammatical characters: a typo never replaces one of these with a homophone.
FUNCTION_CHARS = frozenset("不没了的地得是有在要能会就都也还吗呢吧啊呀我你他她它这那个几多少")
# Jieba's general dictionary is trimmed to its more frequent words: loading all 350k words costs about a second.
GENERAL_MIN_FREQ = 300
KB_TERM_FREQ = 300_000
CACHE_VERSION = "1"


class Hit(NamedTuple):
    """A KB word found in a question (a named tuple: a question makes several, a frozen dataclass costs more)."""

    term: str
    typo: str = ""  # the homophone typed instead ("底保" for 低保), empty for an exact hit


_NOT_A_PREFIX = object()  # TopicMatcher._dag.get() default: no dictionary word starts this way


def _combo_set(parts: tuple[tuple[str, ...], ...]) -> tuple[tuple[frozenset[str], ...], frozenset[str]]:
    """Required parts (one word of each must appear) and excluded words (a part written "!报|!报销")."""
    required = tuple(frozenset(alts) for alts in parts if not alts[0].startswith("!"))
    excluded = frozenset(a.lstrip("!") for alts in parts if alts[0].startswith("!") for a in alts)
    return required, excluded


def _cache_dir() -> Path:
    configured = os.environ.get("BANGFU_POLICY_CACHE")
    d = Path(configured) if configured else Path(tempfile.gettempdir()) / "bangfu-policy"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    # An unwritable cache folder only costs start-up time: build into a private one.
    log.warning("policy cache folder %s is not writable; using a temporary one", d)
    return Path(tempfile.mkdtemp(prefix="bangfu-policy-"))


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _toneless(py: str) -> str:
    py = unicodedata.normalize("NFD", py.split(",")[0])
    return "".join(c for c in py if not unicodedata.combining(c)).replace("ü", "v")


def _build_resources(kb_terms: list[str], digest: str, cache: Path) -> tuple[Path, dict[str, str]]:
    """The trimmed dictionary file for jieba and a char→pinyin table; built once, then read from the cache."""
    dict_path = cache / f"dict-{digest}.txt"
    pinyin_path = cache / f"pinyin-{digest}.json"
    if dict_path.exists() and pinyin_path.exists():
        # About 400 syllables for 11,000 characters: one string object per syllable, not per character.
        return dict_path, {
            ch: sys.intern(py) for ch, py in json.loads(pinyin_path.read_text(encoding="utf-8")).items()
        }
    general = Path(str(jieba.__file__)).parent / "dict.txt"
    lines: list[str] = []
    chars: set[str] = set()
    kb_set = set(kb_terms)
    with general.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] in kb_set:
                continue
            if int(parts[1]) >= GENERAL_MIN_FREQ or len(parts[0]) == 1:
                lines.append(line.rstrip("\n"))
                chars.update(ch for ch in parts[0] if _is_cjk(ch))
    for term in kb_terms:
        lines.append(f"{term} {KB_TERM_FREQ if len(term) > 1 else 5000}")
        chars.update(ch for ch in term if _is_cjk(ch))
    tmp = dict_path.with_suffix(f".{os.getpid()}.tmp")  # two bots starting at once must not mix writes
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(dict_path)
    # pypinyin's tables take ~0.4 s to import; only the first start pays it.
    from pypinyin.pinyin_dict import pinyin_dict

    table = {ch: _toneless(pinyin_dict[ord(ch)]) for ch in sorted(chars) if ord(ch) in pinyin_dict}
    tmp = pinyin_path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    tmp.replace(pinyin_path)
    return dict_path, {ch: sys.intern(py) for ch, py in table.items()}


class TopicMatcher:
    """Scores topics for a normalised question. Built once from the knowledge base at load time."""

    def __init__(self, kb: KnowledgeBase, normalizer: Normalizer) -> None:
        self.kb = kb
        self._norm = normalizer
        self.index: dict[str, dict[str, float]] = defaultdict(dict)
        self.combos: list[tuple[tuple[tuple[str, ...], ...], str]] = []
        self.fallbacks: list[tuple[tuple[tuple[str, ...], ...], str]] = []
        self.levels: dict[str, str] = {}  # hospital-level word -> level id
        self.objects: dict[str, set[str]] = defaultdict(set)  # object word -> topics it is an object of
        strong: set[str] = set()
        self._names: set[str] = set()  # formal names (keywords): the ones people clip ("公益岗")
        for topic in kb.topics.values():
            self._add_topic_words(topic, strong)
        kb_terms = sorted(self.index)
        joined = "\n".join(kb_terms)
        digest = hashlib.sha1(
            f"{CACHE_VERSION} {jieba.__version__} {GENERAL_MIN_FREQ}\n{joined}".encode()
        ).hexdigest()[:16]
        cache = _cache_dir()
        dict_path, self._pinyin = _build_resources(kb_terms, digest, cache)
        jieba.setLogLevel(logging.WARNING)
        self.tokenizer = jieba.Tokenizer(dictionary=str(dict_path))
        self.tokenizer.tmp_dir = str(cache)
        # Load now, not on the first question: jieba's lazy load would stall the first villager.
        self.tokenizer.initialize()
        self._freq: dict[str, int] = self.tokenizer.FREQ
        log_total = math.log(self.tokenizer.total)
        # Jieba's prefix dictionary in one table: a word's log probability, None for a prefix that is not a
        # word itself; the route then needs one lookup per step instead of two.
        self._dag: dict[str, float | None] = {
            w: (math.log(f) - log_total if f else None) for w, f in self._freq.items()
        }
        self._log_floor = -log_total  # jieba's score for a character it does not know
        self._add_example_words()
        self._levels_longest_first = sorted(self.levels.items(), key=lambda wl: -len(wl[0]))  # stable sort
        self._level_ends = frozenset(word[-1] for word in self.levels)
        self.max_len = max((len(t) for t in self.index), default=1)
        self._fallback_sets = [(*_combo_set(parts), tid) for parts, tid in self.fallbacks]
        self._combo_sets = [(*_combo_set(parts), tid) for parts, tid in self.combos]
        self._combos_by_word: dict[str, list[int]] = defaultdict(list)
        for i, (required, _, _) in enumerate(self._combo_sets):
            for word in {a for alts in required for a in alts}:
                self._combos_by_word[word].append(i)
        # Combo words by first character, so a question only checks words that could be in it.
        self._combo_by_char: dict[str, list[str]] = defaultdict(list)
        words = {a.lstrip("!") for parts, _ in self.combos + self.fallbacks for alts in parts for a in alts}
        for word in words:
            self._combo_by_char[word[0]].append(word)
        self._combo_first_chars = frozenset(self._combo_by_char)
        self._object_words = frozenset(self.objects)
        # The first three characters of a longer strong name, when they point to one topic only and are
        # not themselves a dictionary word (a clipped name, not a different word).
        starts: dict[str, set[str]] = defaultdict(set)
        for term in self._names:
            if len(term) >= 4 and all(_is_cjk(c) for c in term[:3]):
                starts[term[:3]].add(term)
        self._prefix_index: dict[str, str] = {}
        # Sets are walked in sorted order: their own order changes with each process's string hashing, and
        # which of two candidates wins a tie ("救济" or "救急" for "救蹐") must not change on a restart.
        for start, terms in starts.items():
            topics = {tid for t in terms for tid in self.index[t]}
            if len(topics) == 1 and start not in self.index and not self._freq.get(start):
                self._prefix_index[start] = min(sorted(terms), key=len)
        self._prefix_firsts = frozenset(start[0] for start in self._prefix_index)
        self._typo_index: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for term in sorted(strong):
            if 2 <= len(term) <= 4 and all(_is_cjk(c) for c in term):
                key = self._pinyin_key(term)
                if key is not None:
                    self._typo_index[key].append(term)
        # Sizes of typo keys by their first two syllables: most positions of a question fail this one lookup.
        self._typo_pairs: dict[tuple[str, str], tuple[int, ...]] = {}
        for key in self._typo_index:
            pair = (key[0], key[1])
            self._typo_pairs[pair] = tuple(sorted({*self._typo_pairs.get(pair, ()), len(key)}, reverse=True))

    def _simplify(self, word: str) -> str:
        return self._norm.simplify(word).replace(" ", "")

    def _add(self, word: str, topic_id: str, weight: float) -> None:
        word = self._simplify(word)
        if word and weight > self.index[word].get(topic_id, 0.0):
            self.index[word][topic_id] = weight

    def _add_topic_words(self, topic: Topic, strong: set[str]) -> None:
        for w in (topic.title.get("zh", ""), *topic.keywords):
            self._add(w, topic.id, W_KEYWORD)
            strong.add(self._simplify(w))
            self._names.add(self._simplify(w))
        for w in topic.synonyms:
            self._add(w, topic.id, W_SYNONYM)
            strong.add(self._simplify(w))
        for w in topic.objects:
            self._add(w, topic.id, W_TERM)
            self.objects[self._simplify(w)].add(topic.id)
            strong.add(self._simplify(w))
        for w in topic.terms:
            self._add(w, topic.id, W_TERM)
            strong.add(self._simplify(w))  # typo matching covers hints too ("医报" → 医保)
        for parts in topic.combos:
            self.combos.append((tuple(tuple(self._simplify(a) for a in alts) for alts in parts), topic.id))
        for parts in topic.fallback_combos:
            self.fallbacks.append((tuple(tuple(self._simplify(a) for a in alts) for alts in parts), topic.id))
        for level, words in topic.levels.items():
            for w in words:
                self._add(w, topic.id, W_TERM)
                self.levels[self._simplify(w)] = level

    def _add_example_words(self) -> None:
        """Words of example questions, weighted by how few topics use them (an idf)."""
        per_topic: dict[str, set[str]] = {}
        for topic in self.kb.topics.values():
            words: set[str] = set()
            for ex in topic.examples:
                text = self._norm.normalize(ex).text.replace(" ", "")
                for tok in self.tokens(text):
                    if len(tok) >= 2 and tok not in STOPWORDS:
                        words.add(tok)
            per_topic[topic.id] = words
        df: dict[str, int] = defaultdict(int)
        for words in per_topic.values():
            for w in words:
                df[w] += 1
        n = max(len(per_topic), 1)
        for tid, words in per_topic.items():
            for w in words:
                if tid in self.index.get(w, {}):
                    continue
                weight = W_EXAMPLE * math.log(n / df[w]) / math.log(n) if n > 1 else W_EXAMPLE
                if weight > 0.05:
                    self.index[w][tid] = round(weight, 3)

    def _pinyin_key(self, text: str) -> tuple[str, ...] | None:
        key = tuple(self._pinyin.get(ch, "") for ch in text)
        return None if "" in key else key

    def tokens(self, text: str) -> list[str]:
        """Jieba tokens of a normalised question (private tokenizer with the KB dictionary).

        Same result as ``tokenizer.lcut(text, HMM=False)`` on normalised text (letters, digits and single
        spaces only; a test checks this), with jieba's route computed inline over the tokenizer's own
        prefix dictionary: lcut's regex splitting, generators and per-call logarithms cost more than the
        segmentation itself on a ten-character question.
        """
        out: list[str] = []
        for block in text.split(" "):
            if not block:
                continue
            if block.isascii():
                out.append(block)
                continue
            ends = self._route(block)
            x = 0
            n = len(block)
            buf = ""
            while x < n:
                y = ends[x] + 1
                word = block[x:y]
                if len(word) == 1 and word.isascii() and word.isalnum():
                    buf += word  # runs of Latin letters and digits stay together, as in jieba
                else:
                    if buf:
                        out.append(buf)
                        buf = ""
                    out.append(word)
                x = y
            if buf:
                out.append(buf)
        return out

    def _route(self, block: str) -> list[int]:
        """jieba's maximum-probability route over its prefix dictionary (Tokenizer.get_DAG + calc, inlined).

        For each start position, the end of the word the best segmentation takes there. Word log
        probabilities are computed once at load instead of on every call.
        """
        dag = self._dag
        floor = self._log_floor
        n = len(block)
        score = [0.0] * (n + 1)
        ends = [0] * n
        for k in range(n - 1, -1, -1):
            best = 0.0
            best_end = -1
            i = k
            lp = dag.get(block[k], _NOT_A_PREFIX)
            while lp is not _NOT_A_PREFIX:
                if lp is not None:
                    value = lp + score[i + 1]  # type: ignore[operator]
                    # Ties go to the longer word, as in jieba's max() over (score, end) pairs.
                    if best_end < 0 or value >= best:
                        best, best_end = value, i
                i += 1
                if i >= n:
                    break
                lp = dag.get(block[k : i + 1], _NOT_A_PREFIX)
            if best_end < 0:
                best, best_end = floor + score[k + 1], k
            score[k] = best
            ends[k] = best_end
        return ends

    def hits(self, text: str) -> list[Hit]:
        """KB words in the question: whole tokens, words inside longer tokens, then homophone typos."""
        found: list[Hit] = []
        size = len(text)
        covered = [False] * size
        in_word = [False] * size  # inside a multi-character dictionary word
        pos = 0
        index = self.index
        max_len = self.max_len
        for tok in self.tokens(text):
            n = len(tok)
            if n == 1:
                # A one-character token is never inside a word, and a one-character KB word is rare.
                if tok in index:
                    found.append(Hit(tok))
                    covered[pos] = True
                pos += 1
                continue
            end = pos + n
            in_word[pos:end] = [True] * n
            if tok in index:
                found.append(Hit(tok))
                covered[pos:end] = [True] * n
            elif n >= 3:
                i = 0
                while i < n - 1:
                    for width in range(min(max_len, n - i), 1, -1):
                        sub = tok[i : i + width]
                        if sub in index:
                            found.append(Hit(sub))
                            covered[pos + i : pos + i + width] = [True] * width
                            i += width
                            break
                    else:
                        i += 1
            pos = end
        if False in covered:
            found.extend(self._prefixes(text, covered))
            if self._typo_index and False in covered:
                found.extend(self._typos(text, covered, in_word))
        return found

    def _prefixes(self, text: str, covered: list[bool]) -> list[Hit]:
        """Clipped names: "公益岗" for 公益岗位, "小额贷" for 小额贷款 (3-character starts of longer names).

        Only positions whose character begins such a start are looked at (one C-level pass over the text),
        in order; a start taken skips the two characters after it, as a left-to-right scan does.
        """
        out: list[Hit] = []
        prefixes = self._prefix_index
        after = 0  # the first position not inside a clipped name already taken
        for i in compress(range(len(text) - 2), map(self._prefix_firsts.__contains__, text)):
            if i < after:
                continue
            window = text[i : i + 3]
            term = prefixes.get(window)
            if term is not None and not any(covered[i : i + 3]):
                out.append(Hit(term, typo=window))
                covered[i : i + 3] = [True, True, True]
                after = i + 3
        return out

    def _typos(self, text: str, covered: list[bool], in_word: list[bool]) -> list[Hit]:
        out: list[Hit] = []
        n = len(text)
        py = list(map(self._pinyin.get, text, repeat("")))
        typo_index = self._typo_index
        # Sizes of the typo keys starting with each position's two syllables, None for most positions: the
        # scan below visits only the others, in order, skipping those inside a typo already found.
        starts = list(map(self._typo_pairs.get, pairwise(py)))
        after = 0  # the first position not inside a typo already found
        for i in compress(range(len(starts)), starts):
            if i < after:
                continue
            matched = False
            for size in starts[i] or ():  # never None here: compress() keeps the positions with sizes
                if i + size > n or all(covered[i : i + size]):
                    continue
                key = tuple(py[i : i + size])
                if "" in key:
                    continue
                window = text[i : i + size]
                for term in typo_index.get(key, ()):
                    # One character must be right: "医报" is 医保, but "一包" is not.
                    same = sum(map(eq, window, term))
                    # ...and the wrong characters must not belong to a real word: "买一包" holds 一包.
                    # A grammatical character is not a slip of the pen: "不交" is not 补交.
                    if 0 < same < size and all(
                        not in_word[i + k] and window[k] not in FUNCTION_CHARS
                        for k in range(size)
                        if window[k] != term[k]
                    ):
                        out.append(Hit(term, typo=window))
                        after = i + size
                        matched = True
                        break
                if matched:
                    break
        return out

    def level(self, text: str) -> str | None:
        """The hospital level a question names ("县医院" → "county"), or None."""
        if self._level_ends.isdisjoint(text):
            return None  # no character a level word ends with ("院", "甲"): no level word in the text
        # The longest level word in the text, the first in self.levels among equally long ones.
        for word, level in self._levels_longest_first:
            if word in text:
                return level
        return None

    def score(self, text: str) -> tuple[dict[str, float], list[Hit]]:
        """Topic scores for a normalised question (without spaces), and the words that produced them."""
        hits = self.hits(text)
        # A plain dict: 0.0 + w is w, so get(tid, 0.0) + w sums the same floats in the same order as a
        # defaultdict(float) did; an exact hit's weight times 1.0 is the weight itself.
        scores: dict[str, float] = {}
        get = scores.get
        seen: set[str] = set()
        index = self.index
        typo = False
        for term, typed in hits:
            if term in seen:
                continue
            seen.add(term)
            if typed:
                typo = True
                for tid, w in index[term].items():
                    scores[tid] = get(tid, 0.0) + w * TYPO_FACTOR
            else:
                for tid, w in index[term].items():
                    scores[tid] = get(tid, 0.0) + w
        objects = self.objects
        if not self._object_words.isdisjoint(seen):
            boosted: set[str] = set()
            intent: bool | None = None  # whether the question asks for a benefit: looked up once, when needed
            for hit in hits:
                if hit.term in objects:
                    if intent is None:
                        intent = _INTENT.search(text) is not None
                    if not intent:
                        break
                    for tid in objects[hit.term] - boosted:
                        scores[tid] = get(tid, 0.0) + W_OBJECT_INTENT
                        boosted.add(tid)
        corrected = text
        if typo:
            for hit in hits:
                if hit.typo:
                    corrected = corrected.replace(hit.typo, hit.term)
        by_char = self._combo_by_char
        first_chars = self._combo_first_chars
        present = {a for ch in first_chars.intersection(text) for a in by_char[ch] if a in text}
        if corrected != text:
            # Combos also read the corrected text ("医报一年交多少" is 医保 + 交), never instead of the original.
            present |= {
                a for ch in first_chars.intersection(corrected) for a in by_char[ch] if a in corrected
            }
        if present:
            strong_before = dict(scores)
            fired: set[str] = set()
            combos_by_word = self._combos_by_word
            candidates = sorted({i for a in present for i in combos_by_word[a]})
            for i in candidates:
                required, excluded, tid = self._combo_sets[i]
                # A combo stands in for a missing strong word; it does not pile onto one already found.
                if tid in fired or strong_before.get(tid, 0.0) >= W_SYNONYM:
                    continue
                # Every required part has a word present: no part is disjoint from the words present.
                if excluded.isdisjoint(present) and not any(map(present.isdisjoint, required)):
                    scores[tid] = get(tid, 0.0) + W_COMBO
                    fired.add(tid)
            if self._fallback_sets and max(scores.values(), default=0.0) < W_SYNONYM:
                for required, excluded, tid in self._fallback_sets:
                    if excluded.isdisjoint(present) and not any(map(present.isdisjoint, required)):
                        scores[tid] = get(tid, 0.0) + W_COMBO
                        break
        return scores, hits
