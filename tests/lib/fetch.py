#!/usr/bin/env python3
# fetch.py - GET a URL for the shell tests (no curl needed).
#   tests/lib/fetch.py URL [HEADFILE]
# Writes the body on stdout and, with HEADFILE, "STATUS CONTENT-TYPE" into
# it; exits 0 for a 200, 1 for another status, 2 when it could not connect
# or read within 20 seconds.
import sys
import urllib.error
import urllib.request

try:
    r = urllib.request.urlopen(sys.argv[1], timeout=20)
except urllib.error.HTTPError as e:
    r = e
except OSError as e:
    print("fetch %s: %s" % (sys.argv[1], e), file=sys.stderr)
    sys.exit(2)
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as f:
        f.write("%d %s\n" % (r.status, r.headers.get("Content-Type")))
sys.stdout.buffer.write(r.read())
sys.exit(0 if r.status == 200 else 1)
