"""Adapters between codemode and other ecosystems; each module needs its own extra."""
