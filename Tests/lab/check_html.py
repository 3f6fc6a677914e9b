#!/usr/bin/env python3
"""Checks of the lab's HTML report as headless Chromium rendered it (stdlib only).

    check_html.py dom REPORT.json DOM.html
        DOM.html is `chromium --dump-dom` of the report: it must hold a
        section (data-scenario="NAME") for every scenario of REPORT.json, with
        its ok/MISS as the report says, and at least one timeline plot
        (<svg class="timeline">) in the section of every scenario whose
        timeline has series; plus the lab settings and, when distribution ran,
        its bars.
    check_html.py png SHOT.png WIDTH HEIGHT
        SHOT.png is `chromium --screenshot` of it: a PNG of WIDTH x HEIGHT that
        is not trivial (more than 30 KB; in its top rows at least 16 colours
        and at least 3% of the pixels not white).

Prints one PASS or FAIL line per check, with the numbers it looked at.
"""
import html.parser
import json
import struct
import sys
import zlib

REPORT_KEYS = ("lab", "ok", "timelines")


def say(ok, text):
    """One PASS or FAIL line."""
    print(("PASS " if ok else "FAIL ") + text)


# ---- the DOM ---------------------------------------------------------------

class Sections(html.parser.HTMLParser):
    """What the DOM holds: the scenario sections {name: {"ok": "true"/"false",
    "plots": timeline svgs}}, the element ids, and the bar plots per section id."""

    def __init__(self):
        super().__init__()
        self.sections = {}
        self.stack = []                  # (section id, scenario name or None), innermost last
        self.ids = set()
        self.bars = {}

    def handle_starttag(self, tag, attrs):
        """Sections open, plots and bars are counted in the innermost one."""
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "section":
            name = a.get("data-scenario")
            if name is not None:
                self.sections[name] = {"ok": a.get("data-ok"), "plots": 0}
            self.stack.append((a.get("id"), name))
        elif tag == "svg" and self.stack:
            classes = (a.get("class") or "").split()
            section_id, name = self.stack[-1]
            if "timeline" in classes and name is not None:
                self.sections[name]["plots"] += 1
            if "bars" in classes:
                self.bars[section_id] = self.bars.get(section_id, 0) + 1

    def handle_endtag(self, tag):
        """A section closes."""
        if tag == "section" and self.stack:
            self.stack.pop()


def has_series(timeline):
    """The timeline has a series with two points (report_html.py plots it then)."""
    return any(len(s.get("points") or []) >= 2 for p in (timeline or {}).get("panels") or []
               for s in p.get("series") or [])


def check_dom(report_path, dom_path):
    """The checks of the rendered DOM against the JSON report."""
    report = json.load(open(report_path))
    names = [k for k in report if k not in REPORT_KEYS]
    timelines = report.get("timelines") or {}
    parser = Sections()
    parser.feed(open(dom_path, errors="replace").read())
    found = parser.sections
    missing = [n for n in names if n not in found]
    say(not missing and names, "html: the rendered page has a section for each of the %d scenarios of the JSON report%s"
        % (len(names), " (missing: %s)" % ", ".join(missing) if missing else ""))
    wrong = [n for n in names if n in found and found[n]["ok"] != ("true" if report[n].get("ok") else "false")]
    say(found and not wrong, "html: each section says ok or MISS as the report does%s" % (" (differs: %s)" % ", ".join(wrong)
                                                                              if wrong else ""))
    with_series = [n for n in names if has_series(timelines.get(n))]
    no_plot = [n for n in with_series if found.get(n, {}).get("plots", 0) < 1]
    say(with_series and not no_plot, "html: a timeline plot (svg) for each of the %d scenarios with series (%s)%s"
        % (len(with_series), ", ".join("%s %d" % (n, found.get(n, {}).get("plots", 0)) for n in with_series),
           " (none for: %s)" % ", ".join(no_plot) if no_plot else ""))
    bars = parser.bars.get("distribution-bars", 0)
    say("settings" in parser.ids and (bars >= 2 or "distribution" not in names),
        "html: the lab settings, and the distribution's bars per backend and per LB node (%d bar plots)" % bars)


# ---- the screenshot --------------------------------------------------------

def png_pixels(data, max_rows):
    """(width, height, the first MAX_ROWS rows of pixels, bytes per pixel) of
    an 8-bit, non-interlaced RGB or RGBA PNG (rows are unfiltered from the
    top, so the first ones need no others); raises ValueError for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], None
    for _ in range(100000):
        if pos + 8 > len(data):
            break
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("PNG depth %d colour type %d interlace %d: not decoded here" % (depth, colour, interlace))
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    return width, height, unfilter(raw, width, min(height, max_rows), bpp), bpp


def unfilter(raw, width, height, bpp):
    """The first HEIGHT PNG scanlines without their filters (None, Sub, Up,
    Average, Paeth)."""
    stride = width * bpp
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                ul = prev[i - bpp] if i >= bpp else 0
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return rows


PNG_ROWS_LOOKED_AT = 1200   # rows decoded for the colour counts (pure Python: ~1 s per 1000 rows)


def check_png(path, want_w, want_h):
    """The checks of the screenshot."""
    data = open(path, "rb").read()
    try:
        width, height, rows, bpp = png_pixels(data, PNG_ROWS_LOOKED_AT)
    except (ValueError, zlib.error, struct.error) as e:
        say(False, "html: the screenshot is a PNG we can read (%s, %d bytes)" % (e, len(data)))
        return
    colours, not_white, total = set(), 0, 0
    for row in rows[::4]:                       # every 4th row and pixel: enough to tell
        for i in range(0, len(row), 4 * bpp):
            px = row[i:i + 3]
            colours.add(px)
            total += 1
            not_white += px != b"\xff\xff\xff"
    share = 100.0 * not_white / total if total else 0
    say(width == want_w and height == want_h and len(data) > 30000 and len(colours) >= 16 and share >= 3,
        "html: the screenshot is %dx%d (want %dx%d), %d KB; its top %d rows: %d colours, %.1f%% not white"
        % (width, height, want_w, want_h, len(data) // 1000, len(rows), len(colours), share))


def main(argv):
    """dom or png, as the module docstring says."""
    if len(argv) == 4 and argv[1] == "dom":
        check_dom(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "png":
        check_png(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit("usage: check_html.py dom REPORT.json DOM.html | png SHOT.png WIDTH HEIGHT")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
