"""CLI commands of evaluation (registered by nmt.cli)."""

COMMANDS = []
