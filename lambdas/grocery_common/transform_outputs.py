"""Which `.out` file of a batch transform job belongs to which input: one rule for every reader.

A transform job writes one `.out` per input object that it processed successfully
"in a corresponding subfolder in the location in the output prefix", and "if any
object fails in the transform job batch transform marks the job as failed"
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html).
Which part of the input's key that subfolder keeps depends on the data source
(S3Prefix or ManifestFile; the page's own example drops a folder). The batch decode
step (inputs are full keys under `incoming/`) and the training test-set scorer (inputs
are `.lst` paths relative to `test/`) therefore both match by key tail, with this module:

- an output belongs to the input that owns the longest tail of the output's relative
  path (whole path components: `x/b.jpg.out` is `incoming/x/b.jpg`, and `b.jpg.out` is
  `test/Apple/b.jpg` when no other input ends with `b.jpg`);
- a tail shared by several inputs (`b.jpg` for `x/b.jpg` and `y/b.jpg`) is ambiguous and
  never guessed: that output is reported unmatched, and its inputs have no output;
- an input gets at most one output; a second output for it is reported unmatched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

OUT_SUFFIX = ".out"


def _tails(path: str) -> Iterator[str]:
    """`a/b/c` -> `a/b/c`, `b/c`, `c`: the whole-component tails, longest first."""
    parts = path.split("/")
    for start in range(len(parts)):
        yield "/".join(parts[start:])


def match_outputs(
    input_keys: Iterable[str], out_keys: Iterable[str], prefix: str
) -> tuple[dict[str, str], list[str]]:
    """({input key: its .out key}, the .out keys that belong to no input).

    `prefix` is the job's output folder as listed (the `.out` keys start with it).
    """
    by_tail: dict[str, str | None] = {}
    for key in input_keys:
        for tail in _tails(key):
            by_tail[tail] = None if tail in by_tail else key  # None: ambiguous
    matches: dict[str, str] = {}
    unmatched: list[str] = []
    for out_key in out_keys:
        relative = out_key.removeprefix(prefix).removesuffix(OUT_SUFFIX)
        owner = next((by_tail[tail] for tail in _tails(relative) if by_tail.get(tail)), None)
        if owner is None or owner in matches:
            unmatched.append(out_key)
        else:
            matches[owner] = out_key
    return matches, unmatched


def list_outputs(s3, bucket: str, prefix: str) -> Iterator[str]:
    """The `.out` keys under `prefix` (ListObjectsV2, every page)."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(OUT_SUFFIX):
                yield item["Key"]


def find_outputs(
    s3, bucket: str, prefix: str, input_keys: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """match_outputs over what the job wrote under `prefix`."""
    return match_outputs(input_keys, list_outputs(s3, bucket, prefix), prefix)
