"""Tests of the demos, run as their users run them."""
