"""The public pages keep no models of their own: opt-outs live in dunning.engine.models."""
