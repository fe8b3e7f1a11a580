"""The ctypes mirrors of the core's structs (core_lib.py, test_c_core.py) against the C compiler's layout.

The ctypes records are written by hand; a field added, moved or retyped in the header would make
every ctypes call read the wrong bytes. The compiler prints offsetof and sizeof of each field.
"""

from __future__ import annotations

import ctypes
import subprocess

from tests import core_lib, test_c_core

STRUCTS = {"htpw_options": core_lib.Options, "htpw_input": core_lib.Input, "htpw_file_info": core_lib.FileInfo,
           "htpw_tensor": test_c_core.Tensor, "htpw_mlp": test_c_core.Mlp, "htpw_signs": test_c_core.Signs,
           "htpw_requant": test_c_core.Requant}


def _c_layout(tmp_path) -> dict[str, list[tuple[str, int, int]]]:
    """(field, offset, size) per struct, and ("sizeof", 0, size), as gcc lays them out."""
    lines = []
    for struct_name, mirror in STRUCTS.items():
        for field, _ in mirror._fields_:
            lines.append(f'  printf("{struct_name} {field} %zu %zu\\n", offsetof({struct_name}, {field}), '
                         f"sizeof((({struct_name}*)0)->{field}));")
        lines.append(f'  printf("{struct_name} sizeof 0 %zu\\n", sizeof({struct_name}));')
    source = tmp_path / "layout.c"
    source.write_text('#include <stddef.h>\n#include <stdio.h>\n#include "htpw_file.h"\n#include "htpw_op.h"\n'
                      "int main(void) {\n" + "\n".join(lines) + "\n  return 0;\n}\n")
    exe = core_lib.build(tmp_path / "layout", (source,), core_lib.STRICT)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    layout: dict[str, list[tuple[str, int, int]]] = {}
    for line in out.splitlines():
        struct_name, field, offset, size = line.split()
        layout.setdefault(struct_name, []).append((field, int(offset), int(size)))
    return layout


def test_ctypes_structs_match_the_header(tmp_path):
    layout = _c_layout(tmp_path)
    for struct_name, mirror in STRUCTS.items():
        expected = [(field, getattr(mirror, field).offset, getattr(mirror, field).size) for field, _ in mirror._fields_]
        expected.append(("sizeof", 0, ctypes.sizeof(mirror)))
        assert layout[struct_name] == expected, struct_name
