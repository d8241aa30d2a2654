#!/usr/bin/env python3
"""docs_blocks' log check (tests/docs/run_blocks.sh): the "Logs" table of docs/operations.md
against the JSON lines a real server wrote.

The table's rows: | `msg` ... | level | fields |, the fields each `name`, separated by commas; a
field whose item says "when" is written only sometimes. Fails when
- a documented message never appeared in the log (the run must provoke each one),
- a line carries a field its row does not name, or lacks one its row names without "when",
- a line's level differs from its row's,
- an info, warn or error line's message has no row (debug lines may go unlisted).
Usage: log_fields.py OPERATIONS.md SERVER.LOG"""
import json, re, sys

doc, logfile = sys.argv[1], sys.argv[2]
rows = {}
in_logs = False
for line in open(doc):
    if line.startswith("## "):
        in_logs = line.strip() == "## Logs"
        continue
    m = re.match(r"^\| `([^`]+)`[^|]*\| (\w+) \| (.*) \|\s*$", line) if in_logs else None
    if not m:
        continue
    msg, level, cell = m.groups()
    if level not in ("debug", "info", "warn", "error"):
        continue  # the header
    # split on commas outside parentheses
    items, depth, cur = [], 0, ""
    for ch in cell:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            items.append(cur); cur = ""
        else:
            cur += ch
    items.append(cur)
    always, sometimes = set(), set()
    for item in items:
        name = re.search(r"`([a-z_]+)`", item)
        if not name:
            continue
        (sometimes if re.search(r"\bwhen\b", item.split("(")[0]) else always).add(name.group(1))
    rows[msg] = (level, always, sometimes)

if not rows:
    sys.exit(f"FAIL: {doc}: no log table under '## Logs'")

errors, seen = [], {}
for n, raw in enumerate(open(logfile), 1):
    try:
        rec = json.loads(raw)
    except ValueError:
        errors.append(f"line {n} of the log is not JSON: {raw.strip()[:100]}")
        continue
    msg, level = rec.get("msg"), rec.get("level")
    fields = set(rec) - {"ts", "level", "msg"}
    if msg not in rows:
        if level != "debug":
            errors.append(f"logged but not in the table: {level} {msg!r} with {sorted(fields)}")
        continue
    want_level, always, sometimes = rows[msg]
    seen[msg] = seen.get(msg, 0) + 1
    if level != want_level:
        errors.append(f"{msg!r}: logged at {level}, the table says {want_level}")
    if fields - always - sometimes:
        errors.append(f"{msg!r}: logged with {sorted(fields - always - sometimes)}, not in the table")
    if always - fields:
        errors.append(f"{msg!r}: logged without {sorted(always - fields)}, which the table lists")
for msg in rows:
    if msg not in seen:
        errors.append(f"{msg!r}: in the table, never logged in this run")

# one line per problem, each once
for e in dict.fromkeys(errors):
    print(f"FAIL: docs/operations.md's log table: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"ok: docs/operations.md's log table matches the {sum(seen.values())} lines of its "
      f"{len(rows)} messages the server wrote")
