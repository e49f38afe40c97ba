"""One grievance's history for auditors: JSON Lines for machines, a self-contained HTML report for people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

import msgspec

from adapters.display_zone import DisplayZone
from adapters.storage.hash_chain import BrokenLink
from engine.chart import OrgChart
from engine.grievance import Grievance
from engine.levels import Level, label
from schemas.events import EventEnvelope

_encoder = msgspec.json.Encoder()


def as_json_lines(envelopes: Sequence[EventEnvelope]) -> bytes:
    """One event envelope (with its hash) a line, oldest first."""
    return b"".join(_encoder.encode(e) + b"\n" for e in envelopes)


LEVELS = frozenset(lv.value for lv in Level)


def _details(payload: dict[str, Any], chart: OrgChart, zone: DisplayZone) -> str:
    parts = []
    for key, value in payload.items():
        if value in (None, "", [], {}):
            continue
        shown = zone.detail(key, value)
        if isinstance(value, str) and value in chart:
            shown = f"{chart.unit(value).name} ({value})"
        elif isinstance(value, str) and value in LEVELS:
            shown = f"{label(Level(value))} ({value})"
        parts.append(f"<dt>{escape(key)}</dt><dd>{escape(shown)}</dd>")
    return f"<dl>{''.join(parts)}</dl>"


def as_html(
    grievance_id: Any,
    envelopes: Sequence[EventEnvelope],
    broken: BrokenLink | None,
    chart: OrgChart,
    now: datetime,
    zone: DisplayZone,
    inclusion: tuple[bool, str] | None = None,
) -> str:
    """A printable report: what happened, who did it and when (in the display zone, labelled), each event's hash,
    the chain's verdict, and (`inclusion`: whether well, and what) its place in the latest signed checkpoint."""
    if broken is None:
        verdict = f'<p class="ok">✔ 链条完整 The hash chain of all {len(envelopes)} events is intact.</p>'
    else:
        verdict = (
            f'<p class="broken">✘ 链条断裂 The chain is broken at version {broken.version}: '
            f"{escape(broken.reason)}.</p>"
        )
    if inclusion is not None:
        ok, sentence = inclusion
        mark = "✔ 已收录 " if ok else "✘ 未能证明 "
        verdict += f'\n<p class="{"ok" if ok else "broken"}">{mark}{escape(sentence)}</p>'
    rows = "\n".join(
        f"<tr><td>{e.version}</td><td>{escape(Grievance.label_of(e.type))}</td>"
        f"<td>{zone.second(e.occurred_at)}</td><td>{zone.second(e.recorded_at)}</td><td>{escape(e.actor)}</td>"
        f"<td>{_details(e.payload, chart, zone)}</td><td><code>{escape((e.hash or 'missing')[:16])}</code></td></tr>"
        for e in envelopes
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>诉求 {escape(str(grievance_id))} 审计报告</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: .4em; vertical-align: top; }}
th {{ background: #f3f3f3; }} dl {{ margin: 0; display: grid; grid-template-columns: max-content auto; gap: 0 .8em; }}
dt {{ color: #666; }} dd {{ margin: 0; }} .ok {{ color: #1a7f37; }} .broken {{ color: #b42318; font-weight: bold; }}
</style></head><body>
<h1>诉求审计报告 Audit report</h1>
<p>Grievance <code>{escape(str(grievance_id))}</code> · {len(envelopes)} events · generated {zone.second(now)}</p>
{verdict}
<table><thead><tr><th>v</th><th>事件 event</th><th>发生 occurred</th><th>记录 recorded</th><th>操作人 actor</th>
<th>内容 details</th><th>hash</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p>Each hash is SHA-256 over the previous event's hash and this event as stored; <code>grievance verify</code>
recomputes the chain.</p>
</body></html>
"""
