"""Slack's documented Block Kit and message limits: the one place they are written down.

Source: Slack's Block Kit reference (the same numbers slack_sdk's `models/blocks` enforce). Slack
answers `invalid_blocks` when one is broken, so builders cut text to these and tests check them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BUTTON_TEXT_MAX",
    "BUTTON_VALUE_MAX",
    "CONFIRM_BUTTON_MAX",
    "CONFIRM_TEXT_MAX",
    "CONFIRM_TITLE_MAX",
    "CONTEXT_ELEMENTS_MAX",
    "HEADER_MAX",
    "HINT_MAX",
    "LABEL_MAX",
    "MESSAGE_BLOCKS_MAX",
    "METADATA_MAX",
    "OPTIONS_MAX",
    "OPTION_TEXT_MAX",
    "OPTION_VALUE_MAX",
    "PLACEHOLDER_MAX",
    "SECTION_MAX",
    "TEXT_MAX",
    "VIEW_BLOCKS_MAX",
    "VIEW_BYTES_MAX",
    "VIEW_ID_MAX",
    "VIEW_TEXT_MAX",
]

SECTION_MAX: Final = 3000  # a section's text (and a mrkdwn field: 2000)
HEADER_MAX: Final = 150
BUTTON_TEXT_MAX: Final = 75
BUTTON_VALUE_MAX: Final = 2000
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
OPTIONS_MAX: Final = 100  # static_select; radio buttons and checkboxes take 10
PLACEHOLDER_MAX: Final = 150
HINT_MAX: Final = 2000
LABEL_MAX: Final = 2000
CONTEXT_ELEMENTS_MAX: Final = 10
MESSAGE_BLOCKS_MAX: Final = 50
VIEW_BLOCKS_MAX: Final = 100  # modals and the Home tab
VIEW_TEXT_MAX: Final = 24  # a view's title, submit and close
VIEW_BYTES_MAX: Final = 250_000
VIEW_ID_MAX: Final = 255  # callback_id, external_id
METADATA_MAX: Final = 3000  # a view's private_metadata, in characters
CONFIRM_TITLE_MAX: Final = 100
CONFIRM_TEXT_MAX: Final = 300
CONFIRM_BUTTON_MAX: Final = 30
TEXT_MAX: Final = 40000  # a message's top-level text
