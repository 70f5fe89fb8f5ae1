#!/usr/bin/env bash
# A stand-in cluster for CI: Snakemake's cluster-generic executor hands each job script to this
# command, which runs it as a background process and prints a job id, as sbatch or qsub would.
# Snakemake then waits for the job's own finished/failed marker files, as on a real cluster.
set -euo pipefail
jobscript="${@: -1}"
mkdir -p .test/results/cluster_logs
nohup bash "$jobscript" > ".test/results/cluster_logs/$(basename "$jobscript").log" 2>&1 &
echo $!
