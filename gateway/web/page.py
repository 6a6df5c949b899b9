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
from string import Template

from gateway.web.view import HealthView, LaneView, PaymentView, StatusView

__all__ = ["CONTENT_SECURITY_POLICY", "Markup", "render_page", "render_unavailable"]


class Markup(str):
    """HTML that is already safe (built here from escaped values); inserted as is."""

    __slots__ = ()


def _fill(template: Template, **values: str | int) -> Markup:
    safe = {key: value if isinstance(value, Markup) else html.escape(str(value), quote=True)
            for key, value in values.items()}
    return Markup(template.substitute(safe))


def _join(parts: list[Markup]) -> Markup:
    return Markup("".join(parts))


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
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>$shop — payment gateway status</title>
<noscript><meta http-equiv="refresh" content="$refresh_s"></noscript>
<style>$style</style>
</head>
<body data-refresh-ms="$refresh_ms">
<header>
<h1>$shop</h1>
<span class="muted">Payment gateway $version · running since $started</span>
</header>
<div id="stale" role="alert">Connection to the gateway lost — retrying</div>
$main
<script>$script</script>
</body>
</html>
""")

_MAIN = Template("""<main aria-live="polite">
<div class="banner tone-$tone" id="headline">$headline
<span class="updated">· updated $updated</span></div>
$lanes
$health
</main>""")

_LANE = Template("""<section class="lane tone-$tone" id="lane-$key" aria-label="$name">
<h2>$name</h2>
<p class="state device">$device</p>
$problem
<p>Customer screen: <span class="screen prompt">$prompt</span></p>
$payment
<dl><dt>Device</dt><dd class="reader">$reader</dd><dt>Interface</dt><dd>$interface</dd></dl>
</section>""")

_PAYMENT = Template("""<div class="payment tone-$tone">
<div><span class="amount">$amount</span> · <span class="pay-state">$state</span></div>
<dl><dt>Card</dt><dd class="pan">$card</dd><dt>Started</dt><dd>$started</dd>
<dt>Reference</dt><dd>$reference</dd></dl>
</div>""")

_HEALTH = Template("""<section class="health tone-$tone" aria-label="$title">
<h2>$title</h2>
<p class="state">$summary</p>
<dl>$details</dl>
</section>""")

_DETAIL = Template("<dt>$label</dt><dd>$value</dd>")

_NO_LANES = Markup('<section class="lane tone-unknown"><h2>Lanes</h2>'
                   "<p>No lane information available.</p></section>")


def _payment(payment: PaymentView | None) -> Markup:
    if payment is None:
        return Markup('<p class="muted">No payment in progress.</p>')
    return _fill(_PAYMENT, tone=payment.tone, amount=payment.amount, state=payment.state,
                 card=payment.card, started=payment.started, reference=payment.reference)


def _lane(lane: LaneView) -> Markup:
    problem = (_fill(Template('<p class="problem">Last problem: $text</p>'), text=lane.problem)
               if lane.problem else Markup(""))
    return _fill(_LANE, tone=lane.tone, key=lane.key, name=lane.name, device=lane.device,
                 problem=problem, prompt=lane.prompt, payment=_payment(lane.payment),
                 reader=lane.reader, interface=lane.interface)


def _health(block: HealthView) -> Markup:
    details = _join([_fill(_DETAIL, label=k, value=v) for k, v in block.details])
    return _fill(_HEALTH, tone=block.tone, title=block.title, summary=block.summary,
                 details=details)


def _page(shop: str, version: str, started: str, main: Markup, refresh_seconds: float) -> str:
    return _fill(_PAGE, shop=shop, version=version, started=started, main=main,
                 refresh_s=max(1, round(refresh_seconds)),
                 refresh_ms=max(100, round(refresh_seconds * 1000)),
                 style=Markup(STYLE), script=Markup(SCRIPT))


def render_page(view: StatusView, *, refresh_seconds: float = 5.0) -> str:
    """The full HTML page for a view (every value escaped).

    Args:
        view: From :func:`gateway.web.view.build_view`.
        refresh_seconds: How often the page refreshes itself (script or meta refresh).
    """
    lanes = _join([_lane(lane) for lane in view.lanes]) if view.lanes else _NO_LANES
    health = _join([_health(b) for b in (view.totals, view.outbox, view.acquirer, view.mqtt,
                                           view.stock)])
    main = _fill(_MAIN, tone=view.tone, headline=view.headline, updated=view.updated,
                 lanes=lanes, health=health)
    return _page(view.shop, view.version, view.started, main, refresh_seconds)


def render_unavailable(reason: str, *, refresh_seconds: float = 5.0) -> str:
    """The page shown when the daemon gave no snapshot (the reason is escaped)."""
    main = _fill(Template("""<main aria-live="polite">
<div class="banner tone-bad" id="headline">Status not available</div>
<section class="tone-bad"><h2>The gateway did not report its status</h2>
<p>$reason</p><p>This page tries again automatically.</p></section>
</main>"""), reason=reason)
    return _page("Payment gateway", "unknown", "unknown", main, refresh_seconds)
