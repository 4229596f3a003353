"""``grade batch merge``: join the output folders of sharded batches into one, as if graded in one run.

Shards must agree on everything that makes a grade (rubric, reference, grader), cover
every slice of one split exactly once, and be finished; the joined folder then gets
the reports and students' pages, a manifest listing every submission, and a gradebook and summary rebuilt
from the reports, byte for byte those of a single run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from grader.errors import BatchError
from grader.files import write_bytes_atomic, write_json_atomic
from grader.frontends.batch.gradebook import Row, page_name
from grader.frontends.batch.outdir import (
    MANIFEST,
    exclusive,
    finish,
    missing_reports,
    read_manifest,
    sweep_temporaries,
)
from grader.frontends.batch.roster import natural_key

AGREED = (  # manifest keys every shard must share, and what to call each in a message
    ("rubric_sha256", "rubric"),
    ("assignment_sha256", "reference, catalog or template"),
    ("grader_version", "grader version"),
    ("code_sha256", "grader code"),
)


def check_mergeable(sources: Sequence[Path], manifests: Sequence[dict]) -> None:
    """Same rubric and grader everywhere, no submission twice, and every shard of N present once."""
    first = manifests[0]
    for source, manifest in zip(sources, manifests):
        for key, what in AGREED:
            if manifest.get(key) != first.get(key):
                raise BatchError(f"{source}: graded with another {what} than {sources[0]}; regrade it to merge")
    seen: dict[str, Path] = {}
    for source, manifest in zip(sources, manifests):
        for item in manifest["submissions"]:
            if item["id"] in seen:
                raise BatchError(f"{source}: submission {item['id']} is also in {seen[item['id']]}")
            seen[item["id"]] = source
    shards = [m["shard"] for m in manifests if m["shard"] is not None]
    if shards:
        counts = {s["count"] for s in shards}
        if len(counts) > 1 or len(shards) != len(manifests):
            raise BatchError("these folders are not shards of one split: give the folders of --shard 1/N to N/N")
        (count,) = counts
        indices = sorted(s["index"] for s in shards)
        absent = sorted(set(range(1, count + 1)) - set(indices))
        if absent:
            listed = ", ".join(f"{k}/{count}" for k in absent)
            raise BatchError(f"shard(s) {listed} missing: pass the -o folder of every shard")
        if len(indices) != len(set(indices)):
            raise BatchError("a shard is given twice")


def merge_folders(sources: Sequence[Path], dest: Path) -> list[Row]:
    """Copy every shard's reports and pages into ``dest`` and write its manifest, gradebook and summary."""
    manifests = [read_manifest(source) for source in sources]
    check_mergeable(sources, manifests)
    items = []
    for source, manifest in zip(sources, manifests):
        missing = missing_reports(source, manifest)
        if missing:
            raise BatchError(
                f"{source}: unfinished, {len(missing)} of {len(manifest['submissions'])} submissions have no "
                "report yet; rerun that shard's command to finish it"
            )
        items += [(source, item) for item in manifest["submissions"]]
    items.sort(key=lambda pair: natural_key(pair[1]["id"]))
    with exclusive(dest):
        sweep_temporaries(dest)
        for source, item in items:
            for name in (page_name(item["report"]), item["report"]):  # the page first, as a worker writes them
                origin, target = source / name, dest / name
                if not target.exists() or not os.path.samefile(origin, target):
                    write_bytes_atomic(target, origin.read_bytes())
        merged = {
            **manifests[0],
            "inputs": sorted({i for m in manifests for i in m["inputs"]}),
            "shard": None,
            "submissions": [item for _, item in items],
        }
        write_json_atomic(dest / MANIFEST, merged)
        return finish(dest, merged)
