"""The always-on SMTP edge: accepts mail, stores it durably, then says 250."""
