"""The self-contained HTML page of ``anomaly results report`` (imports no typer/rich).

One file, nothing fetched when it opens: styles inline, charts as inline SVG (see
:mod:`anomaly_cli.report.charts`), no script, and a Content-Security-Policy that forbids the page
any network request (so a stray reference would fail loudly in the browser's console instead of
phoning home). Every table has a "Download CSV" link carrying its rows as a ``data:`` URL (UTF-8
with a byte-order mark, so spreadsheet programs read Marathi and UDISE codes correctly); CSV column
names are stable English identifiers whatever the page's language. HTML tables show the first rows
of long lists; the CSVs hold every row. Fonts: the page names the Devanagari fonts that Windows,
macOS, Android and Debian ship (Nirmala UI, Kohinoor Devanagari, Noto Sans Devanagari, Lohit
Marathi) instead of embedding one (~300 kB).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import re
from collections.abc import Sequence
from typing import Any

from anomaly_cli.ops.places import UNPARSED
from anomaly_cli.ops.report import Counts, PlaceRow, ReportData
from anomaly_cli.report import charts
from anomaly_cli.report.i18n import LANG_NAMES, LANGS, reason_words, t
from anomaly_cli.results.clusters import DuplicateCluster

#: Rows shown in an HTML table before "N more rows in the CSV".
TABLE_ROWS = {"district": 40, "block": 30, "school": 20, "cluster": 30}
#: Bars in a place chart.
CHART_ROWS = 15
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
CSS = """
:root { --ink:#1f3b57; --muted:#5b6b7a; --line:#d5dde5; }
* { box-sizing:border-box; }
body { margin:0; font-family:system-ui,"Segoe UI",Roboto,"DejaVu Sans","Nirmala UI","Kohinoor Devanagari",
  "Noto Sans Devanagari","Lohit Marathi",sans-serif; color:var(--ink); background:#f6f8fa; line-height:1.45; }
header { background:var(--ink); color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:1.5rem; }
header p { margin:2px 0; opacity:.92; font-size:.92rem; }
main { max-width:1000px; margin:0 auto; padding:12px 24px 40px; }
section { background:#fff; border:1px solid var(--line); border-radius:6px; margin:18px 0; padding:14px 20px; }
h2 { font-size:1.2rem; margin:.2em 0 .4em; }
h3 { font-size:1rem; margin:1em 0 .3em; }
.intro, .note { color:var(--muted); font-size:.9rem; margin:.2em 0 .8em; }
.cards { display:flex; flex-wrap:wrap; gap:12px; }
.card { flex:1 1 150px; border:1px solid var(--line); border-radius:6px; padding:10px 14px; }
.card b { display:block; font-size:1.5rem; }
.card span { color:var(--muted); font-size:.85rem; }
table { border-collapse:collapse; width:100%; font-size:.88rem; margin:.4em 0; }
th, td { border-bottom:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#eef2f6; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.member td { border-top:none; }
tr.first td { border-top:2px solid var(--line); }
td { white-space:normal; }
td.d { white-space:nowrap; }
td.ids { font-family:ui-monospace,monospace; font-size:.75rem; word-break:break-all; }
code { font-family:ui-monospace,monospace; font-size:.85em; }
a.csv { display:inline-block; margin:.2em 0 .6em; padding:2px 10px; border:1px solid var(--ink); border-radius:4px;
  color:var(--ink); text-decoration:none; font-size:.85rem; }
a.csv::before { content:"\\2193  "; }
figure { margin:.4em 0; }
figure svg { max-width:100%; height:auto; }
figcaption { color:var(--muted); font-size:.85rem; }
details summary { cursor:pointer; color:var(--muted); font-size:.85rem; }
nav ol { columns:2; font-size:.9rem; }
footer { color:var(--muted); font-size:.8rem; text-align:center; padding:10px; }
"""


def render(data: ReportData, lang: str = "en") -> str:
    """The whole page for ``data`` in ``lang`` (``en`` or ``mr``)."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGS)}")
    p = _Page(data, lang)
    return p.html()


class _Page:
    def __init__(self, data: ReportData, lang: str):
        self.d = data
        self.lang = lang
        self.sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)

    def t(self, key: str, **kw: Any) -> str:
        """Escaped text; `backticked` commands become <code>."""
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(t(key, self.lang, **kw)))

    # ----- page --------------------------------------------------------------------------------
    def html(self) -> str:
        self._summary()
        self._coverage()
        self._reasons()
        self._places()
        self._duplicates()
        self._failures()
        self._over_time()
        self._record_types()
        d = self.d
        dates = d.date_from if d.date_from == d.date_to else f"{d.date_from} .. {d.date_to}"
        nav = "".join(f'<li><a href="#{a}">{h}</a></li>' for a, h, _ in self.sections)
        body = "".join(
            f'<section id="{a}" aria-labelledby="{a}-h"><h2 id="{a}-h">{h}</h2>{b}</section>'
            for a, h, b in self.sections
        )
        title = f"{t('title', self.lang)} {dates}"
        return (
            f'<!DOCTYPE html>\n<html lang="{self.lang}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{self.t('title')}</h1>"
            f"<p>{self.t('test_dates' if d.date_from != d.date_to else 'test_date')}: <b>{dates}</b> · "
            f"{self.t('source')}: <code>{html.escape(d.source_collection)}</code> · "
            f"{self.t('generated')}: {d.generated_at.strftime('%Y-%m-%d %H:%M UTC')}</p>"
            f'<p lang="{self.lang}" class="lang">{self.t("language")} · '
            f"{self.t('thresholds_from')}: {html.escape(d.threshold_source)}</p></header>"
            f'<main><nav aria-label="{self.t("contents")}"><ol>{nav}</ol></nav>{body}</main>'
            f"<footer>{self.t('footer')}</footer></body></html>\n"
        )

    def add(self, anchor: str, heading_key: str, body: str) -> None:
        self.sections.append((anchor, self.t(heading_key), body))

    # ----- sections ----------------------------------------------------------------------------
    def _summary(self) -> None:
        c, prev = self.d.overall, self.d.previous
        cards = [
            (str(c.total), self.t("screened")),
            (str(c.ok), self.t("screened_ok")),
            (f"{c.anomalies} ({_pct(c.rate)})", self.t("anomalies")),
            (str(c.failed), self.t("failed")),
        ]
        body = '<div class="cards">' + "".join(f'<div class="card"><b>{v}</b><span>{k}</span></div>' for v, k in cards)
        body += "</div>"
        if prev is not None:
            pc = prev.counts
            body += (
                f'<p class="note">{self.t("previous")} {prev.test_date}: {pc.total} {self.t("screened").lower()}, '
                f"{pc.anomalies} {self.t('anomalies').lower()} ({_pct(pc.rate)} {self.t('of')} {pc.ok}), "
                f"{pc.failed} {self.t('failed').lower()}.</p>"
            )
        else:
            body += f'<p class="note">{self.t("no_previous")}</p>'
        self.add("summary", "summary", body)

    def _coverage(self) -> None:
        if self.d.coverage is None:
            self.add("coverage", "coverage", f'<p class="note">{self.t("coverage_off")}</p>')
            return
        body = f'<p class="intro">{self.t("coverage_intro")}</p>'
        rows = []
        for i, cov in enumerate(self.d.coverage):
            segments = [
                (t("cov_ok", self.lang), cov.results_ok),
                (t("cov_failed", self.lang), cov.results_failed),
                (t("cov_missing", self.lang), cov.missing),
            ]
            gap = (
                f"{t('gap', self.lang)}: {cov.missing} — {cov.missing_enqueued} {t('gap_enqueued', self.lang)}, "
                f"{cov.missing_behind_watermark} {t('gap_behind', self.lang)}, "
                f"{cov.missing_not_discovered} {t('gap_undiscovered', self.lang)}"
            )
            desc = (
                f"{cov.test_date}: {t('eligible', self.lang)} {cov.eligible}; "
                + "; ".join(f"{k} {v}" for k, v in segments)
                + f". {gap}."
            )
            if i < 12:
                body += f"<h3>{cov.test_date}</h3>" + self._figure(
                    charts.stacked(
                        f"coverage-{i}",
                        segments,
                        title=f"{t('coverage', self.lang)} {cov.test_date}",
                        description=desc,
                        total_label=f"{t('eligible', self.lang)}: {cov.eligible}",
                    ),
                    html.escape(gap),
                )
            rows.append(
                [
                    cov.test_date,
                    cov.eligible,
                    cov.invalid_rows,
                    cov.enqueued if cov.state_found else "",
                    cov.results_ok,
                    cov.results_failed,
                    cov.missing,
                    cov.missing_enqueued,
                    cov.missing_behind_watermark,
                    cov.missing_not_discovered,
                ]
            )
        labels = [
            "eligible",
            "invalid_rows",
            "enqueued",
            "cov_ok",
            "cov_failed",
            "cov_missing",
            "gap_enqueued",
            "gap_behind",
            "gap_undiscovered",
        ]
        head = [t("test_date", self.lang), *(str(r[0]) for r in rows)]
        table = [
            [("\u2003" if i >= 6 else "") + t(k, self.lang), *(r[i + 1] for r in rows)] for i, k in enumerate(labels)
        ]
        csv_head = [
            "test_date",
            "eligible",
            "invalid_rows",
            "enqueued",
            "screened_ok",
            "failed",
            "not_screened",
            "waiting_in_queue",
            "behind_watermark",
            "not_discovered",
        ]
        body += self._table(head, table, numeric=range(1, len(head))) + self._csv("coverage.csv", csv_head, rows)
        self.add("coverage", "coverage", body)

    def _reasons(self) -> None:
        d = self.d
        body = f'<p class="intro">{self.t("by_reason_intro")}</p>'
        if not d.reasons:
            self.add("reasons", "by_reason", body + f'<p class="note">{self.t("no_anomalies")}</p>')
            return
        words = [reason_words(r.code, self.lang) for r in d.reasons]
        prev = d.previous
        has_prev = prev is not None
        desc = "; ".join(f"{w} ({r.code}): {r.count} = {_pct(r.rate)}" for w, r in zip(words, d.reasons))
        body += self._figure(
            charts.hbar(
                "reasons",
                [f"{w} ({r.code})" for w, r in zip(words, d.reasons)],
                [r.rate for r in d.reasons],
                [f"{_pct(r.rate)} ({r.count})" for r in d.reasons],
                title=t("by_reason", self.lang),
                description=desc,
                xlabel=f"{t('anomaly_rate', self.lang)} ({t('of', self.lang)} {d.overall.ok})",
                previous=[r.previous_rate for r in d.reasons] if has_prev else None,
                previous_label=f"{t('vs_previous', self.lang)} {prev.test_date}" if prev else "",
            ),
            html.escape(desc),
        )
        head = [t("reason", self.lang), t("code", self.lang), t("count", self.lang), t("rate", self.lang)]
        if prev:
            head += [f"{t('vs_previous', self.lang)} {prev.test_date}"]
        head += [t("threshold", self.lang)]
        rows = []
        for w, r in zip(words, d.reasons):
            row: list[Any] = [w, r.code, r.count, _pct(r.rate)]
            if has_prev:
                row.append(f"{_pct(r.previous_rate or 0.0)} ({r.previous_count})")
            row.append(r.threshold)
            rows.append(row)
        body += self._table(head, rows, numeric=(2, 3, 4) if has_prev else (2, 3), code_cols=(1, len(head) - 1))
        csv_rows = [
            [
                r.code,
                reason_words(r.code, "en"),
                r.count,
                round(r.rate, 6),
                r.previous_count,
                None if r.previous_rate is None else round(r.previous_rate, 6),
                r.threshold,
            ]
            for r in d.reasons
        ]
        body += self._csv(
            "reasons.csv",
            ["reason_code", "reason", "count", "rate", "previous_count", "previous_rate", "threshold"],
            csv_rows,
        )
        body += f'<p class="note">{self.t("thresholds_from")}: {html.escape(d.threshold_source)}</p>'
        self.add("reasons", "by_reason", body)

    def _places(self) -> None:
        d = self.d
        body = f'<p class="intro">{self.t("by_place_intro", min=d.min_count)}</p>'
        if d.unparsed_results:
            body += f'<p class="note">{self.t("unparsed", n=d.unparsed_results)}</p>'
        for level, rows, heading in (
            ("district", d.districts, "districts"),
            ("block", d.blocks, "blocks"),
            ("school", d.schools, "schools_top"),
        ):
            body += f"<h3>{self.t(heading)}</h3>" + self._place_level(level, rows)
        self.add("places", "by_place", body)

    def _place_level(self, level: str, rows: Sequence[PlaceRow]) -> str:
        ranked = [r for r in rows if r.ranked]
        below = len(rows) - len(ranked)
        out = ""
        shown = ranked[:CHART_ROWS]
        if len(shown) > 1:  # one bar says nothing the table does not
            desc = "; ".join(
                f"{r.label}: {_pct(r.counts.rate)} ({r.counts.anomalies} {t('of', self.lang)} {r.counts.ok})"
                for r in shown
            )
            out += self._figure(
                charts.hbar(
                    f"place-{level}",
                    [r.label for r in shown],
                    [r.counts.rate for r in shown],
                    [f"{_pct(r.counts.rate)}  {r.counts.anomalies}/{r.counts.ok}" for r in shown],
                    title=t({"district": "districts", "block": "blocks", "school": "schools_top"}[level], self.lang),
                    description=desc,
                    xlabel=t("anomaly_rate", self.lang),
                ),
                html.escape(desc),
            )
        if below:
            out += f'<p class="note">{self.t("below_min", n=below, min=self.d.min_count)}</p>'
        cols = {
            "district": [],
            "block": [t("district", self.lang)],
            "school": [t("district", self.lang), t("block", self.lang)],
        }[level]
        head = [
            t(level, self.lang),
            *cols,
            t("screened_ok", self.lang),
            t("anomalies", self.lang),
            t("anomaly_rate", self.lang),
            t("failed", self.lang),
            t("ranked", self.lang),
        ]
        limit = TABLE_ROWS[level]
        table_rows = []
        for r in (ranked if level == "school" else rows)[:limit]:
            extra = {"district": [], "block": [r.district], "school": [r.district, r.block]}[level]
            table_rows.append(
                [
                    r.label,
                    *extra,
                    r.counts.ok,
                    r.counts.anomalies,
                    _pct(r.counts.rate),
                    r.counts.failed,
                    t("yes", self.lang) if r.ranked else t("no_below", self.lang),
                ]
            )
        k = len(cols) + 1
        out += self._table(head, table_rows, numeric=range(k, k + 4), code_cols=range(k))
        more = len(rows) - len(table_rows)
        if more > 0:
            out += f'<p class="note">{self.t("more_rows", n=more)}</p>'
        csv_rows = [
            [
                r.key,
                r.district,
                r.block,
                r.counts.total,
                r.counts.ok,
                r.counts.anomalies,
                r.counts.failed,
                round(r.counts.rate, 6),
                r.ranked,
            ]
            for r in rows
        ]
        out += self._csv(
            f"{level}s.csv",
            [level, "district", "block", "results", "screened_ok", "anomalies", "failed", "anomaly_rate", "ranked"],
            csv_rows,
        )
        return out

    def _duplicates(self) -> None:
        cl, reuse = self.d.clusters, self.d.reuse
        body = f'<p class="intro">{self.t("duplicates_intro")}</p>'
        if not cl:
            body += f'<p class="note">{self.t("no_duplicates")}</p>'
        else:
            body += self._cluster_table(cl, "duplicates.csv")
        if reuse:
            body += f'<h3>{self.t("reuse")}</h3><p class="intro">{self.t("reuse_intro")}</p>'
            body += self._cluster_table(reuse, "reuse.csv")
        self.add("duplicates", "duplicates", body)

    def _cluster_table(self, clusters: Sequence[DuplicateCluster], filename: str) -> str:
        """One row per member, the cluster's size spanning its rows (original first)."""
        cols = ("cluster_size", "students", "school", "record_type", "result_ids")
        th = "".join(f'<th scope="col">{self.t(k)}</th>' for k in cols)
        trs = []
        limit = TABLE_ROWS["cluster"]
        for c in clusters[:limit]:
            for j, m in enumerate(c.members):
                lead = f'<td class="n" rowspan="{len(c.members)}">{len(c.members)}</td>' if j == 0 else ""
                trs.append(
                    f'<tr class="{"first" if j == 0 else "member"}">{lead}'
                    f'<td class="d">{html.escape(m.student_id or "-")}</td>'
                    f"<td><code>{html.escape(m.udise or '-')}</code></td><td>{html.escape(m.record_type or '-')}</td>"
                    f'<td class="ids">{html.escape(m.result_id)}</td></tr>'
                )
        out = f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(trs)}</tbody></table>"
        if len(clusters) > limit:
            out += f'<p class="note">{self.t("more_rows", n=len(clusters) - limit)}</p>'
        rows = [
            [
                c.original,
                len(c.members),
                ";".join(c.result_ids),
                ";".join(m.student_id or "" for m in c.members),
                ";".join(m.udise or "" for m in c.members),
                len(c.schools),
            ]
            for c in clusters
        ]
        head = ["original_result_id", "recordings", "result_ids", "student_ids", "schools", "distinct_schools"]
        return out + self._csv(filename, head, rows)

    def _failures(self) -> None:
        f = self.d.failures
        body = f'<p class="intro">{self.t("failures_intro")}</p>'
        if not f:
            self.add("failures", "failures", body + f'<p class="note">{self.t("no_failures")}</p>')
            return
        desc = "; ".join(f"{r.code}: {r.count}" for r in f)
        total = sum(r.count for r in f)
        body += self._figure(
            charts.hbar(
                "failures",
                [r.code for r in f],
                [r.count for r in f],
                [str(r.count) for r in f],
                title=t("failures", self.lang),
                description=desc,
                xlabel=f"{t('count', self.lang)} ({total})",
                percent=False,
            ),
            html.escape(desc),
        )
        rows = [[r.code, r.count, r.action] for r in f]
        body += self._table(
            [t("error_code", self.lang), t("count", self.lang), t("action", self.lang)],
            rows,
            numeric=(1,),
            code_cols=(0,),
            en_cols=(2,),
        )
        body += self._csv("failures.csv", ["error_code", "count", "runbook"], rows)
        self.add("failures", "failures", body)

    def _over_time(self) -> None:
        rows = self.d.by_date
        body = f'<p class="intro">{self.t("over_time_intro")}</p>'
        if len(rows) < 2:
            self.add("over-time", "over_time", body + f'<p class="note">{self.t("one_date")}</p>')
            return
        codes = sorted({c for r in rows for c in r.reasons}, key=lambda c: -sum(r.reasons.get(c, 0) for r in rows))
        series = [
            (
                f"{reason_words(c, self.lang)} ({c})",
                [r.reasons.get(c, 0) / r.counts.ok if r.counts.ok else 0.0 for r in rows],
            )
            for c in codes
        ]
        dates = [r.test_date for r in rows]
        desc = "; ".join(f"{label}: " + ", ".join(f"{d} {_pct(v)}" for d, v in zip(dates, ys)) for label, ys in series)
        if series:
            body += self._figure(
                charts.lines(
                    "over-time",
                    dates,
                    series,
                    title=t("over_time", self.lang),
                    description=desc,
                    ylabel=t("anomaly_rate", self.lang),
                ),
                html.escape(desc),
            )
        head = [t("test_date", self.lang), t("screened_ok", self.lang), t("anomaly_rate", self.lang), *codes]
        table = [
            [
                r.test_date,
                r.counts.ok,
                _pct(r.counts.rate),
                *(
                    f"{_pct(r.reasons.get(c, 0) / r.counts.ok if r.counts.ok else 0.0)} ({r.reasons.get(c, 0)})"
                    for c in codes
                ),
            ]
            for r in rows
        ]
        body += self._table(head, table, numeric=range(1, len(head)))
        csv_rows = [
            [
                r.test_date,
                r.counts.total,
                r.counts.ok,
                r.counts.failed,
                r.counts.anomalies,
                *(r.reasons.get(c, 0) for c in codes),
            ]
            for r in rows
        ]
        body += self._csv(
            "over_time.csv", ["test_date", "results", "screened_ok", "failed", "anomalies", *codes], csv_rows
        )
        self.add("over-time", "over_time", body)

    def _record_types(self) -> None:
        rt = self.d.record_types
        if not rt:
            return
        rows = [[k, c.total, c.ok, c.anomalies, _pct(c.rate), c.failed] for k, c in rt.items()]
        head = [
            t("record_type", self.lang),
            t("screened", self.lang),
            t("screened_ok", self.lang),
            t("anomalies", self.lang),
            t("anomaly_rate", self.lang),
            t("failed", self.lang),
        ]
        body = self._table(head, rows, numeric=range(1, 6), code_cols=(0,))
        body += self._csv(
            "record_types.csv", ["record_type", "results", "screened_ok", "anomalies", "anomaly_rate", "failed"], rows
        )
        self.add("record-types", "record_types", body)

    # ----- pieces ------------------------------------------------------------------------------
    def _figure(self, svg: str, text: str) -> str:
        return (
            f"<figure>{svg}<figcaption><details><summary>{self.t('chart_text')}</summary>{text}</details>"
            f"</figcaption></figure>"
        )

    def _table(
        self,
        head: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        numeric: Sequence[int] | range = (),
        code_cols: Sequence[int] | range = (),
        id_cols: Sequence[int] = (),
        en_cols: Sequence[int] = (),
    ) -> str:
        num = set(numeric)
        th = "".join(
            f'<th scope="col"{" class=n" if i in num else ""}>{html.escape(str(h))}</th>' for i, h in enumerate(head)
        )
        body = []
        for row in rows:
            cells = []
            for i, v in enumerate(row):
                text = "" if v is None else re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(v)))
                if i in id_cols:
                    cells.append(f'<td class="ids">{text.replace(chr(10), "<br>")}</td>')
                elif i in num:
                    cells.append(f'<td class="n">{text}</td>')
                elif i in en_cols:
                    cells.append(f'<td lang="en">{text}</td>')
                elif i in code_cols and text and text != UNPARSED:
                    cells.append(f"<td><code>{text}</code></td>")
                else:
                    cells.append(f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def _csv(self, filename: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(head)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
        payload = base64.b64encode(("\ufeff" + buf.getvalue()).encode("utf-8")).decode("ascii")
        return (
            f'<a class="csv" download="{self.d.date_from}-{filename}" '
            f'href="data:text/csv;charset=utf-8;base64,{payload}">{self.t("download_csv")} ({filename}, '
            f"{len(rows)})</a>"
        )


def _pct(x: float) -> str:
    return f"{x:.1%}"


def counts_line(c: Counts) -> str:
    """``12 of 300 (4.0 %)``: used by the CLI's one-line summary."""
    return f"{c.anomalies} of {c.ok} ({_pct(c.rate)})"


def write(data: ReportData, path: str | os.PathLike[str], lang: str = "en") -> int:
    """Write the page to ``path`` atomically (a ``.part`` file renamed); returns its size in bytes."""
    from pathlib import Path

    p = Path(path)
    text = render(data, lang)
    tmp = p.with_name(p.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return len(text.encode("utf-8"))


__all__ = ["LANGS", "LANG_NAMES", "render", "write"]
