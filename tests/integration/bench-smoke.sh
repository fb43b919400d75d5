#!/bin/sh
# A short run of each secmsg-bench mode, so the benchmark cannot rot.
exec "$(dirname "$0")/../../bench/smoke.sh"
