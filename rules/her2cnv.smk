# One rule per stage; each runs the her2cnv command of the same name and logs to OUTDIR/logs/.


# Defined only for the demo: it must never claim a user's reference as its output.
if DEMO["simulate"]:

    rule simulate_cohort:
        output:
            reference=DEMO_REFERENCE,
            bams=simulated_bams(),
        log:
            f"{LOGS}/simulate_cohort.log",
        conda:
            "../envs/her2cnv.yaml"
        threads: 2
        resources:
            mem_mb=2000,
        params:
            directory=lambda wildcards, output: os.path.dirname(output.reference),
            options=(
                f"--normals {DEMO['normals']} --depth {DEMO['depth']} "
                f"--scale {DEMO['scale']} --seed {DEMO['seed']}"
            ),
        shell:
            "her2cnv simulate cohort -o {params.directory:q} {params.options} --threads {threads} --quiet 2> {log:q}"


rule bins:
    input:
        reference=config["reference"],
        targets=config["targets"] or [],
    output:
        f"{OUTDIR}/bins.tsv",
    log:
        f"{LOGS}/bins.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        layout=(
            f"--targets {shlex.quote(config['targets'])} --off-target-size {config['off_target_size']}"
            if config["targets"]
            else f"--bin-size {config['bin_size']}"
        ),
    shell:
        "her2cnv bins --fasta {input.reference:q} {params.layout} -o {output:q} --quiet 2> {log:q}"


rule count:
    input:
        bam=bam_of,
        bins=f"{OUTDIR}/bins.tsv",
        reference=config["reference"],
    output:
        f"{OUTDIR}/counts/{{sample}}.counts.tsv",
    log:
        f"{LOGS}/count/{{sample}}.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 2
    resources:
        mem_mb=500,
    params:
        options=config["count_options"],
        extra_threads=lambda wildcards, threads: threads - 1,
        # a prebuilt panel made with other bins or filters is refused before the count, not by each call after it
        panel=f"--pon {shlex.quote(config['pon'])}" if config["pon"] else "",
    shell:
        "her2cnv count {input.bam:q} --bins {input.bins:q} --sample {wildcards.sample} --reference {input.reference:q} "
        "--threads {params.extra_threads} {params.options} {params.panel} -o {output:q} --quiet 2> {log:q}"


rule pon:
    input:
        expand(f"{OUTDIR}/counts/{{sample}}.counts.tsv", sample=NORMALS),
    output:
        f"{OUTDIR}/pon/pon.npz",
    log:
        f"{LOGS}/pon.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    shell:
        "her2cnv pon {input:q} -o {output:q} --quiet 2> {log:q}"


rule call:
    input:
        counts=f"{OUTDIR}/counts/{{sample}}.counts.tsv",
        pon=PON,
    output:
        [f"{OUTDIR}/calls/{{sample}}.{output}" for output in CALL_OUTPUTS],
    log:
        f"{LOGS}/call/{{sample}}.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 1
    resources:
        mem_mb=1500,
    params:
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
        patient=patient_options,
        options=config["call_options"],
    shell:
        "her2cnv call {input.counts:q} --pon {input.pon:q} -o {params.outdir:q} {params.patient} {params.options} "
        "--quiet 2> {log:q}"


rule monitor:
    input:
        calls_of_patient,
    output:
        [f"{OUTDIR}/monitor/{{patient}}.{output}" for output in MONITOR_OUTPUTS],
    log:
        f"{LOGS}/monitor/{{patient}}.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "her2cnv monitor {input:q} -o {params.outdir:q} --quiet 2> {log:q}"


rule summary:
    input:
        expand(f"{OUTDIR}/calls/{{sample}}.call.json", sample=SAMPLES.index),
    output:
        f"{OUTDIR}/cohort_summary.tsv",
    log:
        f"{LOGS}/summary.log",
    conda:
        "../envs/her2cnv.yaml"
    threads: 1
    resources:
        mem_mb=500,
    shell:
        "her2cnv summary {input:q} -o {output:q} --quiet 2> {log:q}"
