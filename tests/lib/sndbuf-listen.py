#!/usr/bin/env python3
"""Run secmsgd with its chat socket passed as systemd would (LISTEN_FDS),
made here with a small send buffer, which every accepted connection
inherits: what `SendBuffer=` in secmsgd.socket gives. Used as
SECMSG_DAEMON_WRAPPER="python3 tests/lib/sndbuf-listen.py BYTES".

Usage: sndbuf-listen.py BYTES COMMAND...   (COMMAND has "-c CONF"; CONF's
listen line gives the address)."""
import os
import socket
import sys

size = int(sys.argv[1])
cmd = sys.argv[2:]
conf = cmd[cmd.index("-c") + 1]
host = port = None
with open(conf) as f:
    for line in f:
        key, _, value = line.partition("=")
        if key.strip() == "listen":
            host, _, port = value.strip().rpartition(":")
            break
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
s.bind((host, int(port)))
s.listen(128)
if s.fileno() == 3:
    os.set_inheritable(3, True)
else:
    os.dup2(s.fileno(), 3)  # inheritable
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                  LISTEN_FDNAMES="chat")
os.execvp(cmd[0], cmd)
