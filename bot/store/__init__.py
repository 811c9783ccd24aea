"""Adapters of the domain's storage ports (`bot.provisioning.ports`, `bot.slack.threads`).

``sql`` serves the app (SQLite and PostgreSQL); ``memory`` serves fast unit tests. Both pass the
same contract tests (``tests/store``). Only the composition root (``bot.app``) names them.
"""
