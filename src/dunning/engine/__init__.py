"""The engine: cases, decisions and the outbox (load, the core decides, persist, deliver)."""
