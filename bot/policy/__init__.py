"""Policy questions from villagers: knowledge base in knowledge/, jieba keyword parser, answers."""

from bot.policy.engine import PolicyAnswer, PolicyEngine

__all__ = ["PolicyAnswer", "PolicyEngine"]
