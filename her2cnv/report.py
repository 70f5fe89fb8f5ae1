"""Supporting functions for the 'report' command: HTML a clinician can read.

Pages are self-contained (inline CSS, figures embedded as base64 PNG, no
scripts, no external assets or network). Every string that comes from an input
file (sample and patient names, reasons, flags) passes through ``html.escape``.
Functions return the page as a string; ``io`` writes it.
"""
from __future__ import annotations

import base64
from html import escape

STYLE = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.disclaimer{background:#fff4e5;border-left:4px solid #e67e22;padding:.6em 1em;margin:1em 0}
.status{display:inline-block;padding:.15em .6em;border-radius:4px;color:#fff;font-weight:600}
.high_level_amplification{background:#c0392b}.low_level_gain{background:#d68910}.not_detected{background:#27ae60}
.indeterminate{background:#7f8c8d}.molecular_response,.clearance{background:#27ae60}.progression{background:#c0392b}
.stable{background:#2980b9}.not_evaluable{background:#7f8c8d}.baseline{background:#34495e}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f4f6f7}.figures{display:flex;flex-wrap:wrap;gap:1em}.figures figure{margin:0;flex:0 1 calc(50% - .5em);min-width:420px}
img{max-width:100%;border:1px solid #eee}.small{color:#666;font-size:.88em}
"""

DISCLAIMER = ("Research use only. her2cnv is a research tool, not a diagnostic: it has not been validated for "
              "clinical decisions, and its results must be confirmed by a validated assay (tissue IHC/ISH or an "
              "accredited NGS test) before guiding treatment.")

METHOD = """<p>Fragments were counted per genomic bin (fine bins or capture targets over the 17q12 ERBB2 amplicon,
coarser bins elsewhere), corrected for GC content and compared with a panel of normals from healthy-donor plasma
(with the noise components the panel learnt, if any, projected out: see the QC table). The profile was
segmented (PELT), and the tumour fraction estimated by fitting
clonal integer copy states to the genome-wide segments. ERBB2's plasma copy number (PCN) is twice its depth
relative to the diploid baseline; the tumour copy number is 2 + (PCN - 2) / tumour fraction, assuming a clonal
amplification. A high-level amplification is a significant focal gain (at most 10 Mb, above the rest of chromosome 17q)
whose tumour copy number is estimated at 8 or more and, three standard errors below the estimate, still at 6 or
more (the 95% interval of a borderline call can reach below 8); a broad chromosome 17 gain is never called
high-level.</p>
<p>Limits: a tumour fraction below detection is not zero (the estimate needs arm-level copy-number changes in
the tumour); with an unknown tumour fraction the tumour copy number cannot be established unless the plasma
copy number alone reaches 8. A depth profile cannot tell a diploid tumour from a near-triploid or
genome-doubled one: tumour copy numbers are those of the diploid reading, the others are listed beside it, and a
gain that would be high-level under one of them is not called low-level. Intervals reflect sampling and
normalisation noise, not biological variation between draws. Subclonal amplifications appear with a lower copy
number.</p>"""

def _monitor_method(thresholds: dict) -> str:
    """The monitoring rules as applied (the thresholds in the monitor's provenance)."""
    return f"""<p>Each timepoint is compared with the baseline (the first that passed QC) on excess plasma copy
number (PCN - 2), tumour fraction and tumour copy number. A change counts as real when it exceeds measurement
noise: z = change / sqrt(SE<sub>baseline</sub><sup>2</sup> + SE<sub>later</sub><sup>2</sup>), two-sided at |z|
&ge; {thresholds['min_change_z_score']:g}, with each SE from that call's own interval. Molecular response: a
significant fall of at least {thresholds['response_fraction']:.0%} in excess PCN (a fall of ctDNA of 30% or more at
4 weeks predicted response, Parikh 2020; TRIUMPH used day 21). Clearance: ERBB2 gain no longer detected in plasma
although the sample could have detected the baseline level (clearance at cycle 2 day 1 went with response in
HERALD); when the tumour DNA is below detection too, it says nothing of the tumour itself. Progression: a
significant rise of at least {thresholds['progression_fraction']:.0%}, or a gain newly detected at a level the
baseline could have detected, significantly above it. Changes are not computed for a timepoint that failed QC.
Response categories describe the ERBB2 signal whatever the baseline status: on a low-level or broad gain they
are not a response of an actionable amplification. The test assumes independent, roughly normal measurement
errors and does not model biological day-to-day variation; "stable" can also mean too little power to see a
change.</p>"""


def _number(value, digits: int = 2, percent: bool = False) -> str:
    if value is None:
        return "&ndash;"
    return f"{value * 100:.{max(digits - 1, 0)}f}%" if percent else f"{value:.{digits}f}"


def _signed_percent(value) -> str:
    return "&ndash;" if value is None else f"{value * 100:+.0f}%"


def _excess_change_text(excess: dict) -> str:
    """The change relative to the baseline's excess (where it had a gain) and the PCN difference with its
    interval; a dash where no change was computed (QC failed)."""
    if excess.get("difference") is None:
        return "&ndash;"
    relative = "" if excess.get("relative") is None else f"{_signed_percent(excess['relative'])}; "
    low, high = excess["ci95"]
    return f"{relative}PCN {excess['difference']:+.2f} ({low:+.2f} to {high:+.2f})"


def _status_reason(call: dict) -> str:
    return f"<br><span class='small'>ERBB2 status: {escape(str(call['erbb2']['reason']))}</span>"


def _interval(interval, digits: int = 2, percent: bool = False) -> str:
    if not interval or interval[0] is None:
        return ""
    return f" ({_number(interval[0], digits, percent)}&ndash;{_number(interval[1], digits, percent)})"


def _badge(status: str) -> str:
    return f'<span class="status {escape(status)}">{escape(status.replace("_", " "))}</span>'


def _figure(png: bytes | None, caption: str) -> str:
    if not png:
        return f"<figure><p class='small'>({escape(caption)}: figure not available)</p></figure>"
    data = base64.b64encode(png).decode()
    return (f"<figure><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption class='small'>{escape(caption)}</figcaption></figure>")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n"
            f"<div class='disclaimer'>{escape(DISCLAIMER)}</div>\n{body}\n</body></html>\n")


def _tumor_fraction_text(fraction: dict) -> str:
    if fraction.get("detected"):
        return (f"{_number(fraction['estimate'], 2, True)}{_interval(fraction.get('ci95'), 2, True)} "
                f"({escape(str(fraction.get('method')))})")
    text = f"below detection (&lt; {_number(fraction.get('detection_limit'), 2, True)})"
    weighted = fraction.get("size_weighted")
    if weighted and weighted.get("detected"):
        text += (f"; tumour share of size-weighted fragments {_number(weighted['estimate'], 2, True)}"
                 f"{_interval(weighted.get('ci95'), 2, True)}")
        if weighted["above_ceiling"]:
            text += (f", above the {_number(weighted['ceiling'], 2, True)} a tumour fraction below detection "
                     "allows: not used")
    return text


def _readings_text(readings: list) -> str:
    """The other ploidy readings of the profile (call.reading_values), one per line."""
    if not readings:
        return "&ndash;"
    return "<br>".join(
        f"{r['baseline_copy_number']} tumour copies at the baseline"
        + ("" if r["copies_per_step"] is None else f", steps of {r['copies_per_step']}")
        + f": tumour fraction {_number(r['tumor_fraction'], 2, True)}, ERBB2 {_number(r['tumor_copy_number'], 1)}"
        f"{_interval(r['tumor_copy_number_ci95'], 1)} tumour copies" for r in readings)


def _floor_text(floor) -> str:
    """What the high-level rule reads (call.classify): the tumour copy number at min_z_score SEs."""
    return "" if floor is None else f"; at least {_number(floor, 1)} with the confidence a gain needs"


def _qc_table(qc: dict) -> str:
    rows = "".join(f"<tr><th>{escape(str(k).replace('_', ' '))}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in qc.items() if k not in ("pass", "reasons"))
    verdict = "pass" if qc.get("pass") else "FAIL: " + "; ".join(qc.get("reasons", []))
    return f"<p><b>QC:</b> {escape(verdict)}</p><table>{rows}</table>"


def _call_summary(call: dict) -> str:
    erbb2 = call["erbb2"]
    amplicon = erbb2.get("amplicon") or {}
    rows = [
        ("Status", _badge(erbb2["status"])),
        ("Reason", escape(erbb2["reason"])),
        ("ERBB2 plasma copy number", _number(erbb2["plasma_copy_number"]) + _interval(erbb2["plasma_copy_number_ci95"])),
        ("Tumour fraction", _tumor_fraction_text(call["tumor_fraction"])),
        ("ERBB2 tumour copy number", _number(erbb2["tumor_copy_number"], 1) +
         _interval(erbb2["tumor_copy_number_ci95"], 1) + _floor_text(erbb2.get("tumor_copy_number_floor"))),
        ("Other ploidy readings (fit as well)", _readings_text(erbb2.get("ploidy_readings"))),
        ("Focal", {True: "yes", False: "no (broad gain)", None: "&ndash;"}[erbb2["focal"]]),
        ("Amplicon", escape(f"{amplicon['chrom']}:{amplicon['start'] + 1:,}-{amplicon['end']:,} "
                            f"({', '.join(amplicon['genes'])})") if amplicon else "&ndash;"),
        ("Limit of detection", ("&ge; " + _number(erbb2["limit_of_detection_copy_number"], 1)
                                + " tumour copies would have shown (at this sample's tumour fraction and noise)")
         if erbb2["limit_of_detection_copy_number"] is not None else "&ndash;"),
    ]
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _provenance(document: dict) -> str:
    provenance = document.get("provenance", {})
    return (f"<p class='small'>her2cnv {escape(str(provenance.get('version')))}, command "
            f"{escape(str(provenance.get('command', 'monitor')))}; format {escape(str(document.get('format')))}.</p>")


def render_sample_report(call: dict, figures: dict[str, bytes | None]) -> str:
    """One sample's call: summary, figures, QC, method and limits."""
    body = (f"<h2>ERBB2 result</h2>{_call_summary(call)}"
            f"<h2>Copy-number profile</h2><div class='figures'>"
            f"{_figure(figures.get('chr17'), 'chr17 and the 17q12 amplicon')}"
            f"{_figure(figures.get('genome'), 'genome-wide profile with segments')}</div>"
            f"<h2>Quality control</h2>{_qc_table(call['qc'])}"
            f"<h2>Method and limits</h2>{METHOD}{_provenance(call)}")
    return _page(f"her2cnv ERBB2 report: {call['sample']}", body)


def render_patient_report(monitor: dict, calls: dict[str, dict], figures: dict[str, bytes | None]) -> str:
    """A patient's series: trend, per-timepoint table, chr17 views side by side, QC, method and limits."""
    baseline = next((point for point in monitor["timepoints"] if point.get("baseline")), monitor["timepoints"][0])
    not_actionable = "" if baseline["status"] == "high_level_amplification" else (
        "<br><span class='small'>The baseline was not a high-level amplification: a change here is not the "
        "response of an actionable ERBB2 amplification.</span>")
    rows = []
    for point in monitor["timepoints"]:
        change = point.get("change_from_baseline")
        excess = (change or {}).get("excess_plasma_copy_number") or {}
        call = calls[point["sample"]]
        rows.append(
            f"<tr><td>{escape(point['date'])}</td><td>{escape(point['sample'])}</td><td>{_badge(point['status'])}</td>"
            f"<td>{_number(point['plasma_copy_number'])}{_interval(call['erbb2']['plasma_copy_number_ci95'])}</td>"
            f"<td>{_tumor_fraction_text(call['tumor_fraction'])}</td>"
            f"<td>{_number(point['tumor_copy_number'], 1)}{_interval(call['erbb2']['tumor_copy_number_ci95'], 1)}</td>"
            f"<td>{_badge(change['response']) if change else _badge('baseline')}</td>"
            f"<td>{_excess_change_text(excess) if change else ''}</td>"
            f"<td>{escape(change['reason']) if change else ''}"
            f"{_status_reason(call) if point['status'] == 'indeterminate' or not point['qc_pass'] else ''}"
            f"{not_actionable if change and change['response'] != 'not_evaluable' else ''}"
            f"{''.join('<br><b>' + escape(flag) + '</b>' for flag in (change or {}).get('flags', []))}</td></tr>")
    table = ("<table><tr><th>date</th><th>sample</th><th>ERBB2 status</th><th>plasma CN (95% CI)</th>"
             "<th>tumour fraction</th><th>tumour CN (95% CI)</th><th>response</th><th>excess PCN change (95% CI)</th>"
             "<th>reason</th></tr>" + "".join(rows) + "</table>")
    views = "".join(_figure(figures.get(point["sample"]), f"{point['date']} {point['sample']}: chr17")
                    for point in monitor["timepoints"])
    qc = "".join(f"<h3>{escape(point['sample'])}</h3>{_qc_table(calls[point['sample']]['qc'])}"
                 for point in monitor["timepoints"])
    body = (f"<h2>Trend</h2>{_figure(figures.get('trend'), 'ERBB2 plasma copy number and tumour fraction over time')}"
            f"<h2>Timepoints</h2>{table}<h2>chr17 at each timepoint</h2><div class='figures'>{views}</div>"
            f"<h2>Quality control</h2>{qc}<h2>Method and limits</h2>{METHOD}"
            f"{_monitor_method(monitor['provenance']['parameters']['thresholds'])}"
            f"{_provenance(monitor)}")
    return _page(f"her2cnv ERBB2 monitoring: patient {monitor['patient']}", body)


SUMMARY_COLUMNS = ("sample", "patient", "date", "status", "plasma_copy_number", "plasma_copy_number_ci95",
                   "tumor_fraction", "tumor_fraction_detected", "tumor_copy_number", "tumor_copy_number_ci95",
                   "called_on", "focal", "qc_pass", "qc_reasons")


def summary_rows(calls: list[dict]) -> list[dict]:
    """One row per call for a cohort table: status, PCN, TF, tumour CN and QC."""
    def interval(values):  # "low to high": a hyphen would be ambiguous beside a negative bound
        return None if not values or None in values else f"{values[0]:.3g} to {values[1]:.3g}"

    rows = []
    for call in sorted(calls, key=lambda c: c["sample"]):
        erbb2, fraction, qc = call["erbb2"], call["tumor_fraction"], call["qc"]
        rows.append({
            "sample": call["sample"], "patient": call.get("patient"), "date": call.get("date"),
            "status": erbb2["status"], "plasma_copy_number": erbb2["plasma_copy_number"],
            "plasma_copy_number_ci95": interval(erbb2["plasma_copy_number_ci95"]),
            "tumor_fraction": fraction["estimate"], "tumor_fraction_detected": fraction["detected"],
            "tumor_copy_number": erbb2["tumor_copy_number"],
            "tumor_copy_number_ci95": interval(erbb2["tumor_copy_number_ci95"]), "called_on": erbb2["called_on"],
            "focal": erbb2["focal"], "qc_pass": qc["pass"], "qc_reasons": "; ".join(qc["reasons"]),
        })
    return rows
