"""A resolved price compiled into one straight-line function.

genai-prices prices a call by walking its unit registry on every call: it collects the price
keys, validates them, decomposes the usage into disjoint "leaf" counts, picks each tier, then
multiplies. All of that except the last two steps depends only on the price, so it is done
once here and the result is generated as a small Python function (the way `dataclasses`
generates `__init__`). Per call that function reads the counts it needs, subtracts the leaves,
picks the tier level and does, per priced unit and in genai-prices' order,
`price * count / per`, adding to the total exactly as `ModelPrice.calc_price` does: the same
Decimal operations in the same order and the caller's decimal context, so the total is the
same Decimal. It also sorts each unit's amount into tokentrail's cost buckets.

Only constants built here (Decimals, ints, key names from genai-prices' registry) reach the
generated source, through the factory's arguments or `repr` of registry identifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from genai_prices import types as gp
from genai_prices.units import UnitDef, UnitRegistry

from tokentrail.core.cost import CostBreakdown, PricingStatus, trusted_cost_breakdown
from tokentrail.core.usage import TokenUsage, Units
from tokentrail.pricing.price_terms import OTHER, Resolved, applicable_price, bucket_of, resolved_prices
from tokentrail.pricing.usage_keys import FIELD_SOURCES, IMAGES, REQUESTS, UNIT_SOURCES, as_count

Kernel = Callable[[TokenUsage, "Units | None"], CostBreakdown]


class UsageMismatch(ValueError):
    """The usage cannot be priced under this price (genai-prices would raise too)."""


@dataclass(frozen=True, slots=True)
class PriceMeta:
    """What a compiled price reports besides the amounts."""

    status: PricingStatus
    version: str | None
    source: str
    model: str


@dataclass(frozen=True, slots=True)
class CompiledPrice:
    """One price, ready to apply: `kernel(usage, units)` returns the call's CostBreakdown
    (status, version, source and model are fixed when compiling) or raises UsageMismatch."""

    kernel: Kernel
    model_price: gp.ModelPrice
    image_price: Decimal | None
    min_audio_seconds: int | None
    meta: PriceMeta
    code: str  # the generated source, for debugging


class _Source:
    """Builds the generated function's text and the constants it closes over."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self.indent = 1

    def const(self, value: object) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    def add(self, line: str, extra: int = 0) -> None:
        self.lines.append("    " * (self.indent + extra) + line)


_SECONDS_KEYS = ("audio_seconds", "input_audio_seconds")


def _billed_seconds(audio: Any, input_audio: Any, own: Any, minimum: int) -> Any:
    """genai-prices' Groq whisper rule: `audio_seconds or input_audio_seconds`, at least `minimum`."""
    reported = audio or input_audio
    if reported is None:
        return own
    return max(reported, minimum) if reported > 0 else 0


def _reader(key: str, src: _Source, plain: bool) -> str | None:
    """Source of an expression reading usage key `key` (its value is None when not reported).

    `plain` is the common case of a call without details or units: keys read from those are
    statically unreported (None is returned instead of source), except `requests` (one call).
    """
    field = FIELD_SOURCES.get(key)
    if field is not None:
        return f"usage.{field}"
    if plain:
        return "1" if key == REQUESTS else None
    detail = f"(details.get({key!r}) if details else None)"
    unit_field = UNIT_SOURCES.get(key)
    if unit_field is not None:
        read = f"units.{unit_field}"
        if unit_field == "seconds":
            read = f"{src.const(as_count)}(units.seconds)"
        return f"({read} if units is not None and units.{unit_field} is not None else {detail})"
    if key == IMAGES:
        return "(units.images if units is not None else None)"
    if key == REQUESTS:
        return "(units.requests if units is not None and units.requests is not None else 1)"
    return detail


def _absent_check(key: str, registry: UnitRegistry, src: _Source, plain: bool) -> str | None:
    """Condition under which genai-prices refuses to infer 0 for an unreported priced key:
    a more specific key is reported, or two overlapping keys whose join is this key."""
    unit = registry.units[key]
    reported = [u for k, u in registry.units.items() if k != REQUESTS]
    parts: list[str] = []
    detail_keys: list[str] = []
    for other in reported:
        if other is not unit and unit.dimensions.items() <= other.dimensions.items():
            if other.usage_key in FIELD_SOURCES or other.usage_key in UNIT_SOURCES:
                read = _reader(other.usage_key, src, plain)
                if read is not None:
                    parts.append(read)
            elif not plain:
                detail_keys.append(other.usage_key)
    if detail_keys:
        # The set test is C-level and almost always settles it; the call checks values > 0.
        keys, check = src.const(frozenset(detail_keys)), src.const(_any_reported)
        parts.append(f"(details and not details.keys().isdisjoint({keys}) and {check}(details, {keys}))")
    ordered = sorted(reported, key=lambda u: u.usage_key)
    for i, left in enumerate(ordered):
        for right in ordered[i + 1 :]:
            if not left.is_compatible_with(right):
                continue
            nested = left.dimensions.items() <= right.dimensions.items()
            if nested or right.dimensions.items() <= left.dimensions.items():
                continue
            if dict(unit.dimensions) == {**left.dimensions, **right.dimensions}:
                a, b = _reader(left.usage_key, src, plain), _reader(right.usage_key, src, plain)
                if a is not None and b is not None:
                    parts.append(f"({a} and {b})")
    return " or ".join(parts) if parts else None


def _any_reported(details: Mapping[str, int], keys: frozenset[str]) -> bool:
    return any(details.get(k) for k in keys)


def _missing(key: str) -> UsageMismatch:
    return UsageMismatch(f"{key} is not reported but a more specific count is; report {key} too")


def _negative(key: str) -> UsageMismatch:
    return UsageMismatch(f"the more specific counts inside {key} add up to more than {key}")


@dataclass(frozen=True)
class _Plan:
    """Everything about a price that does not depend on the call."""

    resolved: Resolved
    reads: list[str]  # usage keys to read, tier threshold included
    leaf_order: list[UnitDef]  # priced units, most specific first
    starts: list[int]  # distinct tier starts, ascending
    levels: list[tuple[object, ...]]  # per tier level: (p0, z0, p1, z1, ..., in1k, out1k)
    image_price: Decimal | None
    min_audio_seconds: int | None


def _plan(
    model_price: gp.ModelPrice, registry: UnitRegistry, image_price: Decimal | None, min_audio_seconds: int | None
) -> _Plan:
    resolved = resolved_prices(model_price, registry)
    keys = [unit.usage_key for unit, _ in resolved]
    reads = [k for k in keys if k != REQUESTS]
    tiered = any(isinstance(price, gp.TieredPrices) for _, price in resolved)
    if tiered and "input_tokens" not in reads:
        reads.append("input_tokens")  # the tier threshold is read even when input is unpriced
    priced_units = [unit for unit, _ in resolved if unit.usage_key != REQUESTS]
    # genai_prices.decompose.compute_leaf_values' order: most dimensions first, then by key.
    leaf_order = sorted(priced_units, key=lambda u: (-len(u.dimensions), u.usage_key))
    # Tier level j means the input count strictly exceeds the j-th distinct tier start; the
    # prices of each level come from genai-prices' cliff rule at a count inside that level.
    starts = sorted({t.start for _, p in resolved if isinstance(p, gp.TieredPrices) for t in p.tiers})
    levels: list[tuple[object, ...]] = []
    for total_input in [0, *(s + 1 for s in starts)]:
        row: list[object] = []
        for unit, price in resolved:
            applicable = applicable_price(price, total_input)
            row += [applicable, applicable * Decimal(0) / unit.per]  # the zero genai-prices adds
        rates = {unit.price_key: applicable_price(price, total_input) for unit, price in resolved}
        row.append(rates["input_mtok"] / 1000 if "input_mtok" in rates else None)
        row.append(rates["output_mtok"] / 1000 if "output_mtok" in rates else None)
        levels.append(tuple(row))
    return _Plan(resolved, reads, leaf_order, starts, levels, image_price, min_audio_seconds)


def _body(plan: _Plan, registry: UnitRegistry, src: _Source, plain: bool) -> None:
    """The statements pricing one call; `plain` specialises them for calls without details/units."""
    var: dict[str, str] = {}
    for n, key in enumerate(plan.reads):
        read = _reader(key, src, plain)
        if key in _SECONDS_KEYS and plan.min_audio_seconds is not None:
            # Groq bills transcription for at least this many seconds; like genai-prices, the
            # reported duration (either key) sets both duration counts.
            shared = [_reader(k, src, plain) or "None" for k in _SECONDS_KEYS]
            if shared != ["None", "None"]:
                fn = src.const(_billed_seconds)
                read = f"{fn}({shared[0]}, {shared[1]}, {read or 'None'}, {plan.min_audio_seconds})"
        check = _absent_check(key, registry, src, plain)
        if read is None:  # statically unreported: genai-prices infers 0 unless a sub-count says otherwise
            if check:
                src.add(f"if {check}: raise {src.const(_missing)}({key!r})")
            var[key] = "0"
            continue
        v = var[key] = f"v{n}"
        src.add(f"{v} = {read}")
        src.add(f"if {v} is None:")
        if check:
            src.add(f"if {check}: raise {src.const(_missing)}({key!r})", 1)
        src.add(f"{v} = 0", 1)

    leaf: dict[str, str] = {}
    for n, unit in enumerate(plan.leaf_order):
        inner = [
            leaf[d.usage_key]
            for d in plan.leaf_order
            if d is not unit and unit.dimensions.items() <= d.dimensions.items() and leaf[d.usage_key] != "0"
        ]
        if not inner:
            leaf[unit.usage_key] = var[unit.usage_key]
            continue
        name = leaf[unit.usage_key] = f"l{n}"
        src.add(f"{name} = {var[unit.usage_key]} - " + " - ".join(inner))
        src.add(f"if {name} < 0: raise {src.const(_negative)}({unit.usage_key!r})")
    if any(unit.usage_key == REQUESTS for unit, _ in plan.resolved):
        leaf[REQUESTS] = "vreq"
        src.add(f"vreq = {_reader(REQUESTS, src, plain)}")

    names = [name for i in range(len(plan.resolved)) for name in (f"p{i}", f"z{i}")] + ["in1k", "out1k"]
    if len(plan.levels) > 1:
        levels = src.const(tuple(plan.levels))
        threshold = var["input_tokens"]
        for j in range(len(plan.starts), 0, -1):
            keyword = "if" if j == len(plan.starts) else "elif"
            src.add(f"{keyword} {threshold} > {plan.starts[j - 1]}: row = {levels}[{j}]")
        src.add(f"else: row = {levels}[0]")
        src.add(f"{', '.join(names)} = row")

    # The terms in genai-prices' order, each added to the total exactly as it does. A zero
    # count adds genai-prices' zero `price * 0 / per`, whose exponent is the price's: that only
    # matters while the total's exponent is larger, so where no earlier term can have left it
    # larger (`_zero_is_noop`) a zero count is skipped outright, bucket included.
    init: list[str] = []
    terms: list[str] = []
    assigned: set[int] = set()
    first = True
    for i, (unit, _) in enumerate(plan.resolved):
        count = leaf[unit.usage_key]
        skip_zero = not first and _zero_is_noop(plan, i)
        if first:
            # genai-prices starts from Decimal(0); 0 + x is x itself when x's exponent is <= 0,
            # which holds for every term whose price has no positive exponent.
            start = "total = " if _zero_is_noop(plan, i, start=True) else "total = ZERO + "
        else:
            start = "total = total + "
        first = False
        if count == "0":
            if not skip_zero:
                terms.append(f"{start}z{i}")
            continue
        bucket = bucket_of(unit)
        if skip_zero:
            terms.append(f"if {count}:")
            terms.append(f"    t = p{i} * {count} / {int(unit.per)}")
            terms.append("    total = total + t")
            if bucket in assigned:
                terms.append(f"    b{bucket} = b{bucket} + t")
            else:
                terms += [f"    b{bucket} = t", "else:", f"    b{bucket} = ZERO"]
                assigned.add(bucket)
            continue
        terms.append(f"t = p{i} * {count} / {int(unit.per)} if {count} else z{i}")
        terms.append(f"{start}t")
        terms.append(f"b{bucket} = b{bucket} + t" if bucket in assigned else f"b{bucket} = t")
        assigned.add(bucket)
    if plan.image_price is not None and not plain:
        # tokentrail's own unit; adding ZERO (exponent 0) when there are no images changes nothing.
        if OTHER not in assigned:
            init.append(f"b{OTHER} = ZERO")
            assigned.add(OTHER)
        terms.append(f"vimg = {_reader(IMAGES, src, plain)}")
        terms.append("if vimg:")
        terms.append("    t = pimg * vimg")
        terms.append(f"    total = {'ZERO' if first else 'total'} + t")
        terms.append(f"    b{OTHER} = b{OTHER} + t")
    if first:
        init.append("total = ZERO")
    for line in init + terms:
        src.add(line)
    out = [f"b{b}" if b in assigned else "ZERO" for b in range(5)]
    src.add(f"return TRUSTED({', '.join(out)}, total, in1k, out1k, STATUS, VERSION, SOURCE, MODEL)")


def _zero_is_noop(plan: _Plan, k: int, *, start: bool = False) -> bool:
    """Adding a zero of term k's exponent cannot change the total at that point, at any tier.

    Every term i has an exponent <= its price's exponent (exact products and divisions keep the
    ideal exponent or go below it), so after terms 0..k-1 the total's exponent is at most
    min(0, exp(p_0), ..., exp(p_k-1)). A zero whose exponent (the price's) is at least that
    leaves the total unchanged, digits included. With `start`, the question is the converse
    for the first term: is `Decimal(0) + t` just `t` (exp(p_0) <= 0)?
    """
    for row in plan.levels:
        if start:
            if _exponent(row[2 * k]) > 0:
                return False
            continue
        bound = min([0, *(_exponent(row[2 * i]) for i in range(k))])
        if _exponent(row[2 * k]) < bound:
            return False
    return True


def _exponent(value: object) -> int:
    assert isinstance(value, Decimal)
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def compile_price(
    model_price: gp.ModelPrice,
    registry: UnitRegistry,
    meta: PriceMeta,
    *,
    image_price: Decimal | None = None,
    min_audio_seconds: int | None = None,
) -> CompiledPrice:
    """Compile one resolved price. Raises ValueError for a price genai-prices would reject."""
    plan = _plan(model_price, registry, image_price, min_audio_seconds)
    src = _Source()
    src.consts.update(
        ZERO=Decimal(0),
        TRUSTED=trusted_cost_breakdown,
        STATUS=meta.status,
        VERSION=meta.version,
        SOURCE=meta.source,
        MODEL=meta.model,
    )
    if image_price is not None:
        src.consts["pimg"] = image_price
    if len(plan.levels) == 1:
        names = [name for i in range(len(plan.resolved)) for name in (f"p{i}", f"z{i}")] + ["in1k", "out1k"]
        src.consts.update(zip(names, plan.levels[0], strict=True))
    src.add("details = usage.details")
    src.add("if details is None and units is None:")
    src.indent = 2
    _body(plan, registry, src, plain=True)
    src.indent = 1
    _body(plan, registry, src, plain=False)
    text = (
        f"def _factory({', '.join(src.consts)}):\n    def kernel(usage, units):\n"
        + "\n".join("    " + line for line in src.lines)
        + "\n    return kernel\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(text, f"<tokentrail price kernel {meta.model}>", "exec"), namespace)
    kernel = namespace["_factory"](**src.consts)
    return CompiledPrice(kernel, model_price, image_price, min_audio_seconds, meta, text)


__all__ = ["CompiledPrice", "PriceMeta", "UsageMismatch", "compile_price"]
