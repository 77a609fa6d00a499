"""Engines that run the detectors over data too large for one pandas process."""
