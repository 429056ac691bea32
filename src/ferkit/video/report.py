"""Self-contained HTML reports: one page per video (plots embedded as base64 PNG), and an index across videos."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ferkit.errors import OutputError
from ferkit.results import damaged_frames

from .plots import (
    distribution_figure,
    fig_to_base64,
    peak_moments,
    read_thumbnails,
    sentiment_figure,
    thumbnail_figure,
    timeline_figure,
)

__all__ = ["write_reports"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;
padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:13px}table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.verdict{font-size:18px;margin:12px 0}.tag{display:inline-block;padding:2px 8px;border-radius:10px;color:#fff;
font-size:13px}.pos{background:#2ca02c}.neg{background:#d62728}.neu{background:#888}
.empty{background:#fff7e0;border:1px solid #f0d080;padding:12px;border-radius:6px}img{max-width:100%}
details{margin:8px 0}code{background:#f4f4f4;padding:1px 4px}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if v != v:
            return "-"
        return f"{v:.3f}"
    if v is None:
        return "-"
    return _esc(v)


def _table(df: Any, cols: list[str], headers: list[str] | None = None, left: tuple[str, ...] = ()) -> str:
    hs = headers or cols
    out = ["<div style='overflow-x:auto'><table><tr>" + "".join(f"<th class='{'l' if c in left else ''}'>{_esc(h)}</th>"
                                    for c, h in zip(cols, hs)) + "</tr>"]
    for r in df[cols].itertuples(index=False):
        out.append("<tr>" + "".join(f"<td class='{'l' if c in left else ''}'>{_cell(c, v)}</td>"
                                    for c, v in zip(cols, r)) + "</tr>")
    return "".join(out) + "</table></div>"


def _cell(col: str, v: Any) -> str:
    if col.startswith(("share_", "sentiment_share_")) and isinstance(v, (float, np.floating)) and v == v:
        return f"{100 * v:.0f}%"
    if col in ("start_s", "end_s", "interval_start") and isinstance(v, (float, np.floating)) and v == v:
        return f"{v:.1f}"
    return _fmt(v)


def _sent_tag(s: Any) -> str:
    cls = {"positive": "pos", "negative": "neg"}.get(str(s), "neu")
    return f"<span class='tag {cls}'>{_esc(s)}</span>" if isinstance(s, str) else "-"


def _page_name(index: Path, source: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).stem)[:60] or "video"
    name = f"{index.stem}_{base}.html"
    k = 2
    while name in used:
        name = f"{index.stem}_{base}_{k}.html"
        k += 1
    used.add(name)
    return name


def write_reports(va: Any, path: Path, *, thumbnails: bool = True, title: str | None = None) -> list[Path]:
    """Write the pages of :meth:`ferkit.video.VideoAnalytics.report`; returns them (index first when several)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path.parent}: {exc}") from None
    sources = va.sources
    if len(sources) <= 1:
        src = sources[0] if sources else ""
        _write(path, _video_page(va, src, thumbnails, title))
        return [path]
    used: set[str] = set()
    pages = {s: _page_name(path, s, used) for s in sources}
    written = [path]
    for s in sources:
        p = path.parent / pages[s]
        _write(p, _video_page(va, s, thumbnails, None, back=path.name))
        written.append(p)
    _write(path, _index_page(va, pages, title))
    return written


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None


def _head(title: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
            f"<style>{CSS}</style></head><body>")


def _settings_html(va: Any) -> str:
    st = va.settings.as_dict()
    analysis = st.pop("analysis", None) or {}
    if analysis.get("tracked") and not st.get("track"):
        st["track"] = analysis.pop("tracked")  # ids assigned while analysing, not re-tracked here
    st = {k: v for k, v in st.items() if not (k == "tracker_params" and not v)}
    st.update({f"analysis: {k}": v for k, v in analysis.items()})
    if st.get("interval_s") is None and st.get("interval_frames") is None:
        st["interval_s"] = "5.0 (default)"  # what the per-interval table uses
    rows = "".join(f"<tr><td class='l'>{_esc(k)}</td><td class='l'><code>{_esc(json.dumps(v))}</code></td></tr>"
                   for k, v in st.items())
    return f"<details><summary>Settings used</summary><table>{rows}</table></details>"


def _video_page(va: Any, source: str, thumbnails: bool, title: str | None, back: str | None = None) -> str:
    classes = va.classes
    df = va.timeline(source) if source else va.tracks().iloc[:0]
    vs = va.summary("video")
    vrow = vs[vs["source"] == source].iloc[0] if source and (vs["source"] == source).any() else None
    status = va.status_of(source) if source else "no_face"
    duration = _duration(va, source)
    name = Path(source).name if source else "(no input)"
    parts = [_head(title or f"ferkit report: {name}")]
    if back:
        parts.append(f"<p class='sub'><a href='{_esc(back)}'>&larr; all videos</a></p>")
    parts.append(f"<h1>{_esc(title or name)}</h1><p class='sub'>{_esc(source)} &middot; generated "
                 f"{dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by ferkit</p>")
    if not len(df) or vrow is None or not vrow["rows"]:
        why = {"failed": "the video could not be analysed", "partial": "the analysis stopped early"}.get(
            status, "no face was found in this video")
        if _reason(va, source):
            why += f" ({_reason(va, source)})"
        if len(df) and vrow is not None:
            why = "every face was below the quality threshold"
        parts.append(f"<div class='empty'><b>No faces to report:</b> {_esc(why)}. The timeline is empty.</div>")
        parts.append(_settings_html(va))
        parts.append("</body></html>")
        return "".join(parts)
    n_tracks = int(df["face_id"].nunique())
    flagged = int(vrow["flagged"])
    extra = f", {flagged} left out (low quality)" if flagged else ""
    extra += f", status {_esc(status)}" if status != "ok" else ""
    lost = int(vrow.get("frames_lost", 0) or 0)
    extra += f", {damaged_frames(lost)}" if lost else ""
    parts.append(f"<p class='verdict'>Verdict: <b>{_esc(vrow['verdict'])}</b> &nbsp; sentiment "
                 f"{_sent_tag(vrow['sentiment'])} (score {vrow['sentiment_score']:+.2f}) &nbsp; "
                 f"<span class='sub'>{n_tracks} face{'s' if n_tracks != 1 else ''}, {int(vrow['rows'])} face-frames"
                 f"{extra}</span></p>")
    ts = va.summary("track")
    ts = ts[ts["source"] == source]
    parts.append("<h2>People</h2>")
    cols = ["face_id", "rows", "flagged", "start_s", "end_s", "verdict", "dominant_majority", "dominant_mean",
            "sentiment", "sentiment_score", *[f"share_{c}" for c in classes]]
    parts.append(_table(ts, cols, ["face", "frames", "flagged", "from s", "to s", "verdict", "majority", "mean prob",
                                   "sentiment", "score", *classes], left=("verdict", "dominant_majority",
                                                                          "dominant_mean", "sentiment")))
    parts.append("<p class='sub'>verdict: " + _esc(_verdict_doc(va.settings.verdict)) + "; shares: fraction of "
                 "frames whose top label is the class.</p>")
    parts.append("<h2>Emotions over time</h2>")
    parts.append(f"<img alt='emotion timeline' src='{fig_to_base64(timeline_figure(df, classes, duration))}'>")
    parts.append("<h2>Sentiment over time</h2>")
    parts.append(f"<img alt='sentiment' src='{fig_to_base64(sentiment_figure(df, duration))}'>")
    parts.append("<h2>Distribution of emotions per person</h2>")
    parts.append(f"<img alt='distribution' src='{fig_to_base64(distribution_figure(ts, classes))}'>")
    if thumbnails:
        moments = peak_moments(df, classes, min_quality=va.settings.min_quality)
        from ferkit.results import unprintable

        thumbs = read_thumbnails(unprintable(source), moments)
        fig = thumbnail_figure(moments, thumbs)
        parts.append("<h2>Moments of peak emotion</h2>")
        if fig is None:
            parts.append(f"<p class='sub'>No thumbnails: the video {_esc(source)} could not be re-read.</p>")
        else:
            parts.append(f"<img alt='peak moments' src='{fig_to_base64(fig)}'>")
    iv = va.summary("interval")
    iv = iv[iv["source"] == source]
    step = va.settings.interval_s or (f"{va.settings.interval_frames} frames" if va.settings.interval_frames
                                      else 5.0)
    parts.append(f"<h2>Per interval ({_esc(step)}{' s' if isinstance(step, float) else ''})</h2>")
    parts.append("<details><summary>table</summary>" + _table(
        iv, ["face_id", "interval_start", "rows", "verdict", "dominant_majority", "sentiment", "sentiment_score"],
        ["face", "start", "frames", "verdict", "majority", "sentiment", "score"],
        left=("verdict", "dominant_majority", "sentiment")) + "</details>")
    parts.append(_settings_html(va))
    parts.append("</body></html>")
    return "".join(parts)


def _verdict_doc(method: str) -> str:
    return {"peak": "highest mean probability over the most expressive half of the frames (least neutral)",
            "mean": "highest mean probability", "majority": "most frequent per-frame top label",
            "weighted": "highest mean probability with neutral down-weighted"}.get(method, method)


def _reason(va: Any, source: str) -> str | None:
    """Why a video failed or stopped early (its status's reason), if known."""
    for s in va.statuses:
        if s.source == source and getattr(s, "reason", None):
            return str(s.reason)
    return None


def _duration(va: Any, source: str) -> float | None:
    for s in va.statuses:
        if s.source == source and getattr(s, "duration_s", None):
            return float(s.duration_s)
    return None


def _index_page(va: Any, pages: dict[str, str], title: str | None) -> str:
    vs = va.summary("video")
    parts = [_head(title or "ferkit report: videos"), f"<h1>{_esc(title or 'Videos')}</h1>",
             f"<p class='sub'>{len(vs)} videos &middot; generated {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} "
             "by ferkit</p><table><tr><th class='l'>video</th><th class='l'>status</th><th>faces</th>"
             "<th>face-frames</th><th class='l'>verdict</th><th class='l'>sentiment</th><th>score</th></tr>"]
    for r in vs.to_dict("records"):
        link = f"<a href='{_esc(pages.get(r['source'], ''))}'>{_esc(Path(r['source']).name)}</a>"
        why = _reason(va, r["source"]) if r["status"] in ("failed", "partial") else None
        if not why and r.get("frames_lost"):
            why = damaged_frames(int(r["frames_lost"]))
        status = _esc(r["status"]) + (f"<br><span class='sub'>{_esc(why)}</span>" if why else "")
        parts.append(f"<tr><td class='l'>{link}</td><td class='l'>{status}</td><td>{r['tracks']}</td>"
                     f"<td>{int(r['rows'])}</td><td class='l'>{_fmt(r['verdict'])}</td>"
                     f"<td class='l'>{_sent_tag(r['sentiment'])}</td><td>{_fmt(r['sentiment_score'])}</td></tr>")
    parts.append("</table>")
    parts.append(_settings_html(va))
    parts.append("</body></html>")
    return "".join(parts)
