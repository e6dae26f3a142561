"""Multi-step dialogs. The list below is every dialog the core knows."""

from __future__ import annotations

from bot.dialogs.base import Dialog


def all_dialogs() -> list[Dialog]:
    """Every dialog, instantiated."""
    from bot.dialogs.problem import ProblemDialog
    from bot.dialogs.visit import VisitDialog
    from bot.handlers.cases import CaseReplyDialog
    from bot.handlers.checkin import CheckinDialog
    from bot.handlers.difficulties import ResolveNoteDialog
    from bot.handlers.policy import PolicyReplyDialog
    from bot.handlers.start import OnboardDialog

    dialogs: list[Dialog] = [OnboardDialog(), PolicyReplyDialog()]
    dialogs += [VisitDialog(), ProblemDialog(), CheckinDialog(), ResolveNoteDialog()]
    dialogs.append(CaseReplyDialog())
    return dialogs
