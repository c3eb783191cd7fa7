"""The self-contained HTML page of a report (inline CSS, plots as base64 data URIs)."""

import base64
import html


def escape(value):
    return html.escape(str(value))


def png_data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
.sub { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid #d0d7de; padding: 0.5rem; background: #fff; }
figure img { display: block; width: 460px; height: auto; }
figure.wide img { width: 940px; }
figcaption { font-size: 0.85rem; color: #59636e; text-align: center; }
.scroll { overflow-x: auto; } .notes li { color: #59636e; }
"""


def _value(value):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(value)


def _table(frame):
    # per-epoch histories can be long; show them whole but scrollable
    return '<div class="scroll">' + frame.to_html(float_format=lambda v: f"{v:.4g}", border=0,
                                                   na_rep="—") + "</div>"


def _wide(png):
    """Figures drawn wider than tall (multi-panel histories) get the full page width."""
    import struct

    width, height = struct.unpack(">II", png[16:24])  # the PNG IHDR chunk
    return ' class="wide"' if width > 1.6 * height else ""


def render(report, *, title=None):
    title = title or report.meta.get("title") or f"{report.kind.replace('_', ' ').title()} report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">task: {escape(report.task)} · kind: {escape(report.kind)}</p>',
    ]
    if report.meta:
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{_value(v)}</td></tr>"
                       for k, v in report.meta.items() if k != "title")
        parts.append(f'<h2>Run</h2><table class="meta">{rows}</table>')
    if report.metrics:
        rows = "".join(f"<tr><td>{escape(k)}</td><td>{_value(v)}</td></tr>" for k, v in report.metrics.items())
        parts.append(f'<h2>Metrics</h2><table class="metrics"><tr><th>metric</th><th>value</th></tr>{rows}</table>')
    for name, frame in report.tables.items():
        parts.append(f"<h2>{escape(name.replace('_', ' ').capitalize())}</h2>{_table(frame)}")
    if report.plots:
        figures = "".join(
            f'<figure{_wide(png)}><img src="{png_data_uri(png)}" alt="{escape(name)}">'
            f"<figcaption>{escape(name.replace('_', ' '))}</figcaption></figure>"
            for name, png in report.plots.items()
        )
        parts.append(f'<h2>Plots</h2><div class="plots">{figures}</div>')
    if report.notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
        parts.append(f'<h2>Notes</h2><ul class="notes">{items}</ul>')
    parts.append("</body></html>")
    return "\n".join(parts)
