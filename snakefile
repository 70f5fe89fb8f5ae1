# her2cnv workflow: bins -> count -> pon -> call -> monitor -> summary, every rule one `her2cnv` command.
# Run: snakemake -c 2   (default config simulates a demo cohort; see README "Workflow")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/her2cnv.smk"


rule all:
    input:
        f"{OUTDIR}/cohort_summary.tsv",
        expand(
            f"{OUTDIR}/calls/{{sample}}.{{output}}",
            sample=SAMPLES.index,
            output=CALL_OUTPUTS,
        ),
        expand(
            f"{OUTDIR}/monitor/{{patient}}.{{output}}",
            patient=PATIENTS,
            output=MONITOR_OUTPUTS,
        ),
