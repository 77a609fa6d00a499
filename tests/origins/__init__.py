"""Small origins the tests start on loopback."""
