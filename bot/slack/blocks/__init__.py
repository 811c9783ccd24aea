"""Pure Block Kit builders: domain values in, JSON-ready dicts out; no client, I/O or clock.

One module per view: ``request`` (the request's root message), ``progress`` (thread replies),
``notice`` (the completion notice), ``modal`` (create and reject forms), ``home`` (App Home),
``help``, ``servers`` (lists and details), ``changes`` (day-2 results, VNC, confirmation),
``panel`` (hypervisor groups, the check, the audit log), ``operation`` (delete approvals),
``result`` (a one-line modal); ``summary`` turns records into what they show.
"""
