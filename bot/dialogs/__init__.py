"""Multi-step dialogs. The list below is every dialog the core knows."""

from __future__ import annotations

from bot.core.dialog import Dialog
from bot.dialogs.case_reply import CaseReplyDialog
from bot.dialogs.checkin import CheckinDialog
from bot.dialogs.monitor_report import SelfReportDialog
from bot.dialogs.monitor_review import FollowUpDialog, ReasonDialog
from bot.dialogs.monitor_screen import ScreeningDialog
from bot.dialogs.onboard import OnboardDialog
from bot.dialogs.policy_reply import PolicyReplyDialog
from bot.dialogs.problem import ProblemDialog
from bot.dialogs.resolve_note import ResolveNoteDialog
from bot.dialogs.visit import VisitDialog


def all_dialogs() -> list[Dialog]:
    """Every dialog, instantiated."""
    dialogs: list[Dialog] = [OnboardDialog(), PolicyReplyDialog()]
    dialogs += [VisitDialog(), ProblemDialog(), CheckinDialog(), ResolveNoteDialog()]
    dialogs += [SelfReportDialog(), ScreeningDialog(), ReasonDialog(), FollowUpDialog()]
    dialogs.append(CaseReplyDialog())
    return dialogs
