"""CLI commands of the WMT packaging tools (registered by nmt.cli)."""

COMMANDS = []
