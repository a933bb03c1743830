"""The bounded Jinja2 sandbox email templates run in.

Jinja's ImmutableSandboxedEnvironment keeps templates away from attributes starting with
`_`, from mutating lists and dicts, and from unsafe callables. It does not bound what a
template costs. Here every way a template can make something big or run long is bounded
before it happens, structurally rather than by racing a clock:

- sizes are predicted before the call that would allocate them: repeat counts (`*`),
  widths and precisions (`center`, `'{:{}}'.format`, `'%*d' %`), `join`, `replace`,
  `indent`, `wordwrap`, `int.to_bytes`..., against `MAX_VALUE_CHARS` per value;
- what the template builds is charged to a per-render budget (`MAX_RENDER_CHARS` in all),
  nested lists and dicts by their total size, so no pile of values under the per-value
  limit adds up to much either;
- every `{% for %}` iteration is counted (`MAX_LOOP_STEPS` per render): the compiler
  wraps each loop's iterable, so nested loops over a long string stop after so many steps
  even when their body calls nothing;
- and the wall-clock budget stays as a backstop, checked on calls, output and loop steps.

`metered()` opens the budget for one email; outside it, only the per-value predictions
apply (templates are compiled there, never rendered).
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Namespace
from markupsafe import EscapeFormatter, Markup

# One value (a string, or a list/dict counted with everything in it); an email part's
# output has the same limit. A real email is a few tens of KB.
MAX_VALUE_CHARS = 512 * 1024
# Everything one email's templates build, added up: room for any real template, nowhere
# near what would strain a worker's memory.
MAX_RENDER_CHARS = 8 * MAX_VALUE_CHARS
# `{% for %}` iterations in one email, all loops together.
MAX_LOOP_STEPS = 100_000
# Numbers a template may use as a repeat count, width or precision.
MAX_NUMBER = 100_000
# Lines `wordwrap` may produce (textwrap's cost grows with them).
MAX_WRAPPED_LINES = 20_000
# Numbers past this are refused (nothing in an email counts that high).
MAX_MAGNITUDE = 10**15
# Wall-clock budget for rendering one email.
RENDER_BUDGET_SECONDS = 2.0
# The filter the compiler puts around every loop's iterable and every literal list, dict
# or `~` operand; not an identifier, so no template can name it.
_GUARD = "farewell.guard"
_LOOP = "farewell.loop"


class RenderLimitError(RuntimeError):
    """A template took too long or produced (or tried to build) too much."""


class _Meter:
    """What one email may still spend."""

    __slots__ = ("chars", "deadline", "steps")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.steps = MAX_LOOP_STEPS
        self.chars = MAX_RENDER_CHARS


_meter: ContextVar[_Meter | None] = ContextVar("render_meter", default=None)


@contextmanager
def metered(seconds: float = RENDER_BUDGET_SECONDS) -> Iterator[None]:
    """Give the renders inside one budget (per thread/context, so concurrent renders in
    the web process each get their own)."""
    token = _meter.set(_Meter(seconds))
    try:
        yield
    finally:
        _meter.reset(token)


def tick() -> None:
    meter = _meter.get()
    if meter is not None and time.monotonic() > meter.deadline:
        raise RenderLimitError("rendering took too long (an endless loop?)")


def _charge(chars: int) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.chars -= chars
        if meter.chars < 0:
            raise RenderLimitError(
                f"the template built more than {MAX_RENDER_CHARS} characters in all"
            )


# --- sizes ----------------------------------------------------------------------------------


def size_of(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """Characters in a string; for lists, tuples and dicts, everything in them (each
    item at least 1, shared items counted every time they appear, as printing would). The
    walk stops past `limit`, so a list holding itself 2**40 times costs no more than that."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, list | tuple | dict):
        return 1
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 1
        elif isinstance(item, list | tuple):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > limit:
            return total
    return total


def _refuse_size(size: int, what: str = "a value") -> None:
    if size > MAX_VALUE_CHARS:
        raise RenderLimitError(f"{what} would grow past {MAX_VALUE_CHARS} characters")


def check_value(value: Any) -> Any:
    """Refuse a value that is too big; charge what it costs to the email's budget."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:
            raise RenderLimitError("a number grew too large")
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value != 0 and value.adjusted() > 15:
            raise RenderLimitError("a number grew too large")
        return value
    size = size_of(value)
    _refuse_size(size)
    _charge(size)
    return value


def _count(value: Any, what: str = "numbers used as counts or widths") -> int:
    """A repeat count or width, refused past MAX_NUMBER; 0 for what is not a number."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    if value > MAX_NUMBER:
        raise RenderLimitError(f"{what} must stay under {MAX_NUMBER}")
    return max(value, 0)


# --- predictions, before the call -----------------------------------------------------------

_PERCENT = re.compile(r"%(?:\(([^)]*)\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.S)


def check_percent(fmt: str, right: Any) -> None:
    """`fmt % right` (and the `format` filter): widths, precisions and what is put in."""
    args = list(right) if isinstance(right, tuple) else [right]
    size = len(fmt)
    position = 0
    for match in _PERCENT.finditer(fmt):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for part in (width, precision):
            if part == "*":
                size += _count(args[position] if position < len(args) else 0)
                position += 1
            elif part:
                size += _count(_digits(part))
        if key is not None and isinstance(right, Mapping):
            value = right.get(key)
        else:
            value = args[position] if position < len(args) else None
            position += 1
        size += size_of(value) + 24  # a number's digits, a repr's quotes
    _refuse_size(size, "a %-formatted string")


_SPEC_NUMBER = re.compile(r"\d+")


def _digits(text: str) -> int:
    """A run of digits as a number; seven significant digits already say "too big" (and
    int() refuses very long runs)."""
    return int(text.lstrip("0")[:7] or "0")


def _check_spec(spec: str) -> int:
    """A str.format spec's width and precision (`{:>300000000}`, `{:.99999999f}`)."""
    widest = 0
    for digits in _SPEC_NUMBER.findall(spec):
        widest = max(widest, _count(_digits(digits), "format widths"))
    return widest


class _BoundedFormatting:
    """str.format through the sandbox's formatter, with every field's spec (nested ones
    too: they are filled in before `format_field` sees them) and the total bounded."""

    _total = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        _refuse_size(size_of(value), "a formatted value")
        return super().convert_field(value, conversion)  # type: ignore[misc]

    def format_field(self, value: Any, format_spec: str) -> Any:
        width = _check_spec(format_spec)
        self._total += max(width, size_of(value)) + 24
        _refuse_size(self._total, "a formatted string")
        return super().format_field(value, format_spec)  # type: ignore[misc]


class _Formatter(_BoundedFormatting, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFormatting, SandboxedFormatter, EscapeFormatter):
    pass


def _replace_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not (isinstance(old, str) and isinstance(new, str)):
        return len(text)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _join_size(separator: Any, items: list[Any]) -> int:
    sep = size_of(separator) if isinstance(separator, str | bytes) else 0
    size = sep * max(len(items) - 1, 0)
    for item in items:
        size += size_of(item)
        if size > MAX_VALUE_CHARS:
            break
    return size


def _translate_size(text: str, table: Any) -> int:
    if not isinstance(table, Mapping):
        return len(text)
    longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
    return len(text) * max(longest, 1)


def _width(text: Any, width: Any = 0, *args: Any, **kwargs: Any) -> int:
    return max(len(text), _count(width, "widths"))


def _expandtabs(text: Any, tabsize: Any = 8) -> int:
    return len(text) + text.count("\t" if isinstance(text, str) else b"\t") * _count(tabsize)


# Methods of str (and bytes) that can make a result much bigger than their inputs: the size
# each would produce, from its arguments. `join` is handled apart (it takes an iterable).
_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "center": _width,
    "ljust": _width,
    "rjust": _width,
    "zfill": _width,
    "expandtabs": _expandtabs,
    "replace": _replace_size,
    "translate": _translate_size,
}


def _call_args(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a method call whose result would be too big; the arguments to call it with
    (an iterable given to `join` is read once, here)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes):
        if name == "join" and len(args) == 1 and not kwargs:
            items = _take(args[0])
            _refuse_size(_join_size(owner, items), "a joined string")
            return (items,)
        predict = _METHOD_SIZES.get(name)
        if predict is not None:
            try:
                size = predict(owner, *args, **kwargs)
            except TypeError:
                return args  # a wrong call: the method itself says so
            _refuse_size(size, f"the result of {name}()")
    elif isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        _refuse_size(length if isinstance(length, int) else 0, "to_bytes()")
    return args


def _take(iterable: Any) -> list[Any]:
    """An iterable as a list, read at most MAX_VALUE_CHARS items far."""
    if isinstance(iterable, list):
        return iterable
    items = []
    for n, item in enumerate(iterable):
        if n > MAX_VALUE_CHARS:
            raise RenderLimitError(f"an iterable went past {MAX_VALUE_CHARS} items")
        items.append(item)
    return items


# Filters that can make a result much bigger than their inputs, keyed by name: given the
# (value, *arguments) the filter gets, refuse what would be too big, and return the
# arguments to call it with.


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if size_of(value) < 64 else ""


def _indent_filter(value: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    text = _text(value)
    width = len(width) if isinstance(width, str) else _count(width, "widths")
    _refuse_size(len(text) + (text.count("\n") + 1) * width, "an indented string")


def _wordwrap_filter(
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> None:
    text = _text(value)
    lines = len(text) // max(_count(width, "widths"), 1) + text.count("\n") + 1
    if lines > MAX_WRAPPED_LINES:
        raise RenderLimitError(f"wordwrap would make more than {MAX_WRAPPED_LINES} lines")
    wrap = len(wrapstring) if isinstance(wrapstring, str) else 1
    _refuse_size(len(text) + lines * wrap, "a wrapped string")


def _replace_filter(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    _refuse_size(_replace_size(_text(value), old, new, -1 if count is None else count))


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent(_text(value), kwargs or tuple(args))


def _urlize_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    text = _text(value)
    links = sum(text.count(mark) for mark in (".", "@", ":")) + 1
    extra = sum(size_of(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
    _refuse_size(3 * len(text) + links * (extra + 64), "an urlized string")


def _serialized_filter(value: Any, indent: Any = None, *args: Any, **kwargs: Any) -> None:
    # tojson(indent) and pprint: each item on its own line, indented by its depth.
    per_item = 8 + (_count(indent, "indents") * 8 if isinstance(indent, int) else 0)
    _refuse_size(size_of(value, MAX_VALUE_CHARS // per_item + 1) * per_item, "serialized data")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "indent": _indent_filter,
    "wordwrap": _wordwrap_filter,
    "replace": _replace_filter,
    "format": _format_filter,
    "urlize": _urlize_filter,
    "tojson": _serialized_filter,
    "pprint": _serialized_filter,
}


# Filters whose numeric arguments are values, not counts or widths.
_VALUE_ARGUMENTS = frozenset({"format", "default", "d", "sum", "int", "float", "round"})


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # Arguments after the filtered value are counts and widths, never big numbers.
    skip = 2 if getattr(func, "jinja_pass_arg", None) else 1
    check = _FILTER_CHECKS.get(name)
    counts = name not in _VALUE_ARGUMENTS

    @functools.wraps(func)  # keeps jinja's pass_context marker
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick()
        value, rest = args[skip - 1] if len(args) >= skip else None, args[skip:]
        _refuse_size(size_of(value))
        for arg in (*rest, *kwargs.values()):
            if counts:
                _count(arg)
            _refuse_size(size_of(arg))
        if name == "join" and len(args) >= skip:
            items = _take(value)
            separator = rest[0] if rest else kwargs.get("d", "")
            _refuse_size(_join_size(separator, items), "a joined string")
            args = (*args[: skip - 1], items, *rest)
        elif check is not None:
            check(value, *rest, **kwargs)
        return check_value(func(*args, **kwargs))

    return wrapper


def bounded_range(*args: int) -> Iterator[int]:
    for arg in args:
        _count(arg)
    for n, item in enumerate(range(*args)):
        if n % 256 == 0:
            tick()
        yield item


def _guard(value: Any) -> Any:
    """Around literal lists and dicts and `~` operands: a list of a list of ... built in
    a few lines must not grow past the limits either."""
    if isinstance(value, list | tuple | dict):
        check_value(value)
    return value


def _loop(iterable: Iterable[Any]) -> Iterable[Any]:
    """Around every `{% for %}`'s iterable: each step counts."""
    meter = _meter.get()
    if meter is None:
        return iterable
    return _counted(iterable, meter)


def _counted(iterable: Iterable[Any], meter: _Meter) -> Iterator[Any]:
    for item in iterable:
        meter.steps -= 1
        if meter.steps < 0:
            raise RenderLimitError(f"loops ran more than {MAX_LOOP_STEPS} steps")
        if meter.steps % 256 == 0 and time.monotonic() > meter.deadline:
            raise RenderLimitError("rendering took too long (an endless loop?)")
        yield item


class BoundedNamespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        tick()
        super().__setitem__(name, check_value(value))


class _GuardingCodeGenerator(CodeGenerator):
    """Compiles templates with `farewell.loop` around every loop's iterable and
    `farewell.guard` around literal lists, tuples and dicts that hold variables and around
    the operands of `~`. (Jinja's public hook for this is `code_generator_class`; the tree
    is rewritten before `visit_Template` collects the filters the template uses.)"""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = self._wrap(loop.iter, _LOOP)
        for concat in node.find_all(nodes.Concat):
            concat.nodes = [self._wrap(n, _GUARD) for n in concat.nodes]
        for parent in list(node.find_all(nodes.Node)):
            for field, value in parent.iter_fields():
                if isinstance(value, list):
                    setattr(parent, field, [self._guard_literal(v) for v in value])
                else:
                    setattr(parent, field, self._guard_literal(value))
        super().visit_Template(node, frame)

    def _guard_literal(self, value: Any) -> Any:
        if (
            isinstance(value, nodes.List | nodes.Tuple | nodes.Dict)
            and getattr(value, "ctx", "load") == "load"
            and not _constant(value)
        ):
            return self._wrap(value, _GUARD)
        return value

    def _wrap(self, expr: nodes.Expr, name: str) -> nodes.Expr:
        wrapped = nodes.Filter(expr, name, [], [], None, None, lineno=expr.lineno)
        wrapped.set_environment(self.environment)
        return wrapped


def _constant(literal: nodes.Node) -> bool:
    return all(isinstance(n, nodes.Const) for n in literal.find_all(nodes.Expr))


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus the bounds in this module's docstring."""

    code_generator_class = _GuardingCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def install_bounds(self, globals_: Mapping[str, Any]) -> None:
        """Wrap every filter, add the guards, and set the only globals templates see."""
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[_GUARD] = _guard
        self.filters[_LOOP] = _loop
        self.globals.clear()
        self.globals.update(globals_)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
        sequences = (str, bytes, list, tuple)
        if operator == "*" and (isinstance(left, sequences) or isinstance(right, sequences)):
            times = _count(left) + _count(right)  # 'x' * 1000000000
            sequence = left if isinstance(left, sequences) else right
            _refuse_size(size_of(sequence) * times, "a repeated value")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if abs(left) > 1 and (left.bit_length() - 1) * _count(right) > 64:
                raise RenderLimitError("a number grew too large")
        elif operator == "%" and isinstance(left, str):
            check_percent(left, right)
        elif operator == "+":
            _refuse_size(size_of(left) + size_of(right))
        return check_value(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        # Inside a block Jinja adds `_block_vars` (its own, for Context.call): not an argument.
        given = {k: v for k, v in kwargs.items() if k != "_block_vars"}
        for arg in (*args, *given.values()):
            _refuse_size(size_of(arg))
        args = _call_args(__obj, args, given)
        return check_value(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:  # not a str's format or format_map
            return None
        text = value.__self__
        formatter: string.Formatter = (
            _EscapeFormatter(self, escape=text.escape)
            if isinstance(text, Markup)
            else _Formatter(self)
        )
        is_format_map = value.__name__ == "format_map"

        @functools.wraps(value)
        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            formatter._total = 0
            return type(text)(formatter.vformat(text, args, kwargs))

        return bounded_format
