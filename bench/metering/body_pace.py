"""Can a server tell a slow reader from how fast it writes a preview body? (issue #18)

A server writes an HTTP body of BODY bytes to a reader behind a link of RATE bits/s (a proxy
on loopback that reads from the server only as fast as the link carries: backpressure, as a
slow router gives), and reports when its write finished beside when the client had the last
byte. Usage: python3 body_pace.py RATE_BITS_PER_S [BODY_BYTES]
"""
import socket, threading, time, sys
BODY = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
RATE = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000  # bits/s
res = {}
def server(ls):
    c, _ = ls.accept()
    c.recv(65536)
    hdr = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY
    t0 = time.monotonic()
    c.sendall(hdr + b"x" * BODY)
    res['server'] = time.monotonic() - t0
    time.sleep(30); c.close()
def proxy(lp, up):
    c, _ = lp.accept()
    s = socket.create_connection(up)
    s.sendall(c.recv(65536))
    # reads from the server only as fast as the link carries (backpressure, like a slow router)
    start = time.monotonic(); sent = 0
    while sent < BODY + 40:
        d = s.recv(4096)
        if not d: break
        c.sendall(d); sent += len(d)
        due = start + sent * 8 / RATE
        dt = due - time.monotonic()
        if dt > 0: time.sleep(dt)
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(); lp = socket.socket(); lp.bind(("127.0.0.1", 0)); lp.listen()
threading.Thread(target=server, args=(ls,), daemon=True).start()
threading.Thread(target=proxy, args=(lp, ls.getsockname()), daemon=True).start()
c = socket.create_connection(lp.getsockname()); t0 = time.monotonic()
c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); got = 0
while got < BODY + 38:
    d = c.recv(65536)
    if not d: break
    got += len(d)
client = time.monotonic() - t0
time.sleep(0.2)
mb = lambda t: BODY * 8 / t / 1e6 if t > 0 else float('inf')
print(f"link {RATE/1e6:.0f} Mbit/s, body {BODY} B: client {client:.3f} s ({mb(client):.1f} Mbit/s); server's write finished after {res['server']:.3f} s ({mb(res['server']):.1f} Mbit/s)")
