"""What a template needs from the step that sends it.

In: a Jinja environment and a template file name. Out: ``TemplateNeeds.of(file)``, the
names the template (with its layouts, includes and ``import ... with context``) uses and
does not define itself, each with where it is used (``Need``). The compiler compares them
with what a ``send`` / ``notify`` step provides.
"""

from __future__ import annotations

from dataclasses import dataclass

_DEFAULT_FILTERS = ("default", "d")
# engine.delivery.message renders these blocks once more on their own, in a context holding only
# the step's names: the template's top-level set / import / macro names are not there.
_ALONE_BLOCKS = ("subject", "text")


@dataclass(frozen=True)
class Need:
    origin: str  # the template file that uses the name
    alone: str | None = None  # used inside this block rendered on its own
    hint: str | None = None  # replaces the step's "add it" hint


class TemplateNeeds:
    """The names a template needs from the step that sends it, through ``{% extends %}``,
    ``{% include %}`` and ``{% import ... with context %}`` with literal names.

    ``of(file)`` → {name: ``Need``}. Names the template defines itself, Jinja's globals,
    and names used only guarded (``x | default(...)``, under ``x is defined``) are left
    out. Jinja's own scoping decides what is local: an included template's needs are put
    as synthetic names at the include, and ``meta.find_undeclared_variables`` on the
    result says which of them the including template does not define there. Results are
    cached per (file, blocks overridden by a child), so 1,000 journeys parse each template
    once. A template that is missing or does not parse needs nothing here (the sent
    template is checked to compile before; a broken layout fails when sent).
    """

    def __init__(self, env) -> None:
        self.env = env
        self.cache: dict[tuple[str, frozenset[str]], dict[str, Need]] = {}
        self.active: set[str] = set()  # templates being analysed (include cycles)

    def of(self, file: str, overridden: frozenset[str] = frozenset()) -> dict[str, Need]:
        key = (file, overridden)
        found = self.cache.get(key)
        if found is None:
            if file in self.active:
                return {}
            self.active.add(file)
            try:
                found = self.cache[key] = self.analyse(file, overridden)
            finally:
                self.active.discard(file)
        return found

    def analyse(self, file: str, overridden: frozenset[str]) -> dict[str, Need]:
        import jinja2
        from jinja2 import meta, nodes

        try:
            source, filename, _ = self.env.loader.get_source(self.env, file)
            tree = self.env.parse(source, file, filename)
        except (jinja2.TemplateError, OSError, UnicodeDecodeError):
            return {}
        # A child's blocks replace this template's (unless they call super()); the
        # replaced bodies never render, here or in the layouts above.
        blocks = list(tree.find_all(nodes.Block))
        parent_overridden = overridden | {b.name for b in blocks if not _calls_super(b)}
        for block in blocks:
            if block.name in overridden:
                block.body = []
        synthetic: dict[int, Need] = {}  # id(Name node) -> what it stands for
        self.expand(tree, parent_overridden, synthetic)
        wanted = meta.find_undeclared_variables(tree) - set(self.env.globals)
        uses: dict[str, list[Need]] = {}
        _unguarded(tree, frozenset(), None, wanted, synthetic, file, uses)
        # Top-level set / import / macro names are in the context of the page, its blocks,
        # layouts and includes (meta counts them as undeclared inside blocks), but not of
        # a subject or text block rendered on its own.
        exported = _exported(tree)
        out: dict[str, Need] = {}
        for var, found in uses.items():
            if var in exported:
                found = [u for u in found if u.alone]
                if not found:
                    continue
                found = [
                    Need(
                        u.origin,
                        u.alone,
                        f"'{var}' is defined outside the {u.alone} block, which is rendered "
                        "on its own: define it inside the block",
                    )
                    for u in found
                ]
            own = [u for u in found if u.origin == file]
            out[var] = (own or found)[0]
        return out

    def expand(self, node, overridden: frozenset[str], synthetic: dict[int, Need]) -> None:
        """Insert, before each literal include / import with context / extends, an output
        of the names that template needs."""
        from jinja2 import nodes

        for field_name in node.fields:
            value = getattr(node, field_name, None)
            if isinstance(value, nodes.Node):
                self.expand(value, overridden, synthetic)
                continue
            if not isinstance(value, list):
                continue
            out = []
            for item in value:
                if isinstance(item, nodes.Node):
                    needs = self.sub_needs(item, overridden)
                    if needs:
                        names = []
                        for var, need in sorted(needs.items()):
                            n = nodes.Name(var, "load", lineno=item.lineno)
                            synthetic[id(n)] = need
                            names.append(n)
                        out.append(nodes.Output(names, lineno=item.lineno))
                    self.expand(item, overridden, synthetic)
                out.append(item)
            setattr(node, field_name, out)

    def sub_needs(self, item, overridden: frozenset[str]) -> dict[str, Need]:
        from jinja2 import nodes

        if isinstance(item, nodes.Extends):
            target, parent = item.template, overridden
        elif isinstance(item, (nodes.Include, nodes.Import, nodes.FromImport)):
            if not item.with_context:
                return {}  # renders with Jinja's globals only: the step cannot help it
            target, parent = item.template, frozenset()
        else:
            return {}
        if not (isinstance(target, nodes.Const) and isinstance(target.value, str)):
            return {}
        return self.of(target.value, parent)


def _calls_super(block) -> bool:
    from jinja2 import nodes

    return any(
        isinstance(c.node, nodes.Name) and c.node.name == "super"
        for c in block.find_all(nodes.Call)
    )


def _exported(tree) -> set[str]:
    """Names a template's top level sets, imports or defines as macros."""
    from jinja2 import nodes

    out: set[str] = set()
    for child in tree.body:
        if isinstance(child, (nodes.Assign, nodes.AssignBlock)):
            targets = [child.target, *child.target.find_all(nodes.Name)]
            out |= {n.name for n in targets if isinstance(n, nodes.Name)}
        elif isinstance(child, nodes.Import):
            out.add(child.target)
        elif isinstance(child, nodes.FromImport):
            out |= {n if isinstance(n, str) else n[1] for n in child.names}
        elif isinstance(child, nodes.Macro):
            out.add(child.name)
    return out


def _unguarded(node, guarded, alone, wanted, synthetic, file, uses) -> None:
    """Collect in ``uses`` each wanted name loaded outside a guard: a ``default`` filter
    applied to the bare name, an ``is defined`` test of it, or a branch only taken when
    such a test says it is defined."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        if node.ctx == "load" and node.name in wanted and node.name not in guarded:
            need = synthetic.get(id(node))
            if need is None:
                need = Need(file, alone)
            elif alone and not need.alone:
                need = Need(need.origin, alone, need.hint)
            uses.setdefault(node.name, []).append(need)
        return
    if isinstance(node, nodes.Block) and node.name in _ALONE_BLOCKS:
        alone = node.name

    def walk(child, guarded=guarded):
        _unguarded(child, guarded, alone, wanted, synthetic, file, uses)

    skip = None
    if (isinstance(node, nodes.Filter) and node.name in _DEFAULT_FILTERS) or (
        isinstance(node, nodes.Test) and node.name in ("defined", "undefined")
    ):
        skip = node.node if isinstance(node.node, nodes.Name) else None
    if isinstance(node, (nodes.If, nodes.CondExpr)):
        walk(node.test)
        yes = guarded | _defined(node.test)
        no = guarded | _undefined(node.test)
        if isinstance(node, nodes.If):
            for child in node.body:
                walk(child, yes)
            for child in [*node.elif_, *node.else_]:
                walk(child, no)
        else:
            walk(node.expr1, yes)
            if node.expr2 is not None:
                walk(node.expr2, no)
        return
    if isinstance(node, (nodes.And, nodes.Or)):
        walk(node.left)
        extra = _defined(node.left) if isinstance(node, nodes.And) else _undefined(node.left)
        walk(node.right, guarded | extra)
        return
    for child in node.iter_child_nodes():
        if child is not skip:
            walk(child)


def _defined(test) -> frozenset[str]:
    """Names that are defined whenever ``test`` is true."""
    from jinja2 import nodes

    if isinstance(test, nodes.Test) and isinstance(test.node, nodes.Name):
        return frozenset({test.node.name}) if test.name == "defined" else frozenset()
    if isinstance(test, nodes.Not):
        return _undefined(test.node)
    if isinstance(test, nodes.And):
        return _defined(test.left) | _defined(test.right)
    if isinstance(test, nodes.Or):
        return _defined(test.left) & _defined(test.right)
    return frozenset()


def _undefined(test) -> frozenset[str]:
    """Names that are defined whenever ``test`` is false."""
    from jinja2 import nodes

    if isinstance(test, nodes.Test) and isinstance(test.node, nodes.Name):
        return frozenset({test.node.name}) if test.name == "undefined" else frozenset()
    if isinstance(test, nodes.Not):
        return _defined(test.node)
    if isinstance(test, nodes.Or):
        return _undefined(test.left) | _undefined(test.right)
    if isinstance(test, nodes.And):
        return _undefined(test.left) & _undefined(test.right)
    return frozenset()
