"""Rules files → a checked outline of settings, journeys and steps, with positions.

In: a rules folder (every ``*.yaml`` / ``*.yml`` under it, recursively, sorted) or one
YAML text. Out: ``RulesFile`` objects whose every text value is a ``Text`` (the string,
its YAML node and its file, so any offset inside it maps back to file:line:col), plus a
list of ``RulesError`` for everything wrong with the YAML shape.

YAML's surprises are errors, never silent: duplicate keys, unknown keys (with a
did-you-mean hint), anchors and aliases (alias bombs), tags, and plain scalars that YAML
would read as something other than text (``no`` → false, ``9:30`` → 570, empty → null).
The YAML is read as an event stream (libyaml when present) and composed here, iteratively,
so neither an alias bomb nor deep nesting can blow up memory or the C stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dsl.errors import RulesError, did_you_mean

TOP_KEYS = ("settings", "journeys", "schema")
SETTINGS_KEYS = ("sender", "teams", "unsubscribe_url", "public_url")
JOURNEY_KEYS = ("description", "trigger", "when", "goal", "key", "reentry", "steps", "exit_when")
# Contact policy (CONTRACT.md §6)
SETTINGS_KEYS += ("timezone", "quiet_hours", "frequency_cap", "consent")
JOURNEY_KEYS += ("class", "when_capped")
# Experiments and measurement (CONTRACT.md §8)
JOURNEY_KEYS += ("goal_within", "holdout")
WAIT_FOR_KEYS = ("received", "timeout")
SCHEMA_KEYS = ("customer", "events", "strict")
FIELD_TYPES = ("text", "number", "bool", "date", "datetime", "email", "timezone", "list", "map")
ELSE_IF = "else if "  # a key beside `if ...:`: `else if EXPR:` (CONTRACT.md §7)
# What each key above holds, where it is not one line of text: the shapes walked below,
# and what docs/rules.schema.json is generated from (dsl.rules_schema), so the two agree.
KEY_SHAPES = {
    ("settings", "teams"): "name_map",
    ("journey", "trigger"): "text_or_list",
    ("journey", "steps"): "steps",
    ("schema", "customer"): "fields",
    ("schema", "events"): "event_fields",
    ("schema", "strict"): "bool",
}
MAX_NESTING = 64  # YAML collections inside each other

STR_TAG = "tag:yaml.org,2002:str"
_TAG_NAMES = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null (no value)",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
    "tag:yaml.org,2002:merge": "a merge key",
    "tag:yaml.org,2002:value": "a value key",
}
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_EventLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------- sources


@dataclass
class Source:
    """One rules file: its path as given and its lines (split as YAML splits them)."""

    path: str
    text: str
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = _LINE_BREAK.split(self.text)

    def line(self, number: int) -> str | None:
        """Line ``number`` (1-based), or None past the end."""
        return self.lines[number - 1] if 0 < number <= len(self.lines) else None

    def error(self, line: int, col: int, message: str, hint: str | None = None) -> RulesError:
        return RulesError(self.path, line, col, message, hint, self.line(line))

    def node_error(self, node: Node, message: str, hint: str | None = None) -> RulesError:
        mark = node.start_mark
        return self.error(mark.line + 1, mark.column + 1, message, hint)


@dataclass
class Text:
    """A text value from a rules file, able to point at any character inside it."""

    value: str
    node: ScalarNode
    source: Source

    def position(self, offset: int = 0) -> tuple[int, int]:
        return scalar_position(self.source, self.node, offset)

    def error(self, message: str, offset: int = 0, hint: str | None = None) -> RulesError:
        line, col = self.position(offset)
        return self.source.error(line, col, message, hint)


# --------------------------------------------------------------------------- outline


@dataclass
class LineStep:
    text: Text


@dataclass
class IfBlock:
    header: Text
    then: list[RawStep]
    else_: list[RawStep] | None = None
    # `else if EXPR:` keys beside the header, in the order written: (key, steps)
    elifs: list[tuple[Text, list[RawStep]]] = field(default_factory=list)


@dataclass
class WaitForBlock:
    header: Text
    received: list[RawStep] | None = None
    timeout: list[RawStep] | None = None


@dataclass
class SplitBlock:
    """``split NAME:`` with one ``VARIANT N%:`` key per variant, in the order written."""

    header: Text
    variants: list[tuple[Text, list[RawStep]]] = field(default_factory=list)


RawStep = LineStep | IfBlock | WaitForBlock | SplitBlock


@dataclass
class RawJourney:
    name: Text
    fields: dict[str, Text]
    steps: list[RawStep] | None
    # `trigger:` written as a list: every item (fields["trigger"] is the first)
    triggers: list[Text] = field(default_factory=list)


@dataclass
class RawSchema:
    """``schema:`` of one file: (field, type) pairs, each event's pairs, and ``strict``."""

    node: Node
    customer: list[tuple[Text, Text]] = field(default_factory=list)
    events: list[tuple[Text, list[tuple[Text, Text]]]] = field(default_factory=list)
    strict: bool = False


@dataclass
class RawSettings:
    sender: Text | None = None
    teams: list[tuple[Text, Text]] = field(default_factory=list)
    unsubscribe_url: Text | None = None
    public_url: Text | None = None
    timezone: Text | None = None
    quiet_hours: Text | None = None
    frequency_cap: Text | None = None
    consent: Text | None = None


@dataclass
class RulesFile:
    source: Source
    settings: RawSettings = field(default_factory=RawSettings)
    journeys: list[RawJourney] = field(default_factory=list)
    schema: RawSchema | None = None


# --------------------------------------------------------------------------- entry points


def rules_files(rules_dir: str | Path) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` under ``rules_dir``, recursively, in sorted order."""
    root = Path(rules_dir)
    found = [p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def load_rules(rules_dir: str | Path) -> tuple[list[RulesFile], list[RulesError]]:
    """Load and shape-check every rules file under ``rules_dir``."""
    root = Path(rules_dir)
    if not root.is_dir():
        return [], [RulesError(str(rules_dir), 1, 1, "rules folder not found")]
    files, problems = [], []
    for path in rules_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            problems.append(RulesError(str(path), 1, 1, f"cannot read file: {e}"))
            continue
        rules_file, file_problems = load_text(text, str(path))
        files.append(rules_file)
        problems.extend(file_problems)
    return files, problems


def load_text(text: str, filename: str) -> tuple[RulesFile, list[RulesError]]:
    """Shape-check one rules file's text; ``filename`` is used in messages."""
    source = Source(filename, text)
    problems: list[RulesError] = []
    rules_file = RulesFile(source)
    root = compose(source, problems)
    if root is None:
        return rules_file, problems
    _Shape(source, problems).file(root, rules_file)
    return rules_file, problems


# --------------------------------------------------------------------------- composing


def compose(source: Source, problems: list[RulesError]) -> Node | None:
    """The YAML node tree of ``source`` (one document), or None after reporting why not."""
    resolver = yaml.resolver.Resolver()
    root: Node | None = None
    stack: list[list] = []  # [collection node, pending mapping key or None]
    documents = 0
    try:
        for ev in yaml.parse(source.text, Loader=_EventLoader):
            if isinstance(ev, yaml.AliasEvent):
                problems.append(
                    _mark_error(source, ev.start_mark, "YAML aliases are not allowed in rules")
                )
                return None
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    problems.append(
                        _mark_error(
                            source,
                            ev.start_mark,
                            "a rules file holds one YAML document",
                            "split it into several files",
                        )
                    )
                    return None
                continue
            if not isinstance(ev, yaml.NodeEvent):
                if isinstance(ev, yaml.CollectionEndEvent):
                    node = stack.pop()[0]
                    node.end_mark = ev.end_mark
                continue
            if ev.anchor is not None:
                problems.append(
                    _mark_error(
                        source,
                        ev.start_mark,
                        f"YAML anchors (&{ev.anchor}) are not allowed in rules",
                        "write the value out where it is used",
                    )
                )
                return None
            if isinstance(ev, yaml.ScalarEvent):
                tag = ev.tag
                if tag in (None, "!"):
                    tag = resolver.resolve(ScalarNode, ev.value, ev.implicit)
                # libyaml reports a plain scalar's style as "", PyYAML as None: use None.
                node = ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style or None)
            else:
                kind = SequenceNode if isinstance(ev, yaml.SequenceStartEvent) else MappingNode
                tag = ev.tag
                if tag in (None, "!"):
                    tag = resolver.resolve(kind, None, ev.implicit)
                node = kind(tag, [], ev.start_mark, ev.end_mark, flow_style=ev.flow_style)
            if stack:
                parent = stack[-1]
                if isinstance(parent[0], SequenceNode):
                    parent[0].value.append(node)
                elif parent[1] is None:
                    parent[1] = node
                else:
                    parent[0].value.append((parent[1], node))
                    parent[1] = None
            else:
                root = node
            if not isinstance(node, ScalarNode):
                stack.append([node, None])
                if len(stack) > MAX_NESTING:
                    problems.append(
                        _mark_error(
                            source,
                            ev.start_mark,
                            f"nested too deeply (more than {MAX_NESTING} levels)",
                        )
                    )
                    return None
    except yaml.YAMLError as e:
        problems.append(_yaml_error(source, e))
        return None
    return root


def _mark_error(source: Source, mark, message: str, hint: str | None = None) -> RulesError:
    return source.error(mark.line + 1, mark.column + 1, message, hint)


def _yaml_error(source: Source, e: yaml.YAMLError) -> RulesError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    hint = f"{context}" if context else None
    if mark is None:
        return RulesError(source.path, 1, 1, f"invalid YAML: {problem}")
    return _mark_error(source, mark, f"invalid YAML: {problem}", hint)


# --------------------------------------------------------------------------- shape


class _Shape:
    """Walks the node tree of one file into a ``RulesFile``, reporting shape problems."""

    def __init__(self, source: Source, problems: list[RulesError]) -> None:
        self.source = source
        self.problems = problems

    def report(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.node_error(node, message, hint))

    # ---- generic helpers
    def text(self, node: Node, what: str) -> Text | None:
        """``node`` as text, or None after reporting why it is not text."""
        if not isinstance(node, ScalarNode):
            kind = "a list" if isinstance(node, SequenceNode) else "a mapping"
            self.report(node, f"{what} must be text, found {kind}")
            return None
        if node.tag == STR_TAG:
            return Text(node.value, node, self.source)
        if node.tag == "tag:yaml.org,2002:null":
            self.report(node, f"{what} is empty")
            return None
        reads_as = _TAG_NAMES.get(node.tag)
        if reads_as is None:
            self.report(node, f"YAML tag '{node.tag}' is not allowed here", "remove the tag")
            return None
        self.report(
            node,
            f"YAML reads {node.value!r} as {reads_as}, not text",
            f'quote it: "{node.value}"',
        )
        return None

    def mapping(self, node: Node, what: str) -> list[tuple[Text, Node]] | None:
        """The (key, value) pairs of a mapping; keys must be unique text."""
        if not isinstance(node, MappingNode):
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                self.report(node, f"{what} is empty")
            else:
                self.report(node, f"{what} must be a mapping (NAME: VALUE lines)")
            return None
        seen: dict[str, Node] = {}
        out = []
        for key_node, value in node.value:
            key = self.text(key_node, "a key")
            if key is None:
                continue
            if key.value in seen:
                first = seen[key.value].start_mark.line + 1
                self.report(key_node, f"duplicate key '{key.value}' (first at line {first})")
                continue
            seen[key.value] = key_node
            out.append((key, value))
        return out

    def known(self, key: Text, allowed: tuple[str, ...], where: str) -> bool:
        if key.value in allowed:
            return True
        hint = did_you_mean(key.value, allowed) or "allowed: " + ", ".join(allowed)
        self.problems.append(key.error(f"unknown key '{key.value}' {where}", hint=hint))
        return False

    # ---- the file
    def file(self, root: Node, out: RulesFile) -> None:
        if isinstance(root, ScalarNode) and root.tag == "tag:yaml.org,2002:null":
            return  # an empty file (or only comments) is fine
        items = self.mapping(root, "a rules file")
        for key, value in items or []:
            if not self.known(key, TOP_KEYS, "at the top level"):
                continue
            if key.value == "settings":
                self.settings(value, out.settings)
            elif key.value == "schema":
                out.schema = self.schema(value)
            else:
                for name, body in self.mapping(value, "journeys") or []:
                    journey = self.journey(name, body)
                    if journey is not None:
                        out.journeys.append(journey)

    def settings(self, node: Node, out: RawSettings) -> None:
        for key, value in self.mapping(node, "settings") or []:
            if not self.known(key, SETTINGS_KEYS, "in settings"):
                continue
            if key.value == "teams":
                for team, address in self.mapping(value, "teams") or []:
                    addr = self.text(address, f"the address of team '{team.value}'")
                    if addr is not None:
                        out.teams.append((team, addr))
            else:
                setattr(out, key.value, self.text(value, key.value))

    def schema(self, node: Node) -> RawSchema:
        out = RawSchema(node)
        for key, value in self.mapping(node, "schema") or []:
            if not self.known(key, SCHEMA_KEYS, "in schema"):
                continue
            if key.value == "strict":
                if isinstance(value, ScalarNode) and value.tag == "tag:yaml.org,2002:bool":
                    out.strict = value.value.lower() in ("true", "yes", "on")
                else:
                    self.report(value, "schema.strict is true or false")
            elif key.value == "customer":
                out.customer = self.fields(value, "schema.customer")
            else:
                for event, fields in self.mapping(value, "schema.events") or []:
                    if isinstance(fields, ScalarNode) and fields.tag == "tag:yaml.org,2002:null":
                        out.events.append((event, []))
                    else:
                        out.events.append((event, self.fields(fields, f"event '{event.value}'")))
        return out

    def fields(self, node: Node, what: str) -> list[tuple[Text, Text]]:
        """NAME: TYPE pairs, each TYPE one of FIELD_TYPES."""
        out = []
        for name, kind in self.mapping(node, what) or []:
            text = self.text(kind, f"the type of '{name.value}'")
            if text is None:
                continue
            if text.value not in FIELD_TYPES:
                hint = did_you_mean(text.value, FIELD_TYPES) or "types: " + ", ".join(FIELD_TYPES)
                self.problems.append(text.error(f"unknown field type '{text.value}'", hint=hint))
                continue
            out.append((name, text))
        return out

    def journey(self, name: Text, node: Node) -> RawJourney | None:
        items = self.mapping(node, f"journey '{name.value}'")
        if items is None:
            return None
        fields: dict[str, Text] = {}
        steps = None
        trigger_list: list[Text] = []
        for key, value in items:
            if not self.known(key, JOURNEY_KEYS, f"in journey '{name.value}'"):
                continue
            if key.value == "steps":
                steps = self.steps(value, "steps")
            elif key.value == "trigger" and isinstance(value, SequenceNode):
                if not value.value:
                    self.report(value, "trigger is an empty list", "list at least one trigger")
                items = [self.text(item, "a trigger") for item in value.value]
                triggers = [t for t in items if t is not None]
                if triggers and len(triggers) == len(items):
                    fields["trigger"], trigger_list = triggers[0], triggers
            else:
                text = self.text(value, key.value)
                if text is not None:
                    fields[key.value] = text
        return RawJourney(name, fields, steps, trigger_list)

    def steps(self, node: Node, what: str) -> list[RawStep] | None:
        if not isinstance(node, SequenceNode):
            if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                self.report(node, f"{what} is empty", "list at least one step, each on '- ' line")
            else:
                self.report(node, f"{what} must be a list of steps, each on a '- ' line")
            return None
        out: list[RawStep] = []
        for item in node.value:
            step = self.step(item)
            if step is not None:
                out.append(step)
        return out

    def step(self, node: Node) -> RawStep | None:
        if isinstance(node, ScalarNode):
            text = self.text(node, "a step")
            return None if text is None else LineStep(text)
        if isinstance(node, SequenceNode):
            self.report(node, "a step must be a line of text or a block, not a list")
            return None
        items = self.mapping(node, "a step")
        if not items:
            return None
        elif_items = [(k, v) for k, v in items if k.value.startswith(ELSE_IF)]
        headers = [
            (k, v) for k, v in items if k.value != "else" and not k.value.startswith(ELSE_IF)
        ]
        else_items = [(k, v) for k, v in items if k.value == "else"]
        if len(headers) != 1:
            where = headers[1][0] if len(headers) > 1 else items[0][0]
            self.problems.append(
                where.error(
                    "a block step has one header ('if ...', 'wait for ...' or 'split ...')",
                    hint="start each step with its own '- '",
                )
            )
            return None
        header, body = headers[0]
        first_word = header.value.split(None, 1)[0] if header.value.strip() else ""
        if first_word == "if":
            then = self.steps(body, "an 'if' block")
            if then is None:
                return None
            block = IfBlock(header, then)
            for key, value in elif_items:
                steps = self.steps(value, "an 'else if' block")
                if steps is not None:
                    block.elifs.append((key, steps))
            if else_items:
                block.else_ = self.steps(else_items[0][1], "an 'else' block")
            return block
        if first_word == "wait":
            block = WaitForBlock(header)
            for key, _ in else_items + elif_items:
                self.problems.append(
                    key.error("'else' belongs to an 'if' step", hint="use 'timeout:' here")
                )
            if isinstance(body, ScalarNode) and body.tag == "tag:yaml.org,2002:null":
                return block
            for key, value in self.mapping(body, "a 'wait for' block") or []:
                if self.known(key, WAIT_FOR_KEYS, "in a 'wait for' block"):
                    setattr(block, key.value, self.steps(value, f"'{key.value}'"))
            return block
        if first_word == "split":
            block = SplitBlock(header)
            for key, _ in else_items + elif_items:
                self.problems.append(
                    key.error(
                        "'else' belongs to an 'if' step",
                        hint="a split's keys are its variants: 'NAME N%:'",
                    )
                )
            for key, value in self.mapping(body, "a 'split' block") or []:
                steps = self.steps(value, f"variant '{key.value}'")
                if steps is not None:
                    block.variants.append((key, steps))
            return block
        # a misspelt block keyword (`splt subject-test:`) gets a did-you-mean
        typo = did_you_mean(first_word, ("if", "wait", "split")) if len(first_word) > 2 else None
        self.problems.append(
            header.error(
                "only 'if', 'wait for' and 'split' steps open a block",
                hint=typo or "if ':' is part of the step, quote the whole step",
            )
        )
        return None


# --------------------------------------------------------------------------- positions


_DQ_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_LEN = {"x": 2, "u": 4, "U": 8}


def scalar_position(source: Source, node: ScalarNode, offset: int) -> tuple[int, int]:
    """File (line, col), 1-based, of character ``offset`` of a scalar's value.

    Handles plain, single- and double-quoted scalars (escapes, folded line breaks) and
    literal/folded block scalars; when the value cannot be mapped exactly it falls back to
    the scalar's start, shifted by ``offset`` on a one-line scalar.
    """
    start = node.start_mark
    if node.style is None and start.line == node.end_mark.line:
        # A one-line plain scalar is written exactly as its value: no mapping needed.
        return start.line + 1, start.column + 1 + offset
    mapped = _scalar_map(source, node)
    if mapped is not None:
        if offset < len(mapped):
            return mapped[max(offset, 0)]
        if mapped:  # past the end: just after the last character
            line, col = mapped[-1]
            return line, col + 1 + (offset - len(mapped))
    shift = 1 if node.style in ("'", '"') else 0
    if start.line == node.end_mark.line:
        return start.line + 1, start.column + 1 + shift + offset
    return start.line + 1, start.column + 1


def _raw_chars(source: Source, node: ScalarNode) -> list[tuple[str, int, int]]:
    """The characters of the scalar as written, each with its 1-based line and column."""
    start, end = node.start_mark, node.end_mark
    out = []
    for line_no in range(start.line, end.line + 1):
        line = source.lines[line_no] if line_no < len(source.lines) else ""
        first = start.column if line_no == start.line else 0
        last = end.column if line_no == end.line else len(line)
        for col in range(first, min(last, len(line))):
            out.append((line[col], line_no + 1, col + 1))
        if line_no != end.line:
            out.append(("\n", line_no + 1, len(line) + 1))
    return out


def _scalar_map(source: Source, node: ScalarNode) -> list[tuple[int, int]] | None:
    raw = _raw_chars(source, node)
    if node.style in ("|", ">"):
        pairs = _block_pairs(raw, node.style)
    else:
        if node.style in ("'", '"'):
            if len(raw) < 2:
                return None
            raw = raw[1:-1]
        pairs = _flow_pairs(raw, node.style)
    if pairs is None:
        return None
    text = "".join(ch for ch, _ in pairs)
    value = node.value
    if text == value:
        return [pos for _, pos in pairs]
    # Block chomping may add or drop trailing line breaks; everything before them is exact.
    if node.style in ("|", ">") and text.rstrip("\n") == value.rstrip("\n"):
        positions = [pos for _, pos in pairs]
        while len(positions) < len(value):
            positions.append(positions[-1] if positions else (node.start_mark.line + 1, 1))
        return positions[: len(value)]
    return None


def _flow_pairs(raw: list[tuple[str, int, int]], style: str | None):
    out: list[tuple[str, tuple[int, int]]] = []
    i, n = 0, len(raw)
    while i < n:
        ch, line, col = raw[i]
        if style == '"' and ch == "\\" and i + 1 < n:
            nxt = raw[i + 1][0]
            if nxt == "\n":  # escaped line break: joins the lines with nothing
                i += 2
                while i < n and raw[i][0] in " \t":
                    i += 1
                continue
            if nxt in _HEX_LEN:
                size = _HEX_LEN[nxt]
                digits = "".join(c for c, _, _ in raw[i + 2 : i + 2 + size])
                try:
                    out.append((chr(int(digits, 16)), (line, col)))
                except ValueError:
                    return None
                i += 2 + size
                continue
            if nxt not in _DQ_ESCAPES:
                return None
            out.append((_DQ_ESCAPES[nxt], (line, col)))
            i += 2
            continue
        if style == "'" and ch == "'" and i + 1 < n and raw[i + 1][0] == "'":
            out.append(("'", (line, col)))
            i += 2
            continue
        if ch in " \t\n":
            j = i
            while j < n and raw[j][0] in " \t\n":
                j += 1
            run = raw[i:j]
            breaks = sum(1 for c, _, _ in run if c == "\n")
            if breaks == 0:
                out.extend((c, (ln, cl)) for c, ln, cl in run)
            elif breaks == 1:
                out.append((" ", (line, col)))
            else:
                out.extend(("\n", (line, col)) for _ in range(breaks - 1))
            i = j
            continue
        out.append((ch, (line, col)))
        i += 1
    return out


def _block_pairs(raw: list[tuple[str, int, int]], style: str):
    # Split into lines; the first line is the header (| or > and indicators).
    lines: list[list[tuple[str, int, int]]] = [[]]
    for item in raw:
        if item[0] == "\n":
            lines[-1].append(item)
            lines.append([])
        else:
            lines[-1].append(item)
    header, body = lines[0], lines[1:]
    explicit = next((int(c) for c, _, _ in header if c.isdigit()), None)
    contents = [[c for c in ln if c[0] != "\n"] for ln in body]
    breaks = [next((c for c in ln if c[0] == "\n"), None) for ln in body]
    non_empty = [ln for ln in contents if any(c[0] not in " \t" for c in ln)]
    if not non_empty:
        return []
    indent = explicit
    if indent is None:
        first = non_empty[0]
        indent = next(i for i, c in enumerate(first) if c[0] != " ")
    out: list[tuple[str, tuple[int, int]]] = []
    texts = [ln[indent:] for ln in contents]
    for i, ln in enumerate(texts):
        out.extend((c, (line, col)) for c, line, col in ln)
        brk = breaks[i]
        if brk is None:
            break
        pos = (brk[1], brk[2])
        if style == ">":
            nxt = texts[i + 1] if i + 1 < len(texts) else []
            normal = ln and ln[0][0] not in " \t"
            nxt_normal = nxt and nxt[0][0] not in " \t"
            if normal and nxt_normal:
                out.append((" ", pos))
                continue
        out.append(("\n", pos))
    if style == ">":
        out = _fold_blank_runs(out)
    return out


def _fold_blank_runs(pairs):
    # In a folded scalar, a line break followed by blank lines is dropped (the blank lines
    # themselves carry the breaks).
    out = []
    for i, (ch, pos) in enumerate(pairs):
        if (
            ch == "\n"
            and i + 1 < len(pairs)
            and pairs[i + 1][0] == "\n"
            and (not out or out[-1][0] not in "\n")
        ):
            continue
        out.append((ch, pos))
    return out
