"""The RTO report as a picture: one row per VM, one bar per step, the RTO marked.

A standalone SVG (no script, no external font or style), so the file saved beside the run's JSON
report reads the same offline as in the portal.
"""

from __future__ import annotations

import math
from typing import Any
from xml.sax.saxutils import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac")
FAILED = "#c0392b"
LEFT, RIGHT, TOP, ROW, BAR = 170, 30, 56, 24, 14


def _nice_step(span: float) -> float:
    raw = span / 8 or 1.0
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return float(mult * power)
    return float(10 * power)


def _a(value: Any) -> str:
    return escape(str(value), {'"': "&quot;"})


def svg(report: dict[str, Any], width: int = 960) -> str:
    vms: dict[str, Any] = report.get("vms") or {}
    steps = [s.get("step") for s in report.get("steps") or [] if s.get("step")]
    colors = {step: PALETTE[i % len(PALETTE)] for i, step in enumerate(steps)}
    rto = report.get("rto_seconds")
    ends = [
        float(st.get("end_offset") or st.get("start_offset") or 0)
        for rec in vms.values()
        for st in (rec.get("steps") or {}).values()
    ]
    span = max([*ends, float(rto or 0), float(report.get("seconds") or 0), 0.1]) * 1.04
    plot = width - LEFT - RIGHT
    names = sorted(vms)
    height = TOP + ROW * max(1, len(names)) + 70 + 18 * math.ceil(len(steps) / 5)

    def x(t: float) -> float:
        return LEFT + plot * max(0.0, t) / span

    title = f"{report.get('mode', 'run')} of tenant {report.get('tenant', '?')}, run {report.get('run_id', '?')}"
    status = report.get("status", "?")
    rto_text = f"RTO {float(rto):.1f} s" if rto is not None else "RTO not reached"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="t d" font-family="sans-serif" font-size="12">',
        f'<title id="t">{_a(title)}</title>',
        f'<desc id="d">{_a(f"{status}; {rto_text}; one row per VM, one bar per step, seconds since the start")}</desc>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">{_a(title)}</text>',
        f'<text x="10" y="38">{_a(status)} · {_a(rto_text)} · {len(names)} VM{"" if len(names) == 1 else "s"}</text>',
    ]
    bottom = TOP + ROW * max(1, len(names))
    tick = _nice_step(span)
    t = 0.0
    while t <= span:
        out.append(f'<line x1="{x(t):.1f}" y1="{TOP - 4}" x2="{x(t):.1f}" y2="{bottom}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{x(t):.1f}" y="{bottom + 14}" text-anchor="middle" fill="#555">{t:g} s</text>')
        t += tick
    for row, name in enumerate(names):
        y = TOP + row * ROW
        out.append(f'<text x="{LEFT - 8}" y="{y + BAR}" text-anchor="end">{_a(name)}</text>')
        for step, st in (vms[name].get("steps") or {}).items():
            start, end = st.get("start_offset"), st.get("end_offset")
            if start is None:
                continue
            end = end if end is not None else start
            failed = st.get("state") == "failed"
            fill = FAILED if failed else colors.get(step, PALETTE[-1])
            bar_w = max(2.0, x(float(end)) - x(float(start)))
            label = f"{name} {step}: {st.get('state')} +{float(start):.2f} s to +{float(end):.2f} s"
            out.append(
                f'<rect x="{x(float(start)):.1f}" y="{y + 3}" width="{bar_w:.1f}" height="{BAR}" fill="{fill}" '
                f'rx="2"><title>{_a(label)}</title></rect>'
            )
    if rto is not None:
        rx = x(float(rto))
        out.append(
            f'<line x1="{rx:.1f}" y1="{TOP - 10}" x2="{rx:.1f}" y2="{bottom + 2}" stroke="#c0392b" '
            'stroke-width="2" stroke-dasharray="6 3"/>'
        )
        out.append(f'<text x="{rx + 4:.1f}" y="{TOP - 12}" fill="#c0392b" font-weight="bold">{_a(rto_text)}</text>')
    ly = bottom + 36
    for i, step in enumerate(steps):
        lx = 10 + (i % 5) * 180
        yy = ly + (i // 5) * 18
        out.append(f'<rect x="{lx}" y="{yy - 10}" width="12" height="12" fill="{colors[step]}"/>')
        out.append(f'<text x="{lx + 17}" y="{yy}">{i + 1} {_a(step)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
