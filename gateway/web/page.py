"""The status page's HTML: small string templates, every value escaped unless marked safe.

:func:`render_page` turns a :class:`~gateway.web.view.StatusView` into one self-contained page:
inline CSS, no framework, readable without JavaScript (a ``<noscript>`` meta refresh reloads
it). With JavaScript, a tiny script fetches the page again every few seconds and swaps the
``<main>`` element, and shows a banner while the gateway does not answer. The script and the
style never change, so :data:`CONTENT_SECURITY_POLICY` pins them by hash.

Escaping: :func:`_fill` escapes every substituted value with :func:`html.escape` (quotes
included) unless it is a :class:`Markup` produced by this module from escaped parts.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from string import Template

from gateway.web.i18n import N_, PageLocale
from gateway.web.view import HealthView, LaneView, PaymentView, StatusView

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "Markup",
    "fill",
    "join",
    "render_page",
    "render_unavailable",
]


class Markup(str):
    """HTML that is already safe (built here from escaped values); inserted as is."""

    __slots__ = ()


def _fill(template: Template, **values: str | int) -> Markup:
    safe = {key: value if isinstance(value, Markup) else html.escape(str(value), quote=True)
            for key, value in values.items()}
    return Markup(template.substitute(safe))


def _join(parts: list[Markup]) -> Markup:
    return Markup("".join(parts))


#: Public names of the two helpers, for the page's other section modules (gateway.web.money).
fill = _fill
join = _join


STYLE = """
:root{--ok:#1b7f3b;--warn:#a86400;--bad:#b3261e;--idle:#5f6368;--unknown:#5f6368;
--bg:#f4f5f7;--card:#fff;--ink:#1f2328;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--ink)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;padding:1rem 1.5rem;
background:var(--card);border-bottom:1px solid #d0d7de}
header h1{margin:0;font-size:1.4rem}
.muted{color:var(--muted);font-size:.9rem}
main{padding:1rem 1.5rem;display:grid;gap:1rem;
grid-template-columns:repeat(auto-fill,minmax(19rem,1fr))}
section{background:var(--card);border-radius:10px;padding:1rem;border-left:6px solid;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{margin:0 0 .4rem;font-size:1.1rem}
.banner{grid-column:1/-1;font-size:1.3rem;font-weight:600;padding:.8rem 1rem;border-radius:10px;
color:#fff}
.tone-ok{border-color:var(--ok)}.tone-warn{border-color:var(--warn)}
.tone-bad{border-color:var(--bad)}.tone-idle,.tone-unknown{border-color:var(--idle)}
.banner.tone-ok{background:var(--ok)}.banner.tone-bad{background:var(--bad)}
.banner.tone-unknown,.banner.tone-warn{background:var(--warn)}
.state{font-weight:600}
.updated{font-weight:400;font-size:.9rem}
.screen{font-family:ui-monospace,Menlo,Consolas,monospace;background:#111;color:#7CFC9A;
padding:.3rem .6rem;border-radius:6px;display:inline-block;letter-spacing:.05em}
.problem{color:var(--bad)}
dl{display:grid;grid-template-columns:auto 1fr;gap:.15rem .8rem;margin:.5rem 0 0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.payment{margin-top:.6rem;padding:.5rem .7rem;background:#f6f8fa;border-radius:8px}
.amount{font-size:1.3rem;font-weight:700}
#stale{display:none;background:var(--bad);color:#fff;padding:.5rem 1.5rem;font-weight:600}
body.stale #stale{display:block}
.money{grid-column:1/-1}
.takings{display:flex;flex-wrap:wrap;gap:.3rem 2rem;font-size:1.6rem;font-weight:700}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2rem .5rem}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr+tr td{border-top:1px solid #eaeef2}
.declined-forward{color:var(--bad);font-weight:600}
.stopped{color:var(--bad);font-weight:600}
"""

SCRIPT = """
(function () {
  var ms = Number(document.body.getAttribute("data-refresh-ms")) || 5000;
  function tick() {
    fetch(window.location.href, {cache: "no-store", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var old = document.querySelector("main");
        if (fresh && old) { old.replaceWith(document.adoptNode(fresh)); }
        document.body.classList.remove("stale");
      })
      .catch(function () { document.body.classList.add("stale"); })
      .finally(function () { window.setTimeout(tick, ms); });
  }
  window.setTimeout(tick, ms);
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: Only this page's own style and script run; the page fetches only itself.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_PAGE = Template("""<!DOCTYPE html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>$shop — $title</title>
<noscript><meta http-equiv="refresh" content="$refresh_s"></noscript>
<style>$style</style>
</head>
<body data-refresh-ms="$refresh_ms">
<header>
<h1>$shop</h1>
<span class="muted">$product $version · $since $started</span>
$nav
</header>
<div id="stale" role="alert">$lost</div>
$main
<script>$script</script>
</body>
</html>
""")

_MAIN = Template("""<main aria-live="polite">
<div class="banner tone-$tone" id="headline">$headline
<span class="updated">· $updated_word $updated</span></div>
$money
$lanes
$health
</main>""")

_LANE = Template("""<section class="lane tone-$tone" id="lane-$key" aria-label="$name">
<h2>$name</h2>
<p class="state device">$device</p>
$problem
<p>$screen_word <span class="screen prompt">$prompt</span></p>
$payment
<dl><dt>$device_word</dt><dd class="reader">$reader</dd>
<dt>$interface_word</dt><dd>$interface</dd></dl>
</section>""")

_PAYMENT = Template("""<div class="payment tone-$tone">
<div><span class="amount">$amount</span> · <span class="pay-state">$state</span></div>
<dl><dt>$card_word</dt><dd class="pan">$card</dd><dt>$started_word</dt><dd>$started</dd>
<dt>$reference_word</dt><dd>$reference</dd></dl>
</div>""")

_HEALTH = Template("""<section class="health tone-$tone" aria-label="$title">
<h2>$title</h2>
<p class="state">$summary</p>
<dl>$details</dl>
</section>""")

_DETAIL = Template("<dt>$label</dt><dd>$value</dd>")

_NO_LANES = Template('<section class="lane tone-unknown"><h2>$title</h2><p>$text</p></section>')


Words = Callable[[str], str]


def _english(text: str) -> str:
    return text


def _payment(payment: PaymentView | None, tr: Words) -> Markup:
    if payment is None:
        return _fill(Template('<p class="muted">$t</p>'), t=tr(N_("No payment in progress.")))
    return _fill(_PAYMENT, tone=payment.tone, amount=payment.amount, state=payment.state,
                 card=payment.card, started=payment.started, reference=payment.reference,
                 card_word=tr(N_("Card")), started_word=tr(N_("Started")),
                 reference_word=tr(N_("Reference")))


def _lane(lane: LaneView, tr: Words) -> Markup:
    problem = (_fill(Template('<p class="problem">$label $text</p>'),
                     label=tr(N_("Last problem:")), text=lane.problem)
               if lane.problem else Markup(""))
    return _fill(_LANE, tone=lane.tone, key=lane.key, name=lane.name, device=lane.device,
                 problem=problem, prompt=lane.prompt, payment=_payment(lane.payment, tr),
                 reader=lane.reader, interface=lane.interface,
                 screen_word=tr(N_("Customer screen:")), device_word=tr(N_("Device")),
                 interface_word=tr(N_("Interface")))


def _health(block: HealthView) -> Markup:
    details = _join([_fill(_DETAIL, label=k, value=v) for k, v in block.details])
    return _fill(_HEALTH, tone=block.tone, title=block.title, summary=block.summary,
                 details=details)


def _page(
    shop: str,
    version: str,
    started: str,
    main: Markup,
    refresh_seconds: float,
    loc: PageLocale | None = None,
    manager_link: bool = False,
) -> str:
    def words(text: str) -> str:
        return text if loc is None else loc.gettext(text)

    nav = (_fill(Template('<nav><a href="/manager">$t</a></nav>'), t=words(N_("Manager page")))
           if manager_link else Markup(""))  # fmt: skip

    return _fill(_PAGE, shop=shop, version=version, started=started, main=main, nav=nav,
                 refresh_s=max(1, round(refresh_seconds)),
                 refresh_ms=max(100, round(refresh_seconds * 1000)),
                 style=Markup(STYLE), script=Markup(SCRIPT),
                 lang="en" if loc is None else loc.tag,
                 title=words(N_("payment gateway status")),
                 product=words(N_("Payment gateway")), since=words(N_("running since")),
                 lost=words(N_("Connection to the gateway lost — retrying")))


def render_page(
    view: StatusView,
    *,
    refresh_seconds: float = 5.0,
    money: Markup | None = None,
    loc: PageLocale | None = None,
    manager_link: bool = False,
) -> str:
    """The full HTML page for a view (every value escaped).

    Args:
        view: From :func:`gateway.web.view.build_view`.
        refresh_seconds: How often the page refreshes itself (script or meta refresh).
        money: The money sections (:func:`gateway.web.money.render_money`), already escaped.
        loc: The manager's locale (``<html lang>``, the page's own words); None: English.
        manager_link: Link to ``/manager`` in the header (when that page is mounted).
    """
    tr: Words = _english if loc is None else loc.gettext
    no_lanes = _fill(_NO_LANES, title=tr(N_("Lanes")),
                     text=tr(N_("No lane information available.")))  # fmt: skip
    lanes = _join([_lane(lane, tr) for lane in view.lanes]) if view.lanes else no_lanes
    health = _join([_health(b) for b in (view.totals, view.outbox, view.acquirer, view.mqtt,
                                           view.stock)])
    main = _fill(_MAIN, tone=view.tone, headline=view.headline, updated=view.updated,
                 updated_word=tr(N_("updated")), money=money or Markup(""), lanes=lanes,
                 health=health)
    return _page(view.shop, view.version, view.started, main, refresh_seconds, loc,
                 manager_link)


def render_unavailable(reason: str, *, refresh_seconds: float = 5.0) -> str:
    """The page shown when the daemon gave no snapshot (the reason is escaped)."""
    main = _fill(Template("""<main aria-live="polite">
<div class="banner tone-bad" id="headline">Status not available</div>
<section class="tone-bad"><h2>The gateway did not report its status</h2>
<p>$reason</p><p>This page tries again automatically.</p></section>
</main>"""), reason=reason)
    return _page("Payment gateway", "unknown", "unknown", main, refresh_seconds)
