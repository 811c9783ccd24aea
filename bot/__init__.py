"""vfbot: a Slack chat-ops bot that creates and runs VirtFusion servers."""

__version__ = "0.1.0"
