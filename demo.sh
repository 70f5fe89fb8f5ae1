#!/usr/bin/env bash
# The README's demo: simulate a small cohort, then bins -> count -> pon -> call, and print the calls.
# Usage: bash demo.sh [OUTDIR]   (default demo/; about a minute on 2 cores)
set -euo pipefail
out=${1:-demo}
her2cnv simulate cohort -o "$out/cohort" --quiet
her2cnv bins --fasta "$out/cohort/reference.fa" -o "$out/bins.tsv"
samples=$(awk -F'\t' 'NR > 1 {print $1}' "$out/cohort/samples.tsv")
for sample in $samples; do
    her2cnv count "$out/cohort/$sample.bam" --bins "$out/bins.tsv" -o "$out/$sample.counts.tsv" --quiet
done
normals=$(awk -F'\t' -v dir="$out" 'NR > 1 && $4 == "normal" {print dir "/" $1 ".counts.tsv"}' "$out/cohort/samples.tsv")
her2cnv pon $normals -o "$out/pon.npz" --quiet
for sample in $(awk -F'\t' 'NR > 1 && $4 == "plasma" {print $1}' "$out/cohort/samples.tsv"); do
    her2cnv call "$out/$sample.counts.tsv" --pon "$out/pon.npz" -o "$out/calls" --quiet
done
python3 - "$out" <<'PY'
import json, pathlib, sys
print(f"{'sample':16} {'status':26} {'PCN':>6} {'TF':>7} {'tumour CN':>10}")
for path in sorted(pathlib.Path(sys.argv[1], "calls").glob("*.call.json")):
    call = json.loads(path.read_text())
    erbb2, fraction = call["erbb2"], call["tumor_fraction"]
    tf = f"{fraction['estimate']:.1%}" if fraction["detected"] else "<" + f"{fraction['detection_limit']:.0%}"
    cn = "-" if erbb2["tumor_copy_number"] is None else f"{erbb2['tumor_copy_number']:.1f}"
    print(f"{call['sample']:16} {erbb2['status']:26} {erbb2['plasma_copy_number']:6.2f} {tf:>7} {cn:>10}")
PY
echo "outputs in $out/calls (call.json, ratios.tsv, .seg, PNG plots)"
