"""Local clouds for the demo and the tests: a moto server and a Compute Engine emulator."""
