"""etagwatch's library: RFC 9110 core, exchange records, readers, store, detectors, reports."""

__version__ = "0.1.0"
