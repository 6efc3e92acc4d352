"""Reports of an evaluation: `report.md` (the table), and `report.html` (the table, one plot per metric
against the number of steps, and the clips side by side, playing as gifs), both from metrics.json's
numbers so they always agree with it. No plotting library: the plots are small inline SVGs."""

from __future__ import annotations

import base64
import html
import io
import itertools
from pathlib import Path

# (key, title, higher is better, decimals) of each protocol's metrics.
METRICS = (
    ("prompt_accuracy", "prompt accuracy", True, 3),
    ("style_fidelity", "style fidelity", True, 3),
    ("toy_fvd", "toy-FVD", False, 1),
)
PAPER_METRICS = (("fvd", "FVD", False, 1), ("fid", "FID", False, 2), ("clip_score", "CLIP score", True, 2))
COLOURS = {
    "student": "#d62728",
    "teacher_naive": "#7f7f7f",
    "teacher_full": "#1f77b4",
    "animatelcm": "#2ca02c",
}


def metrics_of(result: dict) -> tuple:
    return METRICS if result["protocol"]["name"] == "toy" else PAPER_METRICS


def value_of(cell: dict, metric: str) -> float | None:
    """A metric of one (candidate, base model) cell: toy metrics are numbers, paper metrics are records."""
    value = cell.get(metric)
    return value["value"] if isinstance(value, dict) else value


def untrained(result: dict) -> bool:
    """True when any number came from a randomly initialised network (tests): never a metric."""
    return any(
        isinstance(v, dict) and v.get("untrained")
        for row in result["models"].values()
        for cell in row.values()
        if isinstance(cell, dict)
        for v in cell.values()
    )


# One line per stage when every stage's student is sampled at the same step counts (`students_at`).
STAGE_COLOURS = ("#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


def _families(result: dict) -> dict[str, list[tuple[int, str]]]:
    """The plot's lines: {name: [(steps, candidate key)]}, one per family, or per stage's student."""
    families: dict[str, list[tuple[int, str]]] = {}
    for key, candidate in result["candidates"].items():
        stage = candidate.get("stage")
        name = f"{candidate['family']}: {stage}" if stage else candidate["family"]
        families.setdefault(name, []).append((candidate["steps"], key))
    return {f: sorted(v) for f, v in families.items()}


def _colours(names) -> dict[str, str]:
    stages = itertools.cycle(STAGE_COLOURS)
    return {name: COLOURS[name] if name in COLOURS else next(stages) for name in names}


def averages(result: dict, key: str, metric: str) -> dict[str, float]:
    """Mean of a metric over seen and over held-out base models."""
    groups: dict[str, list[float]] = {"seen": [], "held out": []}
    for row in result["models"].values():
        value = value_of(row[key], metric) if key in row else None
        if value is not None:
            groups["seen" if row["seen"] else "held out"].append(value)
    return {g: sum(v) / len(v) for g, v in groups.items() if v}


def _intro(result: dict) -> str:
    protocol = result["protocol"]
    if protocol["name"] == "toy":
        return (
            f"{protocol['clips_per_style']} clips per base model, seed {protocol['seed']}; metrics from the toy "
            "judge (docs/TOY_WORLD.md). Mean over seen / held-out base models."
        )
    reference = protocol.get("reference")
    against = "real clips" if reference == "videos" else f"the clips of {reference}"
    text = (
        f"{protocol.get('num_prompts') or 'all'} prompts x {protocol.get('videos_per_prompt')}, "
        f"{protocol.get('frames')} frames at {protocol.get('size')}px, seed {protocol.get('seed')}; FVD and FID "
        f"against {against}. Mean over seen / held-out base models."
    )
    if untrained(result):
        text += " UNTRAINED metric networks (a test run): these numbers are not metrics."
    return text


def markdown(result: dict) -> str:
    metrics = metrics_of(result)
    titles = " | ".join(f"{title} (seen / held out)" for _, title, _, _ in metrics)
    lines = [
        f"# Evaluation: {result['protocol']['name']}",
        "",
        _intro(result),
        "",
        f"| model | steps | {titles} |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for key, candidate in result["candidates"].items():
        cells = []
        for metric, _, _, decimals in metrics:
            means = averages(result, key, metric)
            cells.append(
                " / ".join(f"{means[g]:.{decimals}f}" for g in ("seen", "held out") if g in means) or "-"
            )
        lines.append(f"| {candidate['label']} | {candidate['steps']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per base model:",
        "",
        "| base model | seen | model | " + " | ".join(title for _, title, _, _ in metrics) + " |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for name, row in result["models"].items():
        for key, candidate in result["candidates"].items():
            if key not in row:
                continue
            values = [value_of(row[key], metric) for metric, _, _, _ in metrics]
            cells = [
                "-" if v is None else f"{v:.{d}f}" for v, (_, _, _, d) in zip(values, metrics, strict=True)
            ]
            lines.append(
                f"| {name} | {'yes' if row['seen'] else 'held out'} | {candidate['label']} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"


def _svg_plot(result: dict, metric: str, title: str) -> str:
    width, height, pad = 360, 220, 40
    families = _families(result)
    points = {f: [(s, averages(result, k, metric).get("seen")) for s, k in v] for f, v in families.items()}
    values = [y for pts in points.values() for _, y in pts if y is not None]
    steps = sorted({s for pts in points.values() for s, _ in pts})
    if not values or not steps:
        return ""
    low, high = min(0.0, min(values)), max(values) * 1.05 or 1.0
    xs = {s: pad + i * (width - 2 * pad) / max(1, len(steps) - 1) for i, s in enumerate(steps)}

    def y_of(v: float) -> float:
        return height - pad - (v - low) / (high - low) * (height - 2 * pad)

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">']
    parts.append(
        f'<text x="{width / 2}" y="16" text-anchor="middle">{html.escape(title)} (seen base models)</text>'
    )
    parts.append(
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
    )
    for s, x in xs.items():
        parts.append(f'<text x="{x}" y="{height - pad + 14}" text-anchor="middle">{s}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">steps</text>')
    for v in (low, (low + high) / 2, high):
        parts.append(f'<text x="{pad - 4}" y="{y_of(v) + 4}" text-anchor="end">{v:.2f}</text>')
    colours = _colours(list(points))
    for family, pts in points.items():
        coords = [(xs[s], y_of(y)) for s, y in pts if y is not None]
        colour = colours[family]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in coords:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    for i, family in enumerate(points):
        parts.append(
            f'<text x="{width - pad}" y="{30 + 13 * i}" text-anchor="end" fill="{colours[family]}">{html.escape(family)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _gif_data_uri(video) -> str:
    from PIL import Image

    from lightning_distill.media import to_uint8_frames

    frames = [Image.fromarray(f) for f in to_uint8_frames(video, upscale=3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=125, loop=0)
    return "data:image/gif;base64," + base64.b64encode(buffer.getvalue()).decode()


def write_html(result: dict, out: Path, clips_for) -> Path:
    """`clips_for(key, base_model) -> (N, 3, F, H, W) or None`: the clips shown side by side."""
    table = markdown(result).split("Per base model:")[0]
    rows = [line for line in table.splitlines() if line.startswith("|") and not line.startswith("|---")]
    cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    table_html = "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells[0]) + "</tr>"
    table_html += (
        "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
        + "</table>"
    )
    plots = "".join(_svg_plot(result, metric, title) for metric, title, _, _ in metrics_of(result))
    prompts = result["protocol"].get("prompts", [])
    grid = ["<table class='clips'><tr><th>base model</th>"]
    keys = list(result["candidates"])
    grid += [f"<th>{html.escape(result['candidates'][k]['label'])}</th>" for k in keys] + ["</tr>"]
    for name, row in result["models"].items():
        grid.append(f"<tr><td>{html.escape(name)}{'' if row['seen'] else ' (held out)'}</td>")
        for key in keys:
            clips = clips_for(key, name)
            images = (
                ""
                if clips is None
                else "".join(
                    f"<img src='{_gif_data_uri(v)}' title='{html.escape(p)}'>"
                    for v, p in zip(clips, prompts, strict=False)
                )
            )
            grid.append(f"<td>{images}</td>")
        grid.append("</tr>")
    grid.append("</table>")
    caption = ", ".join(f"'{p}'" for p in prompts[:2])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(result["protocol"]["name"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
.clips img{{margin:2px;image-rendering:pixelated}}</style></head><body>
<h1>Evaluation: {html.escape(result["protocol"]["name"])}</h1>
<p>{html.escape(_intro(result))} The numbers are metrics.json's.</p>
<h2>Table</h2>{table_html}<h2>Metrics against steps</h2>{plots}
<h2>Clips</h2><p>Prompts {html.escape(caption)}, same noise for every model.</p>{"".join(grid)}</body></html>"""
    path = Path(out) / "report.html"
    path.write_text(page)
    return path
