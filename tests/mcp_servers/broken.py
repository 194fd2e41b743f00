"""Test MCP server that fails before the MCP handshake, as a misconfigured server does."""

import sys

sys.stderr.write("broken: NOTES_API_TOKEN is not set\n")
sys.exit(1)
