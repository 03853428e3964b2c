"""`tokentrail whatif --model MODEL`: recorded usage repriced as if it had run on another model
(seed 004, "model comparison").

Each recorded call keeps its own token counts (cache reads and writes, reasoning included)
and is priced with `tokentrail.pricing.calculate_cost` for MODEL at the call's own time and
service tier. Calls are compared only when both sides have a price; the others are counted
apart (recorded without a price, no token usage, or a usage MODEL cannot price), never as $0.
Same tokens is an assumption: another model tokenizes, answers and reasons differently, so the
figures are an estimate of the price difference, and the caveats say where the price
structure differs (no cache price on MODEL, reasoning, tiers).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table

from tokentrail.cli._format import console, count, money, progress_bar, usd
from tokentrail.cli._usage_source import (
    ApiKeyOpt,
    DbOpt,
    FeatureOpt,
    ProjectOpt,
    Query,
    SourceError,
    TenantOpt,
    UntilOpt,
    UrlOpt,
    UsageSource,
    UserOpt,
    fail,
    open_source,
    parse_when,
)
from tokentrail.cli.app import app
from tokentrail.core import CostBreakdown, PricingStatus, TokenUsage, ValidationError, normalize_provider
from tokentrail.pricing import PROVIDER_IDS, calculate_cost, default_engine

_RATIO = Decimal("0.0001")
# genai-prices provider id -> tokentrail's provider name (the first name listed wins)
_FROM_CATALOG_ID = {catalog_id: name for name, catalog_id in reversed(PROVIDER_IDS.items()) if catalog_id}


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


# caveat code -> explanation (MODEL is filled in)
CAVEATS: dict[str, str] = {
    "no-cache-price": "{model} has no cache-read price: cache reads are billed at its full input rate",
    "no-cache-write-price": "{model} has no cache-write price: cache writes are billed at its input rate",
    "reasoning": "reasoning tokens are billed as {model} output; {model} may reason more, less or not at all",
    "tier": "calls made on a service tier (flex, priority, batch) keep it: {model}'s rate for that tier, "
    "or its standard rate where it has none",
    "embeddings": "embedding calls are repriced too: meaningful only if {model} is an embedding model",
    "provider-reported": "the recorded cost is the provider's own figure, the what-if is a catalog price",
}


@dataclass(slots=True)
class Group:
    """One original (provider, model) and its sums over the calls priced on both sides."""

    provider: str | None
    model: str | None
    calls: int = 0
    compared: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    actual_cost: Decimal = Decimal(0)
    whatif_cost: Decimal = Decimal(0)
    unpriced_actual: int = 0  # recorded without a price
    no_tokens: int = 0  # no token usage: failed calls, per-page OCR, ...
    unpriced_whatif: int = 0  # the target model cannot price this usage
    caveats: set[str] = field(default_factory=set)

    def add(self, other: Group) -> None:
        for name in (
            "calls",
            "compared",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "actual_cost",
            "whatif_cost",
            "unpriced_actual",
            "no_tokens",
            "unpriced_whatif",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.caveats |= other.caveats

    @property
    def delta(self) -> Decimal:
        return self.whatif_cost - self.actual_cost

    @property
    def ratio(self) -> Decimal | None:
        return (self.whatif_cost / self.actual_cost).quantize(_RATIO) if self.actual_cost else None

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "provider": self.provider,
            "model": self.model,
            "calls": self.calls,
            "compared_calls": self.compared,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "actual_cost": usd(self.actual_cost),
            "whatif_cost": usd(self.whatif_cost),
            "delta": ("-" if self.delta < 0 else "") + usd(abs(self.delta)),
            "ratio": None if ratio is None else str(ratio),
            "unpriced_actual_calls": self.unpriced_actual,
            "no_token_usage_calls": self.no_tokens,
            "unpriced_whatif_calls": self.unpriced_whatif,
            "caveats": sorted(self.caveats),
        }


@dataclass(frozen=True, slots=True)
class WhatIf:
    provider: str
    model: str
    query: Query
    groups: list[Group]
    total: Group
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": {"provider": self.provider, "model": self.model},
            "since": None if self.query.since is None else self.query.since.isoformat(),
            "until": None if self.query.until is None else self.query.until.isoformat(),
            "filters": dict(self.query.equals),
            "rows": [g.to_json() for g in self.groups],
            "total": self.total.to_json(),
            "caveat_notes": {code: CAVEATS[code].format(model=self.model) for code in sorted(self.total.caveats)},
        }


def target_provider(model: str, provider: str | None) -> str:
    """The provider to price MODEL under: the one given, or the price catalog's."""
    if provider:
        return normalize_provider(provider)
    match = default_engine().catalog.find("", model)
    if match is None:
        raise SourceError(
            f"--model: {model!r} is not in the price catalog under any provider; pass --provider "
            "(see `tokentrail prices search`)",
            exit_code=2,
        )
    return _FROM_CATALOG_ID.get(match.provider.id, match.provider.id)


def check_priced(provider: str, model: str) -> None:
    probe = calculate_cost(provider, model, TokenUsage.build(input_tokens=1000, output_tokens=1000))
    if probe.total_cost is None:
        raise SourceError(
            f"--model: {provider}/{model} has no price ({probe.reason or 'unknown model'}); "
            "see `tokentrail prices search`",
            exit_code=2,
        )


def reprice(records: Iterable[dict[str, Any]], provider: str, model: str) -> dict[tuple[str | None, str | None], Group]:
    """Group the records by their (provider, model) and price each on the target."""
    groups: dict[tuple[str | None, str | None], Group] = {}
    for record in records:
        key = (record.get("provider"), record.get("request_model") or record.get("provider_model"))
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(*key)
        _reprice_one(group, record, provider, model)
    return groups


def _reprice_one(group: Group, record: dict[str, Any], provider: str, model: str) -> None:
    group.calls += 1
    raw_usage = record.get("token_usage")
    usage = TokenUsage.from_dict(raw_usage) if raw_usage else None
    if usage is None or usage.is_empty or (usage.input_tokens is None and usage.output_tokens is None):
        group.no_tokens += 1
        return
    recorded = CostBreakdown.from_dict(record["cost_metrics"]) if record.get("cost_metrics") else None
    if recorded is None or recorded.total_cost is None:
        group.unpriced_actual += 1
        return
    tier = _service_tier(record)
    at = datetime.fromisoformat(record["started_at"])
    cost = calculate_cost(provider, model, usage, at=at, service_tier=tier)
    if cost.total_cost is None:
        group.unpriced_whatif += 1
        return
    group.compared += 1
    group.input_tokens += usage.input_tokens or 0
    group.output_tokens += usage.output_tokens or 0
    group.cache_read_tokens += usage.cache_read_tokens or 0
    group.cache_write_tokens += usage.cache_write_tokens or 0
    group.reasoning_tokens += usage.reasoning_tokens or 0
    group.actual_cost += recorded.total_cost
    group.whatif_cost += cost.total_cost
    if usage.cache_read_tokens and not cost.cache_read_cost:
        group.caveats.add("no-cache-price")
    if usage.cache_write_tokens and not cost.cache_write_cost:
        group.caveats.add("no-cache-write-price")
    if usage.reasoning_tokens:
        group.caveats.add("reasoning")
    if tier and tier.lower() not in ("default", "standard", "auto"):
        group.caveats.add("tier")
    if record.get("operation") == "embeddings":
        group.caveats.add("embeddings")
    if recorded.pricing_status is PricingStatus.PROVIDER_REPORTED:
        group.caveats.add("provider-reported")


def _service_tier(record: dict[str, Any]) -> str | None:
    tier = (record.get("response_metadata") or {}).get("service_tier")
    return tier or (record.get("request_parameters") or {}).get("service_tier")


def what_if(source: UsageSource, provider: str, model: str, query: Query) -> WhatIf:
    with progress_bar("repricing") as progress:
        task = progress.add_task("reprice", total=None if progress.disable else source.count(query))
        groups = reprice(_advancing(source.calls(query), lambda: progress.advance(task)), provider, model)
    ordered = sorted(groups.values(), key=lambda g: (-g.actual_cost, -g.calls, g.provider or "", g.model or ""))
    total = Group(None, None)
    for group in ordered:
        total.add(group)
    return WhatIf(provider, model, query, ordered, total, source.label)


def _advancing(records: Iterable[dict[str, Any]], advance: Callable[[], None]) -> Iterator[dict[str, Any]]:
    for record in records:
        yield record
        advance()


# ---- output -------------------------------------------------------------------------------
def render_table(result: WhatIf) -> None:
    if not result.groups:
        console.print(f"no calls recorded from {result.query.describe()} in {result.source}")
        return
    target = f"{result.provider}/{result.model}"
    table = Table(
        title=f"what if every call had used {target}: {result.query.describe()}",
        header_style="bold",
        show_footer=True,
    )
    total = result.total
    columns: list[tuple[str, str, bool]] = [
        ("provider / model", "[bold]total[/bold]", False),
        ("calls", count(total.calls), True),
        ("compared", count(total.compared), True),
        ("input", count(total.input_tokens), True),
        ("cache read", count(total.cache_read_tokens), True),
        ("output", count(total.output_tokens), True),
        ("actual", money(total.actual_cost), True),
        (f"on {result.model}", money(total.whatif_cost), True),
        ("delta", _delta(total), True),
        ("ratio", _ratio(total), True),
        ("caveats", "", False),
    ]
    for header, footer, right in columns:
        table.add_column(header, footer=footer, justify="right" if right else "left")
    for g in result.groups:
        table.add_row(
            f"{g.provider or '(none)'} / {g.model or '(none)'}",
            count(g.calls),
            count(g.compared),
            count(g.input_tokens),
            count(g.cache_read_tokens),
            count(g.output_tokens),
            money(g.actual_cost) if g.compared else "-",
            money(g.whatif_cost) if g.compared else "-",
            _delta(g),
            _ratio(g),
            ", ".join(sorted(g.caveats)),
        )
    console.print(table)
    apart = total.calls - total.compared
    if apart:
        console.print(
            f"{apart:,} calls not compared: {total.unpriced_actual:,} recorded without a price, "
            f"{total.no_tokens:,} without token usage (failed calls, per-page or per-image billing), "
            f"{total.unpriced_whatif:,} whose usage {target} cannot price."
        )
    for code in sorted(total.caveats):
        console.print(f"  {code}: {CAVEATS[code].format(model=result.model)}")
    console.print(
        "Same token counts as recorded: another model tokenizes and answers differently, so this is an estimate."
    )


def _delta(g: Group) -> str:
    if not g.compared:
        return "-"
    sign = "+" if g.delta > 0 else "-" if g.delta < 0 else ""
    return sign + money(abs(g.delta))


def _ratio(g: Group) -> str:
    ratio = g.ratio
    return "-" if ratio is None else f"{ratio.quantize(Decimal('0.01'))}x"


CSV_FIELDS: tuple[str, ...] = tuple(Group(None, None).to_json())  # the JSON row's keys, in order


def write_csv(result: WhatIf, stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(["target_provider", "target_model", *CSV_FIELDS])
    for g in result.groups:
        row = g.to_json()
        row["caveats"] = ";".join(row["caveats"])
        writer.writerow([result.provider, result.model, *("" if row[f] is None else row[f] for f in CSV_FIELDS)])


# ---- command ------------------------------------------------------------------------------
@app.command("whatif")
def whatif(
    model: Annotated[str, typer.Option("--model", "-m", help="The model to reprice every call on.")],
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="MODEL's provider (default: from the price catalog).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="Start: 30d, 12h, 2w, a date, an ISO time, or 'all'.")] = "30d",
    until: UntilOpt = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")] = Format.TABLE,
    from_provider: Annotated[
        str | None, typer.Option("--from-provider", help="Only calls made through this provider.")
    ] = None,
    from_model: Annotated[str | None, typer.Option("--from-model", help="Only calls made on this model.")] = None,
    project: ProjectOpt = None,
    user: UserOpt = None,
    tenant: TenantOpt = None,
    feature: FeatureOpt = None,
    db: DbOpt = None,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Reprice recorded usage as if it had been made on MODEL: per original model, the actual
    cost, the cost on MODEL, the difference and the ratio."""
    try:
        target = target_provider(model, provider)
        check_priced(target, model)
        query = Query.build(
            parse_when(since, "--since"),
            parse_when(until, "--until"),
            provider=from_provider,
            model=from_model,
            project=project,
            user_id=user,
            tenant_id=tenant,
            feature=feature,
        )
        with open_source(db, url, api_key) as source:
            result = what_if(source, target, model, query)
    except SourceError as exc:
        raise fail(exc) from None
    except ValidationError as exc:  # a stored record that does not validate
        raise fail(SourceError(f"a stored record is invalid: {exc}")) from None
    if output_format is Format.JSON:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif output_format is Format.CSV:
        write_csv(result, sys.stdout)
    else:
        render_table(result)


__all__ = ["CAVEATS", "Format", "Group", "WhatIf", "check_priced", "reprice", "target_provider", "what_if", "whatif"]
