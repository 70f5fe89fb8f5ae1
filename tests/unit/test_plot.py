"""The chr17 figure's gene track: every amplicon gene named, no name over another gene or name."""
from her2cnv import io, plot


def test_gene_rows_pack_greedily():
    # the third span clears the first row's end by more than the gap; the fourth only the second row's
    assert plot.gene_rows([(0, 10), (5, 15), (12, 20), (21, 30)], gap=1) == [0, 1, 0, 1]
    assert plot.gene_rows([], gap=1) == []


def test_gene_track_names_every_gene_without_overlap():
    assembly = io.load_assembly("GRCh38")
    plt = plot._pyplot()
    figure, axes = plt.subplots(figsize=(4, 1.2), dpi=100)
    _, locus_start, locus_end = assembly.locus
    axes.set_xlim(locus_start / 1e6, locus_end / 1e6)
    plot._gene_track(axes, figure, assembly)
    renderer = figure.canvas.get_renderer()
    labels = {text.get_text(): text.get_window_extent(renderer) for text in axes.texts}
    bars = [line.get_window_extent(renderer) for line in axes.lines]
    assert sorted(labels) == sorted(assembly.gene_names)
    boxes = list(labels.values()) + bars
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                   if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1]
    assert not overlapping
    plt.close(figure)
