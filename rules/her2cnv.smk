# One rule per stage; each runs the her2cnv command of the same name and logs to OUTDIR/logs/.


rule simulate_cohort:
    output:
        reference=config["reference"],
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
        options=f"--normals {DEMO['normals']} --depth {DEMO['depth']} --scale {DEMO['scale']} --seed {DEMO['seed']}",
    shell:
        "her2cnv simulate cohort -o {params.directory} {params.options} --threads {threads} --quiet 2> {log}"


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
            f"--targets {config['targets']} --off-target-size {config['off_target_size']}"
            if config["targets"]
            else f"--bin-size {config['bin_size']}"
        ),
    shell:
        "her2cnv bins --fasta {input.reference} {params.layout} -o {output} --quiet 2> {log}"


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
    shell:
        "her2cnv count {input.bam} --bins {input.bins} --sample {wildcards.sample} "
        "--reference {input.reference} --threads {params.extra_threads} {params.options} -o {output} --quiet 2> {log}"


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
        "her2cnv pon {input} -o {output} --quiet 2> {log}"


rule call:
    input:
        counts=f"{OUTDIR}/counts/{{sample}}.counts.tsv",
        pon=PON,
    output:
        f"{OUTDIR}/calls/{{sample}}.call.json",
        f"{OUTDIR}/calls/{{sample}}.report.html",
        f"{OUTDIR}/calls/{{sample}}.ratios.tsv",
        f"{OUTDIR}/calls/{{sample}}.seg",
        [f"{OUTDIR}/calls/{{sample}}.{kind}.png" for kind in ("genome", "chr17")]
        if PLOTS
        else [],
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
        "her2cnv call {input.counts} --pon {input.pon} -o {params.outdir} {params.patient} {params.options} "
        "--quiet 2> {log}"


rule monitor:
    input:
        calls_of_patient,
    output:
        f"{OUTDIR}/monitor/{{patient}}.monitor.json",
        f"{OUTDIR}/monitor/{{patient}}.monitor.tsv",
        f"{OUTDIR}/monitor/{{patient}}.monitor.html",
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
        "her2cnv monitor {input} -o {params.outdir} --quiet 2> {log}"


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
        "her2cnv summary {input} -o {output} --quiet 2> {log}"
