"""The human report of an evaluation: one HTML page with tables, example errors and inline SVG plots
(precision-recall curve per class, reliability diagram before and after calibration), drawn with
matplotlib (Agg backend: no display needed) as inline SVG."""

from __future__ import annotations

import io
import json
from html import escape
from pathlib import Path

import numpy as np

from . import calibrate
from .evaluate import ClassMetrics, Evaluation

STYLE = """body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:1em}
.plots figure{margin:0}code{font-size:90%}details{margin:.4em 0}"""


def _figure():
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 4.2))
    return figure, figure.add_subplot()


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inline


def pr_plot(evaluation: Evaluation) -> str:
    """Return the precision-recall curves (IoU 0.5, COCO's 101 recall points) as inline SVG."""
    figure, axes = _figure()
    recall = np.linspace(0.0, 1.0, 101)
    for metrics in evaluation.classes:
        if metrics.curve:
            axes.plot(recall, metrics.curve, label=f"{metrics.label} (AP50 {metrics.ap50:.2f})")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall at IoU 0.5")
    if axes.lines:
        axes.legend(fontsize="small", loc="lower left")
    return _svg(figure)


def reliability_plot(evaluation: Evaluation, params: dict | None) -> str:
    """Return the reliability diagram of the counted detections (and after calibration) as inline SVG."""
    figure, axes = _figure()
    labels = [p[0] for p in evaluation.pairs]
    scores = [p[1] for p in evaluation.pairs]
    correct = [p[2] for p in evaluation.pairs]
    series = [("raw score", scores)]
    if params:
        series.append(("calibrated", calibrate.apply_all(params, labels, scores)))
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, values in series:
        rows = [r for r in calibrate.reliability(values, correct) if r["count"]]
        axes.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o",
                  label=f"{name} (ECE {calibrate.ece(values, correct):.3f})")
    axes.set(xlabel="confidence", ylabel="share correct", xlim=(0, 1), ylim=(0, 1.02), title="Reliability")
    axes.legend(fontsize="small", loc="upper left")
    return _svg(figure)


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(metrics: ClassMetrics) -> str:
    cells = [escape(metrics.label), metrics.truths, metrics.detections, metrics.tp, metrics.fp, metrics.fn,
             _number(metrics.precision), _number(metrics.recall), _number(metrics.ap50), _number(metrics.ap),
             _number(metrics.ece)]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _link(url: str) -> str:
    text = escape(url)
    return f'<a href="{text}">{text}</a>' if url.startswith(("http://", "https://")) else f"<code>{text}</code>"


def _errors(metrics: ClassMetrics) -> str:
    items = [f"<li>false positive {_number(e.score, 2)}: {_link(e.annotation_id)} on {_link(e.canvas_id)}</li>"
             for e in metrics.false_positives]
    items += [f"<li>missed: {_link(e.annotation_id)} on {_link(e.canvas_id)}</li>" for e in metrics.misses]
    if not items:
        return ""
    return f"<details><summary>{escape(metrics.label)}: example errors</summary><ul>{''.join(items)}</ul></details>"


def _plots(record: dict, evaluation: Evaluation) -> tuple[str, str]:
    """The precision-recall and reliability plots of a record (matplotlib: the slow part of a report)."""
    params = record["calibration"]["params"] if record.get("calibration") else None
    return pr_plot(evaluation), reliability_plot(evaluation, params)


def to_html(record: dict) -> str:
    """Render a stored evaluation record (quality.make_record) as a standalone HTML page."""
    evaluation = Evaluation.from_dict(record["evaluation"])
    return _page(record, evaluation, *_plots(record, evaluation))


def _page(record: dict, evaluation: Evaluation, pr_svg: str, reliability_svg: str) -> str:
    calibration = record.get("calibration")
    model = record["model"]
    head = ("<tr><th>class</th><th>truth</th><th>detected</th><th>TP</th><th>FP</th><th>misses</th>"
            "<th>precision</th><th>recall</th><th>AP50</th><th>AP50:95</th><th>ECE</th></tr>")
    rows = "".join(_row(m) for m in (*evaluation.classes, evaluation.overall))
    manifests = "".join(f"<li>{_link(m)}</li>" for m in evaluation.manifests)
    truth = "".join(f"<li>{_link(t)}</li>" for t in record["truth"])
    calibrated = (f"<p>Calibration {_link(calibration['id'])} ({escape(calibration['method'])} scaling per class, "
                  "fitted on these detections: the calibrated curve is in-sample).</p>") if calibration else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation of {escape(model['name'])}</title>
<style>{STYLE}</style>
<link rel="alternate" type="application/ld+json" href="{escape(record['id'])}">
</head><body>
<h1>Evaluation of {escape(model['name'])}</h1>
<p>{_link(record['id'])}, {escape(record['created'])}. Model SHA-256 <code>{escape(model['sha256'])}</code>.
{evaluation.canvases} exhaustively reviewed canvases of {len(evaluation.manifests)} manifest(s); ground truth
from {len(record['truth'])} source(s), listed below.
Precision, recall and counts at confidence &ge; {evaluation.threshold:g}, a detection matching a truth box of
its class with IoU &ge; 0.5 (greedy by score); AP from pycocotools (all detections).</p>
<table>{head}{rows}</table>
{calibrated}
<div class="plots"><figure>{pr_svg}</figure><figure>{reliability_svg}</figure></div>
<h2>Example errors</h2>
{''.join(_errors(m) for m in evaluation.classes) or '<p>None.</p>'}
<h2>Ground truth</h2><ul>{truth}</ul>
<h2>Manifests</h2><ul>{manifests}</ul>
</body></html>
"""


def write_files(record: dict, out_dir: Path) -> None:
    """Write a record as evaluation.jsonld, evaluation.ttl, report.html, pr.svg and reliability.svg."""
    from .quality import to_jsonld, to_turtle

    out_dir.mkdir(parents=True, exist_ok=True)
    evaluation = Evaluation.from_dict(record["evaluation"])
    pr_svg, reliability_svg = _plots(record, evaluation)  # drawn once: the page inlines the same plots
    files = {
        "evaluation.jsonld": json.dumps(to_jsonld(record), indent=1, ensure_ascii=False),
        "evaluation.ttl": to_turtle(record),
        "report.html": _page(record, evaluation, pr_svg, reliability_svg),
        "pr.svg": pr_svg,
        "reliability.svg": reliability_svg,
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")


def summary(record: dict) -> str:
    """Return the one-screen text summary of a record: a row per class, calibration, URL."""
    data = record["evaluation"]
    evaluation = Evaluation.from_dict({**data, "pairs": []})  # the pairs are read as they are, below

    def number(value: float | None) -> str:
        return "    -" if value is None else f"{value:5.3f}"

    lines = [
        f"{record['model']['name']} ({record['model']['sha256'][:12]}) on {evaluation.canvases} canvases of "
        f"{len(evaluation.manifests)} manifest(s); counts at confidence >= {evaluation.threshold:g}, IoU >= 0.5",
        f"{'class':<16}{'truth':>6}{'det':>6}{'TP':>6}{'FP':>6}{'miss':>6}  prec. recall  AP50  AP50:95  ECE",
    ]
    for m in (*evaluation.classes, evaluation.overall):
        lines.append(f"{m.label[:16]:<16}{m.truths:>6}{m.detections:>6}{m.tp:>6}{m.fp:>6}{m.fn:>6}  "
                     f"{number(m.precision)} {number(m.recall)} {number(m.ap50)} {number(m.ap)}  {number(m.ece)}")
    calibration = record.get("calibration")
    if calibration and data["pairs"]:
        # a column at a time: zip(*pairs) would pass 100,000 arguments and iterate each pair apart
        labels, scores, correct = ([pair[k] for pair in data["pairs"]] for k in range(3))
        after = calibrate.ece(calibrate.apply_all(calibration["params"], labels, scores), correct)
        lines.append(f"calibration ({calibration['method']}, in-sample): ECE {evaluation.overall.ece:.3f} -> "
                     f"{after:.3f}  {calibration['id']}")
    lines.append(record["id"])
    return "\n".join(lines)
