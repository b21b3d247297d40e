"""The QuickBooks Online query language subset, parsed and run over plain dict records.

Reference: quickbooks-api.md §3.1-3.3, §3.5 (grammar, paging, LastUpdatedTime, inactive lists).
Grammar: SELECT * | count(*) | f1, f2 FROM Entity [WHERE cond [AND cond]...]
[ORDERBY|ORDER BY path [ASC|DESC] [, ...]] [STARTPOSITION n] [MAXRESULTS n].
cond: path (= < > <= >= != <>) literal | path IN (literal, ...) | path LIKE 'pat%'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
MAX_RESULTS = 1000
DEFAULT_RESULTS = 100

# Name-list entities are soft-deleted (Active=false) and hidden unless asked for (§3.5).
LIST_ENTITIES = frozenset(
    {"Vendor", "Customer", "Account", "TaxCode", "TaxRate", "Item", "Term", "Class", "Employee"}
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|<>|!=|=|<|>)
      | (?P<punct>[(),*])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


class QueryError(ValueError):
    """A statement QBO would refuse with a ValidationFault."""

    def __init__(self, message: str, detail: str, code: str = "4000") -> None:
        super().__init__(detail)
        self.message = message
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class Literal:
    kind: str  # "str" | "num" | "bool"
    value: object


@dataclass(frozen=True)
class Condition:
    path: str
    op: str
    values: tuple[Literal, ...]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (path, descending)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


def parse_qbo_datetime(text: str) -> datetime:
    """Parse a QBO date/datetime literal; no offset means Pacific company time (§3.3)."""
    match = _DATETIME.match(text.strip())
    if not match:
        raise ValueError(f"not a date/time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    naive = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
    )
    if zone is None:
        return naive.replace(tzinfo=PACIFIC)
    if zone == "Z":
        return naive.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return naive.replace(tzinfo=timezone(sign * offset))


def format_qbo_datetime(moment: datetime) -> str:
    """Pacific time with offset, as QBO returns MetaData times (§3.3)."""
    return moment.astimezone(PACIFIC).isoformat(timespec="seconds")


def _tokens(statement: str) -> list[tuple[str, str]]:
    """Split a statement into (kind, text) tokens or raise QueryError."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = statement.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            near = text[position : position + 20]
            raise QueryError("Error parsing query", f'QueryParserError: Encountered " {near}"')
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


class _Parser:
    """Recursive-descent parser over the token list."""

    def __init__(self, statement: str) -> None:
        self.tokens = _tokens(statement)
        self.index = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        kind, text = self.peek()
        if kind == "ident" and text.upper() in words:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        _kind, value = self.take()
        if value.upper() != text.upper():
            got = value or "end of statement"
            raise QueryError("Error parsing query", f"QueryParserError: expected {text}, got {got}")

    def parse(self) -> Query:
        self.expect("SELECT")
        count, fields = self.projection()
        self.expect("FROM")
        kind, entity = self.take()
        if kind != "ident" or "." in entity:
            raise QueryError("Error parsing query", "QueryParserError: expected an entity name")
        query = Query(entity=entity, count=count, fields=fields)
        if self.keyword("WHERE"):
            query.conditions = self.conditions()
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self.keyword("BY")):
            query.order = self.order()
        self.paging(query)
        if self.peek()[0] != "end":
            raise QueryError(
                "Error parsing query", f"QueryParserError: unexpected {self.peek()[1]}"
            )
        return query

    def projection(self) -> tuple[bool, list[str] | None]:
        kind, text = self.peek()
        if text == "*":
            self.take()
            return False, None
        if kind == "ident" and text.lower() == "count":
            self.take()
            self.expect("(")
            self.expect("*")
            self.expect(")")
            return True, None
        fields = [self.identifier()]
        while self.peek()[1] == ",":
            self.take()
            fields.append(self.identifier())
        return False, fields

    def identifier(self) -> str:
        kind, text = self.take()
        if kind != "ident":
            raise QueryError(
                "Error parsing query", f"QueryParserError: expected a property, got {text}"
            )
        return text

    def conditions(self) -> list[Condition]:
        result = [self.condition()]
        while self.keyword("AND"):
            result.append(self.condition())
        if self.peek()[0] == "ident" and self.peek()[1].upper() == "OR":
            raise QueryError("Error parsing query", "QueryParserError: OR is not supported")
        return result

    def condition(self) -> Condition:
        path = self.identifier()
        kind, text = self.take()
        if kind == "op":
            op = "!=" if text == "<>" else text
            return Condition(path, op, (self.literal(),))
        if kind == "ident" and text.upper() == "IN":
            self.expect("(")
            values = [self.literal()]
            while self.peek()[1] == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            return Condition(path, "IN", tuple(values))
        if kind == "ident" and text.upper() == "LIKE":
            value = self.literal()
            if value.kind != "str":
                raise QueryError("Error parsing query", "QueryParserError: LIKE needs a string")
            return Condition(path, "LIKE", (value,))
        raise QueryError("Error parsing query", f"QueryParserError: unexpected operator {text}")

    def literal(self) -> Literal:
        kind, text = self.take()
        if kind == "string":
            # Quotes are escaped as \' (python-quickbooks utils.py, §3.1).
            return Literal("str", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "number":
            return Literal("num", float(text))
        if kind == "ident" and text.lower() in ("true", "false"):
            return Literal("bool", text.lower() == "true")
        raise QueryError("Error parsing query", f"QueryParserError: expected a value, got {text}")

    def order(self) -> list[tuple[str, bool]]:
        result = []
        while True:
            path = self.identifier()
            descending = False
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
            result.append((path, descending))
            if self.peek()[1] != ",":
                return result
            self.take()

    def paging(self, query: Query) -> None:
        while True:
            if self.keyword("STARTPOSITION"):
                query.start = self.integer("STARTPOSITION")
            elif self.keyword("MAXRESULTS"):
                query.max_results = self.integer("MAXRESULTS")
            else:
                break
        if query.start < 1:
            raise QueryError("Invalid query", "STARTPOSITION must be 1 or more", "4001")
        if not 1 <= query.max_results <= MAX_RESULTS:
            raise QueryError("Invalid query", f"MAXRESULTS must be 1 to {MAX_RESULTS}", "4001")

    def integer(self, name: str) -> int:
        kind, text = self.take()
        if kind != "number" or "." in text:
            raise QueryError("Error parsing query", f"QueryParserError: {name} needs an integer")
        return int(text)


def parse_query(statement: str) -> Query:
    """Parse a statement or raise QueryError (never anything else)."""
    if len(statement) > 100_000:
        raise QueryError("Error parsing query", "QueryParserError: statement too long")
    return _Parser(statement).parse()


def resolve(record: dict, path: str) -> list[object]:
    """All values at a dotted path, case-insensitively, fanning out over lists; refs → value."""
    current: list[object] = [record]
    for part in path.lower().split("."):
        found: list[object] = []
        for item in current:
            for element in item if isinstance(item, list) else [item]:
                if isinstance(element, dict):
                    for key, value in element.items():
                        if key.lower() == part:
                            found.append(value)
        current = found
    flat: list[object] = []
    for value in current:
        for element in value if isinstance(value, list) else [value]:
            if isinstance(element, dict) and "value" in element:
                element = element["value"]
            flat.append(element)
    return flat


def _is_time_path(path: str) -> bool:
    return path.lower().endswith(("time", "lastupdatedtime", "createtime"))


def _comparable(value: object, literal: Literal, path: str) -> tuple[object, object]:
    """Coerce a record value and a literal to comparable Python values."""
    if literal.kind == "bool":
        if not isinstance(value, bool):
            raise QueryError("Invalid query", f"{path}: boolean literal on a non-boolean", "4001")
        return value, literal.value
    if isinstance(value, bool):
        # Quoted booleans fail in QBO: "String cannot be cast to Boolean" (node-quickbooks #37).
        raise QueryError("Invalid query", f"{path}: String cannot be cast to Boolean", "4001")
    if _is_time_path(path) and isinstance(value, str):
        try:
            return parse_qbo_datetime(value), parse_qbo_datetime(str(literal.value))
        except ValueError as exc:
            raise QueryError(
                "Invalid query", f"{path}: bad date/time {literal.value}", "4001"
            ) from exc
    if isinstance(value, str) and value.isdigit() and str(literal.value).isdigit():
        return int(value), int(str(literal.value))  # Ids: exact, even beyond float precision
    if literal.kind == "num" or (isinstance(value, str) and value.isdigit()):
        try:
            return float(value), float(literal.value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            pass
    return str(value).lower(), str(literal.value).lower()


def _compare(value: object, op: str, literal: Literal, path: str) -> bool:
    """One value against one literal."""
    if op == "LIKE":
        pattern = ".*".join(re.escape(part) for part in str(literal.value).split("%"))
        return re.fullmatch(pattern, str(value), re.IGNORECASE | re.DOTALL) is not None
    left, right = _comparable(value, literal, path)
    try:
        return {
            "=": left == right,
            "!=": left != right,
            "<": left < right,  # type: ignore[operator]
            ">": left > right,  # type: ignore[operator]
            "<=": left <= right,  # type: ignore[operator]
            ">=": left >= right,  # type: ignore[operator]
        }[op]
    except TypeError:
        return False


def matches(record: dict, condition: Condition) -> bool:
    """Whether any value at the condition's path satisfies it."""
    values = resolve(record, condition.path)
    if condition.op == "IN":
        return any(
            _compare(value, "=", literal, condition.path)
            for value in values
            for literal in condition.values
        )
    return any(
        _compare(value, condition.op, condition.values[0], condition.path) for value in values
    )


def _sort_key(record: dict, path: str) -> tuple:
    """Missing values last; numbers, times and strings each ordered naturally."""
    values = resolve(record, path)
    if not values or values[0] is None:
        return (1, 0, "")
    value = values[0]
    if isinstance(value, bool | int | float):
        return (0, 0, float(value))
    text = str(value)
    if text.isdigit():
        return (0, 0, int(text))
    if _is_time_path(path):
        try:
            return (0, 1, parse_qbo_datetime(text).timestamp())
        except ValueError:
            pass
    return (0, 2, text.lower())


def _has_active_condition(query: Query) -> bool:
    return any(condition.path.lower() == "active" for condition in query.conditions)


def run_query(query: Query, records: list[dict]) -> tuple[list[dict], int]:
    """Filter, order and page records; returns (page, total matching)."""
    selected = records
    if query.entity in LIST_ENTITIES and not _has_active_condition(query):
        selected = [record for record in selected if record.get("Active", True) is not False]
    for condition in query.conditions:
        selected = [record for record in selected if matches(record, condition)]
    ordering = query.order or [("Id", False)]
    for path, descending in reversed(ordering):
        selected = sorted(
            selected, key=lambda record, p=path: _sort_key(record, p), reverse=descending
        )
    page = selected[query.start - 1 : query.start - 1 + query.max_results]
    return page, len(selected)


def project(record: dict, fields: list[str]) -> dict:
    """A sparse record with only the requested top-level fields (plus Id), as QBO does."""
    wanted = {name.lower() for name in fields} | {"id"}
    result = {key: value for key, value in record.items() if key.lower() in wanted}
    result["domain"] = record.get("domain", "QBO")
    result["sparse"] = True
    return result


def date_or_datetime_ok(text: str) -> bool:
    """Whether `text` is an acceptable changedSince value."""
    try:
        parse_qbo_datetime(text)
    except ValueError:
        return False
    return True


__all__ = [
    "LIST_ENTITIES",
    "PACIFIC",
    "Condition",
    "Literal",
    "Query",
    "QueryError",
    "format_qbo_datetime",
    "matches",
    "parse_qbo_datetime",
    "parse_query",
    "project",
    "resolve",
    "run_query",
]
