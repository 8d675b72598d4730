#!/usr/bin/env python3
"""notify-listener.py SOCKET OUT: stand in for systemd's notification socket
($NOTIFY_SOCKET, sd_notify(3)): append every datagram received to OUT, one
line each ("listening" first, once the socket exists)."""
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(out, "a", buffering=1) as f:
    f.write("listening\n")
    while True:
        f.write(sock.recv(4096).decode(errors="replace").replace("\n", " ").strip() + "\n")
