#!/usr/bin/env python3
"""Checks the layout rule of ARCHITECTURE.md: a source folder includes project headers only from
itself and from the folders whose libraries it links, directly or through others.

usage: check_layout.py REPO_ROOT LAYOUT_JSON

LAYOUT_JSON is written by CMake (build/<preset>/layout.json): each library's folder and the
folders of the libraries it links directly. Prints every include that breaks the rule, and every
source file in a folder that has no library, and exits 1 if there is any; prints a summary and
exits 0 otherwise.
"""
import json
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def closure(graph):
    """Each folder's reachable folders, itself included."""
    out = {}
    for start in graph:
        seen, todo = {start}, [start]
        while todo:
            for dep in graph.get(todo.pop(), []):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        out[start] = seen
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root, layout = sys.argv[1], sys.argv[2]
    with open(layout) as f:
        graph = json.load(f)
    allowed = closure(graph)
    folders = sorted(graph, key=len, reverse=True)  # deepest first
    problems, files, includes = [], 0, 0
    for folder in sorted(graph):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(folder, name)
            files += 1
            with open(os.path.join(root, path)) as f:
                for number, line in enumerate(f, 1):
                    match = INCLUDE.match(line)
                    if not match:
                        continue
                    target = match.group(1)
                    owner = next((d for d in folders if target.startswith(d + "/")), None)
                    if owner is None:
                        if target.split("/")[0] in {d.split("/")[0] for d in graph} or \
                           target.startswith("tests/"):
                            problems.append(f"{path}:{number}: includes {target}, which is in "
                                            "no library folder")
                        continue
                    includes += 1
                    if owner not in allowed[folder]:
                        problems.append(f"{path}:{number}: includes {target} ({owner}), but "
                                        f"{folder} does not link {owner}")
    # Source files in a folder that is not a library's (a stray file the build would not see).
    for top in sorted({d.split("/")[0] for d in graph}):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            rel = os.path.relpath(dirpath, root)
            if rel in graph:
                continue
            for name in names:
                if name.endswith((".h", ".cc")):
                    problems.append(f"{os.path.join(rel, name)}: in no library's folder")
    for problem in problems:
        print(problem)
    if problems:
        print(f"layout: {len(problems)} problem(s); see ARCHITECTURE.md, \"The rule\"")
        return 1
    print(f"layout: {len(graph)} folders, {files} files, {includes} project includes: all one-way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
