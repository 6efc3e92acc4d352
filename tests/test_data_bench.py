"""The data benchmark: a tiny run end to end, and that --write replaces only its own section."""

from lightning_distill.data import bench


def test_tiny_bench_writes_only_its_section(tmp_path, capsys):
    target = tmp_path / "BENCHMARKS.md"
    target.write_text(
        "# Benchmarks\n\n<!-- bench:train -->\ntraining numbers\n<!-- /bench:train -->\n\n"
        f"{bench.BEGIN}\nold data numbers\n{bench.END}\n\n<!-- bench:eval -->\neval numbers\n<!-- /bench:eval -->\n"
    )
    args = ["--sizes", "32", "--clips", "2", "--video-frames", "12", "--frames", "4", "--rounds", "1"]
    assert bench.main([*args, "--write", str(target)]) == 0
    assert "32x32: pipeline" in capsys.readouterr().out
    text = target.read_text()
    assert "old data numbers" not in text
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert text.index("training numbers") < text.index(bench.BEGIN) < text.index("eval numbers")
    assert "python -m lightning_distill.data.bench --sizes 32" in text
    row = next(line for line in text.splitlines() if line.startswith("| 32x32 |"))
    pipeline, plain, ratio = (float(cell) for cell in row.strip("|").split("|")[3:6])
    assert pipeline > 0 and plain > 0 and abs(ratio - pipeline / plain) < 0.02


def test_write_section_creates_or_appends(tmp_path):
    fresh = tmp_path / "new.md"
    bench.write_section(fresh, f"{bench.BEGIN}\nx\n{bench.END}\n")
    assert fresh.read_text().startswith("# Benchmarks") and fresh.read_text().endswith(f"{bench.END}\n")
    other = tmp_path / "other.md"
    other.write_text("# Benchmarks\n\nsomething else\n")
    bench.write_section(other, f"{bench.BEGIN}\ny\n{bench.END}\n")
    assert other.read_text() == f"# Benchmarks\n\nsomething else\n\n{bench.BEGIN}\ny\n{bench.END}\n"
