"""Small Python origins of the lab, one module per behaviour: a tracker, an echo tracker, a
digest-ETag origin, a random-ETag origin and a first-party page that embeds them all.

They are deliberately independent of etagwatch's own parsers: the lab is the ground truth the
analysis is checked against, so it must not share the code under test.
"""
