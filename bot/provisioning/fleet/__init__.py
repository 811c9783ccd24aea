"""Fleet hygiene jobs that speak to the alert channel: capacity and traffic alerts
(``alerts``), the daily report (``report``), and their plain data (``model``).

Each job ticks on every replica and says each thing once: a mark in the database
(``bot.provisioning.marks``) is moved by compare-and-set in the transaction that writes the
fleet's outbox event, and the Slack notifier posts that event to ``VF_ALERT_CHANNEL``.

Nothing is imported here: ``bot.provisioning.events`` reads ``fleet.model`` while the job
modules read ``events``.
"""
