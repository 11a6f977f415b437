#!/usr/bin/env bash
# Regenerates the golden C++ for tests/codegen/tiny.pbtxt with the built fgc. Review the diff
# (git diff tests/codegen/golden) before committing: it is the change in what users get.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fgc="${1:-$here/../../build/tools/fgc/fgc}"
cd "$here/golden"
"$fgc" compile ../tiny.pbtxt -o tiny.cpp --header tiny.h
