"""Provisioning domain: request models, planning and build status; no Slack, SQL or aiohttp."""
