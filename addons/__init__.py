"""mitmproxy addons of etagwatch; load them with `mitmdump -s addons/etagwatch.py`."""
