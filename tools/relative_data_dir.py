#!/usr/bin/env python3
"""Replace the absolute data directory recorded in a run (config.json and the state
record inside checkpoint.pt) by a relative one, before the run is committed (models/
must not hold paths of the machine that trained it).

The checkpoint (format 2, docs/checkpoint-format.md) keeps its state record in a JSON
header after the 8-byte magic, the version and the header's length: the path is
replaced there and the length rewritten; the tensors after it are copied unchanged.
data_dir is only a record: --resume and eval take the data from --data or $MAPGATE_DATA.

    python3 tools/relative_data_dir.py RUN OLD_DIR NEW_DIR
"""
import json
import struct
import sys
from pathlib import Path

MAGIC = b"MGCHKPT\0"


def patch_checkpoint(path: Path, old: str, new: str) -> None:
    data = path.read_bytes()
    if data[:8] != MAGIC:
        sys.exit(f"{path}: not a format-2 mapgate checkpoint (run `mapgate upgrade-checkpoint` first)")
    version, size = struct.unpack_from("<II", data, 8)
    header = data[16:16 + size].decode()
    quoted_old, quoted_new = json.dumps(old), json.dumps(new)
    if header.count(quoted_old) != 1:
        sys.exit(f"{path}: its header holds {quoted_old} {header.count(quoted_old)} times, expected once")
    patched = header.replace(quoted_old, quoted_new).encode()
    path.write_bytes(MAGIC + struct.pack("<II", version, len(patched)) + patched + data[16 + size:])


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run, old, new = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    text = (run / "config.json").read_text()
    if json.loads(text).get("data_dir") != old:
        sys.exit(f"{run}/config.json: data_dir is not {old!r}")
    (run / "config.json").write_text(text.replace(json.dumps(old), json.dumps(new)))
    patch_checkpoint(run / "checkpoint.pt", old, new)


if __name__ == "__main__":
    main()
