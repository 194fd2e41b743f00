"""The tokenizer search runs on: every naming convention split the same way, every script kept."""

from __future__ import annotations

import pytest

from codemode.discovery import tokenize
from codemode.discovery._tokenize import clear_caches, split_words, stem, text_terms


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # camelCase is split before lowercasing, acronyms included
        ("getHTTPResponse", ["get", "http", "response", "gethttpresponse"]),
        ("XMLHttpRequest", ["xml", "http", "request", "xmlhttprequest"]),
        ("listPullRequests", ["list", "pull", "requests", "listpullrequests"]),
        ("userID IDs URLs", ["user", "id", "userid", "ids", "urls"]),
        ("oauth2Token ec2", ["oauth2", "token", "oauth2token", "ec2"]),
        # a brand written in camelCase is also kept whole
        ("GitHub", ["git", "hub", "github"]),
        # snake, kebab, dots, slashes, colons: the MCP server prefix splits off
        ("github_create_issue", ["github", "create", "issue"]),
        ("brave-search.web/query:v2", ["brave", "search", "web", "query", "v2"]),
        ("API-post-search", ["api", "post", "search"]),
    ],
)
def test_names_split_into_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_non_ascii_letters_are_kept_and_latin_accents_folded() -> None:
    assert split_words("Créer un problème") == ["creer", "un", "probleme"]
    assert split_words("Получить список файлов") == ["получить", "список", "файлов"]
    assert split_words("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert split_words("Ελληνικά") == ["ελληνικά"]  # accents of other scripts are letters
    # underscores separate words in any script
    assert split_words("crème_brûlée") == ["creme", "brulee"]
    assert tokenize("café_au-lait naïve_été") == ["caf", "au", "lait", "naiv", "ete"]


def test_scripts_without_spaces_become_character_pairs() -> None:
    # so that a query for 文件 (file) matches a description that says 读取文件内容
    assert split_words("读取文件内容") == ["读取", "取文", "文件", "件内", "内容"]
    assert "文件" in tokenize("文件")
    assert split_words("ファイル") == ["ファ", "ァイ", "イル"]


def test_light_stemming_meets_every_form_of_a_word() -> None:
    assert tokenize("issue issues") == ["issu", "issu"]
    assert tokenize("create creates created creating") == ["creat"] * 4
    assert tokenize("list lists listing listed") == ["list"] * 4
    assert tokenize("repository repositories") == ["repository"] * 2
    assert tokenize("branch branches") == ["branch"] * 2
    assert tokenize("stop stopped run running") == ["stop", "stop", "run", "run"]
    # words it must not mangle
    assert [stem(w) for w in ("status", "analysis", "class", "ids")] == [
        "status",
        "analysis",
        "class",
        "id",
    ]


def test_function_words_and_lone_letters_are_dropped_and_abbreviations_written_out() -> None:
    assert tokenize("Can you open a PR in the repo for me?") == [
        "open",
        "pull",
        "request",
        "repository",
    ]
    assert tokenize("what's in it") == []
    assert tokenize("k8s db dir") == ["kubernet", "databas", "directory"]


def test_a_text_remembered_gives_the_same_terms_as_tokenizing_it() -> None:
    texts = [
        "Create a new issue in a GitHub repository (owner/repo).",
        "naïve café_au-lait getHTTPResponse2 東京タワー हिन्दी भाषा",
        "",
    ]
    for text in texts:
        assert text_terms(text) == tuple(tokenize(text))
        assert text_terms(text) is text_terms(text)  # one tuple per distinct text
    clear_caches()
    assert text_terms(texts[1]) == tuple(tokenize(texts[1]))
