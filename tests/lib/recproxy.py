#!/usr/bin/env python3
"""recproxy.py - a TCP proxy that records every byte it relays.

    recproxy.py PORTFILE UPSTREAM_HOST UPSTREAM_PORT CAPTURE [flip-server-sig]

Listens on 127.0.0.1 (a free port, written to PORTFILE once listening),
connects each client to UPSTREAM and copies bytes both ways, appending
everything it relays, in both directions, to CAPTURE (raw bytes, flushed
at once). Runs until killed.

With flip-server-sig, the last byte of the server's first frame (the
ServerHello, which ends with the server's signature) is inverted on its
way to the client, so the client sees a bad server signature.
"""
import os
import socket
import sys
import threading

lock = threading.Lock()


def flip_first_frame(src, dst, cap):
    """Relay the first frame with its last byte inverted."""
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        data = src.recv(65536)
        if not data:
            return buf
        buf += data
    end = 4 + int.from_bytes(buf[:4], "big")
    buf = buf[:end - 1] + bytes([buf[end - 1] ^ 0xFF]) + buf[end:]
    with lock:
        cap.write(buf)
    dst.sendall(buf)
    return None


def pump(src, dst, cap, flip=False):
    try:
        if flip and flip_first_frame(src, dst, cap) is not None:
            return
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                cap.write(data)
                cap.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # Pass the half-close on, then let the other pump finish.
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(client, upstream, cap, flip):
    try:
        server = socket.create_connection(upstream, timeout=10)
        server.settimeout(None)
    except OSError:
        client.close()
        return
    threads = [threading.Thread(target=pump, args=(client, server, cap),
                                daemon=True),
               threading.Thread(target=pump, args=(server, client, cap, flip),
                                daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    server.close()


def main():
    portfile, host, port, capture = sys.argv[1:5]
    flip = sys.argv[5:6] == ["flip-server-sig"]
    cap = open(capture, "ab", buffering=0)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, portfile)
    upstream = (host, int(port))
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, upstream, cap, flip),
                         daemon=True).start()


if __name__ == "__main__":
    main()
