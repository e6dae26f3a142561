"""The learned voice: character n-gram logistic regression for the message kind and the policy topic.

Trained at build time (``python -m bot.policy.ngram build``, needs scikit-learn, a test dependency) from
``bot/policy/data/train.tsv`` into ``bot/policy/data/ngram.npz``; at run time only numpy reads the
weights (no scikit-learn import, nothing downloaded). A test checks the weights match the training file.

Features: characters 1-3 of the simplified message (digits folded to "0", punctuation a separator),
with begin/end marks; sublinear tf × idf, L2-normalised — the same transform scikit-learn's
TfidfVectorizer applies with the analyzer below, recomputed here with numpy.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from bot.policy.text import Normalizer

DATA_DIR = Path(__file__).resolve().parent / "data"
TRAIN_FILE = DATA_DIR / "train.tsv"
MODEL_FILE = DATA_DIR / "ngram.npz"
KINDS = ("question", "case", "hardship", "other", "chat")
NONE = "none"
MAX_N = 3  # grams() spells out unigrams, bigrams and trigrams
MIN_DF = 2
_SEP = re.compile(r"[\W_]+")  # the same as text._NON_WORD (prepare_words relies on it)
_DIGITS = re.compile(r"[0-9]+")
_add = operator.add
_sum = np.add.reduce  # ndarray.sum() without its Python wrapper: the same reduction
_max_at = np.maximum.reduceat  # the maximum of each head's slice of the logits
_known = partial(operator.is_not, None)  # _known(x) is `x is not None`: filter() keeps vocabulary ids


def prepare(normalizer: Normalizer, text: str, *, simplified: bool = False) -> str:
    """The message as the n-gram model reads it: simplified, lower-case, digits as 0, words split by spaces."""
    if not simplified:
        text = normalizer.simplify(text)
    text = _DIGITS.sub("0", text)
    return " ".join(_SEP.sub(" ", text).split())


def prepare_words(words: str) -> str:
    """prepare() of a simplified message, from its words as ``Normalizer.normalize_words`` returns them.

    The same string: prepare() folds digit runs to "0", then makes runs of non-word characters one space;
    normalize_words() already did the second, and the two commute (a digit is never a separator, nor is "0",
    so no separator appears, vanishes or moves). One regex pass instead of three.
    """
    return _DIGITS.sub("0", words)


def grams(prepared: str) -> list[str]:
    """Character 1..3-grams of each space-separated run, with ^ and $ marking the run's ends."""
    out: list[str] = []
    for run in prepared.split(" "):
        if not run:
            continue
        # Each character becomes a string once; bigrams join neighbours, trigrams extend the bigrams by one,
        # all in C (map over lists), in the order unigrams, bigrams, trigrams.
        chars = ["^", *run, "$"]
        out += chars[1:-1]  # unigrams without the marks
        bigrams = list(map(_add, chars, chars[1:]))
        out += bigrams
        out += map(_add, bigrams, chars[2:])
    return out


def data_digest(path: Path = TRAIN_FILE) -> str:
    """A digest of the training file (the weights file records the one it was trained on)."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]


def read_training(path: Path = TRAIN_FILE) -> list[tuple[str, str, str]]:
    """(kind, topic, text) rows of the training file; # lines are comments."""
    rows: list[tuple[str, str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, topic, text = line.split("\t", 2)
        rows.append((kind.strip(), topic.strip(), text.strip()))
    return rows


@dataclass(frozen=True)
class Head:
    """One softmax classifier over the shared n-gram features."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (features, classes) float32
    bias: np.ndarray  # (classes,)


class NgramModel:
    """Kind and topic probabilities for one message. Loaded once; about 20 µs a message."""

    def __init__(self, vocab: dict[str, int], idf: np.ndarray, kind: Head, topic: Head, digest: str) -> None:
        self.vocab = vocab
        self.idf = idf
        self.kind = kind
        self.topic = topic
        self.digest = digest
        # Both heads in one matrix: one gather and one product per message.
        self._weights = np.ascontiguousarray(np.hstack([kind.weights, topic.weights]), dtype=np.float32)
        self._bias = np.concatenate([kind.bias, topic.bias]).astype(np.float64)
        self._split = k = len(kind.classes)
        # Where each head starts in the logits, and each logit's head: both maxima in one call.
        self._heads = np.array([0, k], dtype=np.intp)
        self._head_of = np.repeat(np.arange(2, dtype=np.intp), [k, len(topic.classes)])
        # The heads keep views of that matrix, not their own copies (the same float32 values): 1.6 MB less.
        self.kind = Head(kind.classes, self._weights[:, :k], kind.bias)
        self.topic = Head(topic.classes, self._weights[:, k:], topic.bias)

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> NgramModel:
        with np.load(path, allow_pickle=False) as z:
            words = str(z["vocab"]).split("\n")
            vocab = {w: i for i, w in enumerate(words)}
            kind = Head(
                tuple(str(z["kind_classes"]).split("\n")), z["kind_w"].astype(np.float32), z["kind_b"]
            )
            topic = Head(
                tuple(str(z["topic_classes"]).split("\n")), z["topic_w"].astype(np.float32), z["topic_b"]
            )
            return cls(vocab, z["idf"].astype(np.float32), kind, topic, str(z["digest"]))

    def _features(self, prepared: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Vocabulary ids of the message's n-grams (first occurrence order) and their tf-idf, L2-normalised.

        Fast path, same floats: when every n-gram occurs once (most short messages), the sublinear tf factor
        1 + log(1) is exactly 1 and the weights are the idf values themselves, so no Counter, log or product.
        Ids keep their first-occurrence order either way (a Counter's key order): the dot products below sum
        in that order, and a float sum in another order could differ in its last bit.
        """
        found = list(filter(_known, map(self.vocab.get, grams(prepared))))
        if not found:
            return None
        first = dict.fromkeys(found)
        n = len(first)
        ids = np.fromiter(first, dtype=np.intp, count=n)
        if n == len(found):
            vals = self.idf.take(ids)
        else:
            tf = np.fromiter(Counter(found).values(), dtype=np.float32, count=n)
            vals = (1.0 + np.log(tf)) * self.idf.take(ids)
        vals /= math.sqrt(
            float(vals.dot(vals))
        )  # the same float32 dot product as vals @ vals, called for less
        return ids, vals

    def predict(self, prepared: str) -> tuple[dict[str, float], dict[str, float]]:
        """(kind → probability, topic or "none" → probability) for a prepared message.

        Per head the same floats, to the last bit, as ``e = np.exp(z - z.max()); e /= e.sum()``, with five
        numpy calls on the 29 logits of both heads instead of eleven (each numpy call on a small array costs
        several thousand instructions, more than the arithmetic): both maxima in one ``reduceat`` (a
        maximum is exact), the shift and the exponential in place; then the sums in Python, in numpy's own
        pairwise order (``_np_sum``), and the divisions in Python (one float64 division each, as in numpy).
        The n-gram model is a third of a question's CPU time.
        """
        feats = self._features(prepared)
        if feats is None:
            z = self._bias.copy()
        else:
            ids, vals = feats
            # float32 products, summed with the bias in float64 (as .astype(np.float64) + bias)
            z = np.add(vals @ self._weights.take(ids, axis=0), self._bias)
        z -= _max_at(z, self._heads).take(self._head_of)
        np.exp(z, out=z)
        el = z.tolist()
        k = self._split
        ek = el[:k]
        et = el[k:]
        sk = _np_sum(ek)
        st = _np_sum(et)
        return dict(zip(self.kind.classes, [v / sk for v in ek], strict=True)), dict(
            zip(self.topic.classes, [v / st for v in et], strict=True)
        )


def _np_sum(values: list[float]) -> float:
    """``np.add.reduce`` of a float64 array of these values, to the last bit: numpy's pairwise summation.

    Below 8 values numpy adds them in order from 0.0; from 8 to 128 it keeps eight running sums (every
    eighth value each), combines them as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then adds the rest in order.
    Longer lists (none here: 5 kinds, 24 topics) are left to numpy. A test compares this with numpy.
    """
    n = len(values)
    if n < 8:
        total = 0.0
        for v in values:
            total += v
        return total
    if n > 128:
        return float(_sum(np.array(values, dtype=np.float64)))
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for v in values[end:]:
        total += v
    return total


def _analyzer(prepared: str) -> list[str]:
    return grams(prepared)


def build(
    train: Path = TRAIN_FILE, out: Path = MODEL_FILE, c_kind: float = 8.0, c_topic: float = 8.0
) -> None:
    """Train both heads with scikit-learn and write the weights (float16) for numpy to read."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    norm = Normalizer()
    rows = read_training(train)
    texts = [prepare(norm, t) for _, _, t in rows]
    vec = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, min_df=MIN_DF, lowercase=False)
    x = vec.fit_transform(texts)
    kinds = [k for k, _, _ in rows]
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        raise SystemExit(f"unknown kinds in {train}: {bad}")
    kind_clf = LogisticRegression(max_iter=3000, C=c_kind)
    kind_clf.fit(x, kinds)
    topics = [t if t else NONE for _, t, _ in rows]
    topic_clf = LogisticRegression(max_iter=3000, C=c_topic)
    topic_clf.fit(x, topics)
    words = vec.get_feature_names_out()
    np.savez_compressed(
        out,
        vocab=np.array("\n".join(words)),
        idf=vec.idf_.astype(np.float32),
        kind_classes=np.array("\n".join(kind_clf.classes_)),
        kind_w=kind_clf.coef_.T.astype(np.float16),
        kind_b=kind_clf.intercept_.astype(np.float32),
        topic_classes=np.array("\n".join(topic_clf.classes_)),
        topic_w=topic_clf.coef_.T.astype(np.float16),
        topic_b=topic_clf.intercept_.astype(np.float32),
        digest=np.array(data_digest(train)),
    )
    print(f"{len(rows)} sentences, {len(words)} features -> {out} ({out.stat().st_size // 1024} KiB)")


def main(argv: Iterable[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["build"]:
        raise SystemExit("usage: python -m bot.policy.ngram build")
    build()


if __name__ == "__main__":
    main()
