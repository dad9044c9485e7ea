"""Reading back what an offline W&B run recorded, from its binary transaction log."""

from __future__ import annotations

from pathlib import Path


def read_wandb_offline_run(run_dir: Path) -> dict:
    """What an offline W&B run recorded, read from its transaction log (run-*.wandb):
    config keys, history keys, summary keys, artifacts as (type, name, files), the
    trainer/global_step of each history row (`steps`), every history row as {key: value}
    (`rows`) and the summary's values (`summary_values`).

    The log is a sequence of 32 KiB blocks holding checksummed chunks (header: crc32,
    length, kind 1 full / 2 first / 3 middle / 4 last), each record a protobuf `Record`.
    """
    import json
    import struct

    from wandb.proto import wandb_internal_pb2

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    data = next(Path(run_dir).glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, header = 32768, 7
    position, pending, records = 7, b"", []
    while position + header <= len(data):
        if block - position % block < header:  # block trailer too short for a header
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + header])
        if kind == 0:  # zero padding up to the next block
            position += block - position % block
            continue
        chunk = data[position + header : position + header + length]
        position += header + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            records.append(pending)
    # steps: the trainer/global_step of every history row, in the order logged.
    run = {"config": set(), "history": set(), "summary": set(), "artifacts": [], "steps": []}
    run.update(rows=[], summary_values={})
    for raw in records:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["config"].update(key(item) for item in record.run.config.update)
        elif kind == "config":
            run["config"].update(key(item) for item in record.config.update)
        elif kind == "history":
            run["history"].update(key(item) for item in record.history.item)
            steps = [i.value_json for i in record.history.item if key(i) == "trainer/global_step"]
            run["steps"] += [float(s) for s in steps]
            run["rows"].append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            run["summary"].update(key(item) for item in record.summary.update)
            for item in record.summary.update:
                run["summary_values"][key(item)] = json.loads(item.value_json)
        elif kind == "artifact":
            files = [entry.path for entry in record.artifact.manifest.contents]
            run["artifacts"].append((record.artifact.type, record.artifact.name, files))
    return run
