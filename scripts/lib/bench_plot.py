"""Draws one benchmark curve as a PNG from CSV rows "series,x,y" on stdin.

Usage: bench_plot.py OUT.png TITLE XLABEL YLABEL [--logx] [--categorical] [--note TEXT]
Every series becomes a line with markers; --categorical spaces the x values evenly
and uses them as labels (skew names, sizes).
"""

import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("title")
    parser.add_argument("xlabel")
    parser.add_argument("ylabel")
    parser.add_argument("--logx", action="store_true")
    parser.add_argument("--categorical", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    series: dict[str, list[tuple[str, float]]] = {}
    for row in csv.reader(sys.stdin):
        if len(row) != 3:
            continue
        series.setdefault(row[0], []).append((row[1], float(row[2])))

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    labels: list[str] = []
    for points in series.values():
        for x, _ in points:
            if x not in labels:
                labels.append(x)
    for name, points in series.items():
        if args.categorical:
            xs = [labels.index(x) for x, _ in points]
        else:
            xs = [float(x) for x, _ in points]
        ax.plot(xs, [y for _, y in points], marker="o", label=name)
    if args.categorical:
        ax.set_xticks(range(len(labels)), labels)
    elif args.logx:
        ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_title(args.title)
    ax.set_xlabel(args.xlabel)
    ax.set_ylabel(args.ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if args.note:
        fig.text(0.01, 0.01, args.note, fontsize=7, alpha=0.7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out)


if __name__ == "__main__":
    main()
