"""Test harness: a real Distribution registry, a token server, a fault proxy and image builders."""
