#!/usr/bin/env python3
"""Usage: libtorch2_syntax.py BUILD_DIR HEADERS_DIR

Syntax-checks every translation unit of the build that includes LibTorch against the
LibTorch 2.x headers in HEADERS_DIR (scripts/fetch_libtorch2_headers.sh), so that code
written against this machine's LibTorch 1.13 is known to compile for a GPU build's 2.x.
Each unit's command from BUILD_DIR/compile_commands.json runs again with -fsyntax-only,
its LibTorch include directories pointed at HEADERS_DIR and the build's precompiled
torch/torch.h replaced by one made from the 2.x headers. Exit status 1 if any unit fails.
"""
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

TORCH_API_INCLUDE = "torch/csrc/api/include"


def torch_version(headers):
    path = os.path.join(headers, "usr/include", TORCH_API_INCLUDE, "torch/version.h")
    with open(path) as f:
        text = f.read()
    major, minor = (int(re.search(rf"#define TORCH_VERSION_{part} (\d+)", text).group(1))
                    for part in ("MAJOR", "MINOR"))
    return major, minor


def flags_against(entry, headers):
    """The unit's compiler and flags, with `headers` for LibTorch and without outputs or source."""
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    out, skip = [], 0
    for i, arg in enumerate(args):
        if skip:
            skip -= 1
        elif arg in ("-o", "-MT", "-MF"):
            skip = 1
        elif arg == "-include" and args[i + 1].endswith("cmake_pch.hxx"):  # the build's 1.13 PCH
            skip = 1
        elif arg in ("-c", "-MD", "-Winvalid-pch", entry["file"]):
            pass
        elif arg.endswith(TORCH_API_INCLUDE):
            include = os.path.join(headers, "usr/include")
            out += [include, "-isystem", os.path.join(include, TORCH_API_INCLUDE)]
        else:
            out.append(arg)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, headers = sys.argv[1:]
    try:
        major, minor = torch_version(headers)
    except OSError as e:
        sys.exit(f"no LibTorch headers in {headers} ({e.strerror}): scripts/fetch_libtorch2_headers.sh fetches them")
    if major < 2:
        sys.exit(f"{headers} holds LibTorch {major}.{minor}, not 2.x")
    with open(os.path.join(build, "compile_commands.json")) as f:
        units = [e for e in json.load(f) if TORCH_API_INCLUDE in e.get("command", " ".join(e.get("arguments", [])))
                 and not e["file"].endswith("cmake_pch.hxx.cxx")]  # CMake's own unit for the build's PCH
    if not units:
        sys.exit(f"{build}/compile_commands.json lists no translation unit that includes LibTorch")

    with tempfile.TemporaryDirectory(dir=build, prefix="libtorch2_syntax.") as tmp:
        # One precompiled torch/torch.h (GCC falls back to the header where a unit's
        # flags differ), so the units take seconds each instead of a minute.
        pch_header = os.path.join(tmp, "torch_all.h")
        with open(pch_header, "w") as f:
            f.write("#include <torch/torch.h>\n")
        pch_command = flags_against(units[0], headers) + ["-x", "c++-header", pch_header, "-o", pch_header + ".gch"]
        made = subprocess.run(pch_command, cwd=units[0]["directory"], capture_output=True, text=True)
        if made.returncode != 0:
            print(made.stderr[-4000:])
            sys.exit(f"torch/torch.h of LibTorch {major}.{minor} does not compile with the build's flags")

        def check(unit):
            start = time.monotonic()
            command = flags_against(unit, headers) + ["-include", pch_header, "-fsyntax-only", unit["file"]]
            result = subprocess.run(command, cwd=unit["directory"], capture_output=True, text=True)
            return unit["file"], result, time.monotonic() - start

        failed, root = 0, os.path.commonpath([unit["file"] for unit in units])
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for path, result, seconds in pool.map(check, units):
                name = os.path.relpath(path, root)
                if result.returncode == 0:
                    print(f"ok   {name} ({seconds:.0f} s)", flush=True)
                else:
                    failed += 1
                    errors = [line for line in result.stderr.splitlines() if "error" in line]
                    print(f"FAIL {name}\n     " + "\n     ".join(errors[:10]), flush=True)
    print(f"LibTorch {major}.{minor}: {len(units) - failed} of {len(units)} translation units pass, {failed} fail")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
