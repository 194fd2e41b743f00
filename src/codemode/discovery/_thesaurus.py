"""Words that users and tool authors use for the same thing.

Users ask to "make a folder", "remove the pod", "grab the page as an image"; tools say
``create_directory``, ``kubectl_delete``, ``take_screenshot``. A lexical search that only
matches the words written misses them. These groups hold the general vocabulary of software
actions and objects (not any one catalog's words): a query word also matches the other words
of its groups, at a discount (see ``_index``), so a tool that uses the query's own word still
ranks first.

Abbreviations are rewritten to their full form on both sides (``repo`` -> repository, ``PR``
-> pull request), so they match exactly rather than at a discount.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ABBREVIATIONS", "GENERIC_WORDS", "RELATED_WORDS"]

ABBREVIATIONS: Final[dict[str, tuple[str, ...]]] = {
    "pr": ("pull", "request"),
    "prs": ("pull", "requests"),
    "mr": ("merge", "request"),
    "mrs": ("merge", "requests"),
    "repo": ("repository",),
    "repos": ("repositories",),
    "dir": ("directory",),
    "dirs": ("directories",),
    "db": ("database",),
    "dbs": ("databases",),
    "k8s": ("kubernetes",),
    "js": ("javascript",),
    "msg": ("message",),
    "msgs": ("messages",),
    "img": ("image",),
    "pic": ("picture",),
    "pics": ("pictures",),
    "env": ("environment",),
    "info": ("information",),
    "stats": ("statistics",),
    "org": ("organization",),
    "orgs": ("organizations",),
    "dm": ("direct", "message"),
    "e-mail": ("email",),
}

# Each line is a group of words used for the same action or thing. A word may be in several
# groups. Words whose senses pull apart are left out: "open" creates a pull request, reads a
# file, and is the state of an issue ("list open issues").
_GROUPS: Final = """
create make add new generate build spawn setup register provision init initialize file
delete remove erase drop destroy purge forget discard uninstall wipe
get fetch retrieve read show view display load see look dump inspect
list enumerate browse show all
update edit modify change set rename patch alter bump adjust replace
search find lookup look query seek locate discover filter
send post message say tell notify announce publish
run execute trigger start launch kick invoke rerun call
stop cancel halt abort kill terminate end
save write store persist record remember keep
directory folder subfolder subdirectory
file document
issue bug ticket task problem
error exception crash failure fail broken
image picture photo screenshot capture snapshot
user member person people account profile
comment reply answer respond note
log logs output trace
link url page website site webpage
web internet online
email mail inbox
database sql table
javascript script
click press tap hit
type enter fill input
address location place coordinates geocode
time clock timezone
size space bytes big large
approve accept confirm allow
documentation docs guide manual help howto
dialog popup modal prompt
dropdown select option choose pick
hover mouse
upload attach
schedule cron recurring periodic
monitor watch track watcher
status state health green
deploy deployment release ship rollout
label tag
team group
notification alert mention unread
sprint cycle iteration
replica scale
credential secret token key password
vulnerability advisory security cve
"""


def _related() -> dict[str, frozenset[str]]:
    related: dict[str, set[str]] = {}
    for line in _GROUPS.strip().splitlines():
        words = line.split()
        for word in words:
            related.setdefault(word, set()).update(w for w in words if w != word)
    return {word: frozenset(others) for word, others in related.items()}


#: word -> the words used for the same thing (unstemmed, lowercase).
RELATED_WORDS: Final[dict[str, frozenset[str]]] = _related()


#: Words that say what to do, or which ones, but not what the task is about: the verbs that
#: tools of every kind perform (get, set, write, convert, upload) and generic modifiers. A
#: tool that shares only these with a query does that to something else ("set an alarm" is
#: not ``set_issue_fields``), so a query that names anything more needs a tool that matches it.
GENERIC_WORDS: Final = frozenset(
    """add append apply change check clear close convert copy count create delete describe
    display download edit export fetch find generate get give import insert list load look
    make modify move need new open post put read remove rename replace retrieve run save
    search see send set show start stop submit transfer update upload use view want write
    all current latest recent first last old many much""".split()  # noqa: SIM905
)
