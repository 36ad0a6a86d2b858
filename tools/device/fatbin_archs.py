#!/usr/bin/env python3
"""Lists the GPU code embedded in a shared object (e.g. build/Release/growlm.node): one line per
fat-binary entry, "elf sm_90" for machine code (a cubin) and "ptx compute_90" for PTX, then a
summary. For machines without cuobjdump (this one has nvcc but not cuobjdump); on the GPU
machine `cuobjdump --list-elf` says the same.

    python3 tools/device/fatbin_archs.py build/Release/growlm.node [--require-elf 90]

--require-elf ARCH exits 1 unless machine code for sm_ARCH is present.

Layout (as nvcc 11-13 write it; read, not documented by NVIDIA): the .nv_fatbin section holds
fat binaries, each a 16-byte header (magic 0xBA55ED50, u16 version, u16 header size, u64 size
of the entries) followed by entries: u16 kind (1 = PTX, 2 = ELF), u16, u32 entry header size,
u64 payload size, u32 compressed size, u32, u16 minor, u16 major, u32 arch (90 = sm_90), ...
"""
from __future__ import annotations

import argparse
import struct
import sys

MAGIC = struct.pack("<I", 0xBA55ED50)
KINDS = {1: "ptx", 2: "elf"}


def entries(data: bytes):
    """(kind, arch) of every entry of every fat binary in `data`."""
    at = data.find(MAGIC)
    while at != -1:
        _, _, header_size, size = struct.unpack_from("<IHHQ", data, at)
        p, end = at + header_size, at + header_size + size
        while p < end:
            kind, _, entry_header, payload, _, _, _, _, arch = struct.unpack_from("<HHIQIIHHI", data, p)
            if entry_header == 0:
                raise ValueError(f"malformed fat binary entry at byte {p}")
            yield KINDS.get(kind, f"kind{kind}"), arch
            p += entry_header + payload
        at = data.find(MAGIC, end)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--require-elf", type=int, metavar="ARCH")
    args = parser.parse_args()
    with open(args.file, "rb") as f:
        found = list(entries(f.read()))
    for kind, arch in found:
        print(f"{kind} {'sm' if kind == 'elf' else 'compute'}_{arch}")
    elf = sorted({arch for kind, arch in found if kind == "elf"})
    ptx = sorted({arch for kind, arch in found if kind == "ptx"})
    print(f"{args.file}: {len(found)} entries; machine code for {', '.join(f'sm_{a}' for a in elf) or 'no architecture'}; "
          f"PTX for {', '.join(f'compute_{a}' for a in ptx) or 'none'}")
    if args.require_elf is not None and args.require_elf not in elf:
        print(f"{args.file} has no machine code for sm_{args.require_elf}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
