"""The adversary suite: a hostile band member on the same Wi-Fi, against a real server.

Every test plays the attacker with real clients (real sockets, addresses of their own in
127.0.0.0/8) and asserts what the band keeps: its leader, its seats, its session, its
server. The findings the tests answer are numbered as in docs/security.md.
"""
