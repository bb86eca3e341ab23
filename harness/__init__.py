"""Local harness: embedded AWS endpoint, Lambda runtime, stream poller, gateway and friends."""
