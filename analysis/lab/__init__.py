"""The lab: real origins on loopback that show each validator behaviour etagwatch judges.

nginx, Apache httpd and haproxy from the system, plus small Python origins (tracker, echo
tracker, digest, random, first-party page). Everything binds free loopback ports and is
stopped by the context manager that started it, also on error or Ctrl-C. Every site is served
over HTTP and over HTTPS + HTTP/2 with a CA made at start (``tls.py``); ``trust.py`` gives the
Chromium flags that trust a CA (the lab's, or mitmproxy's).
"""
