"""Every feature's button payloads, defined once (see bot/core/callbacks.py for the codec).

The prefix of each family is the route that handles it (`router.callback(X.prefix)`); the core
refuses two routes claiming one prefix, and reserves "d" (dialog buttons) and "dr" (resume a draft).
Senders (handlers, dialogs, notices, the scheduler's reminders) `pack`, handlers `parse`.
"""

from __future__ import annotations

from bot.core.callbacks import COUNT, ID, MONTH, TOKEN, WORD, Callback, one_of

# Reminders (the scheduler writes them, the visits router answers): rm:visit:<household_id>, rm:checkin
VISIT_REMINDER = Callback("rm", "visit", ID)
CHECKIN_REMINDER = Callback("rm", "checkin")

# A saved visit: the summary's save button (vs:<dialog nonce>), the villager's yes/no (vc:<visit_id>:y|n)
SAVE_VISIT = Callback("vs", None, TOKEN)
CONFIRM_VISIT = Callback("vc", None, ID, one_of("y", "n"))

# /households: the list (hh:p:<page>), one cadre's (hh:c:<cadre_id>:<page>), a household's file (hh:o:<id>)
HOUSEHOLDS_PAGE = Callback("hh", "p", COUNT)
CADRE_HOUSEHOLDS_PAGE = Callback("hh", "c", ID, COUNT)
HOUSEHOLD_FILE = Callback("hh", "o", ID)
HOUSEHOLD_UNBIND = Callback("hh", "ub", ID)  # unbind a villager chat account (account id) from its household
PROBLEM_FOR_HOUSEHOLD = Callback("pb", None, ID)

# Difficulties: open / acknowledge / assign / resolve one, assign it to a person
DIFFICULTY_OPEN = Callback("df", "open", ID)
DIFFICULTY_ACK = Callback("df", "ack", ID)
DIFFICULTY_ASSIGN = Callback("df", "asg", ID)
DIFFICULTY_RESOLVE = Callback("df", "res", ID)
DIFFICULTY_ASSIGN_TO = Callback("df", "to", ID, ID)
# /difficulties pages: open ones or the resolved history (dl:o|r:<page>); the assignee picker's cancel (dl:x)
DIFFICULTY_LIST = Callback("dl", None, one_of("o", "r"), COUNT)
DIFFICULTY_ASSIGN_CANCEL = Callback("dl", "x")

# /overdue: remind one cadre of their overdue households (od:n:<cadre_id>)
OVERDUE_NUDGE = Callback("od", "n", ID)

# Policy questions: a clarifying topic, forward or not, the cadre's reply button
QUESTION_TOPIC = Callback("pq", "topic", ID, WORD)
QUESTION_FORWARD = Callback("pq", "fwd", ID)
QUESTION_KEEP = Callback("pq", "nofwd", ID)
QUESTION_REPLY = Callback("pq", "reply", ID)
QUESTION_MORE = Callback("pq", "more", ID)  # "详细说明": the whole entry behind a short answer

# Monitoring (防止返贫监测, issue 14): a case card, the step buttons carry the step they were made for
MON_OPEN = Callback("mn", "o", ID)
MON_APPROVE = Callback("mn", "ok", ID, WORD)
MON_SEND_BACK = Callback("mn", "bk", ID, WORD)
MON_REJECT = Callback("mn", "no", ID, WORD)
MON_SCREEN = Callback("mn", "scr", ID)
MON_MEASURE = Callback("mn", "ms", ID)
MON_MEASURE_TOPIC = Callback("mn", "mt", ID, WORD)
MON_FOLLOW_UP = Callback("mn", "fu", ID)
MON_CLOSE = Callback("mn", "cl", ID)
MON_CHECK = Callback("mn", "chk", ID)  # a cadre check from the household file (household id)
MON_SELF_REPORT = Callback("mn", "sr")  # a villager's self-report (offered after a hardship message)
MON_NOTICE = Callback("mn", "pub", ID)  # the printable 公示 page of the case's village (case id)

# Villagers' cases: pass an out-of-scope matter on (or not), ask the cadre to call back after a voice
# message / picture / document (cs:call:v|p|d:<message id>), and the staff's buttons on one case
CASE_PASS = Callback("cs", "pass", ID)
CASE_KEEP = Callback("cs", "no")
CASE_CALL = Callback("cs", "call", one_of("v", "p", "d"), ID)
CASE_OPEN = Callback("cs", "open", ID)
CASE_REPLY = Callback("cs", "rep", ID)
CASE_RESOLVE = Callback("cs", "res", ID)
CASE_TO_LEADER = Callback("cs", "lead", ID)

# Leaders: /export's ledger (ex:<kind>), then its period (ex:<kind>:<period>); /report's month (rp:2026-11)
EXPORT_LEDGER = Callback("ex", None, WORD)
EXPORT_PERIOD = Callback("ex", None, WORD, WORD)
REPORT_MONTH = Callback("rp", None, MONTH)

# The team leader's decision on rebinding a person or household to another account: rb:ok|no:<request id>
REBIND_DECISION = Callback("rb", None, one_of("ok", "no"), ID)

# /lang
LANGUAGE = Callback("lang", None, WORD)
