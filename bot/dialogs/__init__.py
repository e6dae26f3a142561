"""Multi-step dialogs. The list below is every dialog the core knows."""

from __future__ import annotations

from bot.dialogs.base import Dialog


def all_dialogs() -> list[Dialog]:
    """Every dialog, instantiated."""
    from bot.handlers.policy import PolicyReplyDialog
    from bot.handlers.start import OnboardDialog

    dialogs: list[Dialog] = [OnboardDialog(), PolicyReplyDialog()]
    return dialogs
