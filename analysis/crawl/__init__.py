"""`etagwatch crawl`: several fresh Chromium profiles visit a list of sites through mitmdump
with etagwatch's addon, producing the multi-client evidence identifier verdicts need.

One module per job: ``sitelist`` (what to visit), ``browser`` (how a profile's Chromium is
launched), ``recorder`` (the mitmdump each profile talks through), ``journal`` (the plan and
what is done, in the store, so a crawl resumes), ``visit`` (one visit of one site), ``runner``
(profiles in parallel, progress, stopping) and ``summary`` (the closing lines).
"""
