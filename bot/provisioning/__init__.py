"""The domain: requests, their plans, the engine that carries them out, and day-2 work on servers.

No Slack, SQL or aiohttp here. Storage comes through `ports` (implemented in ``bot.store``), the
panel through ``bot.virtfusion``; the surfaces (``bot.slack``, ``bot.cli``) word what happens.
"""
