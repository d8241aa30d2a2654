#!/usr/bin/env bash
# Runs sign.mjs (node.sh installs the pinned dependencies first). Exit 77 when node or npm is
# missing.
exec "$(cd "$(dirname "$0")" && pwd)/node.sh" sign.mjs "$@"
