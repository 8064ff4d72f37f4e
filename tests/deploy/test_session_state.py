"""No SQL of the portal leaves anything on a database connection beyond its transaction:
behind PgBouncer in transaction mode the next transaction of the same client may run on
another server connection, so session settings, session advisory locks, LISTEN/NOTIFY,
named prepared statements, WITH HOLD cursors and temporary tables would silently act on
(or be missing from) someone else's session. The topology test exercises the portal
through PgBouncer; this one keeps such statements from creeping into code it does not
reach. (SET LOCAL and pg_advisory_xact_lock end with their transaction: allowed.)"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSION_STATE = {
    "a session setting (use SET LOCAL)": re.compile(
        r"(?:^|;)\s*SET\s+(?:SESSION\s+)?(?:(?!LOCAL\b)\w+\s*(?:=|\bTO\b)|TIME\s+ZONE\b|ROLE\b)",
        re.MULTILINE),
    "a session setting (set_config(…, false))": re.compile(
        r"set_config\s*\([^)]*,\s*false\s*\)", re.IGNORECASE),
    "a session advisory lock (use pg_advisory_xact_lock)": re.compile(
        r"pg_(?:try_)?advisory_(?:un)?lock(?:_shared)?\s*\(", re.IGNORECASE),
    "LISTEN/NOTIFY": re.compile(r"\b(?:LISTEN|UNLISTEN|NOTIFY)\s+\w|pg_notify\s*\("),
    "a named prepared statement": re.compile(r"\bPREPARE\s+\w+\s*(?:\(|AS\b)"),
    "a cursor outliving its transaction": re.compile(
        r"\bWITH\s+HOLD\b|\bDECLARE\s+\w+.*\bCURSOR\b"),
    "a temporary table": re.compile(r"\bCREATE\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+TABLE\b"),
    "DISCARD/LOAD": re.compile(r"(?:^|;)\s*(?:DISCARD|LOAD)\s+\w", re.MULTILINE),
}


QUOTES = re.compile(r"""^[rRbBuUfF]*(?:'{3}|"{3}|'|")|(?:'{3}|"{3}|'|")$""")


def strings_of(path: Path) -> list[tuple[int, str]]:
    """The string literals of a Python file (comments and names cannot run SQL)."""
    source = path.read_text(encoding="utf-8")
    return [(token.start[0], QUOTES.sub("", token.string))
            for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.STRING
            or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1)]


def findings(paths) -> list[tuple[str, int, str]]:
    """(file, line, what) of every string literal that would keep state on a connection."""
    return [(path.name, line, what)
            for path in paths
            for line, literal in strings_of(path)
            for what, pattern in SESSION_STATE.items() if pattern.search(literal)]


def test_no_statement_keeps_state_on_the_connection():
    paths = sorted((ROOT / "portal").rglob("*.py")) + sorted((ROOT / "migrations").rglob("*.py"))
    assert findings(paths) == []


def test_the_check_sees_each_kind(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("\n".join([
        'a = "SET statement_timeout = 0"',
        'b = "SELECT pg_advisory_lock(1)"',
        'c = "LISTEN jobs"',
        'd = "PREPARE q AS SELECT 1"',
        'e = "DECLARE c CURSOR WITH HOLD FOR SELECT 1"',
        'f = "CREATE TEMP TABLE t (x int)"',
        "g = \"SELECT set_config('x', '1', false)\"",
        'ok = "UPDATE t SET a = 1; SET LOCAL lock_timeout = 1; SELECT pg_advisory_xact_lock(1)"',
        'fk = "SET NULL"',
    ]))
    found = findings([sample])
    assert {line for _, line, _ in found} == set(range(1, 8))  # each kind, not the last two
    assert len({what for _, _, what in found}) == 7
