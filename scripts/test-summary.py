#!/usr/bin/env python3
"""Reads meson's testlog.json files and prints one line: N passed, N failed, N skipped.

With several logs the counts are added up. A skipped test (exit 77) is never counted as passed.
Each test that did not pass is named on standard error with the end of its output, so that the
tail of a CI log says what failed even when meson's own report scrolled away.
"""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            test = json.loads(line)
            result = test.get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
                output = (test.get("stdout") or "") + (test.get("stderr") or "")
                tail = "\n".join(output.splitlines()[-40:])
                print(f"== {result}: {test.get('name')} ({path}, "
                      f"{test.get('duration', 0):.1f} s, exit {test.get('returncode')})\n{tail}",
                      file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
