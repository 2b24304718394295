#!/usr/bin/env python3
"""Procedural anime sprite generator for Sakuragaoka: 4 characters x 7 expressions -> sprites/<name>/<expr>.svg.

Stdlib only and deterministic; the SVGs it writes are committed, so nothing runs at play time.
Usage: python3 gen_sprites.py [OUT_DIR]   (default: the sprites/ folder next to this script)
Each sprite is a 600x1000 bust: back hair, uniform, neck, face, expression (eyes, brows, mouth,
blush/tears/marks), front hair, accessory. Characters differ in hair colour and cut, eye colour,
uniform and accessory (Hana: ponytail + headband; Ren: bob + glasses + armband; Mio: long hair +
beret + clip; Kaito: spiky hair + lollipop).
"""
import math
import os
import sys

INK = "#2d2233"
SKIN = "#fde3d3"
SKIN_SHADE = "#f2c0a8"
EXPRESSIONS = ["neutral", "smile", "laugh", "sad", "angry", "surprised", "embarrassed"]

CHARS = {
    "hana": dict(hair="#c4562a", hair_light="#e98a4f", hair_dark="#7e2f17", eye="#e0901a", eye_dark="#8a4608",
                 skin="#fbdcc6", skin_shade="#eeb797"),
    "ren": dict(hair="#262d4a", hair_light="#4b5782", hair_dark="#12162a", eye="#4a6fb5", eye_dark="#1d2f66",
                skin=SKIN, skin_shade=SKIN_SHADE),
    "mio": dict(hair="#d99cc6", hair_light="#f3c8e2", hair_dark="#9a5d8a", eye="#2f9a74", eye_dark="#11513b",
                skin="#fee8dc", skin_shade="#f3c6b4"),
    "kaito": dict(hair="#e6b843", hair_light="#f8dc85", hair_dark="#a67516", eye="#c8502a", eye_dark="#6e230c",
                  skin=SKIN, skin_shade=SKIN_SHADE),
}


def path(d, fill, stroke=INK, width=3.0, extra=""):
    s = f'<path d="{d}" fill="{fill}"'
    if stroke:
        s += f' stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round" stroke-linecap="round"'
    return s + f"{extra}/>"


def defs(c, name):
    return f"""<defs>
<linearGradient id="{name}-hair" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="{c['hair_light']}"/><stop offset="0.45" stop-color="{c['hair']}"/>
<stop offset="1" stop-color="{c['hair_dark']}"/></linearGradient>
<linearGradient id="{name}-iris" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="{c['eye_dark']}"/><stop offset="0.55" stop-color="{c['eye']}"/>
<stop offset="1" stop-color="#fff6d8"/></linearGradient>
<linearGradient id="{name}-skin" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="{c['skin']}"/><stop offset="1" stop-color="{c['skin_shade']}"/></linearGradient>
<linearGradient id="{name}-cloth-shade" x1="0" y1="0" x2="1" y2="0">
<stop offset="0" stop-color="#ffffff" stop-opacity="0.18"/><stop offset="0.5" stop-color="#000" stop-opacity="0"/>
<stop offset="1" stop-color="#000" stop-opacity="0.22"/></linearGradient>
<radialGradient id="{name}-blush"><stop offset="0" stop-color="#ff6f86" stop-opacity="0.75"/>
<stop offset="1" stop-color="#ff6f86" stop-opacity="0"/></radialGradient>
</defs>"""


# ---------- body and uniforms ----------

TORSO = ("M 300 468 C 248 468 196 484 166 510 C 128 542 116 604 110 690 L 98 1000 L 502 1000 "
         "L 490 690 C 484 604 472 542 434 510 C 404 484 352 468 300 468 Z")
ARM_LINES = "M 172 610 C 176 720 182 860 186 1000 M 428 610 C 424 720 418 860 414 1000"


def neck(c, name):
    return (path("M 272 410 L 270 492 Q 300 512 330 492 L 328 410 Z", f"url(#{name}-skin)") +
            path("M 272 432 Q 300 470 328 432 L 328 452 Q 300 486 272 452 Z", c["skin_shade"], None))


def body(c, name):
    shade = path(TORSO, f"url(#{name}-cloth-shade)", None)
    arms = path(ARM_LINES, "none", INK, 2.5, ' opacity="0.55"')
    if name == "hana":  # red track jacket with white stripes, zipper, white tee
        return "".join([
            path(TORSO, "#d8433b"),
            path("M 262 478 L 300 548 L 338 478 Z", "#ffffff"),
            path("M 166 510 C 132 545 120 610 114 690 L 102 1000 L 124 1000 L 136 690 C 142 612 152 552 184 520 Z",
                 "#fff", None), path("M 434 510 C 468 545 480 610 486 690 L 498 1000 L 476 1000 L 464 690 "
                                     "C 458 612 448 552 416 520 Z", "#fff", None),
            path("M 252 470 L 262 478 L 300 548 L 300 1000 M 348 470 L 338 478 L 300 548", "none", INK, 3),
            path("M 300 560 L 300 1000", "none", "#9b2620", 4, ' stroke-dasharray="6 6"'),
            path("M 248 462 L 262 478 L 288 530 L 240 500 Z M 352 462 L 338 478 L 312 530 L 360 500 Z", "#e8564d"),
            shade, arms])
    if name == "ren":  # navy blazer, white shirt, tie, council armband
        return "".join([
            path(TORSO, "#2b3559"),
            path("M 258 478 L 300 610 L 342 478 Z", "#f7f7fb"),
            path("M 292 500 L 308 500 L 314 590 L 300 614 L 286 590 Z", "#9e2438"),
            path("M 290 492 L 310 492 L 312 506 L 288 506 Z", "#7e1a2c"),
            path("M 258 478 L 232 560 L 282 660 L 300 610 Z", "#222a48"),
            path("M 342 478 L 368 560 L 318 660 L 300 610 Z", "#222a48"),
            path("M 113 650 L 174 636 L 177 680 L 110 694 Z", "#f2c335"),
            path("M 126 668 L 160 660", "none", "#8a6a10", 3),
            '<circle cx="300" cy="720" r="7" fill="#c9a94a" stroke="#2d2233" stroke-width="2"/>',
            '<circle cx="300" cy="800" r="7" fill="#c9a94a" stroke="#2d2233" stroke-width="2"/>',
            path("M 360 600 L 400 596", "none", "#c9a94a", 4), shade, arms])
    if name == "mio":  # sailor uniform: white top, navy collar, pink bow
        return "".join([
            path(TORSO, "#f5f2ec"),
            path("M 244 474 L 300 596 L 356 474 L 430 508 C 448 540 440 566 420 580 L 372 590 L 300 650 "
                 "L 228 590 L 180 580 C 160 566 152 540 170 508 Z", "#283a68"),
            path("M 254 486 L 300 586 L 346 486", "none", "#f5f2ec", 4),
            path("M 182 572 L 228 580 L 300 636 L 372 580 L 418 572", "none", "#f5f2ec", 3),
            path("M 300 600 L 262 582 L 256 626 Z M 300 600 L 338 582 L 344 626 Z", "#f07a9b"),
            path("M 300 602 L 284 672 L 298 664 L 300 604 L 302 664 L 316 672 Z", "#e0608a"),
            '<circle cx="300" cy="602" r="9" fill="#f07a9b" stroke="#2d2233" stroke-width="2.5"/>',
            shade, arms])
    # kaito: open grey blazer over an orange hoodie, lollipop in the breast pocket
    return "".join([
        path(TORSO, "#5b6270"),
        path("M 246 478 L 354 478 L 372 1000 L 228 1000 Z", "#f08a2c"),
        path("M 246 478 Q 300 540 354 478 Q 300 510 246 478 Z", "#d8701a"),
        path("M 282 520 L 278 600 M 318 520 L 322 600", "none", "#fff", 3),
        '<circle cx="278" cy="604" r="4" fill="#fff"/><circle cx="322" cy="604" r="4" fill="#fff"/>',
        path("M 246 478 L 214 560 L 240 700 L 262 560 Z", "#4a505c"),
        path("M 354 478 L 386 560 L 360 700 L 338 560 Z", "#4a505c"),
        path("M 388 590 L 398 520", "none", "#fff8ee", 5),
        '<circle cx="400" cy="500" r="24" fill="#ff5d8f" stroke="#2d2233" stroke-width="3"/>',
        path("M 400 500 m -14 0 a 14 14 0 1 1 14 14 a 10 10 0 1 1 -10 -10 a 6 6 0 1 1 6 6", "none", "#fff", 4),
        path("M 360 580 L 420 572 L 424 640 L 366 648 Z", "#4a505c"),
        path("M 146 800 l 18 -8 l 4 18 z", "#7ad0f0", INK, 2), shade, arms])


# ---------- hair ----------

def strands(points, drift=8):
    """Bangs edge through alternating tip/valley points, drawn as gently curved strands."""
    d = ""
    for (x, y) in points:
        d += f" Q {x + drift} {y - 10} {x} {y}"
    return d


def hair_back(c, name):
    g = f"url(#{name}-hair)"
    if name == "hana":
        pony = path("M 352 176 C 452 130 520 230 492 360 C 478 430 448 486 420 540 C 436 470 446 400 426 330 "
                    "C 414 286 394 244 360 222 Z", g)
        tie = '<ellipse cx="360" cy="196" rx="16" ry="24" fill="#e8343a" stroke="#2d2233" stroke-width="3" ' \
              'transform="rotate(-35 360 196)"/>'
        back = path("M 196 300 C 182 170 418 170 404 300 L 398 392 Q 300 410 202 392 Z", g)
        return pony + back + tie
    if name == "ren":
        return path("M 188 300 C 172 150 428 150 412 300 L 420 446 Q 300 468 180 446 Z", g)
    if name == "mio":
        return path("M 186 290 C 166 140 434 140 414 290 C 426 430 436 580 450 760 Q 426 790 398 770 "
                    "L 390 620 L 210 620 L 202 770 Q 174 790 150 760 C 164 580 174 430 186 290 Z", g)
    # spikes lean upwards and outwards, alternating long and short, curved like brushed tufts
    pts = []
    for i in range(13):
        a = math.radians(196 + i * (148 / 12))
        lean = (a - math.radians(270)) * 0.7 + math.radians(270)
        r = (190 if i % 2 == 0 else 132) if i not in (0, 12) else 150
        pts.append((300 + r * math.cos(lean if i % 2 == 0 else a), 262 + r * math.sin(lean if i % 2 == 0 else a)))
    d = "M 190 380 L 176 300 " + " ".join(f"L {x:.0f} {y:.0f}" for x, y in pts)
    d += " L 424 300 L 410 380 L 392 410 L 208 410 Z"
    return path(d, g)


def hair_front(c, name):
    g = f"url(#{name}-hair)"
    shine = c["hair_light"]
    if name == "hana":
        d = ("M 192 330 C 176 190 240 126 302 126 C 368 126 426 184 408 334 L 396 300"
             + strands([(384, 292), (372, 256), (350, 290), (334, 248), (306, 286), (290, 246), (262, 282),
                        (250, 250), (226, 292), (214, 266)], 9) + " Z")
        band = path("M 196 252 C 214 150 386 150 404 252", "none", "#e8343a", 15)
        band2 = path("M 196 252 C 214 150 386 150 404 252", "none", "#ff7a7a", 4, ' opacity="0.8"')
        ring = path("M 230 200 Q 300 172 370 200", "none", shine, 6, ' opacity="0.7"')
        return path(d, g) + ring + band + band2
    if name == "ren":
        d = ("M 186 300 C 174 168 240 126 300 126 C 360 126 426 168 414 300 L 420 446 L 388 446 Q 394 360 386 282 "
             "L 372 285 L 350 280 L 330 287 L 300 280 L 272 287 L 250 280 L 228 285 L 214 282 "
             "Q 206 360 212 446 L 180 446 Z")
        ring = path("M 226 196 Q 300 166 374 196", "none", shine, 7, ' opacity="0.55"')
        return path(d, g) + ring
    if name == "mio":
        d = ("M 190 300 C 174 170 240 128 302 128 C 366 128 428 170 410 300 "
             "C 420 420 436 520 428 622 Q 418 640 404 626 Q 408 520 392 420 Q 388 340 384 296"
             + strands([(370, 276), (352, 262), (330, 292), (312, 246), (286, 290), (268, 250), (246, 288),
                        (230, 262)], 6)
             + " Q 212 340 208 420 Q 192 520 196 626 Q 182 640 172 622 C 164 520 180 420 190 300 Z")
        ring = path("M 232 198 Q 300 170 368 198", "none", shine, 7, ' opacity="0.7"')
        beret = ('<g transform="rotate(-14 270 160)">'
                 + path("M 160 176 C 160 120 230 104 290 104 C 360 104 390 134 384 170 Q 272 196 160 176 Z",
                        "#b8324a")
                 + path("M 164 176 Q 272 198 382 170", "none", "#7e1c30", 6)
                 + path("M 272 104 L 276 88", "none", INK, 5) + "</g>")
        clip = ('<g transform="translate(394 262) rotate(20)">'
                + "".join(f'<ellipse cx="0" cy="-11" rx="7" ry="11" fill="#ffd65c" stroke="#2d2233" '
                          f'stroke-width="2" transform="rotate({a})"/>' for a in range(0, 360, 72))
                + '<circle r="5" fill="#ff8fb0" stroke="#2d2233" stroke-width="2"/></g>')
        return path(d, g) + ring + beret + clip
    d = ("M 190 350 C 170 200 230 120 300 120 C 372 120 432 200 410 350 L 398 300"
         + strands([(392, 300), (378, 232), (360, 300), (336, 226), (318, 296), (300, 222), (276, 298),
                    (262, 226), (236, 300), (224, 236), (206, 306)], 12) + " Z")
    ring = path("M 228 190 Q 300 160 372 190", "none", shine, 7, ' opacity="0.6"')
    return path(d, g) + ring


# ---------- face and expression ----------

FACE = ("M 210 250 C 208 330 226 396 262 430 Q 284 452 300 455 Q 316 452 338 430 "
        "C 374 396 392 330 390 250 C 390 160 210 160 210 250 Z")

EYE_SHAPES = {  # (top inner y, top middle y, top outer y, bottom depth, iris scale, look)
    "neutral": (-4, -36, -18, 26, 1.0, 0), "smile": (-4, -34, -18, 16, 1.0, 0),
    "sad": (-12, -30, -4, 24, 1.0, 0), "angry": (6, -20, -18, 22, 1.0, 0),
    "surprised": (-10, -46, -26, 30, 0.72, 0), "embarrassed": (-2, -30, -14, 22, 0.95, 5),
}
BROWS = {  # (inner y, middle y, outer y) relative to the eye centre
    "neutral": (-48, -58, -52), "smile": (-52, -62, -54), "laugh": (-54, -64, -56), "sad": (-62, -56, -46),
    "angry": (-36, -46, -58), "surprised": (-66, -76, -66), "embarrassed": (-58, -56, -48),
}


def eye(name, cx, cy, mirror, expr):
    """One eye in local coordinates with the outer corner towards +x (mirror=-1 flips it for the left eye)."""
    t = f'translate({cx} {cy}) scale({mirror} 1)'
    if expr == "laugh":
        return f'<g transform="{t}">' + path("M -22 6 Q 3 -24 28 4", "none", INK, 6) + "</g>"
    ti, tm, to, bd, sc, look = EYE_SHAPES[expr]
    look *= mirror  # both eyes look the same way on screen
    clip_id = f"{name}-eye-{'l' if mirror < 0 else 'r'}-{expr}"
    sclera = f"M -22 {ti} C -12 {tm} 14 {tm} 28 {to} C 30 4 24 {bd - 4} 8 {bd} C -6 {bd + 2} -20 {bd - 10} -22 {ti} Z"
    ix = 3 + look
    out = [f'<g transform="{t}"><clipPath id="{clip_id}"><path d="{sclera}"/></clipPath>',
           path(sclera, "#ffffff", None),
           f'<g clip-path="url(#{clip_id})">'
           f'<ellipse cx="{ix}" cy="3" rx="{17 * sc:.1f}" ry="{24 * sc:.1f}" fill="url(#{name}-iris)" '
           f'stroke="{INK}" stroke-width="1.5"/>'
           f'<ellipse cx="{ix}" cy="0" rx="{7 * sc:.1f}" ry="{11 * sc:.1f}" fill="#1d1424" opacity="0.85"/>'
           f'<path d="M -30 {ti - 2} C -12 {tm + 10} 14 {tm + 10} 34 {to + 2} L 34 {to - 30} L -30 {ti - 30} Z" '
           f'fill="#000" opacity="0.12"/></g>',
           path(f"M -25 {ti + 1} C -14 {tm - 2} 14 {tm - 2} 31 {to - 1}", "none", INK, 6),
           path(f"M 28 {to} L 38 {to + 7}", "none", INK, 4),
           path(f"M -14 {bd - 2} Q 4 {bd + 5} 22 {bd - 7}", "none", INK, 2),
           "</g>"]
    hx = cx + 4 * mirror + look * mirror * 0
    out.append(f'<circle cx="{hx + 3:.0f}" cy="{cy - 8}" r="{6 * sc:.1f}" fill="#fff"/>'
               f'<circle cx="{hx - 6:.0f}" cy="{cy + 12}" r="{3 * sc:.1f}" fill="#fff" opacity="0.9"/>')
    return "".join(out)


def brow(cx, cy, mirror, expr, color):
    yi, ym, yo = BROWS[expr]
    t = f'translate({cx} {cy}) scale({mirror} 1)'
    return f'<g transform="{t}">' + path(f"M -18 {yi} Q 6 {ym} 32 {yo}", "none", color, 5) + "</g>"


def mouth(expr):
    if expr == "neutral":
        return path("M 290 409 Q 300 412 310 409", "none", INK, 3)
    if expr == "smile":
        return path("M 284 402 Q 300 420 316 402 Q 300 409 284 402 Z", "#b8485a", INK, 2.5)
    if expr == "laugh":
        return (path("M 278 398 Q 300 402 322 398 Q 320 432 300 434 Q 280 432 278 398 Z", "#8a2a3a", INK, 3)
                + path("M 284 424 Q 300 414 316 424 Q 300 434 284 424 Z", "#e8727a", None)
                + path("M 282 400 Q 300 404 318 400 L 316 406 Q 300 410 284 406 Z", "#fff", None))
    if expr == "sad":
        return path("M 288 414 Q 300 403 312 414", "none", INK, 3)
    if expr == "angry":
        return (path("M 284 404 Q 300 398 316 404 L 312 417 Q 300 421 288 417 Z", "#fff", INK, 3)
                + path("M 286 410 L 314 410", "none", INK, 1.5))
    if expr == "surprised":
        return '<ellipse cx="300" cy="412" rx="8" ry="11" fill="#7a2530" stroke="#2d2233" stroke-width="3"/>'
    return path("M 284 410 q 4 -6 8 0 t 8 0 t 8 0 t 8 0", "none", INK, 3)


def extras(expr):
    out = []
    if expr in ("smile", "laugh"):
        out.append('<ellipse cx="246" cy="376" rx="24" ry="10" fill="url(#{n}-blush)" opacity="0.6"/>'
                   '<ellipse cx="354" cy="376" rx="24" ry="10" fill="url(#{n}-blush)" opacity="0.6"/>')
    if expr == "embarrassed":
        out.append('<ellipse cx="246" cy="376" rx="34" ry="14" fill="url(#{n}-blush)"/>'
                   '<ellipse cx="354" cy="376" rx="34" ry="14" fill="url(#{n}-blush)"/>')
        for x in (232, 244, 256, 340, 352, 364):
            out.append(path(f"M {x + 4} 368 L {x - 2} 382", "none", "#e0506a", 2.5))
    if expr == "sad":
        out.append(path("M 222 352 C 216 366 212 378 218 386 C 226 392 234 382 230 370 Z", "#9fd6f7", "#4a8ab8", 2))
    if expr == "angry":
        out.append('<g transform="translate(382 196)" stroke="#e23d4a" stroke-width="5" fill="none" '
                   'stroke-linecap="round">'
                   '<path d="M -16 -6 Q -6 -6 -6 -16"/><path d="M 6 -16 Q 6 -6 16 -6"/>'
                   '<path d="M 16 6 Q 6 6 6 16"/><path d="M -6 16 Q -6 6 -16 6"/></g>')
    if expr == "surprised":
        out.append(path("M 414 228 C 406 246 402 258 410 266 C 420 272 428 260 422 248 Z", "#bfe6fb", "#4a8ab8", 2))
        out.append(path("M 186 170 L 172 150 M 198 160 L 192 138 M 414 160 L 428 142", "none", INK, 3))
    if expr == "laugh":
        out.append(path("M 176 250 L 160 244 M 178 270 L 160 272 M 424 250 L 440 244 M 422 270 L 440 272",
                        "none", INK, 3))
    return "".join(out)


def glasses():
    lens = 'fill="#cfe6ff" fill-opacity="0.22" stroke="#1b1f33" stroke-width="4"'
    return (f'<rect x="224" y="300" width="68" height="52" rx="14" {lens}/>'
            f'<rect x="308" y="300" width="68" height="52" rx="14" {lens}/>'
            + path("M 292 318 Q 300 310 308 318", "none", "#1b1f33", 4)
            + path("M 224 316 L 208 310 M 376 316 L 392 310", "none", "#1b1f33", 4)
            + path("M 236 308 L 250 304 M 320 308 L 334 304", "none", "#fff", 3, ' opacity="0.8"'))


def sprite(name, expr):
    c = CHARS[name]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 1000" width="600" height="1000">',
             f"<title>{name.capitalize()} ({expr})</title>", defs(c, name),
             hair_back(c, name),
             # narrower shoulders give the big-head anime proportion
             '<g transform="translate(300 0) scale(0.84 1) translate(-300 0)">', body(c, name), "</g>",
             neck(c, name),
             f'<ellipse cx="208" cy="330" rx="14" ry="24" fill="{c["skin"]}" stroke="{INK}" stroke-width="3"/>',
             f'<ellipse cx="392" cy="330" rx="14" ry="24" fill="{c["skin"]}" stroke="{INK}" stroke-width="3"/>',
             path(FACE, f"url(#{name}-skin)")]
    if expr != "angry":  # the anger mark goes over the hair, below
        parts.append(extras(expr).replace("{n}", name))
    e = "neutral" if expr == "laugh" else expr
    parts.append(eye(name, 258, 336, -1, expr if expr == "laugh" else e))
    parts.append(eye(name, 342, 336, 1, expr if expr == "laugh" else e))
    parts.append(path("M 300 370 L 296 382 L 302 383", "none", c["skin_shade"], 2.5))
    parts.append(mouth(expr))
    parts.append(hair_front(c, name))
    parts.append(brow(258, 336, -1, expr, c["hair_dark"]))
    parts.append(brow(342, 336, 1, expr, c["hair_dark"]))
    if name == "ren":
        parts.append(glasses())
    if name == "mio":  # a smudge of paint on the cheek
        parts.append('<ellipse cx="362" cy="398" rx="7" ry="4" fill="#7fb6e0" opacity="0.8"/>')
    if expr == "angry":
        parts.append(extras("angry").replace("{n}", name))
    parts.append("</svg>\n")
    return "\n".join(p for p in parts if p)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "sprites")
    for name in CHARS:
        os.makedirs(os.path.join(out, name), exist_ok=True)
        for expr in EXPRESSIONS:
            with open(os.path.join(out, name, f"{expr}.svg"), "w", encoding="utf-8") as f:
                f.write(sprite(name, expr))
    print(f"wrote {len(CHARS) * len(EXPRESSIONS)} sprites under {out}")


if __name__ == "__main__":
    main()
