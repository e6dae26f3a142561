"""Persistence: SQLAlchemy 2 async models, engine set-up and repositories. No channel code here."""
