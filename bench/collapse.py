"""Summarise py-spy's collapsed stacks: the functions with the most samples, self and total."""

from __future__ import annotations

import sys
from collections import Counter


def main(path: str) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    print(f"{samples} samples")
    print("\n-- self --")
    for frame, n in own.most_common(30):
        print(f"{100 * n / samples:5.1f}%  {frame}")
    print("\n-- total (inclusive) --")
    for frame, n in total.most_common(40):
        print(f"{100 * n / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1])
