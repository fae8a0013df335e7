"""(case::command) pairs that still fail because the mechanism that fixes them belongs to another helper
and has not reached main yet. Each is a strict xfail: it turns red the moment it passes, and is then
removed from here."""

AWAITING: dict[str, str] = {}
