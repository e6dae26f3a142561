"""What kind of message a villager sent: a policy question, a personal case, a hardship, something out of
scope, or chit-chat. The policy engine's answer carries the kind (PolicyAnswer.kind); `kind_of` reads it.

STAND-IN: until the classifier of t-policy (PolicyAnswer.kind) is merged, `_standin_kind` guesses the
kind from a few obvious words so the workflow can be built and tested. DELETE `_standin_kind` and its
word lists when PolicyAnswer has `kind`.
"""

from __future__ import annotations

from typing import Any

KINDS = frozenset({"question", "case", "hardship", "other", "chat"})

# --- STAND-IN (to be replaced by PolicyAnswer.kind) -------------------------------------------------
_CHAT = ("你好", "您好", "谢谢", "好的", "在吗", "嗯", "哦", "知道了", "ok", "hi", "hello", "thanks")
_HARDSHIP = ("付不起", "交不起", "看不起病", "去世", "瘫痪", "受灾", "冲垮", "塌了", "没有收入", "没了收入")
_CASE = ("没收到", "没到账", "没发", "停了", "不给", "没给", "扣了", "存折", "答应", "一直没")
_OTHER = ("修路", "臭", "工资", "拖欠", "邻居", "吵架", "天气")


def _standin_kind(text: str) -> str:
    t = text.strip().lower()
    if len(t) <= 6 and any(w in t for w in _CHAT):
        return "chat"
    if any(w in t for w in _HARDSHIP):
        return "hardship"
    if any(w in t for w in _CASE):
        return "case"
    if any(w in t for w in _OTHER):
        return "other"
    return "question"


# ------------------------------------------------------------------------------------------------------


def kind_of(answer: Any, text: str) -> str:
    """The kind the engine decided (PolicyAnswer.kind), or the stand-in's guess when it has none."""
    kind = getattr(answer, "kind", None)
    if kind in KINDS:
        return str(kind)
    return _standin_kind(text)
