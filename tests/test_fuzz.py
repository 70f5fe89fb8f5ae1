"""Seeded fuzzing of the two inputs users hand over: BAMs to ``count`` and counts files to ``call``.

Every variant must end in exit status 0, 1 or 2 within TIME_LIMIT seconds; a failure
prints exactly one ``her2cnv: error:`` line naming the file, no traceback, and
leaves no output file. A success must give a valid output: for a BAM with flipped
bits (every BGZF block carries a CRC32) the very same counts as the intact file.

The BAM cases run in a forked child (``run_isolated``), so a crash in htslib or the
compiled loop shows up as a negative status instead of killing pytest; forking
the test process skips the ~1.5 s interpreter start and import a ``python -m
her2cnv`` subprocess costs per case. One case runs the real ``python -m her2cnv``.
"""
from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest
from pysam.libcbgzf import BGZFile

from her2cnv import io
from her2cnv.cli import main
from her2cnv.errors import InputError

TIME_LIMIT = 20.0  # seconds per case
N_BAM_VARIANTS = 30
N_COUNTS_VARIANTS = 30
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CALL_STATUSES = {"high_level_amplification", "low_level_gain", "not_detected", "indeterminate"}


def run_isolated(argv: list[str], timeout: float = TIME_LIMIT) -> tuple[int, str, float]:
    """``main(argv)`` in a forked child: (exit status, negative if killed by a signal; its stderr; seconds).

    stderr is captured at the file-descriptor level, so htslib's own messages count.
    An exception escaping ``main`` prints its traceback and exits 99. A child still
    running after ``timeout`` is killed (status -9).
    """
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            status = 98
            try:
                os.dup2(err.fileno(), 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
                status = main(argv)
            except BaseException:  # noqa: B036 - report anything, including SystemExit, as a traceback
                traceback.print_exc()
                status = 99
            finally:
                sys.stderr.flush()
                os._exit(status)
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() - start > timeout:
                os.kill(pid, signal.SIGKILL)
                _, wait_status = os.waitpid(pid, 0)
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        err.seek(0)
        return os.waitstatus_to_exitcode(wait_status), err.read().decode(errors="replace"), elapsed


def bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    blocks, start = [], 0
    while start + 18 <= len(data):
        end = start + int.from_bytes(data[start + 16:start + 18], "little") + 1
        blocks.append((start, end))
        start = end
    return blocks


def flip_bits(data: bytes, positions, rng: random.Random) -> bytes:
    mutable = bytearray(data)
    for position in positions:
        mutable[position] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def raw_header_length(raw: bytes) -> int:
    """Bytes of the binary BAM header: magic, l_text, text, n_ref, then (l_name, name, l_ref) per contig."""
    position = 8 + int.from_bytes(raw[4:8], "little")
    n_ref = int.from_bytes(raw[position:position + 4], "little")
    position += 4
    for _ in range(n_ref):
        position += 4 + int.from_bytes(raw[position:position + 4], "little") + 4
    return position


def bgzip(raw: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "x.bam"
        with BGZFile(str(path), "wb") as output:
            output.write(raw)
        return path.read_bytes()


def bam_variant(data: bytes, i: int) -> tuple[str, bytes]:
    """Variant ``i`` of a BAM: truncations (with the EOF marker put back or not); bit flips in the compressed
    file (header block, BGZF block headers, anywhere), which the CRC32s should catch; and bit flips in the
    decompressed header or records, compressed again, which only parsing can catch."""
    rng = random.Random(7000 + i)
    blocks = bgzf_blocks(data)
    i %= N_BAM_VARIANTS  # the kind of variant; the seed above differs for every i
    n_flips = 1 + i % 4
    if i < 6:
        return "truncated", data[:rng.randrange(1, len(data))]
    if i < 10:
        return "truncated_eof", data[:rng.randrange(1, len(data) - len(BGZF_EOF))] + BGZF_EOF
    if i < 14:
        first_end = blocks[0][1]
        return "flipped_header_block", flip_bits(data, [rng.randrange(first_end) for _ in range(n_flips)], rng)
    if i < 18:
        chosen = [rng.choice(blocks) for _ in range(n_flips)]
        return "flipped_block_header", flip_bits(data, [start + rng.randrange(18) for start, _ in chosen], rng)
    if i < 22:
        return "flipped_anywhere", flip_bits(data, [rng.randrange(len(data)) for _ in range(n_flips)], rng)
    raw = gzip.decompress(data)
    header_length = raw_header_length(raw)
    if i < 26:
        return "recompressed_header", bgzip(flip_bits(raw, [rng.randrange(header_length) for _ in range(n_flips)],
                                                      rng))
    return "recompressed_records", bgzip(flip_bits(raw, [rng.randrange(header_length, len(raw))
                                                         for _ in range(n_flips)], rng))


def counts_variant(text: str, i: int) -> tuple[str, bytes]:
    """Variant ``i`` of a counts TSV: truncations anywhere; bit flips in one header line or in the table;
    and counts replaced by extreme values (0, 1, 10**6, 10**12), which parse and must still be called."""
    rng = random.Random(9000 + i)
    data = text.encode()
    lines = text.splitlines(keepends=True)
    n_header = sum(line.startswith("#") for line in lines)
    i %= N_COUNTS_VARIANTS  # the kind of variant; the seed above differs for every i
    n_flips = 1 + i % 3
    if i < 8:
        return "truncated", data[:rng.randrange(len(data))]
    if i < 14:
        line = rng.randrange(n_header)
        start = sum(len(x.encode()) for x in lines[:line])
        return "flipped_header", flip_bits(data, [start + rng.randrange(len(lines[line])) for _ in range(n_flips)],
                                           rng)
    if i < 22:
        body_start = sum(len(x.encode()) for x in lines[:n_header + 1])
        return "flipped_table", flip_bits(data, [rng.randrange(body_start, len(data)) for _ in range(n_flips)], rng)
    rows = lines[n_header + 1:]
    for row in rng.sample(range(len(rows)), 1 + rng.randrange(len(rows) // 4)):
        fields = rows[row].rstrip("\n").split("\t")
        fields[-2] = str(rng.choice([0, 1, 10 ** 6, 10 ** 12]))
        rows[row] = "\t".join(fields) + "\n"
    return "extreme_counts", "".join(lines[:n_header + 1] + rows).encode()


def assert_clean_failure(status: int, err: str, path: Path, allowed=(1, 2)) -> None:
    assert "Traceback" not in err, err
    assert status in allowed, (status, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("her2cnv: error: "), err
    assert path.name in lines[0], err


def count_table(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


@pytest.fixture(scope="module")
def intact_bam(small_cohort):
    return small_cohort.normals[0].read_bytes()


@pytest.mark.parametrize("i", range(N_BAM_VARIANTS))
def test_fuzzed_bam(i, intact_bam, small_cohort, tmp_path):
    kind, data = bam_variant(intact_bam, i)
    bam = tmp_path / f"fuzz{i}_{kind}.bam"
    bam.write_bytes(data)
    output = tmp_path / "out" / "fuzz.counts.tsv"
    output.parent.mkdir()
    status, err, elapsed = run_isolated(["count", str(bam), "--bins", str(small_cohort.bins), "-o", str(output)])
    assert elapsed < TIME_LIMIT, f"{kind}: {elapsed:.1f} s"
    assert status >= 0, f"{kind}: killed by signal {-status}: {err}"
    if status == 0:
        table = count_table(output)
        if kind.startswith("flipped"):  # every BGZF block is CRC-checked: success means the data was intact
            assert table == count_table(small_cohort.normal_counts[0]), kind
        else:  # a valid but changed BAM (cut at a block boundary, or flips in fields that parse)
            io.read_counts(output)
    else:
        assert_clean_failure(status, err, bam)
        assert not list(output.parent.iterdir()), list(output.parent.iterdir())


def test_fuzzed_bam_through_the_real_entry_point(intact_bam, small_cohort, tmp_path):
    """One truncated BAM through 'python -m her2cnv' in a fresh interpreter."""
    bam = tmp_path / "cut.bam"
    bam.write_bytes(intact_bam[:len(intact_bam) * 2 // 3])
    output = tmp_path / "cut.counts.tsv"
    result = subprocess.run([sys.executable, "-m", "her2cnv", "count", str(bam), "--bins", str(small_cohort.bins),
                             "-o", str(output)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)  # not the repository root, whose source tree would shadow the install
    assert_clean_failure(result.returncode, result.stderr, bam, allowed=(2,))
    assert not output.exists()


@pytest.mark.parametrize("i", range(N_COUNTS_VARIANTS))
def test_fuzzed_counts(i, small_cohort, tmp_path, capfd):
    kind, data = counts_variant(small_cohort.plasma_counts.read_text(), i)
    counts = tmp_path / f"fuzz{i}_{kind}.counts.tsv"
    counts.write_bytes(data)
    outdir = tmp_path / "out"

    def too_slow(signum, frame):
        raise TimeoutError(f"{kind}: 'call' took more than {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(int(TIME_LIMIT) + 1)
    try:
        start = time.monotonic()
        status = main(["call", str(counts), "--pon", str(small_cohort.pon), "-o", str(outdir), "--no-plots",
                       "--quiet"])
        elapsed = time.monotonic() - start
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capfd.readouterr().err
    assert elapsed < TIME_LIMIT
    if status == 0:
        assert "Traceback" not in err and not err, err
        io.read_counts(counts)  # what 'call' accepted must be a valid counts file
        sample = next(outdir.glob("*.call.json"))
        assert json.loads(sample.read_text())["erbb2"]["status"] in CALL_STATUSES
    else:
        assert_clean_failure(status, err, counts)
        assert not outdir.exists() or not [p for p in outdir.iterdir()], list(outdir.iterdir())
        with pytest.raises(InputError):  # the same file is refused by the library, not only by the CLI
            io.read_counts(counts)
