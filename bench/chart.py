#!/usr/bin/env python3
"""Draws bench/run.sh's medians as one SVG chart: for every scenario, requests per second and
server CPU time per request, each server beside maitred.

    python3 bench/chart.py bench/results/run-STAMP.medians.tsv -o chart.svg

Input: the `run-STAMP.medians.tsv` that bench/run.sh writes (`# key: value` header lines for
the date, machine and command, then a tab-separated table with a header row). Standard library
only; bench/run.sh calls it at the end of every run.
"""

import argparse
import html
import sys

# The peer each scenario's ratios are taken against (the bar), by scenario prefix.
BASELINE = {"static": "nginx-1"}
DEFAULT_BASELINE = "hyper"
COLOURS = {"maitred": "#c0392b", "maitred-spool": "#e67e22"}
PEER_COLOURS = ["#2c3e50", "#7f8c8d", "#16a085", "#8e44ad"]

ROW_H = 18  # one bar
PANEL_W = 330  # the longest bar
LABEL_W = 110  # server names
VALUE_W = 150  # the value and ratio after a bar
LEFT = 150  # scenario names
TOP = 96  # title and header lines


def read(path):
    meta, rows, header = {}, [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("#"):
                key, _, value = line[1:].strip().partition(": ")
                meta[key] = value
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                continue
            rows.append(dict(zip(header, cells)))
    if header is None:
        raise ValueError(f"{path}: no table")
    missing = {"scenario", "server", "rps", "cpu_us_per_req"} - set(header)
    if missing:
        raise ValueError(f"{path}: columns missing: {', '.join(sorted(missing))}")
    return meta, rows


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN is no value


def short(value):
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def baseline_of(scenario):
    return BASELINE.get(scenario.split("-")[0], DEFAULT_BASELINE)


def draw(meta, rows):
    scenarios = []
    for row in rows:
        if row["scenario"] not in scenarios:
            scenarios.append(row["scenario"])
    servers = []
    for row in rows:
        if row["server"] not in servers and not row["server"].startswith("maitred"):
            servers.append(row["server"])
    colour = dict(COLOURS)
    for i, name in enumerate(servers):
        colour[name] = PEER_COLOURS[i % len(PEER_COLOURS)]

    width = LEFT + 2 * (LABEL_W + PANEL_W + VALUE_W) + 20
    out = []
    y = TOP
    blocks = []
    for scenario in scenarios:
        mine = [r for r in rows if r["scenario"] == scenario]
        # maitred first, then the peers in the order the run used.
        mine.sort(key=lambda r: (not r["server"].startswith("maitred"), r["server"] != "maitred"))
        blocks.append((scenario, mine, y))
        y += max(len(mine), 1) * ROW_H + 26
    height = y + 30

    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">')
    out.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    title = "maitred beside its peers: requests per second (more is better) and server CPU per request (less is better)"
    out.append(f'<text x="12" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>')
    lines = [
        f"{meta.get('date', 'date unknown')} · {meta.get('machine', 'machine unknown')}",
        f"{meta.get('pinning', '')} · git {meta.get('git', '?')} · medians over rounds; "
        f"ratios against hyper (hello, close, echo, sleep) or nginx with one worker (static)",
        f"made by: {meta.get('command', 'bench/run.sh')}  →  python3 bench/chart.py",
    ]
    for i, line in enumerate(lines):
        out.append(f'<text x="12" y="{42 + 16 * i}" fill="#444">{html.escape(line)}</text>')
    for p, name in enumerate(["requests per second", "server CPU time per request (µs)"]):
        x = LEFT + p * (LABEL_W + PANEL_W + VALUE_W) + LABEL_W
        out.append(f'<text x="{x}" y="{TOP - 6}" font-weight="bold">{name}</text>')

    for scenario, mine, top in blocks:
        out.append(f'<text x="12" y="{top + 13}" font-weight="bold">{html.escape(scenario)}</text>')
        desc = mine[0].get("description", "") if mine else ""
        conns = next((part.strip() for part in desc.split(";") if "connections" in part), "")
        if conns:
            out.append(f'<text x="12" y="{top + 28}" fill="#666" font-size="10">{html.escape(conns)}</text>')
        base = next((r for r in mine if r["server"] == baseline_of(scenario)), None)
        for p, (column, better_high) in enumerate([("rps", True), ("cpu_us_per_req", False)]):
            x0 = LEFT + p * (LABEL_W + PANEL_W + VALUE_W)
            values = [number(r.get(column)) for r in mine]
            top_value = max([v for v in values if v is not None] or [1.0]) or 1.0
            base_value = number(base.get(column)) if base else None
            for i, (row, value) in enumerate(zip(mine, values)):
                yy = top + i * ROW_H
                name = row["server"]
                out.append(f'<text x="{x0 + LABEL_W - 6}" y="{yy + 13}" text-anchor="end">{html.escape(name)}</text>')
                if value is None:
                    out.append(f'<text x="{x0 + LABEL_W}" y="{yy + 13}" fill="#999">n/a</text>')
                    continue
                w = max(1.0, PANEL_W * value / top_value)
                out.append(f'<rect x="{x0 + LABEL_W}" y="{yy + 2}" width="{w:.1f}" height="{ROW_H - 5}" '
                           f'fill="{colour.get(name, "#555")}"/>')
                label = short(value)
                if column == "rps" and scenario == "static-100m":
                    mib = number(row.get("mib_per_s"))
                    if mib is not None:
                        label += f" ({mib:.0f} MiB/s)"
                if base is not None and row is not base and base_value:
                    ratio = value / base_value
                    label += f"  {ratio:.2f}×"
                    if name.startswith("maitred"):
                        good = ratio >= 1.0 if better_high else ratio <= 1.0
                        label += " ✓" if good else ""
                out.append(f'<text x="{x0 + LABEL_W + w + 4:.1f}" y="{yy + 13}" fill="#222">{html.escape(label)}</text>')
    out.append(f'<text x="12" y="{height - 10}" fill="#666" font-size="10">'
               f'{html.escape("× = ratio to the peer named above; ✓ = maitred at least level with it. Numbers from one run on a shared machine: compare rows within a scenario only.")}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("medians", help="run-STAMP.medians.tsv written by bench/run.sh")
    parser.add_argument("-o", "--output", required=True, help="the SVG file to write")
    args = parser.parse_args()
    try:
        meta, rows = read(args.medians)
    except (OSError, ValueError) as e:
        print(f"chart.py: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"chart.py: {args.medians}: no rows (every run failed?)", file=sys.stderr)
        return 1
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(draw(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
