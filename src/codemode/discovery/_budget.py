"""When discovery switches on by itself: a cheap estimate of how many tokens a text costs.

``discovery="auto"`` compares the full declarations with a token budget. The estimate needs no
tokenizer (none is a dependency): about four characters per token for English and code, each
character outside ASCII counted as most of a token. On the published MCP catalogs that
``bench/bench_discovery.py`` measures, it stays within about 15% of the real o200k count, and
errs high, so discovery switches on a little early rather than late.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["DEFAULT_TOKEN_BUDGET", "estimate_tokens"]

#: Full declarations above this many (estimated) tokens switch ``discovery="auto"`` on. A few
#: dozen typical tools fit; one large server (GitHub's ~100 tools, ~20k tokens) does not.
DEFAULT_TOKEN_BUDGET: Final = 6_000


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` costs a model (o200k-like tokenizers)."""
    ascii_chars = sum(1 for ch in text if ch < "\x80") if not text.isascii() else len(text)
    other = len(text) - ascii_chars
    return math.ceil(ascii_chars / 4 + other * 0.75)
