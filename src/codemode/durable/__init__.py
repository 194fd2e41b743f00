"""Durable executions: the journal beside the bridge (record, replay, divergence) and the
fingerprint that refuses a resume of a changed program or tool set. Stores are in
``codemode.stores``; users meet this through ``create_code_mode(store=...)`` and
``CodeModeTool.resume``."""

from ._fingerprint import fingerprint, fingerprint_changes
from ._journal import Journal, input_hash
from ._tape import Tape

__all__ = ["Journal", "Tape", "fingerprint", "fingerprint_changes", "input_hash"]
