#!/usr/bin/env python3
"""Procedural backdrop generator for Sakuragaoka: one 1600x900 SVG per location -> backgrounds/<id>.svg.

Stdlib only; seeded, so reruns write identical files (which are committed; nothing runs at play time).
Usage: python3 gen_backgrounds.py [OUT_DIR]
Each scene is built from layered shapes: a gradient sky or wall, a one-point-perspective floor with
lines converging on a vanishing point, mid-ground props, and soft light overlays.
"""
import math
import os
import random
import sys

W, H = 1600, 900


def grad(gid, stops, vertical=True, x1=0, y1=0, x2=None, y2=None):
    if x2 is None:
        x2, y2 = (0, 1) if vertical else (1, 0)
    s = "".join(f'<stop offset="{o}" stop-color="{c}"/>' for o, c in stops)
    return f'<linearGradient id="{gid}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}">{s}</linearGradient>'


def radial(gid, color, opacity=0.8):
    return (f'<radialGradient id="{gid}"><stop offset="0" stop-color="{color}" stop-opacity="{opacity}"/>'
            f'<stop offset="1" stop-color="{color}" stop-opacity="0"/></radialGradient>')


def rect(x, y, w, h, fill, extra=""):
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{extra}/>'


def poly(points, fill, extra=""):
    return f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" fill="{fill}"{extra}/>'


def line(x1, y1, x2, y2, stroke, width=2, extra=""):
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{extra}/>')


def toward(p, vp, t):
    """Point a fraction t of the way from p to the vanishing point vp."""
    return (p[0] + (vp[0] - p[0]) * t, p[1] + (vp[1] - p[1]) * t)


def floor_lines(vp, y0, n, stroke, width=2, spread=2400):
    out = []
    for i in range(n + 1):
        x = W / 2 - spread / 2 + spread * i / n
        out.append(line(x, H, *toward((x, H), vp, (H - y0) / (H - vp[1])), stroke, width))
    return "".join(out)


def clouds(rng, n, ymax, color="#ffffff", opacity=0.85):
    out = []
    for _ in range(n):
        cx, cy, s = rng.uniform(0, W), rng.uniform(40, ymax), rng.uniform(0.6, 1.4)
        blobs = "".join(f'<ellipse cx="{cx + dx * s:.0f}" cy="{cy + dy * s:.0f}" rx="{rx * s:.0f}" ry="{ry * s:.0f}"/>'
                        for dx, dy, rx, ry in [(0, 0, 90, 34), (-70, 12, 60, 24), (70, 10, 70, 26), (20, -22, 56, 30)])
        out.append(f'<g fill="{color}" opacity="{opacity}">{blobs}</g>')
    return "".join(out)


def town(rng, y, color, n=40):
    out, x = [], -20
    while x < W:
        w, h = rng.uniform(30, 90), rng.uniform(20, 120)
        out.append(rect(x, y - h, w, h + 200, color))
        x += w + rng.uniform(-5, 6)
    return "".join(out)


def tree(x, y, s, leaf="#5faa52", leaf_dark="#3f7f3c", trunk="#7a5232"):
    return (rect(x - 10 * s, y - 120 * s, 20 * s, 120 * s, trunk) +
            f'<g fill="{leaf_dark}"><circle cx="{x}" cy="{y - 150 * s}" r="{80 * s}"/>'
            f'<circle cx="{x - 60 * s}" cy="{y - 120 * s}" r="{55 * s}"/><circle cx="{x + 60 * s}" cy="{y - 115 * s}" '
            f'r="{58 * s}"/></g><g fill="{leaf}"><circle cx="{x - 10 * s}" cy="{y - 165 * s}" r="{62 * s}"/>'
            f'<circle cx="{x - 55 * s}" cy="{y - 130 * s}" r="{40 * s}"/><circle cx="{x + 45 * s}" '
            f'cy="{y - 135 * s}" r="{44 * s}"/></g>')


def svg(title, defs, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'preserveAspectRatio="xMidYMid slice"><title>{title}</title><defs>{defs}</defs>{body}</svg>\n')


def classroom(rng):
    vp = (800, 380)
    d = (grad("wall", [(0, "#f3e4c8"), (1, "#e2c99f")]) + grad("floor", [(0, "#b27a4a"), (1, "#7d4e2b")]) +
         grad("win", [(0, "#ffb36b"), (0.6, "#ffd9a0"), (1, "#fff0cf")]) + grad("beam", [(0, "#fff3c4"), (1, "#fff3c4")]) +
         radial("glow", "#fff1c0", 0.55))
    b = [rect(0, 0, W, H, "url(#wall)"),
         poly([(0, 0), (W, 0), (1180, 170), (420, 170)], "#efe3cc"),  # ceiling
         poly([(0, H), (W, H), (1180, 560), (420, 560)], "url(#floor)"),
         poly([(0, 0), (420, 170), (420, 560), (0, H)], "#ead6b1"),  # left wall with windows
         poly([(W, 0), (1180, 170), (1180, 560), (W, H)], "#e6cfa6"),
         rect(420, 170, 760, 390, "#f0dcb5")]
    for i in range(3):  # windows on the left wall
        x0, x1 = 30 + i * 130, 130 + i * 130
        t0, t1 = x0 / 420, x1 / 420
        b.append(poly([(x0, 120 + 50 * t0 * 1.0), (x1, 120 + 50 * t1), (x1, 520 - 40 * t1), (x0, 520 - 40 * t0)],
                      "url(#win)", ' stroke="#8a6a45" stroke-width="6"'))
    b.append(poly([(0, 150), (420, 260), (900, 900), (0, 900)], "url(#beam)", ' opacity="0.18"'))
    b.append(rect(560, 230, 480, 200, "#2f5a48", ' stroke="#7a5632" stroke-width="12"'))  # blackboard
    b.append('<g stroke="#e8f0e0" stroke-width="3" fill="none" opacity="0.8"><path d="M 610 300 q 30 -30 60 0 t 60 0"/>'
             '<path d="M 640 350 L 760 350 M 800 280 L 960 280 M 820 320 L 940 320"/>'
             '<ellipse cx="980" cy="390" rx="26" ry="18"/><path d="M 962 380 l -6 -12 l 12 6 M 998 380 l 6 -12 l -12 6"/></g>')
    b.append(rect(640, 436, 320, 14, "#7a5632"))
    b.append(floor_lines(vp, 560, 16, "#6a3f22", 2))
    for row in range(4):  # desks in perspective
        t = 0.15 + row * 0.2
        y = 560 + (H - 560) * (1 - t) * 0.55 + row * 8
        for col in (-2, -1, 1, 2):
            cx = 800 + col * (170 - row * 30) * (1.6 - row * 0.3)
            s = 1.25 - row * 0.22
            b.append(poly([(cx - 70 * s, y), (cx + 70 * s, y), (cx + 60 * s, y - 24 * s), (cx - 60 * s, y - 24 * s)],
                          "#c99a62", ' stroke="#6a4424" stroke-width="2"'))
            b.append(rect(cx - 64 * s, y, 8 * s, 70 * s, "#8a8f99") + rect(cx + 56 * s, y, 8 * s, 70 * s, "#8a8f99"))
    b.append(f'<ellipse cx="300" cy="600" rx="700" ry="420" fill="url(#glow)"/>')
    for x in (620, 980):
        b.append(rect(x, 186, 120, 12, "#fffaf0", ' opacity="0.9"'))
    return svg("Classroom", d, "".join(b))


def rooftop(rng):
    d = (grad("sky", [(0, "#4d8fd6"), (0.55, "#a9d3f2"), (1, "#ffe3c2")]) + grad("floor", [(0, "#b9b6ae"), (1, "#8d8a84")]) +
         '<pattern id="fence" width="28" height="28" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
         '<rect width="28" height="28" fill="none" stroke="#4c5a66" stroke-width="2.5"/></pattern>')
    b = [rect(0, 0, W, H, "url(#sky)"), clouds(rng, 7, 300), town(rng, 560, "#8fa7bf"), town(rng, 600, "#7089a3"),
         poly([(0, 600), (W, 600), (W, H), (0, H)], "url(#floor)")]
    for i in range(0, W + 1, 160):
        b.append(line(i, 600, 800 + (i - 800) * 2.4, H, "#7c7a74", 2))
    b.append(rect(0, 330, W, 280, "url(#fence)", ' opacity="0.85"'))
    b.append(rect(0, 322, W, 12, "#4c5a66"))
    for x in range(40, W, 260):
        b.append(rect(x, 322, 10, 290, "#3d4852"))
    b.append(rect(1180, 300, 240, 170, "#d8dde2", ' stroke="#6b7580" stroke-width="5" rx="20"'))  # water tank
    b.append(rect(1200, 470, 14, 140, "#6b7580") + rect(1386, 470, 14, 140, "#6b7580"))
    b.append(rect(1180, 330, 240, 10, "#aeb6bd") + rect(1180, 430, 240, 10, "#aeb6bd"))
    return svg("Rooftop", d, "".join(b))


def school_gate(rng):
    d = (grad("sky", [(0, "#79b6ea"), (1, "#e8f4ff")]) + grad("bld", [(0, "#f4efe6"), (1, "#d8cfc0")]) +
         grad("path", [(0, "#cbbba3"), (1, "#a48e70")]) + radial("petal", "#ffc4d8", 0.9))
    vp = (800, 470)
    b = [rect(0, 0, W, H, "url(#sky)"), clouds(rng, 5, 200),
         rect(260, 220, 1080, 280, "url(#bld)", ' stroke="#a89a86" stroke-width="4"'),
         rect(700, 150, 200, 80, "#efe8dc", ' stroke="#a89a86" stroke-width="4"'),
         '<circle cx="800" cy="190" r="28" fill="#fff" stroke="#6b6256" stroke-width="4"/>'
         '<path d="M 800 190 L 800 172 M 800 190 L 814 196" stroke="#6b6256" stroke-width="4"/>']
    for r in range(3):
        for c in range(12):
            b.append(rect(290 + c * 88, 250 + r * 80, 60, 48, "#9cc8e8", ' stroke="#7a705f" stroke-width="3"'))
    b.append(poly([(0, 470), (W, 470), (W, H), (0, H)], "#8fc06f"))
    b.append(poly([(620, 470), (980, 470), (1500, H), (100, H)], "url(#path)"))
    for i in range(1, 8):
        y = 470 + (H - 470) * (i / 8) ** 1.6
        hw = 180 + (700 - 180) * (y - 470) / (H - 470)
        b.append(line(800 - hw, y, 800 + hw, y, "#8f7a5e", 2, ' opacity="0.6"'))
    for x, side in ((420, -1), (1180, 1)):  # gate pillars
        b.append(rect(x - 40, 300, 80, 340, "#cfc6b8", ' stroke="#847a6c" stroke-width="4"'))
        b.append(rect(x - 50, 290, 100, 22, "#b8ae9e"))
    b.append(rect(392, 360, 56, 180, "#efe6d2", ' stroke="#6b6256" stroke-width="3"') +
             '<text x="420" y="380" font-size="22" fill="#4a4238" text-anchor="middle" font-family="serif" '
             'transform="rotate(90 420 380)" dy="7">SAKURAGAOKA</text>')
    b.append(rect(1460, 260, 26, 420, "#6e4a36") + rect(100, 280, 26, 400, "#6e4a36"))
    for cx, cy in ((1470, 250), (110, 260)):  # cherry trees
        for _ in range(26):
            x, y, r = cx + rng.uniform(-200, 200), cy + rng.uniform(-130, 90), rng.uniform(40, 90)
            b.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{r:.0f}" fill="{rng.choice(["#f7b6cc", "#fbcfe0", "#f29bb9"])}" opacity="0.9"/>')
    for _ in range(60):
        x, y = rng.uniform(0, W), rng.uniform(0, H)
        b.append(f'<ellipse cx="{x:.0f}" cy="{y:.0f}" rx="7" ry="4" fill="#ffc4d8" transform="rotate({rng.uniform(0, 180):.0f} {x:.0f} {y:.0f})"/>')
    return svg("School Gate", d, "".join(b))


def library(rng):
    vp = (800, 420)
    d = (grad("floor", [(0, "#6f4a2f"), (1, "#4a2e1b")]) + grad("win", [(0, "#fff4d6"), (1, "#ffd79a")]) +
         radial("glow", "#ffe7b0", 0.6) + grad("wall", [(0, "#5a3b28"), (1, "#3e2819")]))
    b = [rect(0, 0, W, H, "url(#wall)"),
         rect(640, 200, 320, 260, "url(#win)", ' stroke="#3a2414" stroke-width="10"'),
         line(800, 200, 800, 460, "#3a2414", 8), line(640, 330, 960, 330, "#3a2414", 8),
         poly([(0, H), (W, H), (960, 460), (640, 460)], "url(#floor)")]
    for side in (-1, 1):  # bookshelf walls in perspective
        outer, inner = (0, 640) if side < 0 else (W, 960)
        b.append(poly([(outer, 0), (inner, 170), (inner, 460), (outer, H)], "#6b4328"))
        for k in range(6):
            t0 = k / 6
            for j in range(14):
                u0, u1 = j / 14, (j + 0.8) / 14
                xa, xb = outer + (inner - outer) * u0, outer + (inner - outer) * u1
                top = lambda u, t: (0 + 170 * u) + ((H - 0) - (170 * u + (H - 460) * u)) * 0 + t * ((H - (H - 460) * u) - 170 * u)
                ya0, ya1 = top(u0, t0), top(u0, t0 + 0.15)
                yb0, yb1 = top(u1, t0), top(u1, t0 + 0.15)
                col = rng.choice(["#a8323a", "#2f5d8a", "#3e7a4a", "#c99a3a", "#6a3f7a", "#d8c8a8", "#8a4a2a"])
                b.append(poly([(xa, ya0 + 6), (xb, yb0 + 6), (xb, yb1), (xa, ya1)], col))
            b.append(poly([(outer, t0 * H + H / 6 - 4), (inner, 170 + t0 * 290 + 290 / 6 - 4),
                           (inner, 170 + t0 * 290 + 290 / 6), (outer, t0 * H + H / 6 + 6)], "#3a2414"))
    b.append(poly([(520, 640), (1080, 640), (1000, 560), (600, 560)], "#8a5a36", ' stroke="#3a2414" stroke-width="3"'))
    b.append(rect(560, 640, 16, 120, "#5a3820") + rect(1024, 640, 16, 120, "#5a3820"))
    b.append(poly([(700, 560), (760, 548), (790, 556), (730, 570)], "#f3ead6") + rect(860, 530, 40, 30, "#2f5d8a"))
    b.append(f'<ellipse cx="800" cy="380" rx="520" ry="380" fill="url(#glow)"/>')
    b.append(poly([(640, 460), (960, 460), (1250, H), (350, H)], "#ffe3a0", ' opacity="0.12"'))
    return svg("Library", d, "".join(b))


def shopping_street(rng):
    vp = (800, 430)
    d = (grad("sky", [(0, "#f59a6a"), (0.5, "#ffc890"), (1, "#ffe9c6")]) + grad("road", [(0, "#a39c94"), (1, "#6f6862")]) +
         radial("lan", "#ffb347", 0.7))
    b = [rect(0, 0, W, H, "url(#sky)"), poly([(0, H), (W, H), (860, 430), (740, 430)], "url(#road)")]
    for side in (-1, 1):
        for k in range(7):
            t0, t1 = k / 7, (k + 1) / 7
            f = lambda t: 1 - (1 - t) ** 0.5
            x0 = 800 + side * (800 - 740 * f(t0) * 1.0)
            x1 = 800 + side * (800 - 740 * f(t1))
            h0, h1 = 760 * (1 - f(t0)) + 60, 760 * (1 - f(t1)) + 60
            y0b, y1b = 430 + (H - 430) * (1 - f(t0)), 430 + (H - 430) * (1 - f(t1))
            col = rng.choice(["#c25b4a", "#e0a050", "#7a9ac0", "#9a6a9a", "#6aa070", "#d0c0a0"])
            b.append(poly([(x0, y0b), (x1, y1b), (x1, y1b - h1), (x0, y0b - h0)], col, ' stroke="#5a3a2a" stroke-width="2"'))
            aw = rng.choice(["#e84a4a", "#3a8ad0", "#f0c040", "#40a060"])
            b.append(poly([(x0, y0b - h0 * 0.45), (x1, y1b - h1 * 0.45), (x1 - side * 30 * (1 - f(t1)), y1b - h1 * 0.33),
                           (x0 - side * 60 * (1 - f(t0)), y0b - h0 * 0.33)], aw, ' stroke="#fff" stroke-width="2"'))
            b.append(poly([(x0, y0b - h0 * 0.3), (x1, y1b - h1 * 0.3), (x1, y1b - 4), (x0, y0b - 4)], "#ffe8b0", ' opacity="0.55"'))
    for k in range(5):  # lantern strings across the street
        y = 120 + k * 55
        span = 760 * (1 - k / 6)
        b.append(f'<path d="M {800 - span} {y} Q 800 {y + 60 - k * 8} {800 + span} {y}" stroke="#3a2a2a" stroke-width="2" fill="none"/>')
        for j in range(9):
            u = j / 8
            x = 800 - span + 2 * span * u
            yy = y + (60 - k * 8) * 4 * u * (1 - u) * 0.5 * 2 * 0.5 + 8
            r = 18 * (1 - k / 6)
            b.append(f'<circle cx="{x:.0f}" cy="{yy + r:.0f}" r="{r * 2.2:.0f}" fill="url(#lan)"/>'
                     f'<ellipse cx="{x:.0f}" cy="{yy + r:.0f}" rx="{r * 0.8:.0f}" ry="{r:.0f}" fill="#ff7043" stroke="#8a2a1a" stroke-width="1.5"/>')
    return svg("Shopping Street", d, "".join(b))


def park(rng):
    d = (grad("sky", [(0, "#6fb0e8"), (1, "#d8eefb")]) + grad("grass", [(0, "#9ccf6a"), (1, "#5a9a44")]) +
         grad("path", [(0, "#e2cfa4"), (1, "#c4aa7a")]) + radial("sun", "#fff6d0", 0.9))
    b = [rect(0, 0, W, H, "url(#sky)"), '<circle cx="1320" cy="140" r="220" fill="url(#sun)"/>', clouds(rng, 6, 260),
         '<path d="M 0 520 Q 300 430 640 500 T 1600 480 L 1600 900 L 0 900 Z" fill="#7fb85a"/>',
         '<path d="M 0 580 Q 400 520 800 570 T 1600 560 L 1600 900 L 0 900 Z" fill="url(#grass)"/>',
         '<path d="M 720 570 C 760 650 600 760 420 900 L 980 900 C 920 760 860 650 800 570 Z" fill="url(#path)"/>']
    for x, y, s in ((150, 560, 1.3), (420, 520, 0.9), (1150, 530, 1.0), (1450, 590, 1.5), (900, 500, 0.6)):
        b.append(tree(x, y, s))
    b.append(rect(1000, 420, 10, 220, "#6a6a6a") + rect(1220, 420, 10, 220, "#6a6a6a") + rect(990, 410, 250, 14, "#7a7a7a"))
    for x in (1060, 1160):  # swings
        b.append(line(x, 424, x, 570, "#555", 3) + line(x + 40, 424, x + 40, 570, "#555", 3) + rect(x - 6, 566, 52, 10, "#c0502a"))
    b.append(rect(180, 690, 300, 22, "#8a5a34") + rect(180, 650, 300, 18, "#8a5a34") + rect(200, 712, 14, 50, "#444") + rect(446, 712, 14, 50, "#444"))
    for _ in range(40):
        x, y = rng.uniform(0, W), rng.uniform(620, H)
        b.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="4" fill="{rng.choice(["#fff", "#ffe066", "#ff9ec0"])}"/>')
    return svg("Park", d, "".join(b))


def cafe(rng):
    d = (grad("wall", [(0, "#8a5a3c"), (1, "#5e3a24")]) + grad("win", [(0, "#bfe0f2"), (1, "#f6e6c8")]) +
         grad("floor", [(0, "#3e2a1e"), (1, "#2a1a12")]) + radial("lamp", "#ffd27a", 0.75))
    b = [rect(0, 0, W, H, "url(#wall)"), rect(0, 0, W, 60, "#3a2418"),
         rect(120, 140, 620, 400, "url(#win)", ' stroke="#2a1a12" stroke-width="14"'),
         line(430, 140, 430, 540, "#2a1a12", 10), town(rng, 540, "#9ab0c0"),
         rect(120, 140, 620, 400, "none", ' stroke="#2a1a12" stroke-width="14"'),
         rect(0, 600, W, 300, "url(#floor)"),
         rect(900, 180, 300, 220, "#2b3a30", ' stroke="#7a4a2a" stroke-width="10"'),
         '<g fill="#f4f0e0" font-family="sans-serif" font-size="26"><text x="930" y="230">TODAY</text>'
         '<text x="930" y="280">mystery parfait</text><text x="930" y="330">melon soda</text><text x="930" y="375">taiyaki x2</text></g>',
         rect(820, 470, 780, 160, "#6e4430", ' stroke="#3a2418" stroke-width="4"'), rect(820, 460, 780, 20, "#a8754e")]
    for x in range(860, 1600, 150):
        b.append(f'<ellipse cx="{x}" cy="455" rx="30" ry="10" fill="#f4efe6"/>' + rect(x - 16, 425, 32, 30, "#f4efe6", ' rx="4"'))
    for x in (300, 700, 1100, 1450):  # hanging lamps
        b.append(line(x, 60, x, 150, "#222", 3) + poly([(x - 40, 190), (x + 40, 190), (x + 20, 150), (x - 20, 150)], "#d8a040")
                 + f'<circle cx="{x}" cy="230" r="170" fill="url(#lamp)"/>')
    for x in (260, 620):  # tables
        b.append(f'<ellipse cx="{x}" cy="700" rx="150" ry="34" fill="#a8754e" stroke="#3a2418" stroke-width="4"/>' + rect(x - 10, 730, 20, 140, "#2a1a12"))
        b.append(rect(x - 40, 660, 30, 36, "#fff", ' rx="5"') + f'<path d="M {x - 30} 650 q 6 -14 0 -26" stroke="#fff" stroke-width="3" fill="none" opacity="0.6"/>')
    return svg("Café", d, "".join(b))


def train_station(rng):
    vp = (800, 420)
    d = (grad("sky", [(0, "#3a4f8f"), (0.5, "#e88a6a"), (1, "#ffd1a0")]) + grad("plat", [(0, "#b8b2a8"), (1, "#8e877d")]))
    b = [rect(0, 0, W, H, "url(#sky)"), town(rng, 430, "#4a4a6a"),
         poly([(0, 430), (W, 430), (W, H), (0, H)], "#5a504a"),
         poly([(0, H), (900, H), (815, 430), (700, 430)], "url(#plat)"),
         poly([(880, H), (920, H), (817, 430), (813, 430)], "#e8c43a")]
    for rail in (1050, 1350):
        b.append(line(rail, H, 820 + (rail - 800) * 0.05, 430, "#c8c8d0", 6))
    for i in range(12):
        t = (i / 12) ** 1.8
        y = H - (H - 430) * t
        b.append(line(900 + (1500 - 900) * (1 - t) * 0.2 + 100 * (1 - t), y, 1400 * (1 - t) + 830 * t, y, "#6e5a48", 8 * (1 - t) + 1))
    b.append(poly([(0, 0), (W * 0.62, 0), (830, 300), (0, 160)], "#3a3a44"))  # canopy
    for i in range(6):
        t = i / 6
        x = 80 + (800 - 80) * (t ** 1.3)
        top = 160 + (300 - 160) * (t ** 1.3)
        bot = H + (430 - H) * (t ** 1.3)
        b.append(rect(x, top, 26 * (1 - t) + 4, bot - top, "#5a5a66"))
    b.append(rect(300, 250, 260, 70, "#f4f4f4", ' stroke="#2a2a3a" stroke-width="4"') +
             '<text x="430" y="298" font-size="34" text-anchor="middle" fill="#2a2a3a" font-family="sans-serif">Sakuragaoka</text>')
    b.append(rect(120, 560, 80, 160, "#d84040", ' rx="6"') + rect(132, 580, 56, 80, "#fff", ' opacity="0.8"'))
    return svg("Train Station", d, "".join(b))


def festival(rng):
    d = (grad("sky", [(0, "#0e1238"), (0.6, "#33285e"), (1, "#7a3a5e")]) + radial("lan", "#ffb04a", 0.8) +
         grad("ground", [(0, "#3a2a3a"), (1, "#1e141e")]))
    b = [rect(0, 0, W, H, "url(#sky)")]
    for _ in range(80):
        b.append(f'<circle cx="{rng.uniform(0, W):.0f}" cy="{rng.uniform(0, 350):.0f}" r="{rng.uniform(0.8, 2.2):.1f}" fill="#fff" opacity="0.8"/>')
    for cx, cy, col in ((380, 150, "#ff6aa0"), (1250, 110, "#7ad0ff")):  # fireworks
        for k in range(24):
            a = 2 * math.pi * k / 24
            b.append(line(cx + 20 * math.cos(a), cy + 20 * math.sin(a), cx + 100 * math.cos(a), cy + 100 * math.sin(a), col, 3, ' stroke-linecap="round" opacity="0.85"'))
    b.append(poly([(0, 560), (W, 560), (W, H), (0, H)], "url(#ground)"))
    for side in (-1, 1):  # stalls
        for k in range(4):
            s = 1 - k * 0.2
            x = 800 + side * (700 - k * 150)
            w, h = 260 * s, 200 * s
            y = 860 - k * 95 - h
            b.append(rect(x - w / 2, y, w, h, "#5a3020") + rect(x - w / 2 + 10, y + 40 * s, w - 20, h - 60 * s, "#ffcf7a", ' opacity="0.85"'))
            for j in range(8):
                b.append(poly([(x - w / 2 + j * w / 8, y - 10), (x - w / 2 + (j + 1) * w / 8, y - 10),
                               (x - w / 2 + (j + 1) * w / 8, y + 30 * s), (x - w / 2 + j * w / 8, y + 30 * s)],
                              "#e03a3a" if j % 2 == 0 else "#fff4e6"))
    for k in range(3):
        y = 80 + k * 70
        b.append(f'<path d="M 0 {y} Q 800 {y + 120} 1600 {y}" stroke="#2a1a1a" stroke-width="2" fill="none"/>')
        for j in range(17):
            u = j / 16
            x, yy = 1600 * u, y + 120 * 2 * u * (1 - u) + 12
            b.append(f'<circle cx="{x:.0f}" cy="{yy + 14:.0f}" r="46" fill="url(#lan)"/>'
                     f'<ellipse cx="{x:.0f}" cy="{yy + 14:.0f}" rx="13" ry="17" fill="#ff8a3a" stroke="#5a1a0a" stroke-width="1.5"/>')
    for _ in range(40):  # crowd silhouettes
        x, s = rng.uniform(0, W), rng.uniform(0.7, 1.2)
        b.append(f'<g fill="#140c18"><circle cx="{x:.0f}" cy="{820 - 130 * s:.0f}" r="{22 * s:.0f}"/>'
                 f'<rect x="{x - 28 * s:.0f}" y="{820 - 105 * s:.0f}" width="{56 * s:.0f}" height="200" rx="{20 * s:.0f}"/></g>')
    return svg("Summer Festival", d, "".join(b))


def beach(rng):
    d = (grad("sky", [(0, "#3f8fe0"), (0.7, "#a8dcf8"), (1, "#fdf0d6")]) + grad("sea", [(0, "#2b8ac0"), (1, "#6fd0e0")]) +
         grad("sand", [(0, "#f4dca8"), (1, "#e2bf82")]) + radial("sun", "#fffbe0", 0.95))
    b = [rect(0, 0, W, H, "url(#sky)"), '<circle cx="1200" cy="170" r="240" fill="url(#sun)"/><circle cx="1200" cy="170" r="50" fill="#fffbe8"/>',
         clouds(rng, 5, 240), '<path d="M 140 430 Q 260 360 380 430 Z" fill="#6f9ab0"/>',
         rect(0, 430, W, 200, "url(#sea)")]
    for i in range(7):
        y = 445 + i * 24
        b.append(f'<path d="M 0 {y} ' + " ".join(f"q 40 -8 80 0" for _ in range(21)) +
                 f'" stroke="#fff" stroke-width="{1 + i * 0.5:.1f}" fill="none" opacity="{0.3 + i * 0.07:.2f}"/>')
    b.append('<path d="M 0 620 Q 400 590 800 615 T 1600 605 L 1600 900 L 0 900 Z" fill="url(#sand)"/>')
    b.append('<path d="M 0 620 Q 400 590 800 615 T 1600 605" stroke="#fff" stroke-width="8" fill="none" opacity="0.8"/>')
    b.append(line(300, 860, 360, 520, "#7a5232", 8) +
             '<path d="M 160 560 Q 360 400 560 480 Z" fill="#ff5a5a"/><path d="M 260 520 Q 360 440 460 505 Z" fill="#fff" opacity="0.9"/>')
    b.append(rect(1100, 740, 220, 70, "#5ab0e0", ' rx="10" transform="rotate(-6 1210 775)"'))
    for _ in range(12):
        x, y = rng.uniform(0, W), rng.uniform(660, H)
        b.append(f'<path d="M {x:.0f} {y:.0f} l 8 -14 l 8 14 z" fill="#f6e6c8" opacity="0.8"/>')
    for x, y in ((900, 200), (940, 230)):
        b.append(f'<path d="M {x - 14} {y} q 7 -8 14 0 q 7 -8 14 0" stroke="#334" stroke-width="3" fill="none"/>')
    return svg("Beach", d, "".join(b))


SCENES = dict(classroom=classroom, rooftop=rooftop, school_gate=school_gate, library=library,
              shopping_street=shopping_street, park=park, cafe=cafe, train_station=train_station,
              festival=festival, beach=beach)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "backgrounds")
    os.makedirs(out, exist_ok=True)
    for i, (name, fn) in enumerate(SCENES.items()):
        with open(os.path.join(out, f"{name}.svg"), "w", encoding="utf-8") as f:
            f.write(fn(random.Random(1000 + i)))
    print(f"wrote {len(SCENES)} backdrops under {out}")


if __name__ == "__main__":
    main()
