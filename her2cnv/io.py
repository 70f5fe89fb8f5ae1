"""Every file her2cnv reads or writes, except the BAM loop in ``counts``.

Outputs are written to a temporary name in the destination directory and renamed
when complete, so a failed or interrupted command never leaves a partial file
under the final name. Tables are TSV with a commented header of ``#key=value``
lines (values are JSON) that carries the format version and provenance.
Malformed input raises ``InputError`` naming the file and the problem.

pandas is imported only inside the functions that use it: ``count`` reads bins and
writes counts with numpy alone (``read_columns``, ``table_chunks``), and so starts ~0.2 s sooner.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import io as _io
import json
import math
import os
import signal
import threading
import tomllib
import zipfile
import zlib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .errors import Her2CnvError, InputError
from .normalize import CHANNELS
from .types import COUNT_OUTCOMES, STATUSES, Assembly, Bins, FragmentCounts, Panel, Thresholds, check_safe_name
from .version import __version__

if TYPE_CHECKING:
    import pandas as pd

# 2: the bins checksum covers every column, not only the coordinates, and bins record their contigs' lengths
BINS_FORMAT = "her2cnv.bins/2"
COUNTS_FORMAT = "her2cnv.counts/2"
ASSEMBLY_DIRS = {"GRCh38": "grch38", "GRCh37": "grch37"}
TABLE_CHUNK_ROWS = 1 << 13  # rows formatted at a time by table_chunks
MAX_FIELD_BYTES = 1024  # longer is corruption: read_columns pads every field to the longest


# ---------------------------------------------------------------- atomic output

INDEX_SUFFIXES = (".bai", ".csi", ".crai", ".fai", ".gzi", ".tbi")
_protected_inputs: set[tuple[int, int]] = set()  # (device, inode) of the running command's inputs
# (temporary, final) outputs of an output_set block; (None, path): a file the set removes
_output_set: list[tuple[Path | None, Path]] | None = None
_renamed = 0  # outputs renamed into place in this process: an interrupted command says whether it wrote any


def renamed_outputs() -> int:
    return _renamed


def _rename(temporary: Path, path: Path) -> None:
    global _renamed
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise Her2CnvError(f"{path}: cannot write ({error.strerror or error})") from error
    _renamed += 1


def protect_inputs(paths: Iterable[str | os.PathLike]) -> None:
    """From now on refuse to write over any of ``paths`` or their index files: without this an output named
    like an input (``-o`` given the BAM, say) would silently replace it. Replaces any earlier set."""
    _protected_inputs.clear()
    for path in map(Path, paths):
        for candidate in (path, path.with_suffix(".bai"), *(Path(f"{path}{suffix}") for suffix in INDEX_SUFFIXES)):
            with contextlib.suppress(OSError):
                info = candidate.stat()
                _protected_inputs.add((info.st_dev, info.st_ino))


def refuse_overwriting_inputs(path: str | os.PathLike) -> None:
    """Raise if ``path`` is one of the files ``protect_inputs`` was given."""
    with contextlib.suppress(OSError):
        info = Path(path).stat()
        if (info.st_dev, info.st_ino) in _protected_inputs:
            raise InputError(f"{path}: is one of this command's inputs (or an input's index); "
                             "write the output under another name")


def check_output_path(path: str | os.PathLike) -> Path:
    """The file an output named ``path`` will replace (a symlink's target: the link itself is never replaced),
    refused if its directory is missing, if it is a device, pipe or socket, or if it is one of the inputs.
    Commands check their outputs before any work, and every write checks again."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise Her2CnvError(f"{path}: output directory {directory} {problem}")
    if path.exists() and not (path.is_file() or path.is_dir()):  # a directory gets its own message, later
        raise Her2CnvError(f"{path}: exists and is not a regular file (a device, pipe or socket); "
                           "give a file name")
    refuse_overwriting_inputs(path)
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds (inside
    ``output_set``, when the whole set has)."""
    path = check_output_path(path)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    deferred = False
    try:
        yield temporary
        if _output_set is None:
            _rename(temporary, path)
        else:
            _output_set.append((temporary, path))
            deferred = True
    except OSError as error:
        raise Her2CnvError(f"{path}: cannot write ({error.strerror or error})") from error
    finally:
        if not deferred:
            with contextlib.suppress(OSError):  # the error that stopped the write is the one to report
                os.unlink(temporary)


@contextlib.contextmanager
def output_set():
    """Write all the outputs made inside the block, or none: each stays under its temporary name until the
    block has succeeded, so a failure or an interruption half-way leaves no partial set (a call's ratios and
    plots without its call.json, say). Nested blocks join the outer one."""
    global _output_set
    if _output_set is not None:
        yield
        return
    _output_set = []
    try:
        yield
        taken = [path for _, path in _output_set if path.is_dir()]
        if taken:  # the one failure a rename can meet here; found before any file of the set is renamed
            raise Her2CnvError(f"{taken[0]}: cannot write (a directory has its name)")
        with _interruptions_held():  # a SIGTERM or Ctrl-C between two renames would leave part of the set
            for temporary, path in _output_set:
                if temporary is None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                else:
                    _rename(temporary, path)
    finally:
        for temporary, _ in _output_set:
            if temporary is not None:
                with contextlib.suppress(OSError):  # the error that stopped the write is the one to report
                    os.unlink(temporary)
        _output_set = None


def remove_with_set(path: str | os.PathLike) -> None:
    """Inside ``output_set``: remove ``path`` (a file of an earlier set that this one does not replace, such as
    an older call's plots beside a call made with --no-plots) when, and only when, the set is written."""
    assert _output_set is not None, "remove_with_set outside output_set"
    path = Path(path)
    if path.is_file():
        refuse_overwriting_inputs(path)
        _output_set.append((None, path))


@contextlib.contextmanager
def _interruptions_held():
    """SIGINT and SIGTERM that arrive inside the block are acted on (by the handlers in force) after it.

    Python runs signal handlers in the main thread only, so replacing them there holds a signal whichever
    thread the system delivers it to; blocking it in one thread would not."""
    if threading.current_thread() is not threading.main_thread() or \
            None in (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)):  # not Python's to swap
        yield
        return
    caught = []
    previous = {number: signal.signal(number, lambda number, frame: caught.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            signal.raise_signal(caught[0])


def write_text(path: str | os.PathLike, text: str | Iterable[str]) -> None:
    """Write text atomically, a piece at a time if given pieces (a genome-wide table is never one string);
    gzip (reproducibly: no name, no timestamp, as ``gzip.compress(mtime=0)``) if the name ends in .gz."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if str(path).endswith(".gz") else None
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as handle:
            for piece in [text] if isinstance(text, str) else text:
                data = piece.encode()
                handle.write(compressor.compress(data) if compressor else data)
            if compressor:
                handle.write(compressor.flush())


_created_directories: list[Path] = []  # made by make_directory in this process, outermost first


def make_directory(path: str | os.PathLike) -> Path:
    path = Path(path)
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise Her2CnvError(f"{path}: cannot create output directory ({error.strerror})") from error
    _created_directories.extend(reversed(missing))
    if not os.access(path, os.W_OK):
        raise Her2CnvError(f"{path}: output directory is not writable")
    return path


def forget_created_directories() -> None:
    """At the start of a command: the directories earlier commands in this process made are theirs."""
    _created_directories.clear()


def remove_created_directories() -> None:
    """After a failure: remove the directories make_directory created that are still empty, innermost first,
    so that a failed command leaves nothing behind."""
    while _created_directories:
        with contextlib.suppress(OSError):  # not empty (another process wrote there), or gone
            _created_directories.pop().rmdir()


def output_path(directory: str | os.PathLike, name: str, suffix: str) -> Path:
    """``directory/name.suffix``, refusing names that could escape the directory."""
    try:
        check_safe_name(name)
    except ValueError as error:
        raise InputError(str(error)) from None
    return Path(directory) / f"{name}.{suffix}"


# ---------------------------------------------------------------- reading helpers

def read_text(path: str | os.PathLike) -> str:
    """Read a text file (gzip by content), with clear errors for missing or binary files."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
            raise InputError(f"{path}: corrupt or truncated gzip ({error})") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None


def split_header(path, text: str, expected_format: str, remake: str | None = None) -> tuple[dict, bytes]:
    """Split ``#key=json`` header lines from the table body and check the format line. The body comes back
    as UTF-8, the form ``read_columns`` parses: as a Python string too, it would be a second copy."""
    header: dict = {}
    start = number = 0
    while text.startswith("#", start):  # only the header is looked at line by line: bodies run to 300,000 rows
        end = text.find("\n", start) + 1 or len(text)
        line, start, number = text[start:end], end, number + 1
        key, sep, value = line[1:].rstrip("\n").partition("=")
        if not sep:
            continue
        if key in header:
            raise InputError(f"{path}: header line {number} repeats '{key}' (edited file?)")
        try:
            header[key] = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(f"{path}: header line {number} is not valid ({line.strip()[:60]!r})") from None
    check_format(path, header.get("format"), expected_format, remake)
    return header, text[start:].encode()


def check_format(path, found, expected_format: str, remake: str | None = None) -> None:
    """Refuse files of another kind, or of a newer format version than this her2cnv reads; with ``remake``
    (the command that makes the file), refuse older versions too, saying so."""
    if found is None:
        raise InputError(f"{path}: not a her2cnv file (no format field; expected {expected_format})")
    kind, _, version = str(found).partition("/")
    expected_kind, _, expected_version = expected_format.partition("/")
    if kind != expected_kind:
        raise InputError(f"{path}: is a {kind} file, expected {expected_kind}")
    if not version.isdigit():
        raise InputError(f"{path}: format version {version!r} is not a her2cnv version number")
    if int(version) > int(expected_version):
        raise InputError(
            f"{path}: format version {version} is newer than this her2cnv ({__version__}) reads "
            f"({expected_format}); upgrade her2cnv"
        )
    if remake and int(version) < int(expected_version):
        raise InputError(f"{path}: made by an older her2cnv ({found}; this one reads {expected_format}); "
                         f"remake it with '{remake}'")


def format_header(fields: dict) -> str:
    return "".join(f"#{key}={json.dumps(value, sort_keys=True, separators=(',', ':'))}\n"
                   for key, value in fields.items())


def read_table(path, body: str, columns: dict[str, type]) -> pd.DataFrame:
    """Parse a TSV body whose first line names the columns; check the required ones and their types.
    For the sheets people write (pandas reads quoted fields); ``read_columns`` reads her2cnv's own tables."""
    import pandas as pd

    try:
        frame = pd.read_csv(_io.StringIO(body), sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: malformed table ({str(error).strip().splitlines()[0]})") from None
    lines = body.splitlines()
    short = next((n for n, line in enumerate(lines) if line and line.count("\t") < lines[0].count("\t")), None)
    if short is not None:  # pandas would pad a cut row with empty fields
        raise InputError(f"{path}: row {short} of the table has fewer fields than its header (truncated file?)")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for name, kind in columns.items():
        if kind is str:
            continue
        try:
            frame[name] = pd.to_numeric(frame[name].mask(frame[name].isin(["", "NA"])), errors="raise")
            if kind is int:
                if frame[name].isna().any() or not np.all(frame[name] == np.floor(frame[name])):
                    raise ValueError
                frame[name] = frame[name].astype(np.int64)
        except (ValueError, TypeError):
            raise InputError(f"{path}: column {name} holds values that are not {kind.__name__}s") from None
    return frame


def read_columns(path, body: bytes, columns: dict[str, type]) -> dict[str, np.ndarray]:
    """Parse the UTF-8 body of a table her2cnv wrote (bins, counts), whose first line names the columns;
    check the required ones and their types.

    Returns every column in file order as a numpy array of str, except those that ``columns`` types
    int (int64) or float (float64, NaN for "" and "NA"). Blank lines are skipped; a row with another
    number of fields than the header, a quoted field or one over MAX_FIELD_BYTES is refused. The parsing
    is vectorised over the bytes, without pandas (``count`` does not import it) and without a Python
    string per field: genome-wide 10 kb bins are 300,000 rows, ~200 MB as Python strings.
    """
    if b'"' in body:
        raise InputError(f"{path}: malformed table (quoted fields are not supported)")
    if not body.strip():
        raise InputError(f"{path}: no table after the header (truncated file?)")
    data = np.frombuffer(body, np.uint8)
    line_end = np.flatnonzero(data == ord("\n"))
    if not data.size or data[-1] != ord("\n"):
        line_end = np.append(line_end, data.size)
    line_start = np.r_[0, line_end[:-1] + 1]
    line_end -= (line_end > line_start) & (data[np.maximum(line_end - 1, 0)] == ord("\r"))
    # tab offsets in the smallest type that holds them: as int64, genome-wide bins peak ~20 MB higher
    tabs = np.flatnonzero(data == ord("\t")).astype(np.min_scalar_type(data.size))
    n_tabs = np.searchsorted(tabs, line_end) - np.searchsorted(tabs, line_start)
    lines = np.flatnonzero(line_end > line_start)  # blank lines are skipped
    if not lines.size:
        raise InputError(f"{path}: malformed table (no header line)")
    first = lines[0]
    names = data[line_start[first]:line_end[first]].tobytes().decode().split("\t")
    wrong = lines[n_tabs[lines] != len(names) - 1]
    if wrong.size:
        problem = "fewer" if n_tabs[wrong[0]] < len(names) - 1 else "more"
        raise InputError(f"{path}: row {wrong[0]} of the table has {problem} fields than its header "
                         "(truncated or edited file?)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{path}: column(s) {', '.join(repeated)} appear more than once")
    missing = [name for name in columns if name not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    rows = lines[1:]
    tabs = tabs[np.searchsorted(tabs, line_end[first]):].reshape(rows.size, len(names) - 1)  # blank lines hold none
    table = {}
    for j, name in enumerate(names):
        start = line_start[rows] if j == 0 else tabs[:, j - 1] + 1
        end = tabs[:, j] if j < len(names) - 1 else line_end[rows]
        if (end - start).max(initial=0) > MAX_FIELD_BYTES:
            raise InputError(f"{path}: malformed table (a field of column {name} is over {MAX_FIELD_BYTES} bytes)")
        values = _fields(data, start, end)
        kind = columns.get(name, str)
        try:
            if kind is int:
                table[name] = values.astype(np.int64)
            elif kind is float:
                table[name] = np.where((values == b"") | (values == b"NA"), b"nan", values).astype(np.float64)
            else:
                table[name] = values.astype(str) if body.isascii() else np.char.decode(values, "utf-8")
        except (ValueError, OverflowError):
            raise InputError(f"{path}: column {name} holds values that are not {kind.__name__}s") from None
    return table


def _fields(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The bytes ``data[start[i]:end[i]]`` of every field, as one fixed-width bytes array."""
    width = end - start
    longest = max(int(width.max(initial=0)), 1)
    fields = np.zeros((start.size, longest), np.uint8)
    for offset in range(longest):
        inside = width > offset
        fields[inside, offset] = data[start[inside] + offset]
    return fields.view(f"S{longest}").ravel()


def table_chunks(path, columns: dict[str, np.ndarray]) -> Iterator[str]:
    """A TSV of numpy columns as pandas' ``to_csv(sep="\\t", index=False, na_rep="NA")`` writes it (numbers
    as numpy prints them, float NaN as NA), without pandas: the header line, then a chunk of rows at a time
    (300,000 rows as one string, with its copies on the way to disk, would add ~70 MB to ``count``'s peak).
    A field may not hold a tab, a line break or a quote, which pandas would quote and ``read_columns`` does
    not read."""
    values = [np.asarray(column) for column in columns.values()]
    n_rows = len(values[0]) if values else 0
    yield _checked_rows(path, "\t".join(columns) + "\n", 1, len(columns))
    for first in range(0, n_rows, TABLE_CHUNK_ROWS):
        fields = []
        for column in values:
            column = column[first:first + TABLE_CHUNK_ROWS]
            # Python's str and repr print numbers as numpy does (tests/test_counts.py), in two thirds of the time
            if column.dtype.kind == "f":
                fields.append(["NA" if number != number else repr(number) for number in column.tolist()])
            else:
                fields.append(list(map(str, column.tolist())))
        yield _checked_rows(path, "\n".join(map("\t".join, zip(*fields))) + "\n", len(fields[0]), len(columns))


def _checked_rows(path, text: str, n_rows: int, n_columns: int) -> str:
    if (text.count("\t") != n_rows * (n_columns - 1) or text.count("\n") != n_rows
            or '"' in text or "\r" in text):
        raise InputError(f"{path}: cannot write a field that holds a tab, a line break or a quote")
    return text


def file_fingerprint(path: str | os.PathLike, span: int = 1 << 20) -> dict:
    """A cheap identity for large inputs: size plus sha256 of the first and last MiB.

    A full checksum would read a multi-gigabyte BAM a second time; small files
    (<= 2 MiB) are hashed whole, so for them this is the file's sha256.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= 2 * span:
            digest.update(handle.read())
            method = "sha256"
        else:
            digest.update(handle.read(span))
            handle.seek(size - span)
            digest.update(handle.read(span))
            method = "sha256 of first and last MiB"
    return {"path": str(path), "size": size, "checksum": digest.hexdigest(), "checksum_method": method}


# ---------------------------------------------------------------- reference data

def _reference_file(relative: str):
    return resources.files("her2cnv.reference").joinpath(relative)


def load_assembly(name: str) -> Assembly:
    """Read one build's contig table, amplicon genes and fine-bin locus from ``reference/``."""
    directory = ASSEMBLY_DIRS[name]
    lengths, arms = {}, {}
    for line in _reference_file(f"{directory}/contigs.{directory}.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            contig, length, arm = line.split("\t")
            lengths[contig] = int(length)
            arms[contig] = int(arm)
    genes = [line.split("\t") for line in
             _reference_file(f"{directory}/erbb2_amplicon_genes.{directory}.bed").read_text().splitlines()
             if line and not line.startswith("#")]
    locus = next(line.split("\t") for line in
                 _reference_file(f"{directory}/erbb2_locus.{directory}.bed").read_text().splitlines()
                 if line and not line.startswith("#"))
    return Assembly(
        name=name,
        contig_lengths=lengths,
        arm_boundaries=arms,
        gene_names=tuple(g[3] for g in genes),
        gene_starts=np.array([int(g[1]) for g in genes], dtype=np.int64),
        gene_ends=np.array([int(g[2]) for g in genes], dtype=np.int64),
        gene_is_core=np.array([g[4] == "core" for g in genes]),
        locus=(locus[0], int(locus[1]), int(locus[2])),
    )


def load_assemblies() -> list[Assembly]:
    return [load_assembly(name) for name in ASSEMBLY_DIRS]


# ---------------------------------------------------------------- FASTA and BED

def _open_fasta(path):
    import pysam

    path = Path(path)
    if not path.is_file():
        problem = "is a directory, expected a FASTA file" if path.is_dir() else "no such FASTA file"
        raise InputError(f"{path}: {problem}")
    if not Path(f"{path}.fai").is_file():  # pysam would write one beside the input, which an input must not cause
        raise InputError(f"{path}: no .fai index beside it; index it with 'samtools faidx'")
    try:
        return pysam.FastaFile(str(path))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot open as an indexed FASTA ({error}); "
                         "index it with 'samtools faidx'") from None


def read_fasta_lengths(path) -> dict[str, int]:
    with _open_fasta(path) as fasta:
        lengths = dict(zip(fasta.references, fasta.lengths))
    _check_fasta_layout(path)
    return lengths


def _fai_entries(path) -> list[tuple[str, int, int, int, int]]:
    """The .fai rows: name, length, offset of the first base, bases per line, bytes per line."""
    try:
        return [(fields[0], *(int(field) for field in fields[1:5]))
                for fields in (line.split("\t") for line in Path(f"{path}.fai").read_text().splitlines() if line)]
    except (ValueError, TypeError, UnicodeError):
        raise InputError(f"{path}.fai: not a FASTA index; re-index with 'samtools faidx'") from None


def _check_fasta_layout(path) -> None:
    """Between the indexed sequences of an uncompressed FASTA there may be only header and blank lines, the last
    one before each sequence naming it, and the .fai's offsets must land there exactly.

    faidx indexes the first of two records with one name and skips the second with only a warning, so its
    bases would be silently missing (and a read aligned to them counted against the first); an index made
    before the FASTA was edited misplaces every later contig. Empty records (a header and no sequence), which
    faidx leaves out of the index, are allowed. A bgzipped FASTA is not checked: its offsets are into the
    uncompressed text.
    """
    with open(path, "rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            return
        entries = _fai_entries(path)
        size = Path(path).stat().st_size
        previous_end, previous_name = 0, None
        for name, length, offset, line_bases, line_width in entries + [(None, 0, size, 0, 0)]:
            problem = _gap_problem(handle, previous_end, offset, name)
            if problem:
                where = f"after contig {previous_name}" if previous_name else "before the first contig"
                cause = "" if problem.endswith(TRUNCATED_FASTA) else \
                    " (a duplicate contig name, which faidx skips, or a stale .fai?)"
                raise InputError(f"{path}: {where} {problem}{cause}; fix the FASTA and re-index with 'samtools faidx'")
            full_lines = max(-(-length // line_bases) - 1, 0) if line_bases else 0
            previous_end = offset + full_lines * line_width + length - full_lines * line_bases
            previous_name = name


TRUNCATED_FASTA = "which the .fai lists further (a truncated FASTA or a stale .fai?)"


def _gap_problem(handle, start: int, end: int, name: str | None) -> str | None:
    """What is wrong with the bytes from ``start`` (the end of one indexed sequence) to ``end`` (the start of
    the next, ``name``; None: the end of the file), or None."""
    if start > end:
        return f"the file ends inside the last contig, {TRUNCATED_FASTA}" if name is None else \
            f"the .fai's contig {name} starts inside the sequence before it"
    handle.seek(start)
    header = None
    while handle.tell() < end:
        line = handle.readline()
        if not line:  # the file ends before the .fai says the next contig starts (or the last ends)
            return f"the file ends{f' before contig {name}' if name else ''}, {TRUNCATED_FASTA}"
        text = line.strip()
        if text.startswith(b">"):
            header = text
        elif text:
            return "comes sequence that the .fai does not list"
    if name is None:
        return None
    if handle.tell() != end or header is None:
        return f"the .fai's contig {name} does not start after a header line"
    seen = (header[1:].split(maxsplit=1) or [b""])[0].decode(errors="replace")
    return None if seen == name else f"comes contig '{seen[:40]}' where the .fai expects {name}"


FASTA_BASES = b"ACGTNRYSWKMBDHV"  # with the IUPAC ambiguity codes, which are not called bases


def read_fasta_composition(path, chrom: np.ndarray, start: np.ndarray, end: np.ndarray):
    """GC fraction of the non-N bases and N fraction of each interval (NaN GC where all N)."""
    gc = np.full(len(chrom), np.nan)
    n_fraction = np.ones(len(chrom))
    with _open_fasta(path) as fasta:
        for i, (c, s, e) in enumerate(zip(chrom.tolist(), start.tolist(), end.tolist())):
            try:
                sequence = fasta.fetch(c, s, e).upper().encode()
            except (ValueError, UnicodeError) as error:
                raise InputError(f"{path}: cannot read {c}:{s}-{e} ({error}); is the .fai index stale? "
                                 "Re-index with 'samtools faidx'") from None
            if len(sequence) != e - s:
                raise InputError(f"{path}: contig {c} is shorter than bin {c}:{s}-{e}")
            if sequence.translate(None, FASTA_BASES):
                odd = sorted(set(sequence.translate(None, FASTA_BASES).decode(errors="replace")))
                raise InputError(f"{path}: {c}:{s}-{e} holds characters that are not bases ({''.join(odd)[:10]!r})")
            called = len(sequence) - len(sequence.translate(None, b"ACGT"))  # IUPAC ambiguity codes count as N
            n_fraction[i] = 1 - called / len(sequence)
            if called:
                gc[i] = (sequence.count(b"G") + sequence.count(b"C")) / called
    return gc, n_fraction


def read_bed(path) -> pd.DataFrame:
    """Read BED intervals (chrom, start, end[, name]); refuse malformed lines with their number."""
    import pandas as pd

    text = read_text(path)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) < 3:
            raise InputError(f"{path}: line {number} has {len(fields)} tab-separated field(s), BED needs 3")
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise InputError(f"{path}: line {number}: start and end must be integers") from None
        if start < 0 or end <= start:
            raise InputError(f"{path}: line {number}: interval {fields[0]}:{start}-{end} is empty or negative")
        rows.append((fields[0], start, end, fields[3] if len(fields) > 3 else ""))
    if not rows:
        raise InputError(f"{path}: no intervals")
    return pd.DataFrame(rows, columns=["chrom", "start", "end", "name"])


# ---------------------------------------------------------------- bins

BIN_COLUMNS = {"chrom": str, "start": int, "end": int, "kind": str, "gene": str, "gc": float, "n_fraction": float}


def _bins_columns(bins: Bins) -> dict[str, np.ndarray]:
    return {"chrom": bins.chrom, "start": bins.start, "end": bins.end, "kind": bins.kind,
            "gene": bins.gene, "gc": np.round(bins.gc, 6), "n_fraction": np.round(bins.n_fraction, 6)}


def _bins_table(bins: Bins) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(_bins_columns(bins))


def _bins_from_table(path, columns: dict[str, np.ndarray], assembly: str, contig_lengths=None) -> Bins:
    try:
        return Bins(**{name: columns[name] for name in BIN_COLUMNS}, assembly=assembly, contig_lengths=contig_lengths)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None


def write_bins(path, bins: Bins, provenance: dict) -> None:
    if bins.contig_lengths is None:
        raise ValueError("write_bins: bins without contig lengths cannot be written")
    header = format_header({"format": BINS_FORMAT, "assembly": bins.assembly, "bins_checksum": bins.checksum,
                            "contig_lengths": bins.contig_lengths, "provenance": provenance})
    write_text(path, itertools.chain([header], table_chunks(path, _bins_columns(bins))))


def read_bins(path) -> tuple[Bins, dict]:
    header, body = split_header(path, read_text(path), BINS_FORMAT, remake="her2cnv bins")
    assembly, checksum = _bins_identity(path, header)
    lengths = _header_value(path, header, "contig_lengths", lambda v: isinstance(v, dict), "contig lengths")
    bins = _bins_from_table(path, read_columns(path, body, BIN_COLUMNS), assembly, lengths)
    if checksum != bins.checksum:
        raise InputError(f"{path}: the bins do not match the checksum in the header (edited by hand?)")
    return bins, header


def _header_value(path, header: dict, key: str, valid, expected: str):
    """``header[key]``, refusing a missing or malformed value: headers are JSON, so any type can arrive."""
    if key not in header:
        raise InputError(f"{path}: header lacks '{key}' (truncated or edited file?)")
    if not valid(header[key]):
        raise InputError(f"{path}: header '{key}' is not {expected} (edited file?)")
    return header[key]


def _bins_identity(path, header: dict) -> tuple[str, str]:
    """The assembly and bins checksum a bins or counts header names."""
    assembly = _header_value(path, header, "assembly", lambda v: isinstance(v, str) and v in ASSEMBLY_DIRS,
                             "a known assembly (GRCh38 or GRCh37)")
    return assembly, _header_value(path, header, "bins_checksum", lambda v: isinstance(v, str), "a checksum")


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63


# ---------------------------------------------------------------- counts

def write_counts(path, counts: FragmentCounts) -> None:
    header = format_header({
        "format": COUNTS_FORMAT,
        "sample": counts.sample,
        "assembly": counts.bins.assembly,
        "bins_checksum": counts.bins.checksum,
        "outcomes": counts.outcomes,
        "fragment_length_mode": counts.fragment_length_mode,
        "duplicate_fraction": None if counts.duplicate_fraction is None else round(counts.duplicate_fraction, 6),
        "fragment_length_histogram": counts.fragment_length_histogram.tolist(),
        "provenance": counts.metadata,
    })
    table = {**_bins_columns(counts.bins), "count": counts.count, "short_count": counts.short_count}
    write_text(path, itertools.chain([header], table_chunks(path, table)))


def read_counts(path) -> FragmentCounts:
    header, body = split_header(path, read_text(path), COUNTS_FORMAT, remake="her2cnv count")
    sample = _header_value(path, header, "sample", lambda v: isinstance(v, str), "a sample name")
    assembly, checksum = _bins_identity(path, header)
    outcomes = _header_value(path, header, "outcomes", lambda v: isinstance(v, dict) and set(v) == set(COUNT_OUTCOMES)
                             and all(map(_is_count, v.values())), "every outcome with a count")
    histogram = _header_value(path, header, "fragment_length_histogram",
                              lambda v: isinstance(v, list) and all(map(_is_count, v)), "a list of counts")
    provenance = header.get("provenance", {})
    if not isinstance(provenance, dict):
        raise InputError(f"{path}: header 'provenance' is not a JSON object (edited file?)")
    columns = read_columns(path, body, {**BIN_COLUMNS, "count": int, "short_count": int})
    bins = _bins_from_table(path, columns, assembly)
    if bins.checksum != checksum:
        raise InputError(f"{path}: rows do not match the bins checksum in the header (truncated or edited file?)")
    if (columns["count"] < 0).any() or (columns["short_count"] < 0).any():
        raise InputError(f"{path}: negative counts")
    if (columns["short_count"] > columns["count"]).any():
        raise InputError(f"{path}: a bin has more short fragments than fragments (edited file?)")
    try:
        return FragmentCounts(
            sample=check_safe_name(sample),
            bins=bins,
            count=columns["count"],
            short_count=columns["short_count"],
            outcomes={k: outcomes[k] for k in COUNT_OUTCOMES},
            fragment_length_histogram=np.asarray(histogram, dtype=np.int64),
            metadata=provenance,
        )
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: {error}") from None


# ---------------------------------------------------------------- simulated data (simulate, dilute)

SIMULATED_REFERENCE_FORMAT = "her2cnv.simulated_reference/1"
TRUTH_FORMAT = "her2cnv.truth/1"
COHORT_TRUTH_FORMAT = "her2cnv.cohort_truth/1"
DILUTION_FORMAT = "her2cnv.dilution/1"
FASTA_LINE_LENGTH = 60


def write_json(path, data: dict, sort_keys: bool = True) -> None:
    """Write JSON atomically with a final newline: equal data gives equal bytes. Public documents (call,
    monitor) keep their documented field order instead of sorting."""
    write_text(path, json.dumps(data, sort_keys=sort_keys, indent=2) + "\n")


def read_json(path, expected_format: str) -> dict:
    """Read a her2cnv JSON file and check its ``format`` field like ``split_header`` does for tables."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    check_format(path, data.get("format"), expected_format)
    return data


def write_plain_table(path, frame: pd.DataFrame) -> None:
    """A TSV with no ``#`` header, for sheets people edit and Snakemake reads (missing values as NA)."""
    write_text(path, frame.to_csv(sep="\t", index=False, lineterminator="\n", na_rep="NA"))


def write_table(path, frame: pd.DataFrame, header: dict) -> None:
    """A TSV with the ``#key=value`` header (``header`` must hold ``format``)."""
    write_text(path, format_header(header) + frame.to_csv(sep="\t", index=False, lineterminator="\n", na_rep="NA"))


def beside_output(path, suffix: str) -> Path:
    """``OUT.bam`` or ``OUT.counts.tsv[.gz]`` -> ``OUT.<suffix>`` (any other name gets ``.<suffix>`` appended)."""
    path = Path(path)
    stem = next((path.name[:-len(end)] for end in (".bam", ".counts.tsv", ".counts.tsv.gz") if path.name.endswith(end)),
                path.name)
    return path.with_name(f"{stem}.{suffix}")


def parse_region(text: str) -> tuple[str, int, int]:
    """'chr17:39600001-39900000' (1-based inclusive, as samtools) -> ('chr17', 39600000, 39900000)."""
    chrom, _, span = text.rpartition(":")
    first, dash, last = span.replace(",", "").partition("-")
    try:
        if not chrom or not dash:
            raise ValueError
        start, end = int(first) - 1, int(last)
    except ValueError:
        raise InputError(f"region {text!r} must look like chr17:39600001-39900000") from None
    if start < 0 or end <= start:
        raise InputError(f"region {text!r} is empty or starts before position 1")
    return chrom, start, end


def write_fasta(path, contigs) -> None:
    """Write ``(name, chunks)`` pairs (chunks: uint8 arrays of bases) as 60-bp lines, plus the .fai index."""
    import pysam

    fai = Path(f"{path}.fai")
    with atomic_output(fai) as temporary_fai, atomic_output(path) as temporary:
        try:
            with open(temporary, "wb") as handle:
                for name, chunks in contigs:
                    handle.write(f">{name}\n".encode())
                    pending = np.empty(0, dtype=np.uint8)
                    for chunk in chunks:
                        pending = np.concatenate([pending, chunk])
                        n_lines = len(pending) // FASTA_LINE_LENGTH
                        handle.write(_fasta_lines(pending[:n_lines * FASTA_LINE_LENGTH]))
                        pending = pending[n_lines * FASTA_LINE_LENGTH:]
                    if len(pending):
                        handle.write(pending.tobytes() + b"\n")
            pysam.faidx(str(temporary))
            os.replace(f"{temporary}.fai", temporary_fai)
        finally:
            with contextlib.suppress(OSError):  # the error that stopped the write is the one to report
                os.unlink(f"{temporary}.fai")


def _fasta_lines(bases: np.ndarray) -> bytes:
    lines = np.full((len(bases) // FASTA_LINE_LENGTH, FASTA_LINE_LENGTH + 1), ord("\n"), dtype=np.uint8)
    lines[:, :FASTA_LINE_LENGTH] = bases.reshape(-1, FASTA_LINE_LENGTH)
    return lines.tobytes()


def read_fasta_bases(path, contig: str) -> np.ndarray:
    """One contig's sequence as upper-case ASCII codes (uint8).

    An uncompressed FASTA is read straight from the file at its .fai offsets: three times
    faster than through pysam's ``fetch``, which makes a Python string of the contig
    first, and the simulator reads every contig of a full-size reference per sample.
    """
    with _open_fasta(path) as fasta:  # makes the .fai if missing
        if contig not in fasta.references:
            raise InputError(f"{path}: no contig {contig}")
        with open(path, "rb") as handle:
            compressed = handle.read(2) == b"\x1f\x8b"
        if compressed:
            bases = np.frombuffer(fasta.fetch(contig).encode(), dtype=np.uint8).copy()
        else:
            bases = _uncompressed_fasta_bases(path, contig)
    bases[(bases >= ord("a")) & (bases <= ord("z"))] -= ord("a") - ord("A")
    return bases


def _uncompressed_fasta_bases(path, contig: str) -> np.ndarray:
    length, offset, line_bases, line_width = next(entry[1:] for entry in _fai_entries(path) if entry[0] == contig)
    if length == 0:
        return np.zeros(0, dtype=np.uint8)
    n_lines = -(-length // line_bases)
    raw = np.fromfile(path, dtype=np.uint8, count=(n_lines - 1) * line_width + length - (n_lines - 1) * line_bases,
                      offset=offset)
    full_lines = raw[:(n_lines - 1) * line_width].reshape(-1, line_width)[:, :line_bases]
    bases = np.concatenate([full_lines.ravel(), raw[(n_lines - 1) * line_width:]])
    if len(bases) != length:
        raise InputError(f"{path}: {contig} is shorter than its .fai says (truncated FASTA?)")
    return bases


def simulated_reference_sidecar(fasta) -> Path:
    return Path(f"{fasta}.her2cnv.json")


def read_simulated_reference(fasta) -> dict:
    """The sidecar of a reference made by 'her2cnv simulate reference', checked against the FASTA."""
    sidecar = simulated_reference_sidecar(fasta)
    if not Path(fasta).is_file():
        raise InputError(f"{fasta}: no such reference FASTA")
    if not sidecar.is_file():
        raise InputError(f"{fasta}: not a simulated reference (no {sidecar.name} beside it); "
                         "make one with 'her2cnv simulate reference'")
    model = read_json(sidecar, SIMULATED_REFERENCE_FORMAT)
    lengths = read_fasta_lengths(fasta)
    if lengths != model.get("contig_lengths"):
        raise InputError(f"{sidecar}: contig lengths differ from {fasta} (a FASTA from another run?)")
    return {**model, "contig_lengths": lengths}  # in FASTA order (the JSON keys are sorted)


def _last_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


@contextlib.contextmanager
def _atomic_indexed_bam(path):
    """Yield a temporary BAM path; index it, then rename BAM and .bai into place only if all succeeds."""
    import pysam

    with atomic_output(f"{path}.bai") as temporary_index, atomic_output(path) as temporary:
        yield temporary
        try:
            pysam.index(str(temporary), str(temporary_index))
        except pysam.SamtoolsError as error:
            raise Her2CnvError(f"{path}: cannot index ({_last_line(error)})") from None


def write_bam_from_sam(path, sam_header: str, sam_chunks, threads: int = 2) -> None:
    """Write SAM text (a header, then coordinate-sorted record chunks) as an indexed BAM.

    ``--no-PG`` keeps samtools from adding a command line (with temporary names)
    to the header, so equal input gives a byte-identical BAM.
    """
    import pysam

    with _atomic_indexed_bam(path) as temporary:
        sam = temporary.with_name(f"{temporary.name}.sam")
        try:
            with open(sam, "w") as handle:
                handle.write(sam_header)
                for chunk in sam_chunks:
                    handle.write(chunk)
            pysam.view("--no-PG", "-b", "-@", str(threads), "-o", str(temporary), str(sam), catch_stdout=False)
        except pysam.SamtoolsError as error:
            raise Her2CnvError(f"{path}: samtools could not convert the records ({_last_line(error)})") from None
        finally:
            with contextlib.suppress(OSError):  # the error that stopped the write is the one to report
                os.unlink(sam)


def write_alignments(path, header: dict, records, threads: int = 2) -> None:
    """Write pysam records (coordinate-sorted, contigs as in ``header``) as an indexed BAM."""
    import pysam

    with _atomic_indexed_bam(path) as temporary:
        with pysam.AlignmentFile(str(temporary), "wb", header=header, threads=threads) as output:
            for record in records:
                output.write(record)


def sam_header(contig_lengths: dict[str, int], read_group: dict[str, str], program: dict[str, str]) -> str:
    """A coordinate-sorted SAM header: @HD, one @SQ per contig, one @RG and one @PG (no command line)."""
    def fields(tag: str, values: dict) -> str:
        return "\t".join([tag, *(f"{key}:{value}" for key, value in values.items())]) + "\n"

    return (fields("@HD", {"VN": "1.6", "SO": "coordinate"})
            + "".join(fields("@SQ", {"SN": name, "LN": length}) for name, length in contig_lengths.items())
            + fields("@RG", read_group) + fields("@PG", program))


def sam_records(contig: str | None, records, name_prefix: str, read_group: str) -> str:
    """SAM lines (SEQ and QUAL '*') for simulated records; ``contig`` None writes them as unmapped, unplaced.

    ``records`` has equal-length int arrays ``qname_id``, ``flag``, ``pos`` (0-based),
    ``mapq``, ``cigar_length``, ``mate_pos`` and ``tlen``.
    """
    columns = [records.qname_id, records.flag]
    if contig is None:
        return "".join([f"{name_prefix}{i}\t{flag}\t*\t0\t0\t*\t*\t0\t0\t*\t*\tRG:Z:{read_group}\n"
                        for i, flag in zip(*(column.tolist() for column in columns))])
    columns += [records.pos + 1, records.mapq, records.cigar_length, records.mate_pos + 1, records.tlen]
    return "".join([f"{name_prefix}{i}\t{flag}\t{contig}\t{pos}\t{mapq}\t{length}M\t=\t{mate}\t{tlen}\t*\t*\t"
                    f"RG:Z:{read_group}\n"
                    for i, flag, pos, mapq, length, mate, tlen in zip(*(column.tolist() for column in columns))])


# ---------------------------------------------------------------- panel of normals

# 2: adds arm_level_error; 3: adds the size_weighted channel; 4: bins checksum/2; 5: the reference from the
# normals' clipped count ratios without their own copy-number changes (pon.reference_log2), and efficiency_log2;
# 6: the normals' count filters (count_filters), which call, run and normalize compare with the sample's;
# 7: the normals' median fragments (normal_fragments), which QC compares with the sample's
PON_FORMAT = "her2cnv.pon/7"
PANEL_ARRAYS = ("reference_log2", "efficiency_log2", "systematic_variance", "mask", "basis", "null_bins", "null_log2",
                "arm_level_error")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = _io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array).reshape(np.shape(array)), allow_pickle=False)
    return buffer.getvalue()


def write_panel(path, panels: dict, metadata: dict) -> None:
    """A .npz (zip of .npy arrays, readable with ``allow_pickle=False``) with JSON metadata inside.

    Entries carry a fixed timestamp so the same panel gives the same bytes.
    """
    entries = {"metadata.npy": _npy_bytes(np.frombuffer(
        json.dumps({"format": PON_FORMAT, **metadata}, sort_keys=True).encode(), dtype=np.uint8))}
    for channel, panel in panels.items():
        for name in PANEL_ARRAYS:
            entries[f"{channel}.{name}.npy"] = _npy_bytes(getattr(panel, name))
    with atomic_output(path) as temporary:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)


def read_panel(path) -> tuple[dict, dict]:
    """Read a panel of normals: ({channel: Panel}, metadata). Never unpickles anything."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {'is a directory, not a' if path.is_dir() else 'no such'} panel of normals")
    if not zipfile.is_zipfile(path):  # before numpy, whose message for other files suggests unpickling them
        raise InputError(f"{path}: not a readable her2cnv panel of normals (not a complete .npz archive: "
                         "truncated, or another kind of file); make one with 'her2cnv pon'")
    try:
        with np.load(path, allow_pickle=False) as archive:
            metadata = json.loads(archive["metadata"].tobytes().decode())
            if not isinstance(metadata, dict):
                raise InputError(f"{path}: the panel's metadata is not a JSON object (an edited file?)")
            check_format(path, metadata.get("format"), PON_FORMAT, remake="her2cnv pon")
            for key in ("bins_checksum", "assembly"):
                _header_value(path, metadata, key, lambda v: isinstance(v, str), "text")
            for key in ("samples", "channels"):
                _header_value(path, metadata, key, lambda v: isinstance(v, list) and all(map(_text, v)),
                              "a list of names")
            _header_value(path, metadata, "count_filters", lambda v: isinstance(v, dict), "the normals' filters")
            _header_value(path, metadata, "normal_fragments",
                          lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
                          "a positive number")
            missing = [channel for channel in CHANNELS if channel not in metadata["channels"]]
            if missing:
                raise InputError(f"{path}: the panel of normals lacks channel(s) {', '.join(missing)}; rebuild it "
                                 "with 'her2cnv pon'")
            panels = {}
            for channel in metadata["channels"]:
                arrays = {name: archive[f"{channel}.{name}"] for name in PANEL_ARRAYS}
                arrays["arm_level_error"] = float(arrays["arm_level_error"])
                panels[channel] = Panel(channel=channel, bins_checksum=metadata["bins_checksum"],
                                        assembly=metadata["assembly"],
                                        sample_names=tuple(metadata["samples"]),
                                        normal_fragments=float(metadata["normal_fragments"]), **arrays)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError,
            UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable her2cnv panel of normals ({type(error).__name__}: "
                         f"{str(error)[:80]})") from None
    return panels, metadata


# ---------------------------------------------------------------- normalised ratios

RATIOS_FORMAT = "her2cnv.ratios/1"


def write_ratios(path, counts: FragmentCounts, profile, header: dict) -> None:
    """Per-bin table of one normalised sample: raw count, log2 ratio (NA where masked) and weight."""
    table = _bins_table(counts.bins)[["chrom", "start", "end", "kind", "gene"]]
    table["count"] = counts.count
    table["log2_ratio"] = np.round(profile.log2_ratio, 5)
    table["weight"] = np.round(profile.weight, 4)
    table["expected_count"] = np.round(profile.expected_count, 3)
    fields = {"format": RATIOS_FORMAT, "sample": counts.sample, "assembly": counts.bins.assembly,
              "bins_checksum": counts.bins.checksum, **header}
    write_text(path, format_header(fields) + table.to_csv(sep="\t", index=False, lineterminator="\n", na_rep="NA"))


# ---------------------------------------------------------------- thresholds

def read_thresholds(override_path=None):
    """Defaults from ``reference/thresholds.toml``, with keys from ``override_path`` replacing them."""
    sections = tomllib.loads(_reference_file("thresholds.toml").read_text())
    values = {key: value for section in sections.values() for key, value in section.items()}
    if override_path is not None:
        try:
            override = tomllib.loads(read_text(override_path))
        except tomllib.TOMLDecodeError as error:
            raise InputError(f"{override_path}: not valid TOML ({error})") from None
        flat = {k: v for s in override.values() if isinstance(s, dict) for k, v in s.items()}
        flat.update({k: v for k, v in override.items() if not isinstance(v, dict)})
        unknown = sorted(set(flat) - set(values))
        if unknown:
            raise InputError(f"{override_path}: unknown threshold(s) {', '.join(unknown)}")
        values.update(flat)  # Thresholds checks each value's type and range
    try:
        return Thresholds(**values)
    except ValueError as error:
        raise InputError(f"{override_path or _reference_file('thresholds.toml')}: {error}") from None


# ---------------------------------------------------------------- call outputs

CALL_FORMAT = "her2cnv.call/1"


def _clean(value, digits: int = 6):
    """JSON-safe and stable: round floats to ``digits`` significant digits, NaN/inf -> null."""
    if isinstance(value, dict):
        return {str(k): _clean(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, digits) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not np.isfinite(value) else float(f"{value:.{digits}g}")
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def call_document(call, tumor_fraction, size_weighted_fit, provenance: dict, patient: str | None = None,
                  date: str | None = None) -> dict:
    """The public SAMPLE.call.json document (field names are a pinned interface; see README).

    ``size_weighted_fit``: call.analyse's second look at the tumour fraction, or None if it was not made."""
    erbb2 = {
        "status": call.status, "reason": call.reason,
        "plasma_copy_number": call.plasma_copy_number, "plasma_copy_number_ci95": call.plasma_copy_number_ci95,
        "tumor_copy_number": call.tumor_copy_number, "tumor_copy_number_ci95": call.tumor_copy_number_ci95,
        "tumor_copy_number_floor": call.tumor_copy_number_floor,
        "log2_ratio": call.log2_ratio, "log2_ratio_se": call.log2_ratio_se, "measured_on": call.measured_on,
        "core_log2_ratio": call.core_log2_ratio, "z_score": call.z_score, "null_z_score": call.null_z_score,
        "gain_detected": call.gain_detected, "detectable_plasma_copy_number": call.detectable_plasma_copy_number,
        "focal": call.focal, "amplicon": call.amplicon, "arm_log2_ratios": call.arm_log2_ratios,
        "limit_of_detection_copy_number": call.limit_of_detection_copy_number,
        "called_on": call.called_on, "size_weighted": call.size_weighted, "ploidy_readings": call.ploidy_readings,
    }
    fraction = {
        "estimate": tumor_fraction.estimate, "ci95": tumor_fraction.ci95, "method": tumor_fraction.method,
        "detected": tumor_fraction.detected, "detection_limit": tumor_fraction.limit,
        "ploidy": tumor_fraction.ploidy,
        "baseline_copy_number": tumor_fraction.readings[0].baseline_copy_number if tumor_fraction.readings else None,
        "fit_improvement": tumor_fraction.fit_improvement,
        "segments_used": tumor_fraction.n_segments, "model_error_log2": tumor_fraction.model_error,
        "size_weighted": None if size_weighted_fit is None else {
            "estimate": size_weighted_fit.estimate, "ci95": size_weighted_fit.ci95,
            "detected": size_weighted_fit.detected, "detection_limit": size_weighted_fit.limit,
            "fit_improvement": size_weighted_fit.fit_improvement, "ceiling": size_weighted_fit.ceiling,
            "above_ceiling": size_weighted_fit.above_ceiling},
    }
    return _clean({"format": CALL_FORMAT, "sample": call.sample, "patient": patient, "date": date,
                   "erbb2": erbb2, "tumor_fraction": fraction,
                   "qc": call.qc, "provenance": provenance})


def write_segments(path, sample: str, segments, bins: Bins, baseline: float) -> None:
    """IGV .seg: ID, chrom, loc.start (1-based), loc.end, num.mark, seg.mean (log2 to the diploid baseline)."""
    rows = ["ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean"]
    for i in range(len(segments)):
        mean = segments.log2_ratio[i] - baseline
        rows.append(f"{sample}\t{segments.chrom[i]}\t{int(bins.start[segments.first_bin[i]]) + 1}\t"
                    f"{int(bins.end[segments.end_bin[i] - 1])}\t{int(segments.n_bins[i])}\t"
                    f"{'NA' if not np.isfinite(mean) else f'{mean:.4f}'}")
    write_text(path, "\n".join(rows) + "\n")


def write_bytes(path, data: bytes) -> None:
    with atomic_output(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _interval(value) -> bool:
    """[low, high], low <= high; null ends where the measurement failed (NaN is written as null)."""
    return isinstance(value, list) and len(value) == 2 and all(v is None or _number(v) for v in value) and \
        (None in value or value[0] <= value[1])


def _optional(check):
    return lambda value: value is None or check(value)


def _text(value) -> bool:
    return isinstance(value, str)


def _full_interval(value) -> bool:
    return _interval(value) and None not in value


def _fraction(value) -> bool:
    return _number(value) and 0 <= value <= 1


def _texts(value) -> bool:
    return isinstance(value, list) and all(map(_text, value))


def _record(fields: dict):
    """A JSON object holding at least ``fields``, each valid by its check."""
    return lambda value: isinstance(value, dict) and all(key in value and check(value[key])
                                                         for key, check in fields.items())


def _tumor_fraction(value) -> bool:
    """A detected fraction has an estimate inside a complete interval (report and monitor draw it)."""
    if not value.get("detected"):
        return True
    estimate, interval = value.get("estimate"), value.get("ci95")
    return _fraction(estimate) and _full_interval(interval) and interval[0] <= estimate <= interval[1]


_READING = _record({
    "baseline_copy_number": _number, "copies_per_step": _optional(_number), "tumor_fraction": _optional(_fraction),
    "tumor_copy_number": _optional(_number), "tumor_copy_number_ci95": _optional(_interval)})
_AMPLICON = _record({"chrom": _text, "start": _number, "end": _number, "genes": _texts})


# The fields of a call document that report, summary and monitor read, and what each must hold: a call.json
# is an input like any other, and an edited one must be refused, not break them (or be half-read).
CALL_FIELDS = {
    "sample": lambda v: isinstance(v, str) and check_safe_name(v, "sample name") == v,
    "patient": _optional(_text), "date": _optional(_text),
    "erbb2": lambda v: isinstance(v, dict), "tumor_fraction": lambda v: isinstance(v, dict),
    "qc": lambda v: isinstance(v, dict) and isinstance(v.get("pass"), bool) and isinstance(v.get("reasons"), list),
    "provenance": lambda v: isinstance(v, dict),
    "erbb2.status": lambda v: v in STATUSES, "erbb2.reason": _text,
    "erbb2.plasma_copy_number": _optional(_number), "erbb2.plasma_copy_number_ci95": _interval,
    "erbb2.tumor_copy_number": _optional(_number), "erbb2.tumor_copy_number_ci95": _optional(_interval),
    "erbb2.tumor_copy_number_floor": _optional(_number), "erbb2.log2_ratio": _optional(_number),
    "erbb2.z_score": _optional(_number), "erbb2.focal": _optional(lambda v: isinstance(v, bool)),
    "erbb2.limit_of_detection_copy_number": _optional(_number),
    "tumor_fraction.estimate": _optional(_number), "tumor_fraction.ci95": _optional(_interval),
    "tumor_fraction.detected": lambda v: isinstance(v, bool), "tumor_fraction.method": _text,
    "tumor_fraction.detection_limit": _optional(_number),
    "erbb2.gain_detected": lambda v: isinstance(v, bool), "erbb2.detectable_plasma_copy_number": _optional(_number),
    "erbb2.called_on": lambda v: v in ("all", "size_weighted"),
    "erbb2.amplicon": _optional(_AMPLICON),
    "erbb2.ploidy_readings": lambda v: isinstance(v, list) and all(map(_READING, v)),
    "qc.reasons": _texts,
    "provenance.inputs": lambda v: isinstance(v, dict),
    "provenance.parameters": lambda v: isinstance(v, dict) and isinstance(v.get("thresholds", {}), dict),
}
# checks of one object as a whole, after its fields (name: what it must hold)
CALL_OBJECTS = {"tumor_fraction": (_tumor_fraction, "an estimate inside its 95% interval, in [0, 1], when detected")}


def read_call(path) -> dict:
    """A SAMPLE.call.json document, format- and field-checked (``CALL_FIELDS``)."""
    document = read_json(path, CALL_FORMAT)
    for name, valid in CALL_FIELDS.items():
        parent, _, key = name.rpartition(".")
        holder = document.get(parent) if parent else document
        if key not in holder:
            raise InputError(f"{path}: call lacks '{name}' (truncated or edited file?)")
        try:
            ok = valid(holder[key])
        except ValueError:  # an unsafe sample name
            ok = False
        if not ok:
            raise InputError(f"{path}: call field '{name}' holds {json.dumps(holder[key])[:40]}, not a valid value "
                             "(edited file?)")
    for name, (valid, expected) in CALL_OBJECTS.items():
        if not valid(document[name]):
            raise InputError(f"{path}: call field '{name}' does not hold {expected} (edited file?)")
    return document


# ---------------------------------------------------------------- monitoring

MONITOR_FORMAT = "her2cnv.monitor/2"  # /2: the baseline is the first QC-passing draw (timepoints[].baseline)


def monitor_document(patient: str, rows: list[dict], provenance: dict) -> dict:
    """The public PATIENT.monitor.json document."""
    return _clean({"format": MONITOR_FORMAT, "patient": patient, "timepoints": rows, "provenance": provenance})


def write_monitor(json_path, tsv_path, document: dict) -> None:
    """PATIENT.monitor.json and a flat PATIENT.monitor.tsv (one row per timepoint)."""
    import pandas as pd

    write_json(json_path, document, sort_keys=False)
    records = []
    for row in document["timepoints"]:
        change = row.get("change_from_baseline") or {}
        excess = change.get("excess_plasma_copy_number") or {}
        records.append({
            "sample": row["sample"], "date": row["date"], "status": row["status"],
            "plasma_copy_number": row["plasma_copy_number"], "tumor_fraction": row["tumor_fraction"],
            "tumor_copy_number": row["tumor_copy_number"],
            "response": "baseline" if row.get("baseline") else change.get("response"),
            "excess_pcn_change": excess.get("difference"),
            "excess_pcn_change_ci95_low": (excess.get("ci95") or [None, None])[0],
            "excess_pcn_change_ci95_high": (excess.get("ci95") or [None, None])[1],
            "excess_pcn_relative_change": excess.get("relative"),
            "excess_pcn_change_z": excess.get("z_score"), "flags": ";".join(change.get("flags", [])),
        })
    write_table(tsv_path, pd.DataFrame(records), {"format": MONITOR_FORMAT, "patient": document["patient"],
                                                  "provenance": document["provenance"]})


def read_sample_sheet(path) -> pd.DataFrame:
    """A sample sheet (TSV with columns sample, patient, date, role, bam); NA marks a missing value."""
    frame = read_table(path, read_text(path), {"sample": str, "patient": str, "date": str, "role": str, "bam": str})
    duplicated = frame["sample"][frame["sample"].duplicated()]
    if len(duplicated):
        raise InputError(f"{path}: sample {duplicated.iloc[0]} appears more than once")
    return frame


def read_optional_bytes(path) -> bytes | None:
    """A file's bytes, or None if it does not exist (for figures beside a call)."""
    path = Path(path)
    return path.read_bytes() if path.is_file() else None


SUMMARY_FORMAT = "her2cnv.summary/2"  # /2: intervals read "low to high"


def write_summary(path, rows: list[dict], columns: tuple[str, ...], provenance: dict) -> None:
    import pandas as pd

    write_table(path, pd.DataFrame(rows, columns=list(columns)), {"format": SUMMARY_FORMAT, "provenance": provenance})
