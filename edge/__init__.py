"""The always-on edge container: SMTP (MX and submission, `edge.smtp`) and IMAP
(`edge.imap`), each its own process of one image (`python -m edge smtp|imap`)."""
