#!/usr/bin/env python3
"""Replace the absolute data directory recorded in a run (config.json and the state
record inside checkpoint.pt) by a relative one of the same length, before the run is
committed (models/ must not hold paths of the machine that trained it).

The checkpoint is a zip whose records are stored uncompressed: the path is replaced in
place, byte for byte (so no offset or pickle length changes), and the CRC-32 of the one
record that holds it is rewritten in its local header and in the central directory.
data_dir is only a record: --resume and eval take the data from --data or $MAPGATE_DATA.

    python3 tools/relative_data_dir.py RUN OLD_DIR NEW_DIR   # len(NEW_DIR) == len(OLD_DIR)
"""
import json
import struct
import sys
import zipfile
import zlib
from pathlib import Path


def patch_checkpoint(path: Path, old: bytes, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        infos = [i for i in z.infolist() if old in z.read(i)]
        if len(infos) != 1:
            sys.exit(f"{path}: {len(infos)} records hold {old!r}, expected exactly 1")
        info = infos[0]
        content = z.read(info).replace(old, new)
    if info.compress_type != zipfile.ZIP_STORED:
        sys.exit(f"{path}: record {info.filename} is compressed; cannot patch in place")
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    data[start:start + len(content)] = content
    crc = struct.pack("<I", zlib.crc32(content) & 0xFFFFFFFF)
    data[info.header_offset + 14:info.header_offset + 18] = crc  # local header
    # This record's central-directory entry: the one at its header offset.
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        if struct.unpack_from("<I", data, at + 42)[0] == info.header_offset:
            data[at + 16:at + 20] = crc
            break
        at = data.find(b"PK\x01\x02", at + 4)
    else:
        sys.exit(f"{path}: no central-directory entry for {info.filename}")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:
        if z.testzip() is not None:
            sys.exit(f"{path}: CRC check failed after patching")


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run, old, new = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if len(old.encode()) != len(new.encode()):
        sys.exit(f"NEW_DIR has {len(new)} bytes, OLD_DIR {len(old)}: they must be equal")
    text = (run / "config.json").read_text()
    if json.loads(text).get("data_dir") != old:
        sys.exit(f"{run}/config.json: data_dir is not {old!r}")
    (run / "config.json").write_text(text.replace(json.dumps(old), json.dumps(new)))
    patch_checkpoint(run / "checkpoint.pt", json.dumps(old).encode(), json.dumps(new).encode())


if __name__ == "__main__":
    main()
