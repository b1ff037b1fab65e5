"""Trust: Sigstore verification of every signature format, trust roots, policies, evaluation."""
