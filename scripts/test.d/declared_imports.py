#!/usr/bin/env python3
"""Every module a target imports is declared among its dependencies in Package.swift, and every dependency it
declares is imported.

SwiftPM lets a target import any module its dependencies bring along, so an undeclared import builds until
the dependency that brought it changes; and a declared dependency nobody imports links and builds for nothing,
and misstates what the target is made of. Prints each target's undeclared imports and unused dependencies, and
exits 1 if there are any.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The toolchain's own modules, which no package declares.
SYSTEM = {"Glibc", "Foundation", "FoundationEssentials", "Synchronization", "Dispatch", "Testing", "XCTest", "_Concurrency"}


def targets(package):
    for match in re.finditer(r"\.(?:target|executableTarget|testTarget|systemLibrary)\(", package):
        start = end = match.end()
        depth = 1
        while depth:
            depth += (package[end] == "(") - (package[end] == ")")
            end += 1
        body = package[start:end - 1]
        name = re.search(r'name:\s*"(\w+)"', body)
        if name:
            path = re.search(r'path:\s*"([^"]+)"', body)
            yield name.group(1), set(re.findall(r'"(\w+)"', body)), path.group(1) if path else None, dependencies(body)


def dependencies(body):
    """The modules a target's `dependencies:` list names: its targets, and its products (named as their modules)."""
    match = re.search(r"dependencies:\s*\[", body)
    if not match:
        return set()
    start = end = match.end()
    depth = 1
    while depth:
        depth += (body[end] == "[") - (body[end] == "]")
        end += 1
    listed = body[start:end - 1]
    products = set(re.findall(r'\.product\(name:\s*"(\w+)"', listed))
    targets = set(re.findall(r'"(\w+)"', re.sub(r"\.product\([^)]*\)", "", listed)))
    return products | targets


def fuzz_targets(package):
    """The libFuzzer targets, declared as a list of (name, dependencies) for PREFORK_FUZZ=1 builds."""
    for match in re.finditer(r'\("Fuzz(\w+)", \[(.*?)\]\)', package, re.S):
        yield "Fuzz" + match.group(1), set(re.findall(r'"(\w+)"', match.group(2))) | {"FuzzDriver"}, f"Fuzz/{match.group(1)}", set()


def imports(directory):
    found = set()
    for file in glob.glob(os.path.join(directory, "**", "*.swift"), recursive=True):
        with open(file, encoding="utf-8") as source:
            for line in source:
                match = re.match(r"(?:@testable\s+|@_exported\s+)?import\s+(?:(?:struct|enum|class|func|protocol)\s+)?(\w+)", line)
                if match:
                    found.add(match.group(1))
    return found


def main():
    with open(os.path.join(ROOT, "Package.swift"), encoding="utf-8") as file:
        package = file.read()
    failed = False
    for name, declared, path, listed in list(targets(package)) + list(fuzz_targets(package)):
        imported = set()
        for directory in [path] if path else [f"Sources/{name}", f"Tests/{name}"]:
            full = os.path.join(ROOT, directory)
            if os.path.isdir(full):
                imported |= imports(full)
        missing = sorted(module for module in imported - declared - SYSTEM if module != name)
        if missing:
            print(f"{name} imports modules Package.swift does not declare for it: {', '.join(missing)}")
            failed = True
        unused = sorted(listed - imported)
        if unused:
            print(f"{name} declares dependencies it never imports: {', '.join(unused)}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
