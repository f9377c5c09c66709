"""Domain logic of mailpipe, shared by every Lambda function and by the SMTP edge."""
