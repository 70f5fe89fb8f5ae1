"""The failure matrix: every way an input or the environment can be wrong, through ``her2cnv.cli.main``.

Each failing case must exit with its status (2 bad input or usage, 1 environment,
130 interrupted), print exactly one line ``her2cnv: error: ...`` naming the file
(or option) and what is wrong, print no traceback (htslib's own messages
included: stderr is captured at the file-descriptor level), and leave no output
file, not even a temporary one. A few bad inputs are not errors but clean
answers (``indeterminate`` with a QC reason); they are checked at the end.
"""
from __future__ import annotations

import builtins
import errno
import gzip
import io as _io
import json
import os
import re
import shutil
import signal
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam
import pytest

import her2cnv.cli.count
import her2cnv.counts
import her2cnv.errors
import her2cnv.io
from her2cnv.cli import main

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


# ---------------------------------------------------------------- building bad inputs

def bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each BGZF block: BSIZE (total size - 1) sits at bytes 16-17 of the block."""
    blocks, start = [], 0
    while start < len(data):
        end = start + int.from_bytes(data[start + 16:start + 18], "little") + 1
        blocks.append((start, end))
        start = end
    return blocks


def rewrite_bam(source: Path, target: Path, *, contig_name=lambda name: name, lengths=None, sample=None,
                swap_first_records: bool = False) -> Path:
    """Copy a BAM with its header edited (contig names or lengths, read-group SM), or records out of order."""
    with pysam.AlignmentFile(str(source)) as alignments:
        header = alignments.header.to_dict()
        records = list(alignments.fetch(until_eof=True))
    for sq in header["SQ"]:
        sq["LN"] = (lengths or {}).get(sq["SN"], sq["LN"])
        sq["SN"] = contig_name(sq["SN"])
    if sample is not None:
        header["RG"] = [dict(group, SM=sample) for group in header["RG"]]
    if swap_first_records:
        records = records[1000:2000] + records[:1000] + records[2000:]
    with pysam.AlignmentFile(str(target), "wb", header=header) as output:
        for record in records:
            output.write(record)
    return target


def rewrite_panel(source: Path, target: Path, **metadata) -> Path:
    """Copy a panel of normals with fields of its JSON metadata replaced (the arrays are untouched)."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as output:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename == "metadata.npy":
                fields = json.loads(np.load(_io.BytesIO(data)).tobytes().decode())
                fields.update(metadata)
                buffer = _io.BytesIO()
                np.save(buffer, np.frombuffer(json.dumps(fields, sort_keys=True).encode(), dtype=np.uint8))
                data = buffer.getvalue()
            output.writestr(info, data)
    return target


def edit_counts(source: Path, target: Path, edit_row=None, drop_column: str | None = None,
                header_edit=None) -> Path:
    """Copy a counts TSV, editing rows (dicts of column -> text) or dropping a column or a header field."""
    lines = source.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    columns = lines[len(header)].split("\t")
    rows = [dict(zip(columns, line.split("\t"))) for line in lines[len(header) + 1:]]
    if header_edit is not None:
        header = [header_edit(line) for line in header]
    if edit_row is not None:
        rows = [edit_row(i, dict(row)) for i, row in enumerate(rows)]
    kept = [c for c in columns if c != drop_column]
    body = ["\t".join(kept)] + ["\t".join(row[c] for c in kept) for row in rows]
    target.write_text("\n".join(header + body) + "\n")
    return target


# ---------------------------------------------------------------- the cases

@dataclass
class Case:
    argv: list
    status: int
    names: str  # the file or option the message must name
    phrase: str  # what the message must say is wrong
    outputs: list = field(default_factory=list)  # files, or directories that must hold no file
    logs_first: bool = False  # the command logs progress (INFO/WARNING lines) before it fails


class Context:
    """What a case builder gets: the shared cohort, a fresh directory and monkeypatch."""

    def __init__(self, cohort, tmp_path: Path, monkeypatch):
        self.cohort, self.tmp, self.monkeypatch = cohort, tmp_path, monkeypatch
        self.out = tmp_path / "out"  # the output directory of 'call' and 'run' cases
        self.counts_out = tmp_path / "out.counts.tsv"  # the output of 'count' cases

    def count(self, bam, *options, status=2, names=None, phrase=""):
        return Case(["count", bam, "--bins", self.cohort.bins, "-o", self.counts_out, *options], status,
                    names or Path(bam).name, phrase, [self.counts_out])

    def call(self, counts=None, *options, pon=None, status=2, names=None, phrase=""):
        counts = counts or self.cohort.plasma_counts
        return Case(["call", counts, "--pon", pon or self.cohort.pon, "-o", self.out, "--no-plots", *options],
                    status, names or Path(counts).name, phrase, [self.out])

    def run(self, *options, pon=None, status=2, names=None, phrase=""):
        return Case(["run", self.cohort.plasma, "--bins", self.cohort.bins, "--pon", pon or self.cohort.pon,
                     "-o", self.out, "--no-plots", *options], status, names, phrase, [self.out])

    def bam_bytes(self) -> bytes:
        return self.cohort.normals[0].read_bytes()

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def cram(self) -> Path:
        cram = self.tmp / "N0.cram"
        pysam.view("-C", "-T", str(self.cohort.reference), "-o", str(cram), str(self.cohort.normals[0]),
                   catch_stdout=False)
        return cram

    def other_reference(self) -> Path:
        """A FASTA with the same contig names and lengths but another sequence (bases permuted)."""
        target = self.tmp / "other.fa"
        target.write_bytes(self.cohort.reference.read_bytes().translate(bytes.maketrans(b"ACGT", b"CATG")))
        shutil.copy(f"{self.cohort.reference}.fai", f"{target}.fai")
        return target


def case_bam_missing(c: Context):
    return c.count(c.tmp / "missing.bam", phrase="no such file")


def case_bam_empty(c: Context):
    return c.count(c.write("empty.bam", b""), phrase="file is empty")


def case_bam_truncated_half(c: Context):
    data = c.bam_bytes()
    return c.count(c.write("half.bam", data[:len(data) // 2]), phrase="truncated")


def case_bam_truncated_in_header(c: Context):
    first_block_end = bgzf_blocks(c.bam_bytes())[0][1]
    return c.count(c.write("header_cut.bam", c.bam_bytes()[:first_block_end // 2]), phrase="truncated")


def case_bam_truncated_mid_block_with_eof_marker(c: Context):
    """Cut inside a record block but with the BGZF end-of-file marker: only reading the records can tell."""
    data = c.bam_bytes()
    start, end = bgzf_blocks(data)[len(bgzf_blocks(data)) // 2]
    return c.count(c.write("cut_eof.bam", data[:(start + end) // 2] + BGZF_EOF), phrase="truncated or corrupt")


def case_bam_corrupt_block(c: Context):
    data = bytearray(c.bam_bytes())
    start, end = bgzf_blocks(bytes(data))[len(bgzf_blocks(bytes(data))) // 2]
    for i in range(start + 40, min(end - 10, start + 240)):  # inside the deflate payload: the CRC32 must catch it
        data[i] ^= 0x5A
    return c.count(c.write("corrupt.bam", bytes(data)), phrase="truncated or corrupt")


def case_bam_corrupt_block_read_by_threads(c: Context):
    """The same corruption in an indexed BAM, read by threads over regions: the same one-line error."""
    data = bytearray(c.bam_bytes())
    start, end = bgzf_blocks(bytes(data))[len(bgzf_blocks(bytes(data))) // 2]
    for i in range(start + 40, min(end - 10, start + 240)):
        data[i] ^= 0x5A
    bam = c.write("corrupt_indexed.bam", bytes(data))
    shutil.copy(f"{c.cohort.normals[0]}.bai", f"{bam}.bai")
    case = c.count(bam, "--threads", "2", phrase="truncated or corrupt")
    case.logs_first = True  # the warning that reading by region failed and the file is read from start to end
    return case


def case_bam_is_not_a_bam(c: Context):
    return c.count(c.write("text.bam", "this is not a BAM\n" * 10), phrase="cannot read as BAM/CRAM/SAM")


def case_bam_unsorted(c: Context):
    bam = rewrite_bam(c.cohort.normals[0], c.tmp / "unsorted.bam", swap_first_records=True)
    return c.count(bam, phrase="not coordinate-sorted")


def case_cram_without_reference(c: Context):
    return c.count(c.cram(), phrase="--reference")


def case_cram_with_missing_reference(c: Context):
    return c.count(c.cram(), "--reference", c.tmp / "absent.fa", names="absent.fa", phrase="no such reference")


def case_cram_with_wrong_reference(c: Context):
    """Same contig names and lengths, other sequence: htslib's slice MD5 check refuses it."""
    return c.count(c.cram(), "--reference", c.other_reference(),
                   phrase="other.fa is not the reference it was encoded with")


def case_bam_chr17_of_another_assembly(c: Context):
    bam = rewrite_bam(c.cohort.normals[0], c.tmp / "grch37.bam", lengths={"chr17": 81_195_210})
    return c.count(bam, phrase="another assembly")


def case_bam_contig_shorter_than_bins(c: Context):
    bam = rewrite_bam(c.cohort.normals[0], c.tmp / "short8.bam", lengths={"chr8": 5_000_000})
    return c.count(bam, phrase="bins reach")


def case_bam_without_the_bins_contigs(c: Context):
    bam = rewrite_bam(c.cohort.normals[0], c.tmp / "renamed.bam", contig_name=lambda name: f"HLA-{name}")
    return c.count(bam, phrase="not in the BAM header")


def case_bins_file_is_a_counts_file(c: Context):
    return Case(["count", c.cohort.normals[0], "--bins", c.cohort.plasma_counts, "-o", c.counts_out], 2,
                "S.counts.tsv", "expected her2cnv.bins", [c.counts_out])


def case_sample_option_unsafe(c: Context):
    return c.count(c.cohort.normals[0], "--sample", "../x", names="--sample", phrase="not safe as a file name")


def case_sample_in_read_group_unsafe(c: Context):
    bam = rewrite_bam(c.cohort.normals[0], c.tmp / "evil.bam", sample="../../etc/x")
    return c.count(bam, phrase="set one with --sample")


def case_dilute_sample_unsafe(c: Context):
    output = c.tmp / "D.bam"
    return Case(["dilute", c.cohort.plasma, c.cohort.normals[0], "--fraction", 0.1, "-o", output, "--sample", "../D"],
                2, "--sample", "not safe as a file name", [output, c.tmp])


def case_call_patient_unsafe(c: Context):
    return c.call(None, "--patient", "../../P1", names="patient name '../../P1'", phrase="not safe as a file name")


def case_min_mapq_out_of_range(c: Context):
    return c.count(c.cohort.normals[0], "--min-mapq", 300, names="--min-mapq", phrase="0-255")


def case_count_output_under_a_file(c: Context):
    c.write("a_file", "")
    output = c.tmp / "a_file" / "x.counts.tsv"
    return Case(["count", c.cohort.normals[0], "--bins", c.cohort.bins, "-o", output], 1, "a_file",
                "output directory", [output])


def case_count_output_directory_not_writable(c: Context):
    """chmod 0o500; as root chmod does not stop writes, so a regular file stands in for the directory."""
    directory = c.tmp / "read_only"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        (directory / "probe").touch()
    except PermissionError:
        return Case(["count", c.cohort.normals[0], "--bins", c.cohort.bins, "-o", directory / "x.counts.tsv"], 1,
                    "read_only", "Permission denied", [directory])
    (directory / "probe").unlink()
    directory.chmod(0o700)
    directory.rmdir()
    c.write("read_only", "")
    return Case(["count", c.cohort.normals[0], "--bins", c.cohort.bins, "-o", directory / "x.counts.tsv"], 1,
                "read_only", "output directory", [directory / "x.counts.tsv"])


class _FullDisk:
    """A file whose writes store half the data, then fail with ENOSPC."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.handle.close()

    def write(self, data):
        self.handle.write(data[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _full_disk_open(file, mode="r", *args, **kwargs):
    handle = builtins.open(file, mode, *args, **kwargs)
    return _FullDisk(handle) if "w" in mode else handle


def case_count_disk_full(c: Context):
    c.monkeypatch.setattr(her2cnv.io, "open", _full_disk_open, raising=False)
    return c.count(c.cohort.normals[0], status=1, names="out.counts.tsv", phrase="No space left on device")


def case_call_disk_full(c: Context):
    c.monkeypatch.setattr(her2cnv.io, "open", _full_disk_open, raising=False)
    return c.call(status=1, names="S.ratios.tsv", phrase="No space left on device")


def case_pon_disk_full_at_rename(c: Context):
    def replace(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    c.monkeypatch.setattr(her2cnv.io.os, "replace", replace)
    output = c.tmp / "pon.npz"
    return Case(["pon", *c.cohort.normal_counts, "-o", output], 1, "pon.npz", "No space left on device",
                [output, c.tmp], logs_first=True)


def case_count_read_only_filesystem(c: Context):
    """EROFS: the temporary cannot be made, and removing it fails too; that second error must not hide the first
    (it once printed a traceback)."""
    def read_only_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return builtins.open(file, mode, *args, **kwargs)

    def read_only_unlink(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    c.monkeypatch.setattr(her2cnv.io, "open", read_only_open, raising=False)
    c.monkeypatch.setattr(her2cnv.io.os, "unlink", read_only_unlink)
    return c.count(c.cohort.normals[0], status=1, names="out.counts.tsv", phrase="Read-only file system")


def case_bam_index_truncated(c: Context):
    """htslib frees memory twice on some truncated .bai files and aborts the process (exit 134): the index's
    layout is checked first. 1,000 bytes is one of those lengths."""
    bam = c.tmp / "cut_index.bam"
    shutil.copy(c.cohort.normals[0], bam)
    Path(f"{bam}.bai").write_bytes(Path(f"{c.cohort.normals[0]}.bai").read_bytes()[:1000])
    return c.count(bam, names="cut_index.bam.bai", phrase="a damaged BAM index (it ends inside its data: truncated)")


def case_bam_csi_truncated(c: Context):
    """A .csi, which htslib takes before a .bai, cut and compressed again: htslib read past its buffer and the
    process died (exit 139), or skipped it as if there were no index."""
    return _damaged_csi(c, lambda layout: layout[:len(layout) // 2],
                        "a damaged BAM index (it ends inside its data: truncated)")


def case_bam_csi_with_a_bin_outside_its_scheme(c: Context):
    """One byte of a bin number changed (a fuzzed .csi): htslib looped for ever reading the first contig."""
    def edit(layout: bytes) -> bytes:
        (aux_length,) = struct.unpack_from("<i", layout, 12)
        first_bin = 16 + aux_length + 4 + 4  # after the header, the reference count and the first bin count
        return layout[:first_bin + 3] + b"\xc7" + layout[first_bin + 4:]

    return _damaged_csi(c, edit, "is not a bin of its scheme); rebuild it with 'samtools index' or remove it")


def case_bam_csi_deeper_than_htslib_can_bin(c: Context):
    """htslib counts a scheme's bins in an int, which a depth of 10 or more overflows: at 11 its region reads
    looped for ever, deaf to SIGTERM (audit 13B)."""
    return _damaged_csi(c, lambda layout: layout[:8] + struct.pack("<i", 11) + layout[12:],
                        "a binning depth of 11 (htslib handles 0-9)")


def case_bam_index_that_is_no_index(c: Context):
    """A file under an index name that is no index (here a stray x.bam.csi, which htslib takes before the sound
    x.bam.bai): htslib ignored it and read the BAM without an index, saying nothing."""
    bam = c.tmp / "stray_index.bam"
    shutil.copy(c.cohort.normals[0], bam)
    shutil.copy(f"{c.cohort.normals[0]}.bai", f"{bam}.bai")
    Path(f"{bam}.csi").write_text("chr17\t39688094\t39728658\tERBB2\n")
    return c.count(bam, "--threads", 1, names="stray_index.bam.csi",
                   phrase="a damaged BAM index (it starts as neither a BAI nor a CSI does: not an index)")


def _damaged_csi(c: Context, edit, phrase: str) -> Case:
    bam = c.tmp / "damaged_index.bam"
    shutil.copy(c.cohort.normals[0], bam)
    shutil.copy(f"{c.cohort.normals[0]}.bai", f"{bam}.bai")  # a sound .bai is not the one htslib would read
    pysam.index("-c", str(bam))
    layout = gzip.decompress(Path(f"{bam}.csi").read_bytes())
    with pysam.BGZFile(f"{bam}.csi", "wb") as index:
        index.write(edit(layout))
    return c.count(bam, "--threads", 1, names="damaged_index.bam.csi", phrase=phrase)  # readers over regions


def case_count_output_is_a_pipe(c: Context):
    """An output that exists and is not a regular file (a FIFO here; as root, /dev/null or /dev/full) must not
    be renamed over: it once replaced /dev/full with a bins table."""
    os.mkfifo(c.tmp / "fifo")
    return Case(["count", c.cohort.normals[0], "--bins", c.cohort.bins, "-o", c.tmp / "fifo"], 1, "fifo",
                "exists and is not a regular file", [])


def case_dilute_one_file_as_both(c: Context):
    """A copy of the tumour BAM given as the normal: every fragment would be taken twice."""
    output, copy = c.tmp / "D.bam", c.tmp / "copy.bam"
    shutil.copy(c.cohort.plasma, copy)
    return Case(["dilute", c.cohort.plasma, copy, "--fraction", 0.1, "-o", output], 2,
                "copy.bam", "is the same file as", [output])


def interrupt_count(c: Context, report) -> None:
    """Count in small chunks, calling ``report`` at each progress report (between chunks of the loop)."""
    class Bar:
        def __call__(self, fraction):
            report(fraction)

        def close(self):
            pass

    c.monkeypatch.setattr(her2cnv.counts, "CHUNK_RECORDS", 5_000)
    c.monkeypatch.setattr(her2cnv.cli.count, "progress_bar", lambda args, label: Bar())


def ctrl_c(_fraction):
    raise KeyboardInterrupt


def case_interrupt_mid_count(c: Context):
    """Ctrl-C between two chunks of the counting loop."""
    reports = []

    def at_the_second_report(fraction):
        reports.append(fraction)
        if len(reports) == 2:
            raise KeyboardInterrupt

    interrupt_count(c, at_the_second_report)
    return c.count(c.cohort.normals[0], status=130, names="her2cnv: error:", phrase="interrupted")


def case_interrupt_mid_count_with_threads(c: Context):
    """Ctrl-C while threads read an indexed BAM by region (the first progress report comes once they run)."""
    assert Path(f"{c.cohort.normals[0]}.bai").exists()
    interrupt_count(c, ctrl_c)
    return c.count(c.cohort.normals[0], "--threads", "2", status=130, names="her2cnv: error:", phrase="interrupted")


def case_interrupt_while_writing(c: Context):
    """Ctrl-C half-way through writing the output: the temporary file must go too."""
    def interrupted_open(file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        if "w" in mode:
            handle.write(b"partial")
            handle.close()
            raise KeyboardInterrupt
        return handle

    c.monkeypatch.setattr(her2cnv.io, "open", interrupted_open, raising=False)
    return c.count(c.cohort.normals[0], status=130, names="her2cnv: error:", phrase="interrupted")


def case_run_interrupted_mid_count(c: Context):
    case_interrupt_mid_count(c)
    return c.run(status=130, names="her2cnv: error:", phrase="interrupted")


def case_terminated_mid_count(c: Context):
    """SIGTERM (a scheduler cancelling the job) is unwound like Ctrl-C: one line, status 143, nothing left."""
    interrupt_count(c, lambda _fraction: os.kill(os.getpid(), signal.SIGTERM))
    return c.count(c.cohort.normals[0], status=143, names="her2cnv: error:", phrase="terminated (SIGTERM)")


# -- outputs that would replace inputs, or be left half-written

def case_count_output_is_the_bam(c: Context):
    bam = c.tmp / "N0.bam"
    shutil.copy(c.cohort.normals[0], bam)
    return Case(["count", bam, "--bins", c.cohort.bins, "-o", bam], 2, "N0.bam", "is one of this command's inputs")


def case_pon_output_is_a_normal(c: Context):
    normals = [c.tmp / f"N{i}.counts.tsv" for i in range(3)]
    for source, target in zip(c.cohort.normal_counts, normals):
        shutil.copy(source, target)
    return Case(["pon", *normals, "-o", normals[0]], 2, "N0.counts.tsv", "is one of this command's inputs")


def case_call_leaves_no_partial_set(c: Context):
    """The call.json cannot be written (a directory holds its name): the ratios, .seg and report written before
    it must not be left behind, beside what could be an older call.json."""
    (c.out / "S.call.json").mkdir(parents=True)
    return c.call(status=1, names="S.call.json", phrase="cannot write")


def edited_call(c: Context, name: str, edit) -> Path:
    document = json.loads(c.cohort.call.read_text())
    edit(document)
    return c.write(name, json.dumps(document))


def case_report_of_an_edited_call(c: Context):
    call = edited_call(c, "S.call.json", lambda d: d["erbb2"].update(plasma_copy_number_ci95=[1]))
    output = c.tmp / "S.html"
    return Case(["report", call, "-o", output], 2, "S.call.json", "call field 'erbb2.plasma_copy_number_ci95'",
                [output])


def case_summary_of_a_call_without_sample(c: Context):
    call = edited_call(c, "S.call.json", lambda d: d.pop("sample"))
    output = c.tmp / "summary.tsv"
    return Case(["summary", call, "-o", output], 2, "S.call.json", "call lacks 'sample'", [output])


def case_monitor_call_with_an_escaping_sample(c: Context):
    call = edited_call(c, "S.call.json", lambda d: d.update(sample="../../x"))
    return Case(["monitor", c.cohort.call, call, "-o", c.out], 2, "S.call.json", "call field 'sample'", [c.tmp])


def case_monitor_patient_option_does_not_merge_patients(c: Context):
    other = edited_call(c, "T.call.json", lambda d: d.update(sample="T", patient="P2", date="2026-02-01"))
    return Case(["monitor", c.cohort.call, other, "-o", c.out, "--patient", "P1"], 2, "her2cnv: error:",
                "the calls name patient(s) P2, not P1", [c.tmp])


# -- panel of normals

def case_pon_missing(c: Context):
    return c.call(pon=c.tmp / "absent.npz", names="absent.npz", phrase="no such panel of normals")


def case_pon_truncated(c: Context):
    data = c.cohort.pon.read_bytes()
    return c.call(pon=c.write("cut.npz", data[:len(data) // 2]), names="cut.npz",
                  phrase="not a readable her2cnv panel of normals")


def case_pon_garbage(c: Context):
    return c.call(pon=c.write("garbage.npz", b"garbage " * 200), names="garbage.npz",
                  phrase="not a readable her2cnv panel of normals")


def case_pon_garbage_does_not_suggest_unpickling(c: Context):
    """numpy's own message for a non-zip file ('contains pickled data ... if you trust the file') must not
    reach users: her2cnv never unpickles, so the advice is wrong and unsafe. Needs the io.py change."""
    case = case_pon_garbage(c)
    case.phrase = "not a complete .npz archive"
    return case


def case_pon_with_a_pickled_array(c: Context):
    """An object array inside the .npz would need unpickling (code execution): it must be refused."""
    pon = c.tmp / "pickled.npz"
    with zipfile.ZipFile(c.cohort.pon) as archive, zipfile.ZipFile(pon, "w") as output:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith(".mask.npy"):
                buffer = _io.BytesIO()
                np.save(buffer, np.array([{"not": "data"}], dtype=object), allow_pickle=True)
                data = buffer.getvalue()
            output.writestr(info, data)
    return c.call(pon=pon, names="pickled.npz", phrase="not a readable her2cnv panel of normals")


def case_pon_is_a_counts_file(c: Context):
    return c.call(pon=c.cohort.plasma_counts, names="S.counts.tsv", phrase="not a readable her2cnv panel")


def case_pon_newer_format(c: Context):
    pon = rewrite_panel(c.cohort.pon, c.tmp / "v9.npz", format="her2cnv.pon/9")
    return c.call(pon=pon, names="v9.npz", phrase="newer than this her2cnv")


def case_pon_other_assembly(c: Context):
    pon = rewrite_panel(c.cohort.pon, c.tmp / "grch37.npz", assembly="GRCh37")
    return c.call(pon=pon, phrase="grch37.npz is GRCh37")


def case_pon_from_two_normals(c: Context):
    output = c.tmp / "pon.npz"
    return Case(["pon", *c.cohort.normal_counts[:2], "-o", output], 2, "panel of normals",
                "at least 3 are needed", [output, c.tmp])


def case_pon_with_an_empty_normal(c: Context):
    """A library with no usable fragment is flat, passes the outlier tests, and once erased ERBB2 amplifications."""
    output, empty = c.tmp / "pon.npz", c.tmp / "N9.counts.tsv"
    edit_counts(c.cohort.normal_counts[0], empty, edit_row=lambda i, row: {**row, "count": "0", "short_count": "0"},
                header_edit=lambda line: re.sub('"fragments_counted":[0-9]+', '"fragments_counted":0',
                                                line.replace('"N0"', '"N9"')))
    return Case(["pon", *c.cohort.normal_counts, empty, "-o", output], 2, empty.name,
                "normal N9 has only 0 fragments counted", [output, c.tmp])


def case_pon_same_normal_twice(c: Context):
    output = c.tmp / "pon.npz"
    first = c.cohort.normal_counts[0]
    return Case(["pon", first, *c.cohort.normal_counts[1:3], first, "-o", output], 2, first.name,
                "also in", [output, c.tmp])


def case_counts_from_other_bins(c: Context):
    targets = c.write("targets.bed", "".join(f"chr17\t{s}\t{s + 5000}\n" for s in range(39_000_000, 41_000_000,
                                                                                      50_000)))
    other_bins = c.tmp / "target_bins.tsv"
    assert main(["bins", "--fasta", str(c.cohort.reference), "--targets", str(targets), "-o", str(other_bins),
                 "--quiet"]) == 0
    counts = c.tmp / "other.counts.tsv"
    assert main(["count", str(c.cohort.normals[0]), "--bins", str(other_bins), "-o", str(counts), "--quiet"]) == 0
    return c.call(counts, phrase="other bins than the panel of normals")


def case_normalize_counts_from_other_bins(c: Context):
    case = case_counts_from_other_bins(c)
    output = c.tmp / "S.ratios.tsv"
    return Case(["normalize", case.argv[1], "--pon", c.cohort.pon, "-o", output], 2, "other.counts.tsv",
                "other bins than the panel", [output])


def case_run_with_bad_pon_fails_before_counting(c: Context):
    """'run' checks the panel first: no counts.tsv may be written for a call that cannot be made."""
    pon = rewrite_panel(c.cohort.pon, c.tmp / "v9.npz", format="her2cnv.pon/9")
    return c.run(pon=pon, names="v9.npz", phrase="newer than this her2cnv")


# -- counts TSV

def case_counts_missing_column(c: Context):
    return c.call(edit_counts(c.cohort.plasma_counts, c.tmp / "nocol.counts.tsv", drop_column="short_count"),
                  phrase="missing column(s) short_count")


def case_counts_not_numeric(c: Context):
    def edit(i, row):
        if i == 7:
            row["count"] = "12x"
        return row

    return c.call(edit_counts(c.cohort.plasma_counts, c.tmp / "text.counts.tsv", edit_row=edit),
                  phrase="column count holds values that are not ints")


def case_counts_negative(c: Context):
    def edit(i, row):
        if i == 7:
            row["count"] = "-3"
        return row

    return c.call(edit_counts(c.cohort.plasma_counts, c.tmp / "neg.counts.tsv", edit_row=edit),
                  phrase="negative counts")


def _counted_in_a_window(c: Context, bam: Path) -> Path:
    counts = c.tmp / "window.counts.tsv"
    assert main(["count", str(bam), "--bins", str(c.cohort.bins), "-o", str(counts), "--fragment-length", "90-150",
                 "--quiet"]) == 0
    return counts


def case_call_counts_with_other_filters_than_the_panel(c: Context):
    """A length window reads every bin at another depth than the panel's normals: refused, not miscalled
    (a TF-20% sample read as 39.5%, plasma CN 9.4 for 5.6, QC passing)."""
    return c.call(_counted_in_a_window(c, c.cohort.plasma), phrase="(--fragment-length 90-150 vs none)")


def case_count_with_other_filters_than_the_panel(c: Context):
    """'count --pon' refuses before counting what 'call' would refuse after it (the workflow passes a prebuilt
    panel so)."""
    return c.count(c.cohort.plasma, "--pon", c.cohort.pon, "--fragment-length", "90-150",
                   names=f"{c.cohort.plasma.name} (these count options)",
                   phrase="(--fragment-length 90-150 vs none)")


def case_count_with_other_bins_than_the_panel(c: Context):
    other_bins = c.tmp / "wide_bins.tsv"
    assert main(["bins", "--fasta", str(c.cohort.reference), "--bin-size", "500000", "-o", str(other_bins),
                 "--quiet"]) == 0
    return Case(["count", c.cohort.plasma, "--bins", other_bins, "--pon", c.cohort.pon, "-o", c.counts_out], 2,
                "wide_bins.tsv", "other bins than the panel of normals", [c.counts_out])


def case_pon_of_one_library_twice(c: Context):
    copy = edit_counts(c.cohort.normal_counts[0], c.tmp / "renamed.counts.tsv",
                       header_edit=lambda line: '#sample="RENAMED"' if line.startswith("#sample=") else line)
    output = c.tmp / "pon.npz"
    return Case(["pon", *c.cohort.normal_counts, copy, "-o", output], 2, "renamed.counts.tsv",
                "holds the same counts as", [output])


def case_pon_of_normals_counted_with_other_filters(c: Context):
    output = c.tmp / "pon.npz"
    return Case(["pon", *c.cohort.normal_counts, _counted_in_a_window(c, c.cohort.normals[0]), "-o", output], 2,
                "window.counts.tsv", "counted with other filters than", [output])


def _cut_mid_row(c: Context) -> Path:
    text = c.cohort.plasma_counts.read_text()
    cut = text.rfind("\n", 0, len(text) * 2 // 3) + 12  # 12 characters into a row
    return c.write("cut.counts.tsv", text[:cut])


def case_counts_truncated_mid_row(c: Context):
    return c.call(_cut_mid_row(c), phrase="")


def case_counts_truncated_mid_row_says_truncated(c: Context):
    """The message should say the file is cut short, not that a column holds non-integers. Needs io.py."""
    return c.call(_cut_mid_row(c), phrase="truncated")


def case_counts_truncated_at_a_row_end(c: Context):
    text = c.cohort.plasma_counts.read_text()
    return c.call(c.write("rows.counts.tsv", text[:text.rfind("\n", 0, len(text) // 2) + 1]),
                  phrase="truncated or edited")


def case_counts_truncated_in_header(c: Context):
    text = c.cohort.plasma_counts.read_text()
    return c.call(c.write("head.counts.tsv", text[:text.index("fragment_length_histogram") + 60]),
                  phrase="header line")


def case_counts_gzip_truncated(c: Context):
    data = gzip.compress(c.cohort.plasma_counts.read_bytes())
    return c.call(c.write("cut.counts.tsv.gz", data[:len(data) // 2]), phrase="truncated gzip")


def case_counts_newer_format(c: Context):
    edited = edit_counts(c.cohort.plasma_counts, c.tmp / "v9.counts.tsv",
                         header_edit=lambda line: line.replace(her2cnv.io.COUNTS_FORMAT, "her2cnv.counts/9"))
    return c.call(edited, phrase="newer than this her2cnv")


def case_counts_older_format(c: Context):
    """Counts of format 1 carry a checksum of the bins' coordinates only; they must be remade, not misread."""
    edited = edit_counts(c.cohort.plasma_counts, c.tmp / "v1.counts.tsv",
                         header_edit=lambda line: line.replace(her2cnv.io.COUNTS_FORMAT, "her2cnv.counts/1"))
    return c.call(edited, phrase="made by an older her2cnv")


def case_counts_is_a_bam(c: Context):
    return c.call(c.cohort.normals[0], phrase="not a text file")


def case_counts_with_unsafe_sample_name(c: Context):
    edited = edit_counts(c.cohort.plasma_counts, c.tmp / "evil.counts.tsv",
                         header_edit=lambda line: '#sample="../../x"' if line.startswith("#sample=") else line)
    return c.call(edited, phrase="not safe as a file name")


# -- options

def case_tumor_fraction_above_one(c: Context):
    return c.call(None, "--tumor-fraction", 1.5, names="--tumor-fraction", phrase="must be in [0.001, 1]")


def case_run_tumor_fraction_above_one_fails_before_counting(c: Context):
    return c.run("--tumor-fraction", 1.5, names="--tumor-fraction", phrase="must be in [0.001, 1]")


def thresholds_case(c: Context, toml: str, phrase: str) -> Case:
    """'call' with a --thresholds file holding ``toml``, refused with ``phrase``."""
    return c.call(None, "--thresholds", c.write("thresholds.toml", toml), names="thresholds.toml", phrase=phrase)


# --thresholds files: case name -> (the file, what the message must say)
THRESHOLDS_CASES = {
    "thresholds_unknown_key": ("[call]\nmin_z_scor = 3.0\n", "unknown threshold(s) min_z_scor"),
    "thresholds_not_a_number": ("min_z_score = \"high\"\n",
                                "threshold min_z_score must be a finite number, got 'high'"),
    "thresholds_detection_probability_out_of_range": ("[call]\ndetection_probability = 1.0\n",
                                                      "detection_probability must lie in [0.5, 1)"),
    # NaN compares false with everything: it once turned a clear high-level call into 'indeterminate'.
    "thresholds_nan": ("[call]\nmin_z_score = nan\n", "min_z_score must be a finite"),
    "thresholds_negative_z_score": ("[call]\nmin_z_score = -5\n", "min_z_score must be above 0"),
    "thresholds_no_copy_states": ("[tumor_fraction]\nmax_copy_state = 0\n", "max_copy_state must be at least 3"),
    "thresholds_fractional_bin_count": ("[tumor_fraction]\nmin_segment_bins = 1.5\n", "must be a whole number"),
    "thresholds_not_toml": ("min_z_score = \n", "not valid TOML"),
}


def case_call_output_under_a_file(c: Context):
    c.write("a_file", "")
    case = c.call(status=1, names="a_file", phrase="cannot create output directory")
    case.argv[case.argv.index(c.out)] = c.tmp / "a_file" / "calls"
    return case


# -- BED for 'bins --targets'

def _bins_with_targets(c: Context, bed: str, phrase: str):
    output = c.tmp / "bins.tsv"
    return Case(["bins", "--fasta", c.cohort.reference, "--targets", c.write("targets.bed", bed), "-o", output],
                2, "targets.bed", phrase, [output])


def case_bed_start_not_an_integer(c: Context):
    return _bins_with_targets(c, "chr17\t39700000\t39710000\nchr17\tabc\t39800000\n",
                              "line 2: start and end must be integers")


def case_bed_start_after_end(c: Context):
    return _bins_with_targets(c, "chr17\t39800000\t39700000\n", "empty or negative")


def case_bed_two_columns(c: Context):
    return _bins_with_targets(c, "chr17\t39700000\n", "BED needs 3")


def case_bed_unknown_contig(c: Context):
    return _bins_with_targets(c, "chrUn_x\t100\t200\n", "not in the reference")


def case_fasta_missing(c: Context):
    output = c.tmp / "bins.tsv"
    return Case(["bins", "--fasta", c.tmp / "absent.fa", "-o", output], 2, "absent.fa", "no such FASTA", [output])


def _bins_on_fasta(c: Context, text: str, edit: str | None, phrase: str) -> Case:
    """'bins' on a small FASTA, indexed (as faidx indexes it) before ``edit`` rewrites it; no index if ``edit``
    is ``NO_INDEX``."""
    fasta, output = c.write("small.fa", text), c.tmp / "bins.tsv"
    if edit is not NO_INDEX:
        pysam.faidx(str(fasta))
    if edit not in (None, NO_INDEX):
        fasta.write_text(edit)
    return Case(["bins", "--fasta", fasta, "-o", output], 2, "small.fa", phrase, [output])


NO_INDEX = "<no .fai>"
TWO_CONTIGS = ">chr8\nACGTACGT\n>chr17\nACGT\n"
# FASTA cases: name -> (the FASTA as indexed, its text after indexing (None: unchanged), what the message says)
FASTA_CASES = {
    # faidx indexes the first 'chr8' and skips the second with a warning: its bases would go missing
    "fasta_duplicate_contig_name": (">chr8\nACGTACGT\n>chr17\nACGT\n>chr8\nCCCC\n>chr18\nGGGG\n", None,
                                    "after contig chr17 comes sequence that the .fai does not list "
                                    "(a duplicate contig name"),
    "fasta_contig_renamed_after_indexing": (TWO_CONTIGS, ">chr8\nACGTACGT\n>chr19\nACGT\n",
                                            "comes contig 'chr19' where the .fai expects chr17"),
    "fasta_index_stale": (TWO_CONTIGS, ">chr8\nACGTACGTACGT\n>chr17\nACGT\n", "or a stale .fai"),
    # cut short under an intact .fai: this once looped for ever
    "fasta_truncated": (TWO_CONTIGS, ">chr8\nACGT", "the file ends before contig chr17, which the .fai lists "
                                                    "further (a truncated FASTA"),
    "fasta_without_index": (">chr8\nACGTACGT\n", NO_INDEX, "no .fai index beside it"),
}


CASES = {name[len("case_"):]: builder for name, builder in globals().items() if name.startswith("case_")}
CASES.update({name: (lambda c, toml=toml, phrase=phrase: thresholds_case(c, toml, phrase))
              for name, (toml, phrase) in THRESHOLDS_CASES.items()})
CASES.update({name: (lambda c, spec=spec: _bins_on_fasta(c, *spec)) for name, spec in FASTA_CASES.items()})


@pytest.mark.parametrize("name", list(CASES))
def test_failure(name, small_cohort, tmp_path, monkeypatch, capfd):
    case = CASES[name](Context(small_cohort, tmp_path, monkeypatch))
    made_by_case = {path for path in tmp_path.iterdir() if path.is_dir()}
    capfd.readouterr()  # drop what building the case printed
    status = main([str(argument) for argument in case.argv])
    monkeypatch.undo()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    if case.logs_first:  # progress logged before the failure; the failure itself is still one line, the last
        assert all(line.startswith(("her2cnv: INFO: ", "her2cnv: WARNING: ")) for line in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1, err
    message = lines[0]
    assert message.startswith("her2cnv: error: "), message
    assert status == case.status, message
    assert case.names in message, message
    # the phrase is looked for outside the paths, whose test directories carry the case's name
    bare = message.replace(str(tmp_path), "<tmp>").replace(str(small_cohort.directory), "<cohort>")
    assert case.phrase in bare, message
    # a failed 'call' or 'run' leaves no output directory it made (the cases' own directory aside)
    assert not (tmp_path / "out").exists() or (tmp_path / "out") in made_by_case, case.argv
    for output in case.outputs:
        if output.is_dir():
            left = [p.name for p in output.iterdir() if p.is_file() and p.name not in _inputs_in(case, output)]
            assert not left, left
        else:
            assert not output.exists(), output
    assert not list(tmp_path.rglob(".*.tmp*")), list(tmp_path.rglob(".*.tmp*"))


def test_an_interruption_while_a_set_is_renamed_waits_for_the_set(small_cohort, tmp_path, monkeypatch, capfd):
    """SIGTERM between two renames of a call's files: the set is completed first, and the message says so."""
    rename, renamed = os.replace, []

    def replace(source, target):
        rename(source, target)
        renamed.append(target)
        if len(renamed) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(her2cnv.io.os, "replace", replace)
    status = main(["call", str(small_cohort.plasma_counts), "--pon", str(small_cohort.pon), "-o", str(tmp_path),
                   "--no-plots", "--quiet"])
    monkeypatch.undo()
    assert status == 143
    assert len(renamed) == len(list(tmp_path.iterdir())) == 4, renamed
    assert "4 complete output file(s) had been written, none partial" in capfd.readouterr().err


def test_a_call_without_plots_removes_an_earlier_calls_plots(small_cohort, tmp_path):
    """report and monitor embed the PNGs beside a call: an older call's must not stay beside a newer one."""
    arguments = ["call", str(small_cohort.plasma_counts), "--pon", str(small_cohort.pon), "-o", str(tmp_path),
                 "--quiet"]
    assert main(arguments) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["S.chr17.png", "S.genome.png"]
    assert main(arguments + ["--no-plots"]) == 0
    assert not list(tmp_path.glob("*.png"))
    assert "data:image/png" not in (tmp_path / "S.report.html").read_text()


def test_a_symlinked_output_is_written_through(small_cohort, tmp_path):
    target, link = tmp_path / "target.counts.tsv", tmp_path / "link.counts.tsv"
    link.symlink_to(target)
    assert main(["count", str(small_cohort.normals[0]), "--bins", str(small_cohort.bins), "-o", str(link),
                 "--quiet"]) == 0
    assert link.is_symlink() and target.is_file()


def _inputs_in(case: Case, directory: Path) -> set[str]:
    """Files the case itself put in ``directory`` (inputs are not outputs)."""
    return {Path(str(a)).name for a in case.argv if Path(str(a)).parent == directory}


# ---------------------------------------------------------------- clean answers, not errors

def test_no_input_is_unpickled_or_evaluated():
    """Inputs are parsed, never executed: no pickle, eval/exec or unsafe YAML anywhere in the package."""
    package = Path(her2cnv.io.__file__).parent
    for source in sorted(package.rglob("*.py")):
        code = source.read_text()
        for forbidden in ("allow_pickle=True", "import pickle", "pickle.load", "eval(", "exec(", "yaml.load(",
                          "shelve", "marshal"):
            assert forbidden not in code, f"{source.name}: {forbidden}"


def test_debug_shows_the_traceback(small_cohort, tmp_path):
    with pytest.raises(her2cnv.errors.InputError, match="no such file"):
        main(["count", str(tmp_path / "missing.bam"), "--bins", str(small_cohort.bins), "-o",
              str(tmp_path / "x.tsv"), "--debug"])


def test_chr17_named_17_is_counted_the_same(small_cohort, tmp_path, capfd):
    bam = rewrite_bam(small_cohort.normals[0], tmp_path / "nochr.bam", contig_name=lambda name: name[3:])
    assert main(["count", str(bam), "--bins", str(small_cohort.bins), "-o", str(tmp_path / "nochr.tsv"),
                 "--quiet"]) == 0
    assert capfd.readouterr().err == ""
    assert _table(tmp_path / "nochr.tsv") == _table(small_cohort.normal_counts[0])


def test_cram_with_its_reference_counts_like_the_bam(small_cohort, tmp_path, capfd):
    cram = Context(small_cohort, tmp_path, None).cram()
    assert main(["count", str(cram), "--reference", str(small_cohort.reference), "--bins", str(small_cohort.bins),
                 "-o", str(tmp_path / "cram.tsv"), "--quiet"]) == 0
    assert capfd.readouterr().err == ""  # htslib's "could not retrieve index" noise stays quiet
    assert _table(tmp_path / "cram.tsv") == _table(small_cohort.normal_counts[0])


def test_zero_coverage_at_erbb2_is_indeterminate_by_qc(small_cohort, tmp_path, capfd):
    def zero_erbb2(i, row):
        if "ERBB2" in row["gene"].split(","):
            row["count"] = row["short_count"] = "0"
        return row

    counts = edit_counts(small_cohort.plasma_counts, tmp_path / "S.counts.tsv", edit_row=zero_erbb2)
    for source, directory in ((small_cohort.plasma_counts, "intact"), (counts, "zeroed")):
        assert main(["call", str(source), "--pon", str(small_cohort.pon), "-o", str(tmp_path / directory),
                     "--no-plots", "--quiet"]) == 0
    assert capfd.readouterr().err == ""
    intact = json.loads((tmp_path / "intact" / "S.call.json").read_text())
    zeroed = json.loads((tmp_path / "zeroed" / "S.call.json").read_text())
    assert intact["qc"]["pass"], intact["qc"]["reasons"]  # only the zeroed bins make the difference
    assert zeroed["erbb2"]["status"] == "indeterminate"
    assert not zeroed["qc"]["pass"]
    assert any("no fragment at all over ERBB2" in reason for reason in zeroed["qc"]["reasons"])
    assert zeroed["erbb2"]["reason"].startswith("QC failed")


def test_a_bam_cut_at_a_block_boundary_fails_qc(small_cohort, tmp_path, capfd):
    """Cut after 60% of its BGZF blocks, with a valid end-of-file block: htslib reads it to its end without
    complaint, and the contigs after the cut hold no fragment. The call must fail QC, not read a loss."""
    data = small_cohort.plasma.read_bytes()
    blocks = bgzf_blocks(data)
    cut = tmp_path / "cut.bam"
    cut.write_bytes(data[:blocks[len(blocks) * 3 // 5][0]] + BGZF_EOF)
    counts = tmp_path / "cut.counts.tsv"
    assert main(["count", str(cut), "--bins", str(small_cohort.bins), "-o", str(counts), "--quiet"]) == 0
    assert main(["call", str(counts), "--pon", str(small_cohort.pon), "-o", str(tmp_path / "out"), "--no-plots",
                 "--quiet"]) == 0
    capfd.readouterr()
    call = json.loads((tmp_path / "out" / "S.call.json").read_text())
    assert not call["qc"]["pass"] and call["erbb2"]["status"] == "indeterminate"
    assert any(reason.startswith("no fragment at all in chr") and "a truncated BAM" in reason
               for reason in call["qc"]["reasons"]), call["qc"]["reasons"]


def test_no_read_passing_the_filters_is_indeterminate_by_qc(small_cohort, tmp_path, capfd):
    counts = tmp_path / "N0.counts.tsv"
    assert main(["count", str(small_cohort.normals[0]), "--bins", str(small_cohort.bins), "-o", str(counts),
                 "--min-mapq", "255", "--quiet"]) == 0
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "WARNING" in err and "no fragment passed the filters" in err
    # against a panel counted with other filters the counts are refused; recorded as the panel's (an empty
    # library counted alike), the call is made and fails QC
    assert main(["call", str(counts), "--pon", str(small_cohort.pon), "-o", str(tmp_path / "out"),
                 "--no-plots", "--quiet"]) == 2
    assert "(--min-mapq 255 vs 20)" in capfd.readouterr().err
    counts = edit_counts(counts, tmp_path / "N0.counts.tsv",
                         header_edit=lambda line: line.replace('"min_mapq":255', '"min_mapq":20'))
    assert main(["call", str(counts), "--pon", str(small_cohort.pon), "-o", str(tmp_path / "out"),
                 "--no-plots", "--quiet"]) == 0
    call = json.loads((tmp_path / "out" / "N0.call.json").read_text())
    assert call["erbb2"]["status"] == "indeterminate"
    assert any("only 0 fragments counted" in reason for reason in call["qc"]["reasons"])


def test_a_sample_far_deeper_than_the_panels_normals_fails_qc(small_cohort, tmp_path):
    """The panel's reference errors are in no interval: a sample with 40 times the normals' fragments read TF
    0.15 as 0.08 and CN-7 amplicons as high-level (audit 14B). Past max_panel_depth_ratio (10) QC fails."""
    panels, metadata = her2cnv.io.read_panel(small_cohort.pon)
    plasma = json.loads(her2cnv.io.read_text(small_cohort.plasma_counts).split("#outcomes=")[1].split("\n")[0])
    fragments = plasma["fragments_counted"]
    for ratio, passes in ((5, True), (20, False)):
        pon = tmp_path / f"pon_{ratio}.npz"
        her2cnv.io.write_panel(pon, panels, {**metadata, "normal_fragments": fragments / ratio})
        out = tmp_path / f"out_{ratio}"
        assert main(["call", str(small_cohort.plasma_counts), "--pon", str(pon), "-o", str(out), "--no-plots",
                     "--quiet"]) == 0
        call = json.loads(next(out.glob("*.call.json")).read_text())
        assert call["qc"]["panel_depth_ratio"] == ratio and call["qc"]["pass"] == passes
        if not passes:
            assert call["erbb2"]["status"] == "indeterminate"
            assert call["qc"]["reasons"] == [f"20.0 times the fragments of the panel's normals (median "
                                             f"{fragments / 20:,.0f}): the errors of their reference, which no "
                                             "interval carries, would outweigh the sample's own; call against "
                                             "normals sequenced at least 1/10 as deep"]


def _table(path: Path) -> list[str]:
    """A counts file without its provenance header: the bins and the counts."""
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]
