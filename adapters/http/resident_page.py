"""The resident's own page, /r/{code}: where their problem stands, who holds it, each answer they were given,
and, once it is answered, their rating. Opened by the receipt code alone (no token); Chinese, with English.

The page shows what the resident was told and nothing meant for staff: no progress notes, no reasons given
among workers, no names of workers, no resident's name or phone (not even their own). A code that opens
nothing gets the same page, with the same status, whatever was wrong with it. Every request is counted
against the client's address, and a rating against the code too; a rating carries an idempotency key drawn
when the form was shown, so a phone that sends it twice stores one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from uuid import UUID

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType, RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery

from adapters import wire
from adapters.http.rate_limits import RateLimits
from adapters.http.services import Services, services
from adapters.storage.receipts import normalised
from adapters.storage.receipts import shown as shown_code
from engine.access import Principal, Role
from engine.commands import command_decoder
from engine.errors import BrokenHistory, GrievanceError, InfrastructureError
from engine.grievance import ClaimMode, EscalationReason, Grievance, Rating, RatingSource, Status
from engine.service_chain import replay
from schemas.results import Rejected

RESIDENT = "resident"
LANGUAGES = ("zh", "en")
MAX_FORM_BYTES = 16_384
# Answered as the page is, whatever it says: never cached or indexed, the code in its address never sent on.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}

WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "我的诉求",
        "receipt": "回执号",
        "switch": "English",
        "status": "办理状态",
        "holder": "当前承办",
        "steps": "办理经过",
        "answer": "答复内容",
        "waiting": "等待认领",
        "claimed": "正在办理",
        "resolved": "已解决",
        "replied": "已答复",
        "reported": "诉求已受理",
        "claimed_step": "已由{mode}认领办理",
        "progress": "承办人记录了办理进展",
        "escalated": "已提交上级：{unit}",
        "escalated_overdue": "超时未办，督办提交上级：{unit}",
        "resolved_step": "问题已解决",
        "replied_step": "已作答复",
        "rated_step": "评价：{rating}",
        "reopened": "重新办理：{unit}",
        "organisation": "党组织",
        "group": "党小组",
        "member": "党员",
        "by_resident": "（本人评价）",
        "by_callback": "（回访评价）",
        "rate": "请评价本次办理",
        "satisfied": "满意",
        "basically_satisfied": "基本满意",
        "dissatisfied": "不满意",
        "dissatisfied_note": "选择“不满意”将重新办理。",
        "comment": "留言（可选）",
        "send": "提交评价",
        "thanks": "感谢您的评价。",
        "not_found_title": "未找到",
        "not_found": "没有与此回执号对应的诉求。请核对回执号后再试。",
        "too_many": "请求过于频繁，请稍后再试。",
        "refused": "未能提交：{reason}",
        "unavailable": "暂时无法显示，请稍后再试。",
    },
    "en": {
        "title": "My report",
        "receipt": "Receipt",
        "switch": "中文",
        "status": "Status",
        "holder": "Now handled by",
        "steps": "What happened",
        "answer": "The answer",
        "waiting": "Waiting to be taken up",
        "claimed": "Being worked on",
        "resolved": "Resolved",
        "replied": "Answered",
        "reported": "Your report was received",
        "claimed_step": "Taken up by a party {mode}",
        "progress": "Progress was recorded",
        "escalated": "Passed up to {unit}",
        "escalated_overdue": "Overdue, so supervision passed it up to {unit}",
        "resolved_step": "Resolved",
        "replied_step": "Answered",
        "rated_step": "Rated: {rating}",
        "reopened": "Reopened at {unit}",
        "organisation": "organisation",
        "group": "group",
        "member": "member",
        "by_resident": " (by you)",
        "by_callback": " (on a call back)",
        "rate": "How was it handled?",
        "satisfied": "Satisfied",
        "basically_satisfied": "Basically satisfied",
        "dissatisfied": "Dissatisfied",
        "dissatisfied_note": "“Dissatisfied” sends it back to be handled again.",
        "comment": "Comment (optional)",
        "send": "Send my rating",
        "thanks": "Thank you for your rating.",
        "not_found_title": "Not found",
        "not_found": "No report has this receipt. Please check the code and try again.",
        "too_many": "Too many requests; please try again in a minute.",
        "refused": "Not sent: {reason}",
        "unavailable": "This page cannot be shown just now; please try again later.",
    },
}

STYLE = """
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,"PingFang SC","Microsoft YaHei",
"WenQuanYi Micro Hei",sans-serif;background:#f4f1ec;color:#1d1d1d}main{max-width:36rem;margin:0 auto;
padding:1rem}header{display:flex;justify-content:space-between;align-items:baseline}h1{font-size:1.4rem;
margin:.2rem 0}h2{font-size:1.1rem;margin:0 0 .3rem}
a{color:#a4161a}.card{background:#fff;border-radius:.6rem;padding:1rem;margin:.8rem 0;
box-shadow:0 1px 3px #0002}.code{font-family:ui-monospace,monospace;letter-spacing:.08em}.state{font-size:1.3rem;
font-weight:700;color:#a4161a}ol{padding-left:1.2rem;margin:.2rem 0}li{margin:.5rem 0}time{display:block;
color:#666;font-size:.85rem}blockquote{margin:.3rem 0;padding:.5rem .8rem;background:#f7f3ea;border-left:3px solid
#c9a227}fieldset{border:0;padding:0;margin:0}label.choice{display:block;padding:.7rem;margin:.4rem 0;
border:1px solid #ccc;border-radius:.5rem;min-height:44px}textarea{width:100%;min-height:5rem;font:inherit;
padding:.5rem}button{width:100%;min-height:48px;font:inherit;font-weight:700;color:#fff;background:#a4161a;
border:0;border-radius:.5rem;margin-top:.6rem}.note{color:#555;font-size:.9rem}.message{font-weight:700}
"""


@dataclass(frozen=True)
class Shown:
    """What the resident's page shows of their grievance, read from its events."""

    grievance: Grievance
    steps: list[tuple[datetime, str, str | None]]


def _language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else "zh"


def _page(svc: Services, lang: str, title: str, body: str, code: str | None, status: int) -> Response[bytes]:
    w = WORDS[lang]
    other = "en" if lang == "zh" else "zh"
    # The page's own address, not a relative one: after a rating the browser is at /r/{code}/rating.
    switch = f'<a href="/r/{escape(code)}?lang={other}" hreflang="{other}">{w["switch"]}</a>' if code else ""
    html = (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1>{switch}</header>{body}</main></body></html>"
    )
    return Response(html.encode(), status_code=status, media_type=MediaType.HTML, headers=HEADERS)


def _not_found(svc: Services, lang: str) -> Response[bytes]:
    w = WORDS[lang]
    return _page(svc, lang, w["not_found_title"], f'<p class="card">{w["not_found"]}</p>', None, 404)


def _too_many(svc: Services, lang: str, wait: int) -> Response[bytes]:
    response = _page(svc, lang, WORDS[lang]["title"], f'<p class="card">{WORDS[lang]["too_many"]}</p>', None, 429)
    response.headers["Retry-After"] = str(wait)
    return response


def _shown(svc: Services, grievance_id: UUID) -> Shown:
    """The grievance and its steps, read with residents' fields sealed as stored: the page needs none of them."""
    mapper = svc.chain.sealed_mapper()
    stored = svc.chain.recorder.select_events(grievance_id)
    if not stored:
        raise LookupError(grievance_id)
    try:
        events: list[Any] = [mapper.to_domain_event(e) for e in stored]
        grievance: Grievance = replay(None, events)
    except InfrastructureError:
        raise
    except Exception as damage:  # a history damaged behind the engine's back: the page says it cannot be shown
        raise BrokenHistory(grievance_id, len(stored), f"it cannot be read ({type(damage).__name__})") from damage
    steps: list[tuple[datetime, str, str | None]] = []
    chart = svc.chain.chart

    def unit(unit_id: str) -> str:
        return chart.unit(unit_id).name if unit_id in chart else unit_id

    for e in events:
        match e:
            case Grievance.Reported():
                steps.append((e.occurred_at, "reported", unit(e.unit_id)))
            case Grievance.Claimed():
                steps.append((e.occurred_at, f"claimed_step:{ClaimMode(e.mode).value}", unit(e.unit_id)))
            case Grievance.ProgressRecorded():
                steps.append((e.occurred_at, "progress", None))
            case Grievance.Escalated():
                kind = "escalated_overdue" if e.reason == EscalationReason.OVERDUE else "escalated"
                steps.append((e.occurred_at, kind, unit(e.to_unit)))
            case Grievance.Resolved():
                steps.append((e.occurred_at, "resolved_step", e.summary))
            case Grievance.Replied():
                steps.append((e.occurred_at, "replied_step", e.answer))  # what the resident was told, not why
            case Grievance.Rated():
                steps.append((e.occurred_at, f"rated_step:{Rating(e.rating).value}:{e.given_by}", None))
            case Grievance.Reopened():
                steps.append((e.occurred_at, "reopened", unit(e.unit_id)))
    return Shown(grievance, steps)


def _step(svc: Services, lang: str, at: datetime, kind: str, detail: str | None) -> str:
    w = WORDS[lang]
    name, *args = kind.split(":")
    if name == "claimed_step":
        line = w[name].format(mode=w[args[0]])
        detail_html = f"<div>{escape(detail or '')}</div>"
    elif name == "rated_step":
        by = {RatingSource.RESIDENT.value: w["by_resident"], RatingSource.CALLBACK.value: w["by_callback"]}
        line = w[name].format(rating=w[args[0]]) + by.get(args[1], "")
        detail_html = ""
    elif name in ("escalated", "escalated_overdue", "reopened"):
        line = w[name].format(unit=escape(detail or ""))
        detail_html = ""
    elif name in ("resolved_step", "replied_step"):
        line = w[name]
        detail_html = f"<blockquote>{escape(detail or '')}</blockquote>"
    else:
        line = w[name]
        detail_html = f"<div>{escape(detail)}</div>" if detail else ""
    when = svc.display_zone.minute(at)
    return f'<li><time datetime="{at.isoformat()}">{escape(when)}</time>{escape(line)}{detail_html}</li>'


def _body(svc: Services, lang: str, code: str, shown: Shown, message: str = "") -> str:
    w = WORDS[lang]
    g = shown.grievance
    chart = svc.chain.chart
    holder = chart.unit(g.unit_id).name if g.unit_id in chart else g.unit_id
    steps = "".join(_step(svc, lang, *s) for s in shown.steps)
    parts = [
        f'<p class="note">{w["receipt"]} <span class="code">{escape(code)}</span></p>',
        f'<section class="card"><div>{escape(g.title)}</div><div>{w["status"]}</div>'
        f'<div class="state" id="status">{w[Status(g.status).value]}</div>'
        f'<div>{w["holder"]}: <span id="holder">{escape(holder)}</span></div></section>',
    ]
    if g.closing_text and not g.status.is_open:
        parts.append(f'<section class="card"><div>{w["answer"]}</div><blockquote id="answer">'
                     f"{escape(g.closing_text)}</blockquote></section>")  # fmt: skip
    if message:
        parts.append(f'<p class="card message" id="message" role="status">{escape(message)}</p>')
    if not g.status.is_open and g.rating is None:
        choices = "".join(
            f'<label class="choice"><input type="radio" name="rating" value="{r.value}" required> {w[r.value]}</label>'
            for r in Rating
        )
        parts.append(
            f'<form class="card" method="post" action="/r/{escape(code)}/rating?lang={lang}" id="rate">'
            f"<fieldset><legend>{w['rate']}</legend>{choices}</fieldset>"
            f'<p class="note">{w["dissatisfied_note"]}</p>'
            f'<label>{w["comment"]}<textarea name="comment" maxlength="4000"></textarea></label>'
            f'<input type="hidden" name="key" value="{secrets.token_hex(16)}">'
            f'<button type="submit">{w["send"]}</button></form>'
        )
    parts.append(f'<section class="card"><h2>{w["steps"]}</h2><ol id="steps">{steps}</ol></section>')
    return "".join(parts)


def _client(request: Request[Any, Any, State]) -> str:
    return request.client.host if request.client else "unknown"


def _limits(request: Request[Any, Any, State]) -> RateLimits:
    limits: RateLimits = request.app.state.resident_limits
    return limits


def _open(svc: Services, code: str) -> UUID | None:
    if svc.receipts is None:
        return None
    return svc.receipts.find(code)


def _render(svc: Services, lang: str, code: str, message: str = "", status: int = 200) -> Response[bytes]:
    gid = _open(svc, code)
    if gid is None:
        return _not_found(svc, lang)
    try:
        shown = _shown(svc, gid)
    except LookupError:
        return _not_found(svc, lang)
    except GrievanceError:
        w = WORDS[lang]
        return _page(svc, lang, w["title"], f'<p class="card">{w["unavailable"]}</p>', None, 503)
    display = shown_code(normalised(code) or code)
    return _page(svc, lang, WORDS[lang]["title"], _body(svc, lang, display, shown, message), display, status)


@get("/r/{code:str}", sync_to_thread=True, include_in_schema=False)
def resident_page(request: Request[Any, Any, State], code: FromPath[str], lang: FromQuery[str | None] = None
                  ) -> Response[bytes]:  # fmt: skip
    svc = services(request.app.state)
    language = _language(lang)
    wait = _limits(request).spend(f"client:{_client(request)}", "page")
    if wait:
        return _too_many(svc, language, wait)
    return _render(svc, language, code)


@post("/r/{code:str}/rating", include_in_schema=False, status_code=200)
async def rate_from_page(request: Request[Any, Any, State], code: FromPath[str], lang: FromQuery[str | None] = None
                         ) -> Response[bytes]:  # fmt: skip
    svc = services(request.app.state)
    language = _language(lang)
    limits = _limits(request)
    # Keyed by the code it spells, so that case, dashes or look-alike letters do not make a fresh bucket.
    spelled = normalised(code) or "(malformed)"
    wait = limits.spend(f"client:{_client(request)}", "rating") or limits.spend(f"code:{spelled}", "rating")
    if wait:
        return _too_many(svc, language, wait)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail="$: a rating's form is at most 16 KiB")
    form = await request.form() if request.content_type[0] == RequestEncodingType.URL_ENCODED else {}
    return await anyio.to_thread.run_sync(_rate, svc, language, code, dict(form))


def _rate(svc: Services, lang: str, code: str, form: dict[str, Any]) -> Response[bytes]:
    w = WORDS[lang]
    gid = _open(svc, code)
    if gid is None:
        return _not_found(svc, lang)
    key, rating, comment = (form.get(k) for k in ("key", "rating", "comment"))
    fields = {
        "kind": "rate",
        # The form's key makes a retried rating the same command: the chain stores it once.
        "command_id": f"resident:{key}" if isinstance(key, str) else "",
        "grievance_id": str(gid),
        "actor": RESIDENT,
        "occurred_at": svc.clock().isoformat(),
        "rating": rating if isinstance(rating, str) else "",
        "comment": comment if isinstance(comment, str) else "",
        "given_by": RatingSource.RESIDENT.value,
    }
    try:
        command = command_decoder.convert(fields)
    except wire.UNDECODABLE as e:
        refused = wire.malformed(e)
        return _render(svc, lang, code, w["refused"].format(reason=f"{refused.field}: {refused.reason}"), 400)
    principal = Principal(RESIDENT, Role.RESIDENT, grievance_id=gid)
    result = svc.intake.submit_one(command, principal=principal)
    if isinstance(result, Rejected):
        return _render(svc, lang, code, w["refused"].format(reason=result.reason), 422)
    return _render(svc, lang, code, w["thanks"])
