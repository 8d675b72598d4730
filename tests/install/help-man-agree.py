#!/usr/bin/env python3
"""help-man-agree.py COMMAND PAGE.scd: the command's --help and its man page
list the same long options (an option added to one and not the other fails)."""
import re
import subprocess
import sys

cmd, page = sys.argv[1], sys.argv[2]
out = subprocess.run([cmd, "--help"], capture_output=True, text=True, timeout=60)
if out.returncode != 0:
    sys.exit(f"{cmd} --help exited {out.returncode}: {out.stderr}")
# Option lines of --help: "  -c, --config FILE ..." or "      --check ..."
helped = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", out.stdout, re.M))
text = open(page).read()
options = text.split("# OPTIONS", 1)[1].split("\n# ", 1)[0] if "# OPTIONS" in text else ""
# Option entries of the page: "*-c, --config* _FILE_" or "*--check*"
documented = set(re.findall(r"^\*(?:-\w, )?(--[a-z][a-z0-9-]*)\*", options, re.M))
if not helped:
    sys.exit(f"{cmd} --help lists no options")
missing_in_man = sorted(helped - documented)
missing_in_help = sorted(documented - helped)
if missing_in_man or missing_in_help:
    sys.exit(f"{cmd}: only in --help: {missing_in_man}; only in {page}: {missing_in_help}")
print(f"{cmd}: --help and {page} agree on {len(helped)} options")
