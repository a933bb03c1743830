"""`python -m bench` (`make bench`): the cancellation-wave benchmark. Run by hand, never by
the test suite; see bench/README.md."""
